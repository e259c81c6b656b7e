import numpy as np
import pytest

from memcross.theory import Setting
from memcross.validation.data import make_gmm_data
from memcross.validation.denoisers import generalizer, memorizer
from memcross.validation.metrics import (
    bootstrap_interval,
    mean_locations,
    memorization_ratio,
    near_copies,
    refine_sizes,
    transition,
)
from memcross.validation.process import Process
from memcross.validation.sampler import ddim, ddpm, get_sampler

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def setup():
    data = make_gmm_data(10, 2, 40, seed=2)
    proc = Process(Setting(d=10, K=2, N=40))
    times = proc.sampler_grid()
    return data, times, proc.alpha(times), proc.sigma(times)


@pytest.mark.parametrize("sampler", [ddim, ddpm])
def test_memorizer_samples_are_copies_generalizer_samples_are_not(setup, sampler):
    data, times, al, si = setup
    mem = sampler(lambda x, a, s: memorizer(x, a, s, data), times, al, si, 100, 10, torch.Generator().manual_seed(0))
    assert memorization_ratio(mem, data.train)["ratio"] == 1.0
    gen = sampler(lambda x, a, s: generalizer(x, a, s, data), times, al, si, 100, 10, torch.Generator().manual_seed(0))
    assert memorization_ratio(gen, data.train)["ratio"] < 0.1
    # generated samples sit in the components: distance to the nearest true mean ~ sqrt(d s2)
    dist = torch.cdist(gen, data.means).min(1).values
    assert 2.0 < float(dist.mean()) < 4.5


def test_ddim_is_deterministic(setup):
    data, times, al, si = setup
    run = lambda: ddim(lambda x, a, s: generalizer(x, a, s, data), times, al, si, 5, 10,
                       torch.Generator().manual_seed(1))
    assert torch.equal(run(), run())


def test_bad_sampler_inputs(setup):
    with pytest.raises(ValueError, match="unknown sampler"):
        get_sampler("euler")
    with pytest.raises(ValueError, match="decreasing"):
        ddim(lambda x, a, s: x, np.array([0.1, 0.5]), np.ones(2), np.ones(2), 2, 2, torch.Generator())


def test_ratio_test_and_bootstrap():
    ref = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = torch.tensor([[0.1, 0.0], [5.0, 0.0], [0.0, 9.0], [4.0, 4.0]])
    assert near_copies(pts, ref).tolist() == [True, False, True, False]
    flags = np.array([1] * 30 + [0] * 70)
    lo, hi = bootstrap_interval(flags)
    assert lo < 0.3 < hi and hi - lo < 0.25
    assert bootstrap_interval(np.zeros(10)) == (0.0, 0.0)
    loc = mean_locations(torch.tensor([[0.05, 0.0], [3.0, 3.0]]), ref, ref[:2])
    assert loc == {"means_near_train": 1, "means_near_true": 1}


def test_transition_and_refinement():
    sizes = [10, 20, 30, 40, 50]
    tr = transition(sizes, [0.0, 0.05, 0.3, 0.7, 1.0], 50)
    assert (tr.start, tr.end) == (30, 50) and tr.mid == pytest.approx(35.0)
    assert tr.ratios() == {"start": 0.6, "mid": 0.7, "end": 1.0}
    assert transition(sizes, [0.0] * 5, 50) == transition(sizes, [0.0] * 5, 50)
    assert transition(sizes, [0.0] * 5, 50).mid is None
    new = refine_sizes(sizes, [0.0, 0.05, 0.3, 0.7, 1.0], 50, 3)
    assert new and all(20 < m < 50 and m not in sizes for m in new)
    with pytest.raises(ValueError, match="increasing"):
        transition([20, 10], [0, 1], 20)


def test_refinement_around_the_mid_point_fills_the_bracket_of_one_half():
    sizes, ratios = [10, 20, 30, 40, 50], [0.0, 0.05, 0.3, 0.7, 1.0]
    assert refine_sizes(sizes, ratios, 50, 3, around="mid") == [32, 35, 38]  # 32.5 rounds to even
    assert refine_sizes(sizes, ratios, 50, 1, around="mid") == [35]
    assert refine_sizes([80, 90], [0.2, 0.6], 100, 3, around="mid") == [82, 85, 88]
    assert refine_sizes(sizes, [0.0, 0.05, 0.3, 0.5, 1.0], 50, 1, around="mid") == [35]  # 0.5 itself reaches it
    assert refine_sizes(sizes, [0.6, 0.7, 0.8, 0.9, 1.0], 50, 3, around="mid") == []  # the first size is past it
    assert refine_sizes(sizes, [0.0, 0.1, 0.2, 0.3, 0.4], 50, 3, around="mid") == []  # no size reaches it
    assert refine_sizes(sizes, ratios, 50, 0, around="mid") == []
    assert refine_sizes([10, 11], [0.0, 1.0], 50, 3, around="mid") == []  # no integer between
    assert refine_sizes(sizes, ratios, 50, 3) == refine_sizes(sizes, ratios, 50, 3, around="transition")
    with pytest.raises(ValueError, match="--refine-around must be one of transition, mid, got 'edges'"):
        refine_sizes(sizes, ratios, 50, 3, around="edges")
