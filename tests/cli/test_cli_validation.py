"""`memcross exact`, `memcross validate` and `memcross table --store`, in-process through ``main``."""

import json
import sqlite3

import pytest
from cli_helpers import call

pytest.importorskip("torch")

TINY = ["--dim", "8", "--components", "2", "--train", "20"]


def test_exact_prints_crossover_excess_and_coefficient(tmp_path):
    out = call("exact", *TINY, "--draws", "2", "--store", str(tmp_path / "s.sqlite"))
    assert out.returncode == 0, out.stderr
    assert "exact M*/N = " in out.stdout and "asymptotic (C = 1) 0.6604" in out.stdout
    assert "d s2/(1+psi s2)" in out.stdout and "C(M) measured" in out.stdout
    data = json.loads(call("exact", *TINY, "--draws", "2", "--no-store", "--json").stdout)
    assert 0 < data["exact"] <= 1 and len(data["t"]) == 26


def test_validate_then_table_from_store(tmp_path):
    store, fig = tmp_path / "s.sqlite", tmp_path / "f.png"
    out = call("validate", *TINY, "--sizes", "4,20", "--steps", "100", "--draws", "2", "--n-eval", "20",
              "--store", str(store), "--figure", str(fig), "--no-progress", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "observed_mid" in out.stdout and "memorization ratio" in out.stdout and fig.stat().st_size > 0
    tab = call("table", "--store", str(store), "--format", "csv")
    assert tab.returncode == 0 and tab.stdout.splitlines()[0].startswith("d,K,N,preset,predicted_c1")
    sizes = call("table", "--store", str(store), "--kind", "sizes", "--format", "latex")
    assert sizes.returncode == 0 and "\\toprule" in sizes.stdout


def test_validate_betas_and_dtype_reach_the_optimizer_and_the_store(tmp_path):
    from memcross.store import Store

    store = tmp_path / "s.sqlite"
    out = call("validate", *TINY, "--sizes", "4,20", "--steps", "20", "--draws", "1", "--n-eval", "5",
               "--betas", "0.8,0.99", "--dtype", "float64", "--store", str(store), "--no-figure", "--no-progress",
               timeout=300)
    assert out.returncode == 0, out.stderr
    configs = [c for c, _ in Store(store).records("params")]
    assert len(configs) == 2
    assert all(c["train"]["betas"] == [0.8, 0.99] and c["train"]["dtype"] == "float64" for c in configs)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    # shared by the tests below, which only read it: each checks that its refused command left it as it was
    tmp_path = tmp_path_factory.mktemp("stores")
    good = tmp_path / "good.sqlite"
    out = call("exact", *TINY, "--draws", "1", "--store", str(good))
    assert out.returncode == 0, out.stderr
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("not a store\n")
    return good, foreign


BAD = [
    (["--sizes", "4,21"], r"M must be a positive integer (at most N = 20), got 21"),
    (["--components", "30"], "K must be <= N"),
    (["--dim", "0"], "d must be a positive integer"),
    (["--steps", "0"], "steps must be a positive integer"),
    (["--preset", "fast"], "unknown preset 'fast'; known presets: paper, quick"),
    (["--sizes", "a,b"], "--sizes 'a,b'"),
    (["--init", "zeros"], "unknown init 'zeros'"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be a positive number"),
    (["--data", "colored-templates", "--init", "sphere"],
     "d = 8 does not fit data 'colored-templates', whose dimension is 675; leave d out"),
    (["--data", "colored-templates:templates=blobs,side=4", "--init", "sphere", "--dim", "48"],
     "init 'sphere' is not available for coloured templates; known inits: pmem, oracle, random"),
    (["--data", "colored-templates", "--templates", "digits:side=1"], "digits side must be an integer in [2, 128]"),
    (["--init", "oracle"], "init 'oracle' is not available for the isotropic GMM"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_validate_input_one_line_and_store_untouched(stores, extra, message):
    good, _ = stores
    before = good.read_bytes()
    args = ["validate", "--dim", "8", "--components", "2", "--train", "20", *extra, "--store", str(good)]
    out = call(*args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr and "Traceback" not in out.stderr
    assert good.read_bytes() == before


def test_foreign_store_is_refused_untouched(stores):
    _, foreign = stores
    out = call("validate", *TINY, "--store", str(foreign))
    assert out.returncode == 2 and "is not a memcross store" in out.stderr and out.stderr.count("\n") == 1
    assert foreign.read_text() == "not a store\n"
    out = call("table", "--store", str(foreign))
    assert out.returncode == 2 and "is not a memcross store" in out.stderr


def test_cuda_where_there_is_none(stores):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    good, _ = stores
    before = good.read_bytes()
    out = call("validate", *TINY, "--device", "cuda", "--store", str(good))
    assert out.returncode == 2 and "CUDA is not available" in out.stderr and out.stderr.count("\n") == 1
    assert good.read_bytes() == before
    db = sqlite3.connect(good)
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1


def test_colored_templates_predict_and_exact(tmp_path):
    out = call("predict", "--data", "colored-templates", "--templates", "blobs:side=8,seed=1", "--json")
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["method"] == "finite-snr" and 0 < rec["value"] < 1 and rec["setting"]["data"] == "colored-templates:templates=blobs,side=8,seed=1"
    assert rec["setting"]["K"] == 6 and rec["setting"]["N"] == 100 and rec["setting"]["d"] == 3 * 64
    out = call("exact", "--data", "colored-templates", "--templates", "blobs:side=8,seed=1", "--train", "40",
              "--draws", "2", "--store", str(tmp_path / "s.sqlite"))
    assert out.returncode == 0, out.stderr
    assert "exact M*/N = " in out.stdout and "C(M) finite-d theory" in out.stdout and "3l/(1+psi l)" in out.stdout


def test_validate_colored_templates(tmp_path):
    store = tmp_path / "s.sqlite"
    out = call("validate", "--data", "colored-templates", "--templates", "blobs:side=5", "--components", "3",
              "--train", "12", "--sizes", "3,12", "--steps", "40", "--draws", "2", "--n-eval", "20", "--store",
              str(store), "--no-progress", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "templates_near_true" in out.stdout and "exact crossover of this data set" in out.stdout
    assert (tmp_path / "transition-colored-blobs-K3-N12-seed0-quick-40steps.png").stat().st_size > 0
    assert (tmp_path / "samples-colored-blobs-K3-N12-seed0-quick-40steps.png").stat().st_size > 0
    tab = call("table", "--store", str(store), "--format", "csv")
    assert tab.returncode == 0 and "quick" in tab.stdout
    sizes = call("table", "--store", str(store), "--kind", "sizes", "--format", "csv")
    assert sizes.returncode == 0, sizes.stderr
    lines = sizes.stdout.splitlines()
    assert "templates_near_true" in lines[0].split(",") and len(lines) == 3
    assert all(line.startswith("colored-templates:blobs:side=5,,3,12,") for line in lines[1:])


@pytest.mark.parametrize("args,message", [
    (["--templates", "file:missing.npy"], "template file 'missing.npy' not found"),
    (["--templates", "mnist"], "unknown templates 'mnist'"),
    (["--templates", "blobs:colour=2"], "unknown parameter"),
    (["--components", "11", "--templates", "digits"], "K must be in 1..10"),
])
def test_bad_templates_one_line(tmp_path, args, message):
    store = tmp_path / "s.sqlite"
    out = call("exact", "--data", "colored-templates", *args, "--store", str(store))
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1
    assert not store.exists()


def test_bad_template_arrays(tmp_path):
    import numpy as np

    zero, nan, few = tmp_path / "zero.npy", tmp_path / "nan.npy", tmp_path / "few.npy"
    np.save(zero, np.zeros((6, 5, 5)))
    np.save(nan, np.full((6, 25), np.nan))
    np.save(few, np.ones((3, 25)))
    for path, message in ((zero, "is all zero"), (nan, "NaN"), (few, "3 template(s) given but K = 6")):
        out = call("predict", "--data", "colored-templates", "--templates", f"file:{path}")
        assert out.returncode == 2 and message in out.stderr, out.stderr


def test_study_run_and_report(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[study]\nname = "cli"\n[[part]]\nmethods = ["predict", "exact"]\n'
                    'grid = { d = [8], K = [2], N = [16, 24] }\nexact_draws = 1\n')
    store, fig = tmp_path / "s.sqlite", tmp_path / "m.png"
    out = call("study", "run", str(spec), "--store", str(store), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "4 cell(s) computed" in out.stdout
    again = call("study", "run", str(spec), "--store", str(store), "--no-progress")
    assert "0 cell(s) computed, 4 already stored" in again.stdout
    rep = call("study", "report", str(spec), "--store", str(store), "--format", "csv", "--figure", str(fig))
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.startswith("d,K,N,predicted_c1,predicted_finite_d,exact") and fig.stat().st_size > 0
    bad = call("study", "run", str(spec), "--store", str(store), "--workers", "2", "--dask-local", "2")
    assert bad.returncode == 2 and "choose one executor" in bad.stderr
    missing = call("study", "report", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "not found" in missing.stderr
