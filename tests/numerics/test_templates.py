import numpy as np
import pytest

from memcross.numerics.templates import blob_templates, check_templates, file_templates, load_templates


def test_blobs_are_normalized_sparse_and_seeded():
    t = blob_templates(4, side=15, sparsity=0.25, seed=3)
    assert t.shape == (4, 225) and t.min() == 0 and np.allclose(t.max(1), 1)
    assert abs((t > 0).mean() - 0.25) < 0.02
    assert np.array_equal(t, blob_templates(4, side=15, sparsity=0.25, seed=3))
    assert not np.array_equal(t, blob_templates(4, side=15, sparsity=0.25, seed=4))


@pytest.mark.parametrize("bad,match", [
    (np.zeros((3, 9)), "template 0 is all zero"),
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.ones(5), "expected an array of shape"),
])
def test_bad_templates(bad, match):
    with pytest.raises(ValueError, match=match):
        check_templates(bad)


def test_too_few_templates_and_files(tmp_path):
    with pytest.raises(ValueError, match="2 template\\(s\\) given but K = 3"):
        check_templates(np.ones((2, 4)), K=3)
    path = tmp_path / "t.npy"
    np.save(path, np.ones((3, 5, 5)))
    assert file_templates(path, 2).shape == (2, 25)
    with pytest.raises(ValueError, match="not found"):
        file_templates(tmp_path / "missing.npy", 2)
    with pytest.raises(ValueError, match="must be a .npy"):
        file_templates(tmp_path / "t.txt", 2)
    assert load_templates(f"file:{path}", 3).shape == (3, 25)


def test_spec_parsing():
    assert load_templates("blobs:side=6,seed=1", 2).shape == (2, 36)
    with pytest.raises(ValueError, match="unknown templates"):
        load_templates("mnist", 2)
    with pytest.raises(ValueError, match="unknown parameter"):
        load_templates("blobs:colour=1", 2)


def test_digits_templates():
    pytest.importorskip("sklearn")
    t = load_templates("digits", 6)
    assert t.shape == (6, 225) and np.allclose(t.max(1), 1) and t.min() >= 0
