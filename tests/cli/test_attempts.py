"""Careless and hostile input, rerun: each attempt gives one line and exit 2 (or the right result),
no traceback, no hang, and nothing written for a refused command."""

import numpy as np
import pytest

from memcross.cli import main

# (arguments, a piece of the one-line error); {tmp} is a fresh folder with the files made below
REFUSED = [
    # sizes with caps
    (["predict", "--dps", "100000000"], "dps"),
    (["predict", "--time", "grid:0.001,0.999,100000000"], "at most"),
    (["predict", "--dim", "1000000000", "--method", "finite-d"], "d must be in 1..1000000"),
    (["predict", "--data", "colored-templates", "--templates", "blobs:side=3000"], "side"),
    (["predict", "--data", "colored-templates", "--templates", "file:{tmp}/huge.npy"], "huge.npy"),
    (["predict", "--data", "colored-templates", "--templates", "file:{tmp}/complex.npy"], "complex"),
    (["predict", "--data", "colored-templates", "--templates", "file:{tmp}/text.npy"], "not a .npy file"),
    (["exact", "--dim", "1000000", "--no-store"], "GiB"),
    (["exact", "--train", "1000000", "--components", "2", "--no-store"], "GiB"),
    # numbers that hang or overflow
    (["predict", "--s2", "1e-9999999"], "s2"),
    (["check", "exp(exp(exp(1000)))", "--against", "psi"], "exp(exp(exp(1000)))"),
    (["check", "exp(t*10**999)", "--against", "psi"], "exp(t*10**999)"),
    (["check", "t*1e-9999999", "--against", "psi"], "1e-9999999"),
    (["predict", "--t-max", "-1", "--alpha", "1-t", "--sigma", "t"], "t_max"),
    (["exact", "--seed", str(2**64), "--no-store", "--dim", "3", "--components", "2", "--train", "10"], "--seed"),
    # outputs and inputs that cannot be used
    (["derive", "--output", "{tmp}"], "is a folder"),
    (["derive", "--output", "/dev/full"], "cannot write"),
    (["predict", "--config", "{tmp}"], "is a folder"),
    (["predict", "--config", "{tmp}/binary"], "not a text file"),
    (["table", "{tmp}/deep.json"], "nested too deeply"),
    (["study", "run", "{tmp}"], "{tmp}"),
    (["study", "run", "{tmp}/binary"], "binary"),
    (["study", "run", "{tmp}/study5.toml"], "study"),
    (["study", "run", "{tmp}/escape.toml"], "name"),
    (["study", "run", "{tmp}/typo.toml"], "nmae"),
    (["study", "run", "{tmp}/steps.toml"], "steps"),
    (["study", "run", "{tmp}/draws.toml"], "exact_draws"),
    (["study", "run", "{tmp}/threads.toml"], "threads"),
    (["study", "run", "{tmp}/ok.toml", "--workers", "10000", "--store", "{tmp}/w.sqlite"], "--workers"),
    (["study", "run", "{tmp}/ok.toml", "--workers", "2", "--dask-local", "2", "--store", "{tmp}/w.sqlite"],
     "executor"),
    (["study", "run", "{tmp}/ok.toml", "--dask-scheduler", "tcp://127.0.0.1:9", "--store", "{tmp}/w.sqlite"],
     "--dask-scheduler"),
    (["study", "report", "{tmp}/ok.toml", "--output", "{tmp}/a.md", "--figure", "{tmp}/f.txt"], "--figure"),
    # training options checked before anything runs
    (["validate", "--init-variance", "0", "--no-store", "--dim", "3", "--components", "2", "--train", "10"],
     "--init-variance"),
    (["validate", "--init-variance", "nan", "--no-store", "--dim", "3", "--components", "2", "--train", "10"],
     "--init-variance"),
    (["validate", "--lr", "inf", "--no-store", "--dim", "3", "--components", "2", "--train", "10"], "--lr"),
    (["validate", "--train-target", "nope", "--no-store", "--dim", "3", "--components", "2", "--train", "10"],
     "nope"),
    (["validate", "--train-weighting", "nope", "--no-store", "--dim", "3", "--components", "2", "--train", "10"],
     "nope"),
    (["exact", "--store", "{tmp}/no/such/dir/x.sqlite", "--dim", "3", "--components", "2", "--train", "10"],
     "--store"),
    # what a new user trips over
    (["predict", "--schedul", "vp"], "did you mean '--schedule'?"),
    (["predict", "--fast"], "--fast"),
    (["plot", "coefficient", "--dims", "0,-5", "--output", "{tmp}/c.png"], "--dims"),
]


@pytest.fixture
def tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "complex.npy", np.ones((6, 225), dtype=complex))
    (tmp_path / "text.npy").write_text("not numpy\n")
    with open(tmp_path / "huge.npy", "wb") as fh:  # a header that claims 100000 x 100000
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    (tmp_path / "binary").write_bytes(b"\x00\x01\xff\xfe")
    (tmp_path / "deep.json").write_text("[" * 3000 + "]" * 3000)
    part = '\n[[part]]\nmethods = ["predict", "exact"]\ngrid = { d = [5], K = [2], N = [10] }\n'
    for name, text in {
        "ok.toml": '[study]\nname = "ok"\n' + part,
        "study5.toml": "study = 5\n" + part,
        "escape.toml": '[study]\nname = "../../x"\n' + part,
        "typo.toml": '[study]\nnmae = "x"\n' + part,
        "steps.toml": part.replace('"predict", "exact"', '"validate"') + "steps = -5\n",
        "draws.toml": part + "exact_draws = -1\n",
        "threads.toml": part + "threads = 100000\n",
    }.items():
        (tmp_path / name).write_text(text)
    return tmp_path


# exact, validate and study refuse with the missing extra's message where torch is not installed
@pytest.mark.parametrize("args, message", [
    pytest.param(a, m, marks=pytest.mark.needs_torch) if a[0] in ("exact", "validate", "study") else (a, m)
    for a, m in REFUSED], ids=[" ".join(a)[:60] for a, _ in REFUSED])
def test_refused_in_one_line(tmp, capsys, args, message):
    before = sorted(p.name for p in tmp.rglob("*"))
    rc = main([a.replace("{tmp}", str(tmp)) for a in args])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message.replace("{tmp}", str(tmp)) in lines[0], lines[0]
    assert sorted(p.name for p in tmp.rglob("*")) == before  # nothing written


def test_huge_s2_is_a_number_not_an_error(capsys):
    # s2 = 1e308: every 1/(1 + psi s2) is tiny, so M*/N = 1 to the digits shown
    assert main(["predict", "--s2", "1e308", "--json"]) == 0
    assert '"value": 1.0' in capsys.readouterr().out

