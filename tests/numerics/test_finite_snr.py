"""The finite-SNR losses: the small-space reduction against brute force in the full dimension, and
the limits at high and low SNR."""

import numpy as np
import pytest

from memcross.numerics.coefficient import coefficients
from memcross.numerics.finite_snr import isotropic_losses, size_grid
from memcross.numerics.predict import predict
from memcross.theory import Setting


def empirical_losses(x, y, psi, Ms):
    """Mean loss over the points ``x`` (noisy ``y = x_t / alpha``) of the empirical denoiser of
    the first ``M`` points, for each ``M``."""
    out = []
    for M in Ms:
        e = ((y[:, None, :] - x[None, :M, :]) ** 2).sum(2) * psi / 2
        w = np.exp(-(e - e.min(1, keepdims=True)))
        w /= w.sum(1, keepdims=True)
        out.append(((w @ x[:M] - x) ** 2).sum(1).mean())
    return out


def brute_force(d, K, N, s2, psi, Ms, datasets, seed=1):
    """Full-dimensional Monte Carlo: data sets of the isotropic mixture (means on the sphere of
    radius sqrt(d)), one noise draw per training point, the empirical denoiser of the first M points
    and the true posterior mean; returns per-size and generalizer losses averaged over points,
    with their standard errors."""
    rng = np.random.default_rng(seed)
    pm, gen = [], []
    for _ in range(datasets):
        g = rng.standard_normal((K, d))
        mu = np.sqrt(d) * g / np.linalg.norm(g, axis=1, keepdims=True)
        x = mu[rng.integers(K, size=N)] + np.sqrt(s2) * rng.standard_normal((N, d))
        y = x + rng.standard_normal((N, d)) / np.sqrt(psi)  # x_t / alpha
        pm.append(empirical_losses(x, y, psi, Ms))
        var = s2 + 1 / psi
        diff = y[:, None, :] - mu[None]
        lg = -(diff**2).sum(2) / (2 * var)
        post = np.exp(lg - lg.max(1, keepdims=True))
        post /= post.sum(1, keepdims=True)
        f = (post[:, :, None] * (mu[None] + s2 / var * diff)).sum(1)
        gen.append(((f - x) ** 2).sum(1).mean())
    pm, gen = np.array(pm), np.array(gen)
    return pm.mean(0), pm.std(0) / np.sqrt(datasets), gen.mean(), gen.std() / np.sqrt(datasets)


@pytest.mark.parametrize("psi", [0.05, 1.0, 20.0])
def test_the_small_space_reduction_matches_brute_force(psi):
    d, K, N, s2 = 12, 3, 20, 1.0
    Ms = np.array([1, 5, 10, 20])
    model = isotropic_losses(d, K, N, s2, [psi], Ms, samples=400, mean_draws=4, seed=3)
    pm, pm_se, gen, gen_se = brute_force(d, K, N, s2, psi, Ms, datasets=300)
    for m in range(len(Ms)):
        tol = 4 * np.hypot(pm_se[m], model.pmem_se[m, 0]) + 1e-9
        assert abs(model.pmem[m, 0] - pm[m]) < tol, (psi, Ms[m], model.pmem[m, 0], pm[m], tol)
    assert abs(model.gen[0] - gen) < 4 * np.hypot(gen_se, model.gen_se[0])


def test_high_snr_excess_tends_to_the_finite_d_coefficient():
    """Once the memorizer has collapsed, the partial memorizer's excess is (1 - M/N) C(d, K, N, M) d s2."""
    d, K, N = 30, 4, 100
    Ms = np.array([20, 50, 80, N])
    model = isotropic_losses(d, K, N, 1.0, [1e5], Ms, samples=200, mean_draws=2, seed=5)
    measured = model.excess_partial_memorizer()[:-1, 0]
    theory = (1 - Ms[:-1] / N) * coefficients(d, K, N, Ms[:-1]) * d
    assert np.all(np.abs(measured / theory - 1) < 0.05), measured / theory
    assert abs(model.pmem[-1, 0]) < 1e-3  # the memorizer returns its point


def test_low_snr_losses_tend_to_the_distributions_means():
    """psi -> 0: every weight is uniform. The generalizer returns the data mean (loss d s2 + the
    means' spread d (1 - 1/K) for directions drawn at random), and the memorizer the training
    mean: its loss is the same up to the 1/N of the point's own weight."""
    d, K, N, s2 = 40, 4, 50, 1.0
    model = isotropic_losses(d, K, N, s2, [1e-9], [N], samples=300, mean_draws=4, seed=7)
    total = d * s2 + d * (1 - 1 / K)
    assert model.gen[0] == pytest.approx(total, rel=0.03)
    assert model.pmem[0, 0] == pytest.approx(total * (1 - 1 / N), rel=0.03)


def test_prediction_is_close_to_the_exact_crossover_at_the_papers_setting():
    """The paper's (50, 12, 200): the exact crossover of data seed 0 is 0.7925 (memcross exact);
    finite-d says 0.769 and the C = 1 formula 0.660."""
    record = predict(Setting(), "finite-snr")
    assert abs(record.value - 0.7925) < 0.01 and 0 < record.error < 0.01
    assert record.method == "finite-snr" and record.dps >= 1


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="d >= K \\+ 3"):
        isotropic_losses(4, 2, 10, 1.0, [1.0])
    assert size_grid(200)[0] == 1 and size_grid(200)[-1] == 200 and len(size_grid(5)) <= 5


def brute_force_colored(u, sc2, N, psi, Ms, datasets, seed=2):
    """Full-dimensional Monte Carlo for coloured templates: points c (x) u_k in 3P coordinates."""
    rng = np.random.default_rng(seed)
    K, P = u.shape
    pm, gen = [], []
    for _ in range(datasets):
        labels = rng.integers(K, size=N)
        c = np.sqrt(sc2) * rng.standard_normal((N, 3))
        x = (c[:, :, None] * u[labels][:, None, :]).reshape(N, 3 * P)
        y = x + rng.standard_normal(x.shape) / np.sqrt(psi)
        pm.append(empirical_losses(x, y, psi, Ms))
        noise = 1 / psi
        Y = y.reshape(N, 3, P)
        p = np.einsum("ncp,kp->nkc", Y, u)
        n = (u**2).sum(1)
        denom = noise + sc2 * n
        lg = sc2 * (p**2).sum(2) / (2 * noise * denom) - 1.5 * np.log(denom)
        post = np.exp(lg - lg.max(1, keepdims=True))
        post /= post.sum(1, keepdims=True)
        chat = (post * sc2 / denom)[:, :, None] * p
        f = np.einsum("nkc,kp->ncp", chat, u).reshape(N, 3 * P)
        gen.append(((f - x) ** 2).sum(1).mean())
    pm, gen = np.array(pm), np.array(gen)
    return pm.mean(0), pm.std(0) / np.sqrt(datasets), gen.mean(), gen.std() / np.sqrt(datasets)


@pytest.mark.parametrize("psi", [0.1, 2.0, 30.0])
def test_the_colour_space_reduction_matches_brute_force(psi):
    from memcross.numerics.finite_snr import colored_losses
    from memcross.templates import blob_templates

    u = blob_templates(3, side=4, sparsity=0.5, seed=1)
    N, Ms = 12, np.array([1, 4, 8, 12])
    model = colored_losses(u, 1.0, N, [psi], Ms, samples=1500, seed=4)
    pm, pm_se, gen, gen_se = brute_force_colored(u, 1.0, N, psi, Ms, datasets=400)
    for m in range(len(Ms)):
        assert abs(model.pmem[m, 0] - pm[m]) < 4 * np.hypot(pm_se[m], model.pmem_se[m, 0]), (psi, Ms[m])
    assert abs(model.gen[0] - gen) < 4 * np.hypot(gen_se, model.gen_se[0])
