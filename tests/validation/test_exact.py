import numpy as np
import pytest

from memcross.theory import Setting
from memcross.validation.data import make_gmm_data
from memcross.validation.denoisers import generalizer, partial_memorizer
from memcross.validation.exact import exact_losses
from memcross.validation.process import Process

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def paper_exact():
    """The paper's setting (50, 12, 200), paper grid, 8 noise draws (about 1 s)."""
    data = make_gmm_data(50, 12, 200, seed=0)
    return exact_losses(data, Process(Setting()).quadrature(), draws=8, seed=1, validation=False)


def test_exact_crossover_of_paper_setting_is_near_080(paper_exact):
    ratio, m_star = paper_exact.crossover()
    assert abs(ratio - 0.80) <= 0.03
    assert m_star == int(np.ceil(ratio * 200 - 1e-9))


def test_generalizer_excess_matches_theorem_where_collapsed(paper_exact):
    collapsed = paper_exact.collapsed()
    assert collapsed.sum() >= 15
    ratio = paper_exact.excess_generalizer() / paper_exact.theory_excess_generalizer()
    assert np.all(np.abs(ratio[collapsed] - 1) < 0.02), ratio[collapsed]


def test_measured_coefficient_is_in_theorem_bracket(paper_exact):
    for M in (20, 100, 160):
        assert 1.0 < paper_exact.coefficient(M) < 2.3


def test_online_prefix_losses_equal_direct_partial_memorizers():
    setting = Setting(d=6, K=2, N=15, time="grid:0.05,0.95,4")
    data = make_gmm_data(6, 2, 15, seed=4)
    table = Process(setting).quadrature()
    ex = exact_losses(data, table, draws=3, seed=9)
    # the same noise, rebuilt: queries ordered (time, draw, point)
    gen = torch.Generator().manual_seed(9)
    z = torch.stack([torch.randn(3, 15, 6, generator=gen, dtype=torch.float64) for _ in table.t])  # one time at a time
    for ti, (a, s) in enumerate(zip(table.alpha, table.sigma)):
        x0 = data.train.repeat(3, 1)
        x = a * x0 + s * z[ti].reshape(-1, 6)
        gen_loss = ((generalizer(x, a, s, data) - x0) ** 2).sum(1).mean()
        assert abs(float(gen_loss) - ex.gen_train[ti]) < 1e-10
        for M in (1, 2, 7, 15):
            direct = ((partial_memorizer(x, a, s, data, M) - x0) ** 2).sum(1).mean()
            assert abs(float(direct) - ex.pmem_train[M - 1, ti]) < 1e-10 * max(1.0, float(direct))
    assert ex.pmem_val.shape == (15, 4) and np.all(ex.pmem_val[-1] > ex.pmem_train[-1])


def test_round_trip_through_dict(paper_exact):
    from memcross.validation.exact import ExactLosses

    again = ExactLosses.from_dict(paper_exact.to_dict())
    assert again.crossover() == paper_exact.crossover()


def test_other_weighting_moves_the_crossover(paper_exact):
    eps_lam = paper_exact.table.psi  # uniform eps in x0 units
    ratio, _ = paper_exact.crossover(eps_lam)
    assert ratio > paper_exact.crossover()[0]


def test_bad_draws():
    data = make_gmm_data(4, 2, 5, seed=0)
    with pytest.raises(ValueError, match="draws must be a positive integer"):
        exact_losses(data, Process(Setting(d=4, K=2, N=5)).quadrature(), draws=0)


# -- sizes, memory and seeds are checked before anything is allocated or written ------------------
@pytest.fixture
def one_gib(monkeypatch):
    from memcross.validation import data as data_mod

    monkeypatch.setattr(data_mod, "available_memory", lambda: 2**30)


def test_exact_memory_estimate_and_refusal(one_gib):
    from memcross.validation.exact import check_exact_inputs, check_exact_memory, exact_memory

    paper = exact_memory(50, 200, 8, 26)
    assert 2**24 < paper < 2**26  # tens of MiB: one time's noise and queries, and the prefix pass
    assert exact_memory(1_000_000, 200, 8, 26) > 100 * 2**30
    # large N in bounded memory: the noise is drawn one time at a time, the chunk's logits capped
    assert exact_memory(50, 5000, 8, 26) < 2**29 and exact_memory(50, 5000, 8, 26) < 1.5 * exact_memory(50, 2000, 8, 26)
    assert exact_memory(50, 200, 16, 26) > 1.9 * paper
    check_exact_memory(50, 200, 8, 26)
    with pytest.raises(ValueError, match=r"exact: \(d, N\) = \(1000000, 200\) with 8 noise draws at 26 times "
                                         r"needs about 11\d GiB, more than the 0.8 GiB available .*"
                                         r"; lower --dim/--train/--draws"):
        check_exact_memory(1_000_000, 200, 8, 26)
    for setting, draws, seed, match in (
        (Setting(d=1_000_000), 8, 0, "needs about"),
        (Setting(N=1_000_000), 8, 0, r"\(d, N\) = \(50, 1000000\)"),
        (Setting(), 0, 0, "--draws must be a positive integer"),
        (Setting(), 8, 2**64, r"--seed must be an integer in \[0, 2\*\*63\)"),
        (Setting(), 8, -1, r"--seed must be an integer in \[0, 2\*\*63\)"),
    ):
        with pytest.raises(ValueError, match=match):
            check_exact_inputs(setting, draws, seed)
    colored = Setting(data="colored-templates:templates=blobs,side=128", K=6, N=100)
    with pytest.raises(ValueError, match=r"\(d, N\) = \(49152, 100\)"):
        check_exact_inputs(colored, 8, 0)


def test_exact_losses_refuse_before_allocating(one_gib):
    data = make_gmm_data(4, 2, 5, seed=0)
    table = Process(Setting(d=4, K=2, N=5)).quadrature()
    with pytest.raises(ValueError, match="needs about"):
        exact_losses(data, table, draws=10**7)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\)"):
        exact_losses(data, table, draws=1, seed=2**64)


def _main(capsys, *args):
    from memcross.cli import main

    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--dim", "1000000"], "GiB available"),
    (["--train", "1000000"], "GiB available"),
    (["--seed", str(2**64)], "seed must be an integer in [0, 2**63), got 18446744073709551616"),
    (["--seed", "-1"], "seed must be an integer in [0, 2**63)"),
])
def test_cli_exact_refuses_before_writing(tmp_path, capsys, one_gib, args, message):
    store = tmp_path / "s.sqlite"
    rc, err = _main(capsys, "exact", *args, "--store", store)
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not store.exists()


@pytest.mark.parametrize("args,message", [
    (["--dim", "1000000"], "exact: (d, N) = (1000000, 200)"),
    (["--seed", str(2**64)], "--seed must be an integer in [0, 2**63)"),
    (["--data", "colored-templates", "--seed", str(2**64)], "--seed must be an integer in [0, 2**63)"),
])
def test_cli_exact_names_the_flags(tmp_path, capsys, one_gib, args, message):
    store = tmp_path / "s.sqlite"
    rc, err = _main(capsys, "exact", *args, "--store", store)
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not store.exists()
