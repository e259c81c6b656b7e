"""The layers: the base (store, records), the studies and the command line work without torch.

Imports point down only (cli -> studies -> validation -> numerics -> theory, and a base of
``memcross._checks``, ``memcross._util``, ``memcross.records`` and ``memcross.store`` that any layer
may import); only the validation layer's computing modules load torch.
"""

import ast
import json
from pathlib import Path

import pytest

import memcross

ROOT = Path(memcross.__file__).parent

#: Runs each command line of argv[1] (JSON) through ``main`` in one process; prints the exit codes,
#: outputs and the torch modules loaded, as JSON.
DRIVER = """
import contextlib, io, json
from memcross.cli import main

results = []
for args in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    results.append({"args": args, "rc": rc, "out": out.getvalue(), "err": err.getvalue()})
loaded = sorted(m for m, mod in sys.modules.items() if m.split('.')[0] == 'torch' and mod is not None)
print(json.dumps({"results": results, "torch": loaded}))
"""


def test_base_layers_import_no_torch(without_torch):
    code = ("import sys, memcross, memcross.store, memcross.records, memcross.studies, memcross.validation\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "import memcross.validation as v\n"
            "assert set(v.__all__) <= set(dir(v)) and 'torch' not in sys.modules\n"
            "print(v.PRESETS['quick']['steps'], v.Store.__module__, v.SweepResult.__module__)")
    out = without_torch(code, block=None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["50000", "memcross.store", "memcross.records"]


def _package_imports(path: Path) -> set[str]:
    """The ``memcross`` modules a source file imports (at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] == "memcross"}


def test_the_base_imports_only_the_base_and_the_setting():
    allowed = {"memcross._checks", "memcross._util", "memcross.records", "memcross.store", "memcross.templates",
               "memcross.theory.setting"}
    for name in ("_checks", "_util", "records", "store", "templates"):
        assert _package_imports(ROOT / f"{name}.py") <= allowed, name


@pytest.mark.parametrize("layer,below", [
    ("theory", ()), ("numerics", ("theory",)), ("validation", ("numerics", "theory")),
    ("studies", ("validation", "numerics", "theory")),
])
def test_imports_point_down(layer, below):
    base = {"memcross", "memcross._checks", "memcross._util", "memcross.records", "memcross.store",
            "memcross.templates"}
    for path in (ROOT / layer).glob("*.py"):
        for module in _package_imports(path) - base:
            assert module.split(".")[1] in (layer, *below), f"{path.name} imports {module}"


@pytest.fixture
def inputs(tmp_path, stored):
    """A prediction records file, a store of trained sweeps, and a study store written by a study
    of predict, exact and validate cells (computed here with stand-in results)."""
    from memcross.numerics import predict
    from memcross.store import Store
    from memcross.studies import cells, load_study, run_study

    _summary_dict, _size_dict, tmp = stored.summary, stored.size, tmp_path
    (tmp / "records.json").write_text(predict().to_json())
    store = Store(tmp / "sweeps.sqlite")
    config = {"d": 30, "K": 4, "N": 100, "train": {"steps": 10}}
    store.put("summary", config, _summary_dict())
    store.put("size", {**config, "M": 50}, _size_dict(50))
    store.put("cell", {"method": "validate", "setting": {"d": 30}, "seed": 0, "options": {}},
              {"label": "validate", "summary": _summary_dict(), "sizes": [_size_dict(50, per_time=False)]})
    store.close()
    (tmp / "study.toml").write_text(
        '[[part]]\nmethods = ["predict", "exact"]\ngrid = { d = [8], K = [2], N = [16] }\nexact_draws = 1\n'
        '[[part]]\nmethods = ["validate"]\ngrid = { d = [8], K = [2], N = [16] }\nsizes = [8, 16]\nsteps = 10\n')
    fake = {"predict": {"predicted_c1": 0.66, "predicted_finite_d": 0.72},
            "exact": {"exact": 0.8, "exact_M": 13},
            "validate": {"summary": _summary_dict(d=8, K=2, N=16), "sizes": [_size_dict(8, 16, per_time=False)]}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cells, "_compute", lambda cell: fake[cell.method])
        study_store = Store(tmp / "study.sqlite")
        assert not run_study(load_study(tmp / "study.toml"), study_store).failed
        study_store.close()
    (tmp / "predict-only.toml").write_text('[[part]]\nmethods = ["predict"]\ngrid = { d = [8], K = [2], N = [16] }\n')
    return tmp


@pytest.mark.parametrize("block", ["none", "missing"])
def test_commands_without_torch(inputs, without_torch, block):
    t = inputs
    small = ["--dim", "3", "--components", "2", "--train", "10"]
    commands = {
        "predict": ["predict"],
        "derive": ["derive"],
        "check": ["check", "d*s2/(1+psi*s2)", "--against", "gaussian-mmse"],
        "table records": ["table", t / "records.json", "--format", "csv", "--columns", "schedule,value"],
        "table store": ["table", "--store", t / "sweeps.sqlite", "--format", "csv", "--columns", "N,exact"],
        "table sizes": ["table", "--store", t / "sweeps.sqlite", "--kind", "sizes", "--format", "csv",
                        "--columns", "M,ratio"],
        "plot": ["plot", "per-time", "--output", t / f"per-time-{block}.png"],
        "study report": ["study", "report", t / "study.toml", "--store", t / "study.sqlite", "--format", "csv"],
        "study run": ["study", "run", t / "predict-only.toml", "--store", t / f"predict-{block}.sqlite",
                      "--no-progress"],
        "list": ["list", "presets"],
        "exact": ["exact", "--no-store", *small],
        "validate": ["validate", "--no-store", "--sizes", "5,10", "--steps", "10", "--no-figure", *small],
    }
    if block == "none":  # scipy.stats' array-API checks fail on a torch module set to None (conftest):
        del commands["study run"]  # its finite-d prediction goes through them,
        commands["predict"] = ["predict", "--method", "asymptotic"]  # and so does the default finite-snr
    argv = [[str(a) for a in args] for args in commands.values()]
    proc = without_torch(DRIVER, json.dumps(argv), block=block, cwd=t)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    got = dict(zip(commands, report["results"]))
    assert report["torch"] == []
    for name in set(commands) - {"exact", "validate"}:
        assert got[name]["rc"] == 0, (name, got[name]["err"])
    assert got["table records"]["out"].splitlines() == ["schedule,value", "vp,0.66035964"]
    assert got["table store"]["out"].splitlines() == ["N,exact", "100,0.79", "100,0.79"]
    assert got["table sizes"]["out"].splitlines() == ["M,ratio", "50,0.5", "50,0.5"]
    assert got["study report"]["out"].splitlines()[1].startswith("8,2,16,0.66,0.72,0.8,1,0.78,")
    if "study run" in got:
        assert "1 cell(s) computed, 0 already stored, 0 failed" in got["study run"]["out"]
    assert "quick" in got["list"]["out"]
    for name in ("exact", "validate"):
        err = got[name]["err"]
        assert got[name]["rc"] == 2 and err.count("\n") == 1, (name, err)
        assert err == ("memcross: error: this command needs the 'validation' extra (torch is not installed): "
                       "pip install 'memcross[validation]'\n")
