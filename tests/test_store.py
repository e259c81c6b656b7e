import io
import json
import os
import pickle
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest

from memcross.store import Store, StoreError, check_record, config_key, unpack_state

torch = pytest.importorskip("torch")


def test_put_get_and_no_duplicates(tmp_path):
    st = Store(tmp_path / "a" / "s.sqlite")
    assert st.put("size", {"M": 1, "x": [1, 2]}, {"ratio": 0.5}, {"params": b"\x00\x01"})
    assert not st.put("size", {"x": [1, 2], "M": 1}, {"ratio": 0.9})  # same config, other key order
    assert st.get("size", {"M": 1, "x": [1, 2]}) == {"ratio": 0.5}
    assert st.blob("size", {"M": 1, "x": [1, 2]}, "params") == b"\x00\x01"
    assert st.count() == 1 and st.count("size") == 1 and st.count("other") == 0
    assert st.records("size") == [({"M": 1, "x": [1, 2]}, {"ratio": 0.5})]
    st.close()
    again = Store(tmp_path / "a" / "s.sqlite", create=False)
    assert again.get("size", {"M": 1, "x": [1, 2]}) == {"ratio": 0.5}


def test_key_depends_on_kind_and_config():
    assert config_key("a", {"x": 1}) != config_key("b", {"x": 1})
    assert config_key("a", {"x": 1, "y": 2}) == config_key("a", {"y": 2, "x": 1})
    assert config_key("a", {"x": 1}) != config_key("a", {"x": 1.5})


def test_checkpoints_round_trip(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    state = {"step": 3, "t": torch.arange(4), "g": torch.Generator().manual_seed(1).get_state()}
    st.save_checkpoint("k", 3, state)
    back = st.load_checkpoint("k")
    assert back["step"] == 3 and torch.equal(back["t"], state["t"]) and torch.equal(back["g"], state["g"])
    st.drop_checkpoint("k")
    assert st.load_checkpoint("k") is None


def test_foreign_files_are_refused_untouched(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a memcross store"):
        Store(text)
    assert text.read_text() == "hello"
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = other.read_bytes()
    with pytest.raises(ValueError, match="not a memcross store"):
        Store(other)
    assert other.read_bytes() == before
    with pytest.raises(ValueError, match="does not exist"):
        Store(tmp_path / "missing.sqlite", create=False)


# -- a store is untrusted input --------------------------------------------------------------------
TINY_VALIDATE = ["validate", "--dim", "4", "--components", "2", "--train", "8", "--sizes", "4,8", "--steps", "20",
                 "--draws", "1", "--n-eval", "10", "--exact-draws", "1", "--device", "cpu", "--preset", "quick",
                 "--no-progress", "--no-figure"]


class _Planted:
    """Unpickling this creates ``marker``: what a planted checkpoint could run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def checkpoint_key(tmp_path_factory):
    """The checkpoint key of TINY_VALIDATE's training, as the command itself asks for it."""
    from memcross.cli import main

    seen = []

    class Seen(Exception):
        pass

    def record(self, key):
        seen.append(key)
        raise Seen

    store = tmp_path_factory.mktemp("key") / "s.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Store, "load_checkpoint", record)
        with pytest.raises(Seen):
            main([*TINY_VALIDATE, "--store", str(store)])
    return seen[0]


def _plant(path, key, data):
    Store(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO checkpoints VALUES (?, 5, ?, 0)", (key, data))
    db.close()


@pytest.mark.parametrize("wrap", ["pickle", "torch.save"])
def test_planted_pickle_checkpoint_is_refused_and_never_run(tmp_path, capsys, checkpoint_key, wrap):
    from memcross.cli import main

    marker, path = tmp_path / "marker", tmp_path / "s.sqlite"
    if wrap == "pickle":
        payload = pickle.dumps(_Planted(str(marker)))
    else:
        buf = io.BytesIO()
        torch.save(_Planted(str(marker)), buf)
        payload = buf.getvalue()
    assert not marker.exists()
    _plant(path, checkpoint_key, payload)
    capsys.readouterr()
    assert main([*TINY_VALIDATE, "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert err.count("\n") == 1 and err.startswith("memcross: error: store ")
    assert "training checkpoint" in err and "not a plain tensor checkpoint" in err and "refused" in err


def test_checkpoint_that_does_not_fit_the_run_is_refused(tmp_path, capsys, checkpoint_key):
    from memcross.cli import main

    path = tmp_path / "s.sqlite"
    Store(path).save_checkpoint(checkpoint_key, 5, {"step": 5, "params": [torch.zeros(3)]})
    capsys.readouterr()
    assert main([*TINY_VALIDATE, "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training checkpoint of sizes [4, 8] does not fit this run" in err


def test_checkpoint_resume_through_the_store_is_exact(tmp_path):
    from memcross.theory import Setting
    from memcross.validation.data import make_gmm_data
    from memcross.validation.process import Process
    from memcross.validation.train import TrainConfig, Trainer

    data = make_gmm_data(4, 2, 8, seed=0)
    proc = Process(Setting(d=4, K=2, N=8))
    cfg = TrainConfig(steps=30, draws=2, seed=3, update_ema=0.9)
    whole = Trainer(data, proc, [2, 8], cfg)
    whole.run()
    half = Trainer(data, proc, [2, 8], cfg)
    half.run(until=13)
    st = Store(tmp_path / "s.sqlite")
    st.save_checkpoint("k", half.step, half.state_dict())
    resumed = Trainer(data, proc, [2, 8], cfg)
    resumed.load_state_dict(st.load_checkpoint("k"))
    resumed.run()
    assert all(torch.equal(a, b) for a, b in zip(resumed.family.parameters(), whole.family.parameters()))
    assert resumed.history.loss == whole.history.loss and resumed.history.variance == whole.history.variance


def test_blobs_are_plain_arrays_only(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("params.npy", buf.getvalue())
    ok = io.BytesIO()
    np.savez(ok, means=np.ones((2, 3)))
    st.put("params", {"M": 1}, {}, {"params": ok.getvalue()})
    assert st.arrays("params", {"M": 1}, "params")["means"].shape == (2, 3)
    for i, data in enumerate([zipped.getvalue(), pickle.dumps({"means": 1}), b"\x00" * 10]):
        st.put("params", {"M": 2 + i}, {}, {"params": data})
        with pytest.raises(StoreError, match="params blob 'params' is not a plain array archive"):
            st.arrays("params", {"M": 2 + i}, "params")
    with pytest.raises(StoreError, match="not a plain tensor checkpoint"):
        unpack_state(ok.getvalue(), "checkpoint")


def test_source_has_no_unpickling_loads():
    import memcross

    root = Path(memcross.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        for bad in ("weights_only=False", "allow_pickle=True", "pickle.load"):
            assert bad not in text, f"{path.relative_to(root)} contains {bad}"


# -- damaged, foreign, unwritable stores ----------------------------------------------------------
def _full_store(path, rows=300):
    st = Store(path)
    for i in range(rows):
        st.put("size", {"M": i}, {"ratio": i / rows, "history": list(range(50))})
    st.close()
    return path


def _refused_untouched(path, match, **kw):
    before = path.read_bytes()
    with pytest.raises(StoreError, match=match):
        Store(path, **kw)
    assert path.read_bytes() == before


def test_random_bytes_and_foreign_formats_are_refused(tmp_path):
    noise = tmp_path / "noise.sqlite"
    noise.write_bytes(np.random.default_rng(0).bytes(8192))
    _refused_untouched(noise, r"is not a memcross store \(not an SQLite file\)")
    _refused_untouched(noise, "not an SQLite file", create=False)
    fake = tmp_path / "fake.sqlite"
    fake.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(1).bytes(8192))
    _refused_untouched(fake, "damaged|not a memcross store")
    for key, value, match in (
            ("format", "somebody-else", r"not a memcross store \(its meta table says format 'somebody-else'\)"),
            ("version", "2", r"is a memcross store of version '2'; this memcross reads version '1' only")):
        other = _full_store(tmp_path / f"{key}.sqlite", rows=2)
        db = sqlite3.connect(other)
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        db.close()
        _refused_untouched(other, match)


def test_damaged_store_is_refused_and_not_written(tmp_path, capsys):
    from memcross.cli import main

    path = _full_store(tmp_path / "s.sqlite")  # 300 commits: built once, copied for the truncation below
    pristine = path.read_bytes()
    data = bytearray(pristine)
    page = 4096
    rng = np.random.default_rng(0)
    for p in range(len(data) // page // 3, 2 * len(data) // page // 3):  # the middle third of the pages
        data[p * page + 100:p * page + 300] = rng.bytes(200)
    path.write_bytes(bytes(data))
    _refused_untouched(path, "is damaged")
    _refused_untouched(path, "is damaged", create=False)
    before = path.read_bytes()
    assert main(["exact", "--dim", "4", "--components", "2", "--train", "8", "--draws", "1", "--store",
                 str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is damaged" in err and path.read_bytes() == before
    truncated = tmp_path / "t.sqlite"
    truncated.write_bytes(pristine[: len(pristine) // 2])
    _refused_untouched(truncated, "is damaged")


def test_folder_as_store_and_paths_through_a_file(tmp_path):
    with pytest.raises(StoreError, match="is a folder; give --store a file"):
        Store(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(StoreError, match="'.*notes.txt' is not a folder"):
        Store(notes / "s.sqlite")
    assert notes.read_text() == "hello"


def test_only_the_store_folder_is_created(tmp_path, monkeypatch, capsys):
    from memcross.cli import main
    from memcross.store import default_store_path

    Store(tmp_path / "one" / "s.sqlite").close()
    assert (tmp_path / "one" / "s.sqlite").is_file()
    deep = tmp_path / "a" / "b" / "s.sqlite"
    with pytest.raises(StoreError, match=r"folder '.*a' does not exist \(--store creates only"):
        Store(deep)
    assert not (tmp_path / "a").exists()
    assert main(["exact", "--dim", "4", "--components", "2", "--train", "8", "--draws", "1", "--store",
                 str(deep)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--store" in err and f"{str(tmp_path / 'a')!r} does not exist" in err
    assert not (tmp_path / "a").exists()
    monkeypatch.chdir(tmp_path)
    Store(default_store_path()).close()
    assert (tmp_path / "memcross-runs" / "memcross.sqlite").is_file()


def test_read_only_store_is_refused_for_writing_but_read(tmp_path, monkeypatch):
    """SQLite's own read-only error (as a read-only file gives it), simulated so that it also shows as root."""
    path = _full_store(tmp_path / "s.sqlite", rows=2)
    connect = sqlite3.connect

    def read_only(*args, **kw):
        db = connect(*args, **kw)
        db.execute("PRAGMA query_only = ON")
        return db

    monkeypatch.setattr(sqlite3, "connect", read_only)
    _refused_untouched(path, r"cannot write to it \(it is read-only here")
    st = Store(path, create=False)
    assert st.count("size") == 2
    with pytest.raises(StoreError, match="opened read-only"):
        st.put("size", {"M": 9}, {})
    with pytest.raises(StoreError, match="read-only"):
        Store(tmp_path / "new.sqlite")
    assert not (tmp_path / "new.sqlite").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="the superuser ignores permissions")
def test_read_only_file_and_folder(tmp_path):
    path = _full_store(tmp_path / "ro" / "s.sqlite", rows=2)
    path.chmod(0o444)
    try:
        _refused_untouched(path, "is read-only")
        assert Store(path, create=False).count("size") == 2
    finally:
        path.chmod(0o644)
    folder = path.parent
    folder.chmod(0o555)
    try:
        _refused_untouched(path, "is not writable")
        with pytest.raises(StoreError, match="is not writable"):
            Store(folder / "new.sqlite")
        assert not (folder / "new.sqlite").exists()
        with pytest.raises(StoreError, match="cannot create folder"):
            Store(folder / "sub" / "s.sqlite")
    finally:
        folder.chmod(0o755)


# -- stored JSON of the wrong type ---------------------------------------------------------------
def test_records_are_checked_against_their_fields(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.put("size", {"M": 1}, {"M": "one", "ratio": 0.5})
    with pytest.raises(StoreError, match=r"stored size record: field 'M' should be an integer, found 'one' \(str\)"):
        st.get("size", {"M": 1}, {"M": int, "ratio": float})
    with pytest.raises(StoreError, match="field 'x' is missing"):
        st.records("size", schema={"x": float})
    with pytest.raises(StoreError, match=r"field 'a.b\[1\]' should be a number, found True"):
        check_record({"a": {"b": [1.0, True]}}, {"a": {"b": [float]}}, "demo")
    assert check_record({"a": 1}, {"a": int, "b?": str}, "demo") == {"a": 1}  # "?": may be absent
    with pytest.raises(StoreError, match="field 'b' should be a string"):
        check_record({"a": 1, "b": 2}, {"a": int, "b?": str}, "demo")
    db = sqlite3.connect(st.path)
    with db:
        db.execute("UPDATE results SET result = '[1, 2]'")
    db.close()
    with pytest.raises(StoreError, match="stored size record is not a JSON object"):
        st.get("size", {"M": 1})


def test_sweep_and_study_readers_refuse_wrong_types(tmp_path):
    from memcross.studies import Cell, Study, study_rows
    from memcross.theory import Setting
    from memcross.validation.sweep import exact_for

    setting = Setting(d=4, K=2, N=8)
    st = Store(tmp_path / "s.sqlite")
    exact_for(setting, 0, 1, st)
    db = sqlite3.connect(st.path)
    row = json.loads(db.execute("SELECT result FROM results WHERE kind = 'exact'").fetchone()[0])
    for change, match in (({"N": "8"}, "field 'N' should be an integer"),
                          ({"pmem_train": [[1.0, 2.0], [3.0]]}, "exact-loss table does not fit this run"),
                          ({"gen_train": [1.0]}, "exact-loss table does not fit this run")):
        with db:
            db.execute("UPDATE results SET result = ? WHERE kind = 'exact'", (json.dumps({**row, **change}),))
        with pytest.raises(StoreError, match=match):
            exact_for(setting, 0, 1, st)
    older = {k: v for k, v in row.items() if k not in ("theory_gen", "pair_scale")}  # written before those fields
    with db:
        db.execute("UPDATE results SET result = ? WHERE kind = 'exact'", (json.dumps(older),))
    assert exact_for(setting, 0, 1, st).N == 8
    cell = Cell("exact", {"d": 4, "K": 2, "N": 8}, 0, {"draws": 1})
    st.put("cell", cell.config(), {"exact": "high"})
    study = Study("demo", {}, (cell,))
    with pytest.raises(StoreError, match="stored cell record: field 'exact' should be a number"):
        study_rows(study, st)
    db.close()
