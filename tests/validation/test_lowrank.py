import math

import numpy as np
import pytest

from memcross.numerics.coefficient import colored_excess
from memcross.templates import blob_templates
from memcross.theory import Setting
from memcross.validation.exact import exact_losses
from memcross.validation.lowrank import LowRankGMM, colored_templates, make_colored_data
from memcross.validation.process import Process

torch = pytest.importorskip("torch")


def dense_posterior_mean(gmm: LowRankGMM, x, a, s):
    """Brute force: dense covariances, explicit Gaussian densities, conditioning by linear solves."""
    D = gmm.D
    out = []
    for xi in x:
        logs, conds = [], []
        for mu, U, lp in zip(gmm.means, gmm.factors, gmm.log_priors):
            cov0 = U @ U.T
            cov = a**2 * cov0 + s**2 * torch.eye(D, dtype=torch.float64)
            logs.append(lp + torch.distributions.MultivariateNormal(a * mu, cov).log_prob(xi))
            conds.append(mu + a * cov0 @ torch.linalg.solve(cov, xi - a * mu))
        w = torch.softmax(torch.stack(logs), 0)
        out.append(sum(wk * ck for wk, ck in zip(w, conds)))
    return torch.stack(out)


@pytest.mark.parametrize("t", [0.05, 0.5, 0.95])
def test_woodbury_posterior_mean_matches_dense_brute_force(t):
    gen = torch.Generator().manual_seed(0)
    K, D, r = 3, 10, 2
    gmm = LowRankGMM(torch.randn(K, D, generator=gen, dtype=torch.float64),
                     torch.randn(K, D, r, generator=gen, dtype=torch.float64),
                     torch.log(torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)))
    a, s = math.sqrt(1 - t**2), t
    x0, _ = gmm.sample(6, gen)
    x = a * x0 + s * torch.randn(6, D, generator=gen, dtype=torch.float64)
    assert torch.allclose(gmm.posterior_mean(x, a, s), dense_posterior_mean(gmm, x, a, s), atol=1e-10, rtol=0)


def test_colored_model_structure_and_rank_factor():
    u = blob_templates(3, side=5, seed=2)
    gmm = colored_templates(u, sc2=0.7)
    G = gmm.factors[0].T @ gmm.factors[0]
    norm2 = float((torch.as_tensor(u[0]) ** 2).sum())
    assert torch.allclose(G, 0.7 * norm2 * torch.eye(3, dtype=torch.float64))
    # the posterior weight of the true template wins for a clean, noise-free sample
    data = make_colored_data(u, N=30, seed=1)
    h = data.generalizer(data.train[:5] * 1.0, 1.0, 1e-4)
    assert torch.allclose(h, data.train[:5], atol=1e-6)


def test_ground_truth_mmse_at_psi_6704_within_2_percent():
    u = blob_templates(6, side=15, sparsity=0.3, seed=3)  # the paper's K = 6, 15 x 15
    data = make_colored_data(u, N=4000, seed=5)
    psi = 6.704
    sigma = 1 / math.sqrt(1 + psi)  # vp: alpha^2 + sigma^2 = 1, alpha^2/sigma^2 = psi
    a = math.sqrt(psi) * sigma
    gen = torch.Generator().manual_seed(7)
    x = a * data.train + sigma * torch.randn(data.train.shape, generator=gen, dtype=torch.float64)
    mse = float(((data.generalizer(x, a, sigma) - data.train) ** 2).sum(1).mean())
    norms2 = (u**2).sum(1)
    theory = float(np.mean(3 * norms2 / (1 + psi * norms2)))  # (1/K) sum_k 3 l_k / (1 + psi l_k), sc2 = 1
    assert abs(mse / theory - 1) < 0.02, (mse, theory)
    assert data.theory_excess(np.array([psi]))[0] == pytest.approx(theory, rel=1e-12)


def test_partial_memorizer_excess_matches_order_statistics():
    """The formula is an expectation over data sets: average the measured excess (exact losses at
    t = 0.001, where the memorizer has collapsed) over 48 sampled data sets."""
    u = blob_templates(6, side=15, sparsity=0.3, seed=3)
    N = 200
    Ms = np.array([40, 80, 120, 160, 190])  # M/N = 0.2 ... 0.95
    setting = Setting(d=3 * u.shape[1], K=6, N=N, time="points:0.001,0.002")
    table = Process(setting).quadrature()
    measured = np.zeros(len(Ms))
    seeds = range(48)
    for seed in seeds:
        data = make_colored_data(u, N=N, seed=seed)
        ex = exact_losses(data, table, draws=1, seed=seed, validation=False)
        assert ex.collapsed().all()
        measured += ex.excess_partial_memorizer()[Ms - 1] / len(seeds)
    theory = colored_excess(u, 1.0, N, Ms)
    rel = measured / theory - 1
    assert np.all(np.abs(rel) < 0.10), dict(zip((Ms / N).tolist(), np.round(rel, 3).tolist()))
    # not linear in 1 - M/N: the cost per missing point falls as M grows
    per_point = theory / (1 - Ms / N)
    assert per_point[0] > 2 * per_point[-1]


def test_colored_excess_edge_cases():
    u = np.ones((2, 4))
    assert colored_excess(u, 1.0, 10, [10])[0] == 0.0
    with pytest.raises(ValueError, match="M must be in 1..N"):
        colored_excess(u, 1.0, 10, [11])
