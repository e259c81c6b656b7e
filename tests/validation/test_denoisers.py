import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memcross.theory.schedules import get_schedule
from memcross.theory.targets import target_names
from memcross.validation.data import make_gmm_data
from memcross.validation.denoisers import (
    from_target,
    generalizer,
    memorizer,
    partial_memorizer,
    posterior_mean,
    softmax_weights,
    to_target,
)
from memcross.validation.process import Process

torch = pytest.importorskip("torch")


def brute_force_posterior_mean(x, a, s, means, variance, priors):
    """Explicit posterior over components with dense Gaussian densities and conditioning."""
    d = means.shape[1]
    eye = torch.eye(d, dtype=torch.float64)
    cov = (a**2 * variance + s**2) * eye
    out = []
    for xi in x:
        logp = torch.stack([
            math.log(p) + torch.distributions.MultivariateNormal(a * mu, cov).log_prob(xi)
            for mu, p in zip(means, priors)
        ])
        post = torch.softmax(logp, 0)
        cond = [mu + variance * a * torch.linalg.solve(cov, xi - a * mu) for mu in means]
        out.append(sum(p * c for p, c in zip(post, cond)))
    return torch.stack(out)


@pytest.mark.parametrize("t", [0.05, 0.4, 0.9])
def test_generalizer_matches_brute_force_posterior(t):
    gen = torch.Generator().manual_seed(3)
    d, K = 6, 4
    means = torch.randn(K, d, generator=gen, dtype=torch.float64)
    priors = [0.1, 0.2, 0.3, 0.4]
    a, s = math.sqrt(1 - t**2), t
    x = a * means[torch.randint(K, (20,), generator=gen)] + 0.8 * torch.randn(20, d, generator=gen, dtype=torch.float64)
    fast = posterior_mean(x, a, s, means, 0.7, torch.log(torch.tensor(priors, dtype=torch.float64)))
    slow = brute_force_posterior_mean(x, a, s, means, 0.7, priors)
    assert torch.allclose(fast, slow, atol=1e-10, rtol=0)


def test_memorizer_is_partial_memorizer_with_all_points():
    data = make_gmm_data(8, 3, 30, seed=1)
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for a, s in ((0.99, 0.1), (0.5, 0.86)):
        assert torch.allclose(memorizer(x, a, s, data), partial_memorizer(x, a, s, data, 30), atol=1e-12, rtol=0)


def test_stable_at_tiny_noise():
    data = make_gmm_data(8, 3, 30, seed=1)
    x = data.train[:5] * 0.999999
    h = memorizer(x, 1.0, 1e-9, data)
    assert torch.isfinite(h).all()
    assert torch.allclose(h, data.train[:5], atol=1e-12)
    assert torch.isfinite(generalizer(x, 1.0, 1e-9, data)).all()


@pytest.mark.parametrize("target", target_names())
@pytest.mark.parametrize("schedule", ["vp", "ve", "flow", "vp-cosine"])
def test_target_conversion_round_trips(target, schedule):
    from memcross.theory import Setting

    p = Process(Setting(schedule=schedule, time="grid:0.01,0.9,5"))
    t = np.array([0.01, 0.3, 0.9])
    g = torch.Generator().manual_seed(0)
    for tt in t:
        a, s, da, ds = (float(f(np.array(tt))) for f in (p.alpha, p.sigma, p.dalpha, p.dsigma))
        x = torch.randn(4, 3, generator=g, dtype=torch.float64)
        h = torch.randn(4, 3, generator=g, dtype=torch.float64)
        f = to_target(h, x, a, s, da, ds, target)
        assert torch.allclose(from_target(f, x, a, s, da, ds, target), h, atol=1e-9, rtol=1e-9)


def test_eps_target_is_the_noise_for_the_true_x0():
    sched = get_schedule("vp")
    assert str(sched.alpha) == "sqrt(1 - t**2)"
    x0 = torch.ones(2, 3, dtype=torch.float64)
    z = torch.full((2, 3), 0.5, dtype=torch.float64)
    a, s = 0.6, 0.8
    eps = to_target(x0, a * x0 + s * z, a, s, 0.0, 0.0, "eps")
    assert torch.allclose(eps, z)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=12), st.sampled_from(["float32", "float64"]))
def test_softmax_weights_drop_only_what_would_be_subnormal(logits, dtype):
    """The weights are the softmax's wherever it is at least sqrt(tiny), zero elsewhere, and none
    (nor any product of two) is a subnormal number."""
    dt = getattr(torch, dtype)
    x = torch.tensor(logits, dtype=torch.float64).to(dt)
    w, ref = softmax_weights(x, 0), torch.softmax(x, 0)
    thr = torch.finfo(dt).tiny ** 0.5
    kept = ref >= thr
    assert torch.equal(w[kept], ref[kept]) and bool((w[~kept] == 0).all())
    assert float(w.max()) >= 1 / len(logits) - 1e-6  # the largest weight always stays
    tiny = torch.finfo(dt).tiny
    prods = torch.outer(w, w)
    assert not bool(((prods != 0) & (prods.abs() < tiny)).any())


def test_softmax_weights_near_a_memorizer_sum_as_the_softmax():
    """At a memorizer's noise level almost every weight underflows: the kept ones still sum to 1."""
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(50, 8, generator=gen)
    x = means[:5] + 1e-3 * torch.randn(5, 8, generator=gen)
    logits = -((x.unsqueeze(1) - means.unsqueeze(0)) ** 2).sum(2) / (2 * 1e-4)
    w = softmax_weights(logits, 1)
    assert int((w == 0).sum()) > 200
    assert torch.allclose(w.sum(1), torch.ones(5), atol=1e-6)
    assert torch.allclose(w @ means, torch.softmax(logits, 1) @ means, atol=1e-6)
