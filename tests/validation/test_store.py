import sqlite3

import pytest
import torch

from memcross.validation.store import Store, config_key


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
