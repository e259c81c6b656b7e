import platform
import sys

import numpy as np
import pytest

from memcross.theory import Setting
from memcross.validation.data import make_gmm_data
from memcross.validation.process import Process
from memcross.validation.train import History, TrainConfig, Trainer, convergence, heap_for_large_arrays

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def small():
    return make_gmm_data(6, 2, 20, seed=0), Process(Setting(d=6, K=2, N=20))


@pytest.mark.parametrize("init", ["pmem", "gaussian", "sphere", "prior"])
@pytest.mark.parametrize("weighting,target", [("eps-uniform", "eps"), ("x0-uniform", "x0"), ("min-snr", "x0")])
def test_hand_gradient_equals_autograd(small, init, weighting, target, hand_gradient_matches_autograd):
    data, proc = small
    cfg = TrainConfig(steps=10, draws=3, dtype="float64", init=init, init_variance=0.3, weighting=weighting,
                      target=target)
    hand_gradient_matches_autograd(Trainer(data, proc, [3, 7, 20], cfg))


def test_interval_measure_trains(small):
    data, _ = small
    tr = Trainer(data, Process(Setting(d=6, K=2, N=20, time="interval:0.01,0.99")), [5], TrainConfig(steps=5, draws=2))
    assert len(tr.run().loss) == 5


def test_training_decreases_the_loss(small):
    data, proc = small
    tr = Trainer(data, proc, [4, 10], TrainConfig(steps=300, draws=4, init="gaussian", lr=1e-2))
    hist = tr.run()
    first, last = np.array(hist.loss[:5]).mean(0), np.array(hist.loss[-5:]).mean(0)
    assert np.all(last < 0.9 * first)


def _run(data, proc, sizes, cfg, until=None):
    tr = Trainer(data, proc, sizes, cfg)
    tr.run(until=until)
    return tr


def test_same_seed_same_result_and_resume_is_exact(small):
    data, proc = small
    cfg = TrainConfig(steps=40, draws=3, seed=5)
    a, b = _run(data, proc, [3, 8], cfg), _run(data, proc, [3, 8], cfg)
    assert torch.equal(a.family.means, b.family.means) and torch.equal(a.family.std, b.family.std)
    assert a.history.loss == b.history.loss
    half = _run(data, proc, [3, 8], cfg, until=17)
    resumed = Trainer(data, proc, [3, 8], cfg)
    resumed.load_state_dict(half.state_dict())
    resumed.run()
    assert torch.equal(resumed.family.means, a.family.means) and torch.equal(resumed.family.std, a.family.std)
    assert resumed.history.loss == a.history.loss


def test_a_size_trains_the_same_alone_or_in_a_batch(small):
    data, proc = small
    cfg = TrainConfig(steps=30, draws=3, dtype="float64")
    alone = _run(data, proc, [8], cfg)
    batched = _run(data, proc, [3, 8, 20], cfg)
    assert torch.allclose(alone.family.model_means(0), batched.family.model_means(1), rtol=0, atol=1e-9)
    assert abs(float(alone.family.variance()[0] - batched.family.variance()[1])) < 1e-12


def test_learning_rate_schedule():
    cfg = TrainConfig(steps=1000, warmup=0.05, lr=1e-3, final_lr=1e-6)
    assert cfg.learning_rate(0) == pytest.approx(1e-3 / 50)
    assert cfg.learning_rate(49) == pytest.approx(1e-3)
    assert cfg.learning_rate(999) == pytest.approx(1e-6)
    lrs = [cfg.learning_rate(k) for k in range(50, 1000)]
    assert all(x >= y for x, y in zip(lrs, lrs[1:]))


def test_update_ema_option_trains(small):
    data, proc = small
    tr = _run(data, proc, [5], TrainConfig(steps=50, draws=2, update_ema=0.99))
    assert torch.isfinite(tr.family.means).all()


def test_convergence_diagnostic():
    steps = list(range(10, 1010, 10))
    flat = History(steps, [[1.0 + 0.01 * ((-1) ** i)] for i in range(100)], [[0.5]] * 100)
    assert convergence(flat, 0)["converged"]
    falling = History(steps, [[100.0 - i] for i in range(100)], [[0.5]] * 100)
    assert convergence(falling, 0)["loss_fell"] and not convergence(falling, 0)["converged"]
    moving = History(steps, [[1.0]] * 100, [[1e-4 * (1 + i)] for i in range(100)])
    assert convergence(moving, 0)["variance_moved"]


@pytest.mark.parametrize("kwargs,match", [
    ({"steps": 0}, "steps must be a positive integer"),
    ({"draws": 0}, "draws must be a positive integer"),
    ({"init": "nope"}, "unknown init"),
    ({"warmup": 1.5}, "warmup"),
    ({"dtype": "float16"}, "dtype"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_size_above_N_is_refused(small):
    data, proc = small
    with pytest.raises(ValueError, match=r"M must be a positive integer \(at most N = 20\)"):
        Trainer(data, proc, [5, 21], TrainConfig(steps=1))


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": float("inf")}, "--lr must be a finite positive number, got inf"),
    ({"lr": float("nan")}, "--lr must be a finite positive number, got nan"),
    ({"lr": 0}, "--lr must be a finite positive number"),
    ({"final_lr": float("nan")}, "final_lr must be a number in"),
    ({"init_variance": 0.0}, "--init-variance must be a finite positive number, got 0.0"),
    ({"init_variance": float("nan")}, "--init-variance must be a finite positive number, got nan"),
    ({"init_variance": float("inf")}, "--init-variance must be a finite positive number, got inf"),
    ({"update_ema": float("nan")}, "--update-ema must be a number in"),
    ({"target": "x1"}, "--train-target 'x1': unknown target 'x1'; known targets: x0, eps"),
    ({"weighting": "foo"}, "--train-weighting 'foo': unknown weighting 'foo'"),
    ({"weighting": "min-snr:gamma=-1"}, "--train-weighting 'min-snr:gamma=-1': .*gamma must be positive"),
    ({"weighting": "custom"}, "--train-weighting 'custom' is not available"),
    ({"seed": -1}, r"--train-seed must be an integer in \[0, 2\*\*63\)"),
    ({"seed": 2**64}, r"--train-seed must be an integer in \[0, 2\*\*63\)"),
    ({"steps": 10**9}, "--steps must be a positive integer"),
    ({"draws": 10**5}, "--draws must be a positive integer"),
    ({"betas": (0.9, 1.5)}, "betas must be two numbers"),
    ({"eps": 0}, "eps must be a finite positive number"),
    ({"time_sampling": "sobol"}, "--time-sampling must be one of iid, stratified, got 'sobol'"),
])
def test_bad_config_names_the_flag(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_a_weighting_that_is_infinite_on_the_measure_is_refused_up_front():
    from memcross.validation.train import check_loss_weights

    check_loss_weights(Setting(d=4, K=2, N=8), TrainConfig())
    with pytest.raises(ValueError, match="--train-weighting 'eps-uniform' is not finite on the time measure"):
        check_loss_weights(Setting(d=4, K=2, N=8, time="grid:0,0.999,11"), TrainConfig())


def test_divergence_fails_with_the_step_and_advice(small):
    from memcross.validation.train import TrainingDiverged

    data, proc = small
    tr = Trainer(data, proc, [3, 20], TrainConfig(steps=50, draws=2, lr=1e30, warmup=0, final_lr=0))
    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+: the loss is nan .*; lower --lr"):
        tr.run()
    tr = Trainer(data, proc, [3, 20], TrainConfig(steps=5, draws=2))
    with torch.no_grad():
        tr.family.means[4, 0] = float("inf")  # a mean of the second size
    with pytest.raises(TrainingDiverged, match=r"a parameter is inf for size\(s\) M = 20"):
        tr.check_finite()


def test_non_finite_history_is_never_converged():
    steps = list(range(10, 1010, 10))
    nan_loss = History(steps, [[1.0]] * 99 + [[float("nan")]], [[0.5]] * 100)
    inf_var = History(steps, [[1.0]] * 100, [[0.5]] * 99 + [[float("inf")]])
    for hist in (nan_loss, inf_var):
        out = convergence(hist, 0)
        assert out["converged"] is False and out["finite"] is False
    short = History([10, 20], [[float("nan")], [float("nan")]], [[0.5], [0.5]])
    assert convergence(short, 0)["converged"] is False


def test_clipping_bounds_each_models_gradient_on_its_own():
    """Per model: a gradient above ``clip`` is scaled to norm ``clip``, one below is left alone,
    and a model's factor does not depend on the other models' gradients."""
    from memcross.templates import load_templates
    from memcross.validation.lowrank import make_colored_data

    data = make_colored_data(load_templates("blobs:side=5", 3), N=12, sc2=1.0, seed=0)
    proc = Process(Setting(d=data.d, K=3, N=12))
    tr = Trainer(data, proc, [3, 12], TrainConfig(steps=10, draws=2, clip=1.0))
    grads = [torch.ones_like(p) for p in tr.family.parameters()]
    grads = [g.clone() for g in grads]
    grads[0][3:] *= 1e-4  # model 2's templates tiny
    grads[1][3:] *= 1e-4
    grads[2][1] = 1e-4
    clipped = tr._clipped(grads)

    def norm(gs, model):
        rows = slice(0, 3) if model == 0 else slice(3, 15)
        return float(sum((g[rows] ** 2).sum() for g in gs[:2]) + gs[2][model] ** 2) ** 0.5

    assert norm(clipped, 0) == pytest.approx(1.0, rel=1e-6)
    assert norm(clipped, 1) == pytest.approx(norm(grads, 1), rel=1e-6) and norm(grads, 1) < 1
    with pytest.raises(ValueError, match="--clip must be a finite positive number"):
        TrainConfig(clip=-1.0)


@pytest.mark.parametrize("family", ["isotropic", "coloured"])
def test_lr_factors_scale_only_their_groups_step(family):
    """``lr_factors = {group: k}`` multiplies that parameter group's Adam step by ``k`` and leaves
    every other group's step as it was (the same batch, so the same gradients)."""
    if family == "isotropic":
        data, setting, factors = make_gmm_data(4, 2, 8, seed=0), Setting(d=4, K=2, N=8), {"variance": 7.0}
    else:
        from memcross.templates import load_templates
        from memcross.validation.lowrank import make_colored_data

        data = make_colored_data(load_templates("blobs:side=5", 3), N=12, sc2=1.0, seed=0)
        setting, factors = Setting(d=data.d, K=3, N=12), {"colours": 3.0, "variance": 7.0}
    moved = []
    for lr_factors in (None, factors):
        config = TrainConfig(steps=4, draws=2, warmup=0.0, init_variance=0.01, dtype="float64", lr_factors=lr_factors)
        tr = Trainer(data, Process(setting), [2, 4], config)
        before = [p.detach().clone() for p in tr.family.parameters()]
        tr.run(until=1)
        moved.append([p.detach() - b for p, b in zip(tr.family.parameters(), before)])
    assert tr.family.lr_groups[-1] == "variance" and len(tr.family.lr_groups) == len(moved[0])
    for group, plain, scaled in zip(tr.family.lr_groups, *moved):
        assert bool((plain != 0).any())
        torch.testing.assert_close(scaled, plain * factors.get(group, 1.0), rtol=1e-12, atol=0)


def test_lr_factors_are_refused_where_they_do_not_apply(small):
    data, proc = small
    for bad in ({"variance": 0.0}, {"variance": float("nan")}, {"": 2.0}, 5, {}):
        with pytest.raises(ValueError, match="--lr-factors must map parameter groups to finite positive multiples"):
            TrainConfig(lr_factors=bad)
    with pytest.raises(ValueError, match="--lr-factors: the family of data 'isotropic' has no parameter group 'colours'; "
                                         "its groups are means, variance"):
        Trainer(data, proc, [3], TrainConfig(steps=2, draws=1, lr_factors={"colours": 2.0}))
    with pytest.raises(ValueError, match="--lr-factors applies to the GMM families' parameter groups, not to MLP"):
        Trainer(data, proc, [3], TrainConfig(steps=2, draws=1, family="mlp", init="default", lr_factors={"variance": 2.0}))
    assert "lr_factors" not in TrainConfig().to_dict()
    config = TrainConfig(lr_factors={"variance": 3, "means": 2})
    assert config.lr_factors == (("means", 2.0), ("variance", 3.0))  # sorted pairs: hashable, one key per meaning
    assert config.to_dict()["lr_factors"] == {"means": 2.0, "variance": 3.0} and hash(config) is not None


def test_unset_new_options_keep_the_stored_config_keys():
    assert "clip" not in TrainConfig().to_dict() and "variance_param" not in TrainConfig().to_dict()
    assert TrainConfig(clip=1e3).to_dict()["clip"] == 1e3
    with pytest.raises(ValueError, match="--variance-param must be one of std, log-var"):
        TrainConfig(variance_param="var")


def test_time_sampling_iid_is_the_unset_default_and_keeps_the_stored_keys():
    assert TrainConfig(time_sampling="iid") == TrainConfig() and "time_sampling" not in TrainConfig().to_dict()
    assert TrainConfig(time_sampling="stratified").to_dict()["time_sampling"] == "stratified"


@pytest.mark.parametrize("N,R", [(20, 5), (7, 3), (5, 1), (1, 4)])
def test_stratified_times_cover_each_points_strata_and_spread_the_batch(N, R):
    data = make_gmm_data(6, 1, N, seed=0)
    tr = Trainer(data, Process(Setting(d=6, K=1, N=N)), [1], TrainConfig(steps=1, draws=R, time_sampling="stratified"))
    for _ in range(5):
        u = tr._stratified(N * R).numpy()
        assert u.shape == (N * R,) and u.min() >= 0 and u.max() < 1
        # each point's R draws: one in each 1/R of the range
        strata = np.floor(u.reshape(R, N) * R).astype(int)
        assert all(sorted(strata[:, i]) == list(range(R)) for i in range(N))
        # the whole batch: an evenly spaced grid of N R points with one random offset
        gaps = np.diff(np.sort(u))
        np.testing.assert_allclose(gaps, 1 / (N * R), rtol=0, atol=1e-12)


def test_stratified_times_are_uniform_for_each_row():
    """The same marginal as independent draws: each row's number is uniform on [0, 1) (KS test over
    2,000 steps, a fixed seed), so the step's loss and gradient stay unbiased."""
    from scipy import stats

    data = make_gmm_data(6, 1, 4, seed=0)
    tr = Trainer(data, Process(Setting(d=6, K=1, N=4)), [1], TrainConfig(steps=1, draws=3, time_sampling="stratified"))
    u = np.stack([tr._stratified(12).numpy() for _ in range(2000)])
    for row in range(12):
        assert stats.kstest(u[:, row], "uniform").pvalue > 1e-3


def test_stratified_times_on_a_grid_give_each_time_its_share():
    """On a grid of G times each step's n rows fall floor(n/G) or ceil(n/G) on each time; the
    interval measure's times stay inside its bounds."""
    data = make_gmm_data(6, 2, 20, seed=0)
    proc = Process(Setting(d=6, K=2, N=20, time="grid:0.01,0.99,7"))
    tr = Trainer(data, proc, [3], TrainConfig(steps=1, draws=5, time_sampling="stratified"))
    for _ in range(5):
        a, _, _ = tr._times(100)
        _, counts = np.unique(a.numpy(), return_counts=True)
        assert len(counts) == 7 and set(counts) <= {100 // 7, 100 // 7 + 1}
    tr = Trainer(data, Process(Setting(d=6, K=2, N=20, time="interval:0.01,0.99")), [3],
                 TrainConfig(steps=3, draws=5, time_sampling="stratified"))
    a, s, _ = tr._times(100)
    assert bool(((a > 0) & (s > 0)).all())
    tr.run()
    assert np.isfinite(tr.history.loss[-1]).all()


def test_the_heap_serves_large_arrays_where_glibc_allows_it():
    """On Linux with glibc, malloc takes the thresholds (mallopt returns 1); elsewhere nothing is set."""
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert heap_for_large_arrays() is expected
