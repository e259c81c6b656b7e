import numpy as np
import pytest

from memcross._checks import check_seed
from memcross.validation import data as data_mod
from memcross.validation.data import available_memory, check_memory, make_gmm_data


def test_check_seed():
    assert check_seed(0) == 0 and check_seed(np.int64(5)) == 5 and check_seed(2**63 - 1) == 2**63 - 1
    for bad in (-1, 2**63, 2**64, True, 1.0, "3", None):
        with pytest.raises(ValueError, match=r"--seed must be an integer in \[0, 2\*\*63\)"):
            check_seed(bad, "--seed")
    with pytest.raises(ValueError, match=r"^seed must be"):
        make_gmm_data(4, 2, 8, seed=2**64)


def test_memory_is_read_and_checked(monkeypatch):
    avail = available_memory()
    assert avail is None or avail > 0
    monkeypatch.setattr(data_mod, "available_memory", lambda: 10 * 2**30)
    check_memory(8 * 2**30, "x", "--dim")
    with pytest.raises(ValueError, match=r"^x needs about 9 GiB, more than the 8 GiB available .*; lower --dim$"):
        check_memory(9 * 2**30, "x", "--dim")
    monkeypatch.setattr(data_mod, "available_memory", lambda: None)
    check_memory(10**18, "x", "--dim")  # unknown: nothing refused
    monkeypatch.setattr(data_mod, "available_memory", lambda: 2**30)
    with pytest.raises(ValueError, match=r"data: \(d, N\) = \(1000000, 200\) needs about"):
        make_gmm_data(1_000_000, 12, 200)
