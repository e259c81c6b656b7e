import numpy as np
import pytest

from memcross.templates import blob_templates, check_templates, file_templates, load_templates


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


# -- caps and file checks, before anything is loaded ----------------------------------------------
def _header_only(path, shape, descr="<f8"):
    """A .npy file whose header claims ``shape`` but holds no data."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": descr, "fortran_order": False, "shape": shape})


def test_side_and_bumps_are_capped():
    from memcross.templates import MAX_SIDE

    assert load_templates(f"blobs:side={MAX_SIDE}", 1).shape == (1, MAX_SIDE**2)
    for spec, match in (("blobs:side=3000", r"blobs side must be an integer in \[2, 128\], got 3000"),
                        ("blobs:side=1", r"blobs side must be an integer in \[2, 128\]"),
                        ("blobs:bumps=1000000", r"blobs bumps must be a positive integer \(at most 100\)"),
                        ("blobs:seed=-1", r"blobs seed must be an integer in \[0, 2\*\*63\)"),
                        ("blobs:side=1e3", "side must be an integer, got '1e3'"),
                        ("blobs:sparsity=x", "sparsity must be a number, got 'x'")):
        with pytest.raises(ValueError, match=match):
            load_templates(spec, 2)


def test_digits_side_is_capped():
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match=r"digits side must be an integer in \[2, 128\], got 3000"):
        load_templates("digits:side=3000", 2)


def test_template_files_are_checked_from_their_header(tmp_path):
    huge = tmp_path / "huge.npy"
    _header_only(huge, (100000, 100000))
    wide = tmp_path / "wide.npy"
    _header_only(wide, (2, 1, 200, 200))
    tall = tmp_path / "tall.npy"
    _header_only(tall, (2, 200, 200))
    text = tmp_path / "text.npy"
    text.write_text("1 2 3\n")
    complex_ = tmp_path / "complex.npy"
    np.save(complex_, np.ones((3, 4)) + 1j)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    strings = tmp_path / "strings.npy"
    np.save(strings, np.array([["a", "b"]]))
    short = tmp_path / "short.npy"
    _header_only(short, (3, 25))
    with open(short, "ab") as fh:
        fh.write(np.ones(10).tobytes())
    folder = tmp_path / "folder.npy"
    folder.mkdir()
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[1.0, np.inf]]))
    cases = [(huge, r"an array of shape \(100000, 100000\) is too large"),
             (wide, r"expected an array of shape \(K, side, side\) or \(K, P\), got shape \(2, 1, 200, 200\)"),
             (tall, "too large; at most 16384 pixels per template"),
             (text, "not a .npy file$"),
             (complex_, "complex values"),
             (objects, "values of type object are not numbers"),
             (strings, "are not numbers"),
             (short, "cannot read the array"),
             (folder, "is a directory"),
             (nan, "NaN or infinite pixels")]
    for path, match in cases:
        with pytest.raises(ValueError, match=match) as err:
            file_templates(path, 1)
        if path is not nan:
            assert str(err.value).startswith(f"--templates file:{path}: ")
    ints = tmp_path / "ints.npy"
    np.save(ints, np.arange(1, 13, dtype=np.int16).reshape(2, 2, 3))
    assert file_templates(ints, 2).dtype == np.float64


def test_complex_arrays_are_refused():
    with pytest.raises(ValueError, match="complex values"):
        check_templates(np.ones((2, 4)) * (1 + 1j))


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("not an array"), "not a .npy file"),
    (lambda p: _header_only(p, (100000, 100000)), "is too large"),
    (lambda p: np.save(p, np.ones((6, 25)) * 1j), "complex values"),
])
@pytest.mark.needs_torch
def test_cli_bad_template_files_write_nothing(tmp_path, capsys, make, message):
    from memcross.cli import main

    path, store = tmp_path / "t.npy", tmp_path / "s.sqlite"
    make(path)
    for command in ("exact", "validate"):
        rc = main([command, "--data", "colored-templates", "--templates", f"file:{path}", "--store", str(store)])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and message in err and f"--templates file:{path}: " in err, err
    assert not store.exists()
    rc = main(["exact", "--data", "colored-templates", "--templates", "blobs:side=3000", "--store", str(store)])
    assert rc == 2 and "blobs side must be an integer in [2, 128]" in capsys.readouterr().err
    assert not store.exists()


def test_colored_excess_is_as_accurate_as_it_states(monkeypatch):
    """The stated relative accuracy holds against a rule with 3x the colour nodes and 4x the radii."""
    import sys

    import memcross.numerics.coefficient  # noqa: F401  (the module, not the function of that name)

    module = sys.modules["memcross.numerics.coefficient"]
    u = load_templates("digits", 6)
    Ms = np.array([1, 20, 80, 99])
    coarse = module.colored_excess(u, 1.0, 100, Ms)
    monkeypatch.setattr(module, "COLOR_LAMBDA_NODES", 3 * module.COLOR_LAMBDA_NODES)
    monkeypatch.setattr(module, "COLOR_R_NODES", 4 * module.COLOR_R_NODES)
    fine = module.colored_excess(u, 1.0, 100, Ms)
    assert np.all(np.abs(coarse / fine - 1) < module.COLORED_EXCESS_RELATIVE_ERROR)


def test_colored_prediction_states_its_real_precision():
    from memcross.numerics.predict import predict
    from memcross.records import Prediction
    from memcross.theory import Setting

    setting = Setting(data="colored-templates:templates=digits", K=6, N=100)
    record = predict(setting, "finite-d")
    assert Prediction.from_dict(record.to_dict()).setting == setting and setting.d == 675  # JSON round trip
    assert 0 < record.error < 1e-3 and record.dps < 15
    assert record.dps == int(np.floor(-np.log10(record.error / record.value)))
    assert record.value_text == f"{record.value:.{record.dps}g}"
    # the value is the documented one to the digits it claims
    assert abs(record.value - 0.8188) < 1e-4
