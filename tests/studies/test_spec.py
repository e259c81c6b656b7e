import os
from pathlib import Path

import pytest

from memcross.studies import parse_study


def test_parse_builds_cells_and_checks_everything_first(tiny_study):
    st = parse_study(tiny_study)
    assert len(st.cells) == 4 * 1 + 4 * 2  # one prediction per setting, one exact cell per seed
    bad = [
        ({"part": []}, "no \\[\\[part\\]\\] tables"),
        ({"part": [{"methods": ["train"], "grid": {"d": [8]}}]}, "methods must be"),
        ({"part": [{"methods": ["exact"], "grid": {"dim": [8]}}]}, "unknown part 1 grid field"),
        ({"part": [{"methods": ["exact"], "grid": {"K": [30], "N": [20]}}]}, "K must be <= N"),
        ({"part": [{"methods": ["validate"], "grid": {"N": [20]}, "sizes": [5, 50]}]}, "sizes must be integers"),
        ({"part": [{"methods": ["exact"], "grid": {"d": 8}}]}, "needs a non-empty list"),
        ({"extra": {}}, "unknown table"),
    ]
    for data, match in bad:
        with pytest.raises(ValueError, match=match):
            parse_study(data)



PRED = {"methods": ["predict"], "grid": {"d": [8], "K": [2], "N": [16]}}
VAL = {"methods": ["validate"], "grid": {"d": [8], "K": [2], "N": [16]}}


@pytest.mark.parametrize("data,match", [
    ({"study": {"name": "../../x"}, "part": [PRED]}, r"\[study\] name must be a plain file name"),
    ({"study": {"name": "/tmp/x"}, "part": [PRED]}, "plain file name"),
    ({"study": {"name": ".hidden"}, "part": [PRED]}, "not starting with '.'"),
    ({"study": {"name": "a b"}, "part": [PRED]}, "plain file name"),
    ({"study": {"name": 5}, "part": [PRED]}, "plain file name"),
    ({"study": {"nmae": "x"}, "part": [PRED]}, r"\[study\]: unknown key\(s\) nmae; allowed: name"),
    ({"study": 5, "part": [PRED]}, r"\[study\] must be a table, got an integer 5"),
    ({"setting": 3, "part": [PRED]}, r"\[setting\] must be a table, got an integer 3"),
    ({"setting": {"time": [1]}, "part": [PRED]}, "field 'time' must be a string or a number"),
    ({"part": "x"}, r"part must be \[\[part\]\] tables \(an array of tables\), got a string 'x'"),
    ({"part": [5]}, "part 1 must be a table"),
    ({"part": [{"methods": "predict"}]}, "methods must be a non-empty list"),
    ({"part": [{"methods": [["exact"]]}]}, "methods must be a non-empty list"),
    ({"part": [dict(PRED, grid=[1])]}, "part 1: grid must be a table, got an array"),
    ({"part": [dict(PRED, grid={"schedule": [["vp"]]})]}, "grid field 'schedule' must be a string or a number"),
    ({"part": [dict(PRED, grid={"d": [True]})]}, "must be a string or a number, got a boolean"),
    ({"part": [dict(VAL, steps=-5)]}, r"part 1: steps must be a positive integer \(at most 100,000,000\), got -5"),
    ({"part": [dict(VAL, steps=10**9)]}, "steps must be a positive integer"),
    ({"part": [dict(VAL, draws=0)]}, "draws must be a positive integer"),
    ({"part": [dict(VAL, n_eval=True)]}, "n_eval must be a positive integer"),
    ({"part": [dict(PRED, methods=["exact"], exact_draws=-1)]}, "exact_draws must be a positive integer"),
    ({"part": [dict(PRED, threads=0)]}, "threads must be a positive integer"),
    ({"part": [dict(PRED, threads=100000)]}, "the CPUs this process may use"),
    ({"part": [dict(PRED, threads="2")]}, "threads must be a positive integer"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[-1])]}, r"each seed must be an integer in \[0, 2\*\*63\)"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[2**64])]}, r"each seed must be an integer in \[0, 2\*\*63\)"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[True])]}, "each seed must be an integer"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[1, 1])]}, "lists a seed twice"),
    ({"part": [dict(VAL, sizes=5)]}, "sizes must be a list of integers, got an integer 5"),
    ({"part": [dict(VAL, sizes=[True])]}, r"sizes must be integers in \[1, N\]"),
    ({"part": [dict(VAL, preset="fast")]}, "unknown preset 'fast'"),
    ({"part": [dict(VAL, preset=["quick"])]}, "unknown preset"),
])
def test_study_mistakes_are_one_value_error(data, match):
    with pytest.raises(ValueError, match=match):
        parse_study(data)


def test_threads_are_capped_by_the_usable_cpus():
    from memcross.studies import usable_cpus

    cpus = usable_cpus()
    if hasattr(os, "sched_getaffinity"):
        assert cpus == len(os.sched_getaffinity(0))
    assert parse_study({"part": [dict(PRED, threads=cpus)]}).cells[0].options["threads"] == cpus
    with pytest.raises(ValueError, match=f"at most {cpus}, the CPUs this process may use"):
        parse_study({"part": [dict(PRED, threads=cpus + 1)]})


def test_study_name_defaults_to_a_checked_file_stem(tmp_path):
    from memcross.studies import load_study

    ok = tmp_path / "my-study_1.toml"
    ok.write_text('[[part]]\nmethods = ["predict"]\n')
    assert load_study(ok).name == "my-study_1"
    spaced = tmp_path / "my study.toml"
    spaced.write_text('[[part]]\nmethods = ["predict"]\n')
    with pytest.raises(ValueError, match="from the file name; set \\[study\\] name"):
        load_study(spaced)


def test_unreadable_study_files_name_the_file(tmp_path):
    from memcross.studies import MAX_STUDY_BYTES, load_study

    folder = tmp_path / "folder.toml"
    folder.mkdir()
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x00\xff\xfe\x93binary")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    huge = tmp_path / "huge.toml"
    huge.write_text("# padding\n" * (MAX_STUDY_BYTES // 10 + 1))
    cases = [(folder, "is a folder"), (binary, "is not a text file"), (deep, "is nested too deeply"),
             (huge, "is larger than 1024 KiB"), (tmp_path / "missing.toml", "not found")]
    for path, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            load_study(path)
        assert str(err.value).startswith(f"study file {str(path)!r}")


@pytest.mark.parametrize("text,message", [
    ('[study]\nname = "../../escaped"\n[[part]]\nmethods = ["predict"]\n', "plain file name"),
    ('[study]\nname = "/tmp/absolute"\n[[part]]\nmethods = ["predict"]\n', "plain file name"),
    ('[study]\nnmae = "typo"\n[[part]]\nmethods = ["predict"]\n', "unknown key(s) nmae"),
    ('study = 5\n', "[study] must be a table"),
    ('setting = 3\n[[part]]\nmethods = ["predict"]\n', "[setting] must be a table"),
    ('part = "x"\n', "part must be [[part]] tables"),
    ('[[part]]\nmethods = ["validate"]\nsteps = -5\n', "steps must be a positive integer"),
    ('[[part]]\nmethods = ["exact"]\nexact_draws = -1\n', "exact_draws must be a positive integer"),
    ('[[part]]\nmethods = ["exact"]\nthreads = 100000\n', "the CPUs this process may use"),
    ('[[part]]\nmethods = ["exact"]\nseeds = [18446744073709551616]\n', "each seed must be an integer in [0, 2**63)"),
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
])
def test_cli_study_mistakes_write_nothing(tmp_path, monkeypatch, cli, text, message):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "study.toml"
    spec.write_text(text)
    for action in ("run", "report"):
        rc, err = cli("study", action, spec, "--no-progress" if action == "run" else "--format=csv")
        assert rc == 2 and err.count("\n") == 1 and message in err and err.startswith("memcross: error: study file")
    rc, err = cli("study", "run", spec, "--store", tmp_path / "given.sqlite")
    assert rc == 2 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]  # no store, no memcross-runs/
    assert not (tmp_path.parent / "escaped.sqlite").exists() and not Path("/tmp/absolute.sqlite").exists()


def test_cli_binary_and_folder_study_files(tmp_path, cli):
    binary, folder = tmp_path / "b.toml", tmp_path / "f.toml"
    binary.write_bytes(bytes(range(256)))
    folder.mkdir()
    for path, message in ((binary, "is not a text file"), (folder, "is a folder")):
        rc, err = cli("study", "run", path, "--store", tmp_path / "s.sqlite")
        assert rc == 2 and err.count("\n") == 1 and message in err and str(path) in err
    assert not (tmp_path / "s.sqlite").exists()




def test_validate_cells_carry_a_changed_presets_revision(tmp_path):
    """A cell of a preset whose content changed (the coloured ``quick``) carries the revision, so a
    store filled under the earlier content does not answer for it; the cells of unchanged presets
    keep the keys they were stored under."""
    from memcross.store import Store

    study = parse_study({"part": [
        {"methods": ["validate"], "grid": {"data": ["colored-templates:templates=blobs,side=5"], "K": [3], "N": [12]}},
        {"methods": ["validate"], "grid": {"d": [8], "K": [2], "N": [16]}},
    ]}, check_plans=False)
    coloured, isotropic = study.cells
    assert coloured.options == {"preset": "quick", "preset_revision": 2, "exact_draws": 8, "threads": 1}
    assert isotropic.options == {"preset": "quick", "exact_draws": 8, "threads": 1}
    assert isotropic.key() == "ff6333ebb1d475985470a2632033743b550540bed58220add3ba6148f0493b41"  # as before revisions
    store = Store(tmp_path / "s.sqlite")
    earlier = {**coloured.config(), "options": {k: v for k, v in coloured.options.items() if k != "preset_revision"}}
    store.put("cell", earlier, {"label": coloured.label()})
    assert not store.has("cell", coloured.config())
