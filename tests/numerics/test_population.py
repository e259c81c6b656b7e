"""The population method: the closed-form outside moments, the draws inside the ball, the stable
prefix sums, and the large-N losses against drawing every training point."""

import numpy as np
import pytest
from scipy.special import logsumexp

from memcross.numerics import population
from memcross.numerics.coefficient import coefficients
from memcross.numerics.finite_snr import (
    colored_losses,
    colored_losses_population,
    isotropic_losses,
    isotropic_losses_population,
    population_sizes,
)
from memcross.numerics.predict import predict
from memcross.theory import Setting


@pytest.mark.parametrize("power", [1, 2])
def test_outside_moments_match_monte_carlo(power):
    rng = np.random.default_rng(0)
    n, beta, var, R2 = 6, 0.3, 1.5, 9.0
    a = np.array([[[1.0, -2.0, 0.5]]])  # the first 3 of 6 coordinates; the rest are 0
    X = np.zeros((2_000_000, n))
    X[:, :3] = a[0, 0]
    X += np.sqrt(var) * rng.standard_normal(X.shape)
    r2 = (X**2).sum(1)
    w = np.exp(-power * beta * r2 / 2) * (r2 > R2)
    t = population.tilt(a, np.array([[var]]), np.array([[beta]]), np.array([[R2]]), n, power)
    zero = np.zeros(1)
    assert t.mass(zero)[0, 0] == pytest.approx(w.mean(), rel=0.01)
    assert t.first(zero)[0, 0] == pytest.approx((w[:, None] * X[:, :3]).mean(0), rel=0.02)
    if power == 2:
        assert t.second(n, zero)[0, 0] == pytest.approx((w * r2).mean(), rel=0.01)
        s = np.array([[0.3, 0.0, -1.0]])
        scale, value = population.second_moment(t, s, n, np.ones(1))
        shifted = ((X[:, :3] + s[0]) ** 2).sum(1) + (X[:, 3:] ** 2).sum(1)
        assert np.exp(scale[0]) * value[0] == pytest.approx((w * shifted).mean(), rel=0.01)


@pytest.mark.parametrize("n, alpha, r2", [(20, 4.0, 12.0), (3, 2.0, 1.5), (3, 0.5, 4.0)])
def test_points_inside_the_ball_follow_the_conditioned_gaussian(n, alpha, r2):
    rng = np.random.default_rng(1)
    a = np.zeros((1, 1, min(n, 5)))
    a[0, 0, 0] = alpha
    from scipy import stats
    others = int(20_000 / stats.ncx2.cdf(r2, n, alpha**2))
    pts = population.draw_inside(a, np.ones((1, 1)), np.array([[r2]]), np.ones(1), n, others, rng)
    X = pts.X[pts.valid]
    drawn = (X**2).sum(-1) + pts.rest2[pts.valid]
    assert abs(pts.valid.sum() - 20_000) < 5 * np.sqrt(20_000)
    # the reference: a Gaussian conditioned by rejection
    g = rng.standard_normal((3_000_000, n))
    g[:, 0] += alpha
    g2 = (g**2).sum(1)
    kept = g[g2 < r2]
    assert len(kept) > 2000
    for q in (10, 50, 90):
        assert np.percentile(drawn, q) == pytest.approx(np.percentile(g2[g2 < r2], q), rel=0.03, abs=0.02)
    assert X[:, 0].mean() == pytest.approx(kept[:, 0].mean(), abs=0.03)
    assert X[:, 1].var() == pytest.approx(kept[:, 1].var(), rel=0.1)


def test_prefix_sums_are_stable_softmax_sums():
    rng = np.random.default_rng(2)
    Q, L = 5, 40
    valid = np.ones((Q, L), bool)
    valid[0, 30:] = False
    pts = population.Inside(valid, np.zeros((Q, L), int), rng.integers(1, 1000, size=(Q, L)),
                            np.zeros((Q, L, 2)), np.zeros((Q, L)))
    log_w = -rng.uniform(0, 3000, size=(Q, L))  # far past float64's range apart
    first = rng.standard_normal((Q, L, 2))
    second = rng.uniform(size=(Q, L))
    sizes = np.array([100, 400, 700, 1000])
    c, s1, s2 = population.prefix_sums(pts, log_w, first, second, sizes)
    for q in range(Q):
        for k, M in enumerate(sizes):
            sel = valid[q] & (pts.position[q] <= M)
            if not sel.any():
                assert c[q, k] == -np.inf and np.all(s1[q, k] == 0)
                continue
            assert c[q, k] == log_w[q, sel].max()
            ref = np.exp(log_w[q, sel] - c[q, k])
            np.testing.assert_allclose(s1[q, k], ref @ first[q, sel], rtol=1e-12)
            np.testing.assert_allclose(s2[q, k], ref**2 @ second[q, sel], rtol=1e-12)
            assert logsumexp(log_w[q, sel]) == pytest.approx(c[q, k] + np.log(ref.sum()))


def test_isotropic_population_matches_drawing_every_point():
    d, K, N = 30, 4, 2000
    psi = np.array([0.01, 0.5, 3.0, 30.0])
    Ms = population_sizes(N)[::4]
    every = isotropic_losses(d, K, N, 1.0, psi, Ms, samples=48, seed=1)
    near = isotropic_losses_population(d, K, N, 1.0, psi, Ms, samples=48, seed=2)
    tol = 4 * np.hypot(every.pmem_se, near.pmem_se) + 1e-9
    assert np.all(np.abs(every.pmem - near.pmem) < tol), (every.pmem - near.pmem) / tol


def test_colored_population_matches_drawing_every_point():
    rng = np.random.default_rng(3)
    u = np.abs(rng.standard_normal((4, 25)))
    N = 600
    psi = np.array([0.05, 1.0, 20.0])
    Ms = population_sizes(N)[::4]
    every = colored_losses(u, 1.0, N, psi, Ms, samples=96, seed=1)
    near = colored_losses_population(u, 1.0, N, psi, Ms, samples=96, seed=2)
    tol = 4 * np.hypot(every.pmem_se, near.pmem_se) + 1e-9
    assert np.all(np.abs(every.pmem - near.pmem) < tol), (every.pmem - near.pmem) / tol


def test_population_high_snr_excess_tends_to_the_finite_d_coefficient():
    d, K, N = 30, 4, 3000
    Ms = np.array([600, 1500, 2400, N])
    model = isotropic_losses_population(d, K, N, 1.0, [1e5], Ms, samples=100, mean_draws=2, seed=5)
    measured = model.excess_partial_memorizer()[:-1, 0]
    theory = (1 - Ms[:-1] / N) * coefficients(d, K, N, Ms[:-1]) * d
    assert np.all(np.abs(measured / theory - 1) < 0.06), measured / theory
    assert abs(model.pmem[-1, 0]) < 1e-3


def test_population_low_snr_losses_tend_to_the_distributions_means():
    d, K, N, s2 = 40, 4, 10_000, 1.0
    model = isotropic_losses_population(d, K, N, s2, [1e-9], [N], samples=150, mean_draws=4, seed=7)
    total = d * s2 + d * (1 - 1 / K)
    assert model.gen[0] == pytest.approx(total, rel=0.03)
    assert model.pmem[0, 0] == pytest.approx(total, rel=0.03)


def test_a_prediction_at_a_million_points():
    record = predict(Setting(N=1_000_000), "finite-snr")
    assert 0.6 < record.value < 0.85 and 0 < record.error < 0.01
    assert any("nearest each query" in note for note in record.notes)


@pytest.mark.parametrize("nu", [3, 40])
def test_the_large_noncentrality_approximation_is_close_to_the_series(nu):
    from scipy import stats
    lam = 2 * population.LARGE_NONCENTRALITY
    x = lam + nu + np.linspace(-4, 4, 9) * np.sqrt(2 * nu + 4 * lam)
    np.testing.assert_allclose(population.ncx2_sf(x, nu, np.full(9, lam)), stats.ncx2.sf(x, nu, lam), atol=1e-7)
    np.testing.assert_allclose(population.ncx2_sf(x, nu, np.full(9, lam), lower=True), stats.ncx2.cdf(x, nu, lam),
                               atol=1e-7)
