"""``check_int``: the one integer check behind every count, size and bound of the package."""

import numpy as np
import pytest

from memcross._checks import check_int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 2.0, "2", None, [2]])
def test_only_integers_pass(value):
    with pytest.raises(ValueError, match=r"^n must be a positive integer, got "):
        check_int(value, "n")


def test_numpy_integers_only_when_accepted():
    with pytest.raises(ValueError, match="n must be a positive integer, got "):
        check_int(np.int64(3), "n")
    out = check_int(np.int64(3), "n", accept_numpy=True)
    assert out == 3 and type(out) is int
    with pytest.raises(ValueError, match="n must be a positive integer"):
        check_int(np.bool_(True), "n", accept_numpy=True)


@pytest.mark.parametrize("kwargs, good, bad, message", [
    ({}, [1, 10**30], [0, -5], "n must be a positive integer, got {}"),
    ({"high": 10_000}, [1, 10_000], [0, 10_001], "n must be a positive integer (at most 10,000), got {}"),
    ({"high": 8, "why": ", the CPUs"}, [8], [9], "n must be a positive integer (at most 8, the CPUs), got {}"),
    ({"high": 20, "high_name": "N"}, [20], [21], "n must be a positive integer (at most N = 20), got {}"),
    ({"low": 0, "high": 20, "high_name": "N"}, [0, 20], [-1, 21], "n must be an integer in [0, N] = [0, 20], got {}"),
    ({"low": 2, "high": 128}, [2, 128], [1, 129], "n must be an integer in [2, 128], got {}"),
    ({"low": 2}, [2, 10**6], [1, -3], "n must be an integer >= 2, got {}"),
    ({"low": None}, [-(10**9), 0, 7], [], "n must be an integer, got {}"),
])
def test_bounds(kwargs, good, bad, message):
    for value in good:
        assert check_int(value, "n", **kwargs) == value
    for value in bad:
        with pytest.raises(ValueError) as err:
            check_int(value, "n", **kwargs)
        assert str(err.value) == message.format(value)


def test_long_values_are_shortened():
    with pytest.raises(ValueError) as err:
        check_int("x" * 500, "n")
    assert len(str(err.value)) < 100 and str(err.value).endswith("...")
