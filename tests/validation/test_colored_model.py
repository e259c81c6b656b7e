"""The trained coloured-template family: closed form, hand gradient, inits, training."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memcross.templates import load_templates
from memcross.theory import Setting
from memcross.validation.colored_model import ColoredFamily, _csum, colored_posterior_mean, split_rank_one
from memcross.validation.lowrank import colored_templates, make_colored_data
from memcross.validation.process import Process
from memcross.validation.train import TrainConfig, Trainer

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def small():
    data = make_colored_data(load_templates("blobs:side=5", 3), N=12, sc2=1.0, seed=0)
    return data, Process(Setting(d=data.d, K=3, N=12))


@pytest.mark.parametrize("alpha,sigma", [(0.9, 0.3), (0.999, 0.01), (0.3, 0.95)])
def test_posterior_mean_matches_woodbury(alpha, sigma):
    g = torch.Generator().manual_seed(3)
    u = torch.rand(4, 25, generator=g, dtype=torch.float64)
    m = torch.randn(4, 3, generator=g, dtype=torch.float64)
    ref = colored_templates(u.numpy(), 0.37, m.numpy())
    x = 2 * torch.randn(7, 75, generator=g, dtype=torch.float64)
    got = colored_posterior_mean(x, alpha, sigma, u, m, 0.37)
    assert torch.allclose(got, ref.posterior_mean(x, alpha, sigma), rtol=0, atol=1e-12)


@pytest.mark.parametrize("init", ["pmem", "oracle", "random"])
@pytest.mark.parametrize("weighting,target", [("eps-uniform", "eps"), ("x0-uniform", "x0")])
@pytest.mark.parametrize("variance_param", ["std", "log-var"])
def test_hand_gradient_equals_autograd(small, init, weighting, target, variance_param,
                                       hand_gradient_matches_autograd):
    data, proc = small
    cfg = TrainConfig(steps=10, draws=2, dtype="float64", init=init, init_variance=0.3, weighting=weighting,
                      target=target, variance_param=variance_param)
    hand_gradient_matches_autograd(Trainer(data, proc, [3, 7, 12], cfg))


@pytest.mark.parametrize("variance_param, start", [("std", 1e-6), ("log-var", np.log(1e-12))])
def test_the_variance_parameter_is_the_colour_std_by_default(small, variance_param, start):
    data, proc = small
    options = {} if variance_param == "std" else {"variance_param": variance_param}
    tr = Trainer(data, proc, [3, 12], TrainConfig(steps=10, draws=2, init_variance=1e-12, **options))
    assert tr.family.variance_param == variance_param
    assert float(tr.family.scale.detach()[0]) == pytest.approx(start, rel=1e-6)
    assert float(tr.family.variance()[1]) == pytest.approx(1e-12, rel=1e-5)
    assert set(tr.family.state()) == {"sizes", "templates", "colours",
                                      "std" if variance_param == "std" else "log_var"}


#: Float32 unit roundoff, 2^-24.
F32_U = torch.finfo(torch.float32).eps / 2


def _digits_trainer(seed):
    """The quick preset's coloured setting (digits, K = 6, N = 100), pmem (variance 1e-6), float32."""
    data = make_colored_data(load_templates("digits", 6), N=100, sc2=1.0, seed=0)
    return Trainer(data, Process(Setting(d=data.d, K=6, N=100)), [10, 50, 100], TrainConfig(steps=10, draws=2, seed=seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_gradient_at_the_pmem_start(seed, float32_gradient_errors):
    """The quick preset's coloured setting, pmem (variance 1e-6), t = 0.001: the float32 hand
    gradient within 1000 unit roundoffs (6e-5, norm-wise) of float64 autograd.

    Measured on the colour-space path training takes: templates 236-242 unit roundoffs with 1 or 2
    torch threads, colours 94-147, std 33-74 (the pixel path: 37-95). Before the error was formed
    in each model's template basis (``||f||^2 - 2 f.x0 + ||x0||^2`` by Gram products instead) the
    templates were 920-1070 (2 threads) and 2900-3470 (1 thread). One rounding of the float32
    inputs moves the float64 gradient by 10-40 (colours, std) and ~550 (templates) unit roundoffs.
    The softmax backward taken as ``g_w - g_f . f`` (two separately rounded reductions) instead of
    ``g_w - sum_k w_k g_w`` is off by 0.3-7 here."""
    tr = _digits_trainer(seed)
    assert float(tr.family.variance()[0]) == pytest.approx(1e-6)
    assert max(float32_gradient_errors(tr, 0.001)) <= 1000 * F32_U


@pytest.mark.parametrize("t", [0.001, 0.1, None])
def test_float32_loss_matches_float64_where_sigma_is_small(t, batch_at, pixel_loss_reference):
    """The float32 colour-space loss within 1e-3 (relative) of float64 autograd on the pixel noise
    it stands for, for every size including the memorizer ``M = N``. Measured: at most 6e-5 (t = 0.001), 9e-5 (t = 0.1), 6e-5
    (each row's own time); the Gram-product expansion was off by 1.2-1.5 (t = 0.001) and 2.5-4.0 (t = 0.1)
    for ``M = N``."""
    for seed in (0, 1):
        tr = _digits_trainer(seed)
        alpha, sigma, kappa, z = batch_at(tr, t)
        loss32, _ = tr.family.loss_and_grad(tr.x0, z, alpha, sigma, kappa, factors=tr._factors)
        params = [p.detach().double() for p in tr.family.parameters()]
        loss64 = pixel_loss_reference(tr, params, z.double(), alpha.double(), sigma.double(), kappa.double())
        assert torch.allclose(loss32.double(), loss64, rtol=1e-3, atol=0), (loss32, loss64)


def test_pmem_components_sit_on_the_samples_and_recover_the_templates(small):
    data, _ = small
    fam = ColoredFamily.initialize(data, [5, 12], "pmem", dtype=torch.float64)
    assert torch.allclose(fam.component_means(1), data.subset(12), rtol=0, atol=1e-12)
    assert torch.allclose(fam.templates.abs().max(1).values, torch.ones(17, dtype=torch.float64))
    # noiseless rank-1 samples of min-max templates: the SVD split gives back the true templates,
    # so the sample-based init and the authors' oracle init coincide here
    oracle = ColoredFamily.initialize(data, [5, 12], "oracle", dtype=torch.float64)
    assert torch.allclose(fam.templates, oracle.templates, rtol=0, atol=1e-10)
    assert torch.allclose(fam.colours, oracle.colours, rtol=0, atol=1e-10)
    assert torch.allclose(fam.variance(), torch.full((2,), 1e-6, dtype=torch.float64))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=3, max_size=3), st.lists(st.floats(0.01, 2), min_size=4, max_size=4),
       st.integers(0, 3))
def test_rank_one_split_reproduces_any_rank_one_sample(colour, template, sign_at):
    c = torch.tensor(colour, dtype=torch.float64)
    u = torch.tensor(template, dtype=torch.float64)
    u[sign_at] = -u[sign_at]
    x = torch.kron(c, u).reshape(1, -1)
    tu, tc = split_rank_one(x, 4)
    assert torch.allclose(torch.kron(tc[0], tu[0]), x[0], rtol=0, atol=1e-10)
    assert abs(float(tu.abs().max()) - 1) < 1e-12


def test_denoiser_of_the_generalizer_parameters_is_the_ground_truth(small):
    data, _ = small
    u = torch.as_tensor(data.templates)
    x = data.validation[:5]
    got = colored_posterior_mean(x, 0.8, 0.6, u, torch.zeros(3, 3, dtype=torch.float64), data.sc2)
    assert torch.allclose(got, data.generalizer(x, 0.8, 0.6), rtol=0, atol=1e-12)


def test_a_size_trains_the_same_alone_or_in_a_batch_and_resumes(small):
    data, proc = small
    cfg = TrainConfig(steps=30, draws=2, dtype="float64", seed=4)
    alone = Trainer(data, proc, [7], cfg)
    alone.run()
    batched = Trainer(data, proc, [3, 7, 12], cfg)
    batched.run(until=13)
    resumed = Trainer(data, proc, [3, 7, 12], cfg)
    resumed.load_state_dict(batched.state_dict())
    resumed.run()
    assert torch.allclose(alone.family.templates, resumed.family.templates[3:10], rtol=0, atol=1e-9)
    assert torch.allclose(alone.family.colours, resumed.family.colours[3:10], rtol=0, atol=1e-9)
    assert abs(float(alone.family.variance()[0] - resumed.family.variance()[1])) < 1e-12


def test_training_moves_the_log_variance_and_lowers_the_loss(small):
    data, proc = small
    tr = Trainer(data, proc, [3], TrainConfig(steps=400, draws=4, init="random", lr=2e-2))
    hist = tr.run()
    assert np.mean(hist.loss[-5:]) < 0.7 * np.mean(hist.loss[:5])
    assert float(tr.family.variance()[0]) != pytest.approx(1.0)


@pytest.mark.parametrize("init", ["sphere", "gaussian", "prior"])
def test_isotropic_inits_are_refused_for_coloured_templates(small, init):
    data, proc = small
    with pytest.raises(ValueError, match=f"init '{init}' is not available for coloured templates; "
                                         "known inits: pmem, oracle, random"):
        Trainer(data, proc, [3], TrainConfig(steps=1, init=init))


def test_oracle_init_is_refused_for_the_isotropic_mixture():
    from memcross.validation.data import make_gmm_data

    data = make_gmm_data(4, 2, 8, seed=0)
    with pytest.raises(ValueError, match="init 'oracle' is not available for the isotropic GMM"):
        Trainer(data, Process(Setting(d=4, K=2, N=8)), [2], TrainConfig(steps=1, init="oracle"))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 7), st.sampled_from(["full", "means", "column"]), st.integers(0, 10**6))
def test_channel_sum_is_the_sum_of_products_over_the_channel_axis(B, M, other, seed):
    """``_csum`` (three fused multiply-adds) equals ``(a * b).sum(-2)`` for the operand shapes the
    step uses: another ``(B, 3, M)`` array, the colour means ``(3, M)``, a colour column ``(B, 3, 1)``."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(B, 3, M, generator=gen, dtype=torch.float64)
    shape = {"full": (B, 3, M), "means": (3, M), "column": (B, 3, 1)}[other]
    b = torch.randn(*shape, generator=gen, dtype=torch.float64)
    assert torch.allclose(_csum(a, b), (a * b).sum(-2), rtol=1e-14, atol=1e-14)
