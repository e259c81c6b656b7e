"""The neural family: MLP denoisers, their gradient path, targets, resumability and effective size."""

import math

import pytest

from memcross.theory import Setting
from memcross.validation.data import make_gmm_data
from memcross.validation.mlp_model import (
    MLPFamily,
    effective_size,
    layer_shapes,
    mlp_denoiser,
    parameter_count,
    parse_family,
)
from memcross.validation.process import Process
from memcross.validation.train import TrainConfig, Trainer

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def small():
    data = make_gmm_data(5, 2, 12, seed=0)
    return data, Process(Setting(d=5, K=2, N=12))


def _config(**kw):
    return TrainConfig(**{"steps": 30, "draws": 2, "init": "default", "family": "mlp", **kw})


@pytest.mark.parametrize("spec, want", [("mlp", {"depth": 2, "embed": 16}), ("mlp:depth=3", {"depth": 3, "embed": 16}),
                                        ("mlp: depth=1, embed=8", {"depth": 1, "embed": 8})])
def test_family_specs(spec, want):
    assert parse_family(spec) == want


@pytest.mark.parametrize("spec, msg", [
    ("cnn", "--family must be gmm, mlp or mlp:depth=D,embed=E, got 'cnn'"),
    ("mlp:width=3", "unknown option 'width=3'; allowed: depth=D, embed=E"),
    ("mlp:depth=0", "depth must be an integer in \\[1, 16\\], got '0'"),
    ("mlp:embed=7", "embed must be an integer in \\[2, 256\\] and even, got '7'"),
    (3, "--family must be a name"),
])
def test_bad_family_specs_are_refused_by_name(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_family(spec)
    with pytest.raises(ValueError, match=msg):
        TrainConfig(family=spec, init="default")


def test_parameter_count_is_every_weight_and_bias(small):
    data, _ = small
    fam = MLPFamily.initialize(data, [3, 20], depth=3, embed=4)
    assert fam.parameter_counts() == [parameter_count(w, 5, 3, 4) for w in (3, 20)]
    # by hand: (5+4) -> 20 -> 20 -> 20 -> 5
    assert parameter_count(20, 5, 3, 4) == 9 * 20 + 20 + 2 * (20 * 20 + 20) + 20 * 5 + 5
    assert layer_shapes(20, 5, 3, 4) == [(20, 9), (20, 20), (20, 20), (5, 20)]


def _reference_x0(net, x, alpha, sigma, sigma_data, embed):
    """The EDM-preconditioned x0 prediction written out with torch.nn layers, independently."""
    s = sigma / alpha
    c_skip = sigma_data**2 / (s**2 + sigma_data**2)
    c_out = s * sigma_data / math.sqrt(s**2 + sigma_data**2)
    c_in = 1 / math.sqrt(s**2 + sigma_data**2)
    c = math.log(s) / 4
    freqs = [math.pi / 2 * k for k in range(1, embed // 2 + 1)]
    emb = torch.tensor([math.sin(f * c) for f in freqs] + [math.cos(f * c) for f in freqs], dtype=torch.float64)
    xt = x / alpha
    h = torch.cat([c_in * xt, emb.expand(x.shape[0], -1)], dim=1)
    mods = []
    for j, (W, b) in enumerate(net):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(W)
            lin.bias.copy_(b)
        mods += [lin] + ([torch.nn.SiLU()] if j < len(net) - 1 else [])
    return c_skip * xt + c_out * torch.nn.Sequential(*mods)(h)


@pytest.mark.parametrize("alpha, sigma", [(0.999, 0.045), (0.6, 0.8), (0.05, 0.9987)])
def test_the_x0_prediction_is_the_preconditioned_network(small, alpha, sigma):
    data, _ = small
    fam = MLPFamily.initialize(data, [7], dtype=torch.float64, seed=3)
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = mlp_denoiser(fam.arrays(0))(x, alpha, sigma)
    want = _reference_x0(fam.layers[0], x, alpha, sigma, fam.sigma_data, fam.embed)
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_x0_error_matches_the_denoiser_without_cancellation(small):
    """(x0_hat - x0)/sigma from x0_error equals the stored denoiser's, even at sigma = 1e-4."""
    data, proc = small
    tr = Trainer(data, proc, [4, 9], _config(dtype="float64"))
    x0 = tr.x0[:8]
    z = torch.randn(8, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for sigma in (1e-4, 0.3, 0.99):
        alpha = math.sqrt(1 - sigma**2)
        a = torch.full((8,), alpha, dtype=torch.float64)
        s = torch.full((8,), sigma, dtype=torch.float64)
        e = tr.family.x0_error(x0, z, a, s)
        for i in range(2):
            f = mlp_denoiser(tr.family.arrays(i))(alpha * x0 + sigma * z, alpha, sigma)
            assert torch.allclose(e[:, i], (f - x0) / sigma, rtol=1e-6, atol=1e-8)


def test_gradient_is_autograd_of_the_loss_and_passes_gradcheck(small):
    data, proc = small
    tr = Trainer(data, proc, [3, 6], _config(dtype="float64"))
    a, s, kappa, z = tr.batch()
    loss, grads = tr.family.loss_and_grad(tr.x0, z, a, s, kappa)
    assert torch.allclose(loss, tr.loss((a, s, kappa, z)).detach(), rtol=1e-13, atol=0)
    # central differences on a few coordinates of each tensor
    params = tr.family.parameters()
    gen = torch.Generator().manual_seed(0)
    for p, g in zip(params, grads):
        idx = tuple(int(torch.randint(n, (1,), generator=gen)) for n in p.shape)
        h = 1e-6
        with torch.no_grad():
            p[idx] += h
            up = tr.family.loss_and_grad(tr.x0, z, a, s, kappa)[0].sum()
            p[idx] -= 2 * h
            down = tr.family.loss_and_grad(tr.x0, z, a, s, kappa)[0].sum()
            p[idx] += h
        assert float(g[idx]) == pytest.approx(float(up - down) / (2 * h), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("target, weighting", [("eps", "eps-uniform"), ("x0", "x0-uniform"), ("v", "v-uniform")])
def test_any_target_is_the_x0_prediction_converted(small, target, weighting):
    """The training loss of target ``target`` equals the squared error of that target computed from
    the network's x0 prediction by the target relations (eps = (x_t - alpha x0)/sigma, v = alpha eps - sigma x0)."""
    data, proc = small
    tr = Trainer(data, proc, [5], _config(dtype="float64", target=target, weighting=weighting))
    a, s, kappa, z = tr.batch()
    loss = tr.loss((a, s, kappa, z)).detach()
    x0 = tr.x0
    xt = a.reshape(-1, 1) * x0 + s.reshape(-1, 1) * z
    f = torch.stack([mlp_denoiser(tr.family.arrays(0))(xt[b:b + 1], float(a[b]), float(s[b]))[0]
                     for b in range(len(a))])
    eps_hat = (xt - a.reshape(-1, 1) * f) / s.reshape(-1, 1)
    pred, true = {"eps": (eps_hat, z), "x0": (f, x0),
                  "v": (a.reshape(-1, 1) * eps_hat - s.reshape(-1, 1) * f,
                        a.reshape(-1, 1) * z - s.reshape(-1, 1) * x0)}[target]
    direct = ((pred - true) ** 2).sum(1).mean()
    assert float(loss[0]) == pytest.approx(float(direct), rel=1e-9)


def test_widths_train_the_same_alone_or_together_and_resume(small):
    data, proc = small
    cfg = _config(dtype="float64", seed=4)
    alone = Trainer(data, proc, [6], cfg)
    alone.run()
    together = Trainer(data, proc, [3, 6], cfg)
    together.run(until=11)
    resumed = Trainer(data, proc, [3, 6], cfg)
    resumed.load_state_dict(together.state_dict())
    resumed.run()
    straight = Trainer(data, proc, [3, 6], cfg)
    straight.run()
    for a, b in zip(straight.family.parameters(), resumed.family.parameters()):
        assert torch.equal(a, b)
    # width 6 alone starts from other random weights (the generator is shared along the widths), so
    # compare it with width 6 of a family that starts the same way
    alone_again = Trainer(data, proc, [6], cfg)
    alone_again.run()
    for a, b in zip(alone.family.parameters(), alone_again.family.parameters()):
        assert torch.equal(a, b)


def test_training_closes_most_of_the_gap_to_the_generalizer(small):
    """On one fixed batch: the trained network's loss comes within half its initial gap of the
    ground-truth posterior mean's (the generalizer's) loss."""
    data, proc = small
    tr = Trainer(data, proc, [16], _config(steps=400, draws=8, lr=3e-3, dtype="float64"))
    a, s, kappa, z = batch = tr.batch()
    xt = a.reshape(-1, 1) * tr.x0 + s.reshape(-1, 1) * z
    gen = torch.cat([data.generalizer(xt[b:b + 1], float(a[b]), float(s[b])) for b in range(len(a))])
    floor = float((kappa * (((gen - tr.x0) / s.reshape(-1, 1)) ** 2).sum(1)).mean())
    before = float(tr.loss(batch).detach())
    tr.run()
    after = float(tr.loss(batch).detach())
    assert after - floor < 0.5 * (before - floor), (before, after, floor)


def test_init_variance_and_variance_param_are_refused(small):
    data, proc = small
    with pytest.raises(ValueError, match="--init-variance does not apply to MLP denoisers"):
        Trainer(data, proc, [3], _config(init_variance=0.5))
    with pytest.raises(ValueError, match="--variance-param applies to the coloured-template family"):
        Trainer(data, proc, [3], _config(variance_param="std"))
    with pytest.raises(ValueError, match="init 'pmem' is not available for MLP denoisers; known inits: default"):
        Trainer(data, proc, [3], _config(init="pmem"))


def test_effective_size_interpolates_and_clamps():
    L = [10.0, 6.0, 4.0, 3.0]
    assert effective_size(6.0, L) == 2.0
    assert effective_size(5.0, L) == 2.5
    assert effective_size(11.0, L) == 1.0
    assert effective_size(2.0, L) == 4.0
    with pytest.raises(ValueError, match="finite"):
        effective_size(float("nan"), L)


def test_effective_size_of_a_partial_memorizer_is_its_size():
    """A model whose answer is known: the exact partial memorizer of size M, evaluated through the
    sweep's own per-time loss code (other noise than the exact table), gets M_eff close to M."""
    from memcross.validation.denoisers import posterior_mean
    from memcross.validation.exact import exact_losses
    from memcross.validation.sweep import _per_time_losses

    data = make_gmm_data(10, 3, 40, seed=1)
    table = Process(Setting(d=10, K=3, N=40)).quadrature()
    ex = exact_losses(data, table, draws=16, seed=2, validation=False)
    for M in (5, 20, 35):
        pts = data.subset(M)
        loss_t = _per_time_losses(lambda x, a, s, pts=pts: posterior_mean(x, a, s, pts), data.train, table, 16, 9)
        m_eff = effective_size(float(table.weighted(loss_t)), table.weighted(ex.pmem_train))
        assert abs(m_eff - M) <= 1.5, (M, m_eff)


NET = ["validate", "--dim", "6", "--components", "2", "--train", "10", "--steps", "20", "--draws", "2",
       "--n-eval", "10", "--exact-draws", "1", "--no-progress", "--no-figure"]


def _main(capsys, *args):
    from memcross.cli import main

    rc = main([str(a) for a in args])
    return rc, capsys.readouterr()


@pytest.mark.parametrize("extra, message", [
    (["--widths", "8,16"], "--widths applies to --family mlp; give --sizes for the GMM family"),
    (["--family", "mlp", "--sizes", "4"], "--family mlp takes --widths (network widths), not --sizes"),
    (["--family", "cnn"], "--family must be gmm, mlp or mlp:depth=D,embed=E, got 'cnn'"),
    (["--family", "mlp:depth=99", "--widths", "8"], "depth must be an integer in [1, 16], got '99'"),
    (["--family", "mlp", "--widths", "0,8"], "--widths must be a positive integer"),
    (["--family", "mlp", "--widths", "8,x"], "--widths '8,x': expected"),
    (["--family", "mlp", "--widths", "8", "--refine", "2"], "--refine applies to component counts"),
    (["--family", "mlp", "--widths", "8", "--init-variance", "0.1"], "--init-variance does not apply to MLP"),
    (["--family", "mlp", "--widths", "8", "--init", "pmem"], "init 'pmem' is not available for MLP denoisers"),
])
def test_network_sweep_mistakes_write_nothing(tmp_path, capsys, extra, message):
    store = tmp_path / "s.sqlite"
    rc, out = _main(capsys, *NET, *extra, "--store", store)
    assert rc == 2 and out.err.count("\n") == 1 and message in out.err, out.err
    assert not store.exists()


def test_network_sweep_stores_resumes_and_reports(tmp_path, capsys):
    """A tiny network sweep end to end: per-width parameter counts and effective sizes in the table,
    the stored units reused by a second run (nothing retrained)."""
    store = tmp_path / "s.sqlite"
    args = [*NET, "--family", "mlp:depth=1,embed=4", "--widths", "4,32", "--store", store]
    rc, out = _main(capsys, *args)
    assert rc == 0, out.err
    assert "| M | params | M_eff | M_over_N |" in out.out and "observed_mid_params" in out.out
    assert "trained sizes [4, 32]" in out.out
    rc, again = _main(capsys, *args)
    assert rc == 0 and "trained sizes" not in again.out  # every width came from the store
    rows = [line for line in out.out.splitlines() if line.startswith("| 4 |") or line.startswith("| 32 |")]
    assert rows[0].split("|")[2].strip() == str(parameter_count(4, 6, 1, 4))
