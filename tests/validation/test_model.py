"""The isotropic GMM family's hand-written gradient in float32, where training runs."""

import pytest

from memcross.theory import Setting
from memcross.validation.data import make_gmm_data
from memcross.validation.process import Process
from memcross.validation.train import TrainConfig, Trainer

torch = pytest.importorskip("torch")

#: Float32 unit roundoff, 2^-24.
F32_U = torch.finfo(torch.float32).eps / 2
#: Norm-wise relative error allowed for the float32 gradient: 200 unit roundoffs (1.2e-5). Here the
#: float64 gradient itself moves by 1-4 unit roundoffs when the float32 inputs are perturbed by one
#: rounding, and the float32 gradient is 2.5-4 unit roundoffs from it; the margin is for other
#: BLAS summation orders. A cancellation in the softmax backward (a difference of two separately
#: rounded ~1e10 reductions) gave 0.4 here.
TOL = 200 * F32_U


@pytest.fixture(scope="module")
def quick():
    """The quick sweep's setting (d, K, N) = (30, 4, 100), a few of its sizes, two noise draws."""
    return make_gmm_data(30, 4, 100, seed=0), Process(Setting(d=30, K=4, N=100))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_gradient_at_the_pmem_start(quick, seed, float32_gradient_errors):
    # pmem: means on the training points, variance 1e-6; t = 0.001 dominates the gradient there
    data, proc = quick
    tr = Trainer(data, proc, [10, 50, 100], TrainConfig(steps=10, draws=2, seed=seed))
    assert tr.family.variance()[0] == pytest.approx(1e-6)
    g_means, g_std = float32_gradient_errors(tr, 0.001)
    assert g_means <= TOL and g_std <= TOL
