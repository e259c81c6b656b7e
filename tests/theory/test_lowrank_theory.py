import pytest
import sympy as sp

from memcross.theory.data import ColoredTemplateGMM, gaussian_mmse, low_rank_mmse, sc2
from memcross.theory.symbols import psi, s2


@pytest.mark.parametrize("dim", [1, 3, 7])
def test_low_rank_mmse_with_equal_eigenvalues_is_the_gaussian_mmse(dim):
    assert sp.simplify(low_rank_mmse([s2] * dim) - gaussian_mmse(psi, s2, dim)) == 0


def test_colored_mmse_is_rank_three_per_template():
    n = sp.symbols("n1 n2", positive=True)
    model = ColoredTemplateGMM(n, sc2)
    expected = sum(3 * sc2 * k / (1 + psi * sc2 * k) for k in n) / 2
    assert sp.simplify(model.mmse() - expected) == 0
    assert model.K == 2 and model.excess_generalizer() == model.mmse()
    # psi -> 0: the full colour variance 3 sc2 ||u||^2 per template
    assert sp.simplify(model.mmse(0) - 3 * sc2 * (n[0] + n[1]) / 2) == 0


@pytest.mark.parametrize("kwargs,match", [
    ({"norms2": ()}, "at least one template"),
    ({"norms2": (1, -2)}, "template norms must be positive"),
    ({"norms2": (1,), "sc2": 0}, "sc2 must be positive"),
])
def test_bad_colored_models(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ColoredTemplateGMM(**kwargs)
    with pytest.raises(ValueError, match="positive"):
        low_rank_mmse([0])
