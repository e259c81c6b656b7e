"""The study store: one SQLite file, every finished unit of work written as soon as it exists.

A unit (an exact-loss table, a trained size's parameters, its metrics, a sweep's summary) is keyed
by the SHA-256 of its full configuration as canonical JSON, so re-running a command finds what is
done and skips it; the primary key makes a second copy impossible. Each write is one committed
transaction, so killing a process at any point loses at most the unit in progress. Long training
also leaves checkpoints (parameters, optimizer state, RNG state) that a re-run resumes from.

A store is untrusted input: its keys are predictable, so anyone who can write the file can plant
content under the key of a known command. Nothing read back is unpickled: blobs and checkpoints are
uncompressed ``.npz`` archives of plain numeric arrays read with ``allow_pickle=False`` (a
checkpoint's nesting of dicts, lists and numbers is JSON inside the archive), and JSON records are
checked against the fields their reader needs (:func:`check_record`). A damaged, foreign or
unwritable store, or content memcross did not write, is refused with one :class:`StoreError` line
that names the store, and nothing is written into it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import stat
import time
import zipfile
from pathlib import Path

from memcross._checks import check_record as _check_record

FORMAT = "memcross-store"
VERSION = "1"
DEFAULT_DIR = "memcross-runs"
CHECKPOINT_FORMAT = "memcross-checkpoint"
CHECKPOINT_VERSION = 1

_SQLITE_HEADER = b"SQLite format 3\x00"
_TABLES = {
    "meta": ["key", "value"],
    "results": ["key", "kind", "config", "result", "created"],
    "blobs": ["key", "kind", "data"],
    "checkpoints": ["key", "step", "data", "updated"],
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, step INTEGER NOT NULL, data BLOB NOT NULL,
    updated REAL NOT NULL);
"""
_DROP_CHECKPOINTS = "delete the store's checkpoints (that training restarts from step 0) or choose another --store"


class StoreError(ValueError):
    """A store that cannot be used as asked (damaged, foreign, unwritable, or holding content that
    memcross did not write): one line naming the store and what is wrong."""


def canonical(config: dict) -> str:
    """Canonical JSON of a configuration (sorted keys, no whitespace)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a configuration")


def config_key(kind: str, config: dict) -> str:
    """SHA-256 of ``kind`` and the canonical configuration."""
    return hashlib.sha256((kind + "\n" + canonical(config)).encode()).hexdigest()


# -- checking what is read back ----------------------------------------------------------------
def check_record(value, schema: dict, what: str) -> dict:
    """``value`` if it is a JSON object with the fields of ``schema`` (see
    :func:`memcross._checks.check_record`); otherwise :class:`StoreError` naming ``what`` and the
    first wrong field.

    >>> check_record({"M": 4, "ratio": None}, {"M": int, "ratio": (float, None)}, "size record")
    {'M': 4, 'ratio': None}
    >>> check_record({"M": "4"}, {"M": int}, "size record")
    Traceback (most recent call last):
    ...
    memcross.store.StoreError: size record: field 'M' should be an integer, found '4' (str)
    """
    return _check_record(value, schema, what, StoreError)


class _NotPlain(Exception):
    """Why some bytes are not a plain array archive."""


def _plain_arrays(data) -> dict:
    import numpy as np

    if not isinstance(data, bytes):
        raise _NotPlain(f"{type(data).__name__}, not binary data")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy") or info.compress_type != zipfile.ZIP_STORED:
                    raise _NotPlain(f"member {info.filename!r} is not an uncompressed array")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except _NotPlain:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted bytes is a refusal
        raise _NotPlain(f"{type(exc).__name__}: {exc}") from None
    for name, arr in arrays.items():
        if arr.dtype.kind not in "biufc" or not arr.dtype.isnative:
            raise _NotPlain(f"array {name!r} has dtype {arr.dtype}, not plain numbers")
    return arrays


def read_arrays(data, what: str) -> dict:
    """The arrays of an uncompressed ``.npz`` archive, refusing anything else (pickles, object or
    structured arrays, compressed members) with a :class:`StoreError` naming ``what``."""
    try:
        return _plain_arrays(data)
    except _NotPlain as exc:
        raise StoreError(f"{what} is not a plain array archive ({exc}); refused") from None


def pack_state(state) -> bytes:
    """A checkpoint (nested dicts with string keys, lists, tuples, numbers, strings, ``None``,
    tensors and arrays) as an uncompressed ``.npz``: the arrays, and the nesting as JSON.

    >>> import torch
    >>> back = unpack_state(pack_state({"step": 3, "t": [torch.arange(3.0)], "ema": None}), "demo")
    >>> back["step"], back["t"][0].tolist(), back["ema"]
    (3, [0.0, 1.0, 2.0], None)
    """
    import numpy as np

    arrays = []

    def encode(value):
        if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
            arrays.append(value.detach().cpu().numpy())
            return {"tensor": len(arrays) - 1}
        if isinstance(value, np.ndarray):
            arrays.append(value)
            return {"array": len(arrays) - 1}
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError("checkpoint dicts need string keys")
            return {"dict": {k: encode(v) for k, v in value.items()}}
        if isinstance(value, (list, tuple)):
            return {"list": [encode(v) for v in value]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return {"value": value}
        raise TypeError(f"cannot checkpoint a value of type {type(value).__name__}")

    layout = json.dumps({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state": encode(state)})
    buf = io.BytesIO()
    np.savez(buf, layout=np.frombuffer(layout.encode(), dtype=np.uint8),
             **{f"a{i}": a for i, a in enumerate(arrays)})
    return buf.getvalue()


def unpack_state(data, what: str):
    """The checkpoint of :func:`pack_state`; :class:`StoreError` naming ``what`` for anything else."""
    refused = f"{what} is not a plain tensor checkpoint"
    try:
        arrays = _plain_arrays(data)
    except _NotPlain as exc:
        raise StoreError(f"{refused} ({exc}; refused)") from None
    layout = arrays.pop("layout", None)
    if layout is None or layout.dtype.name != "uint8" or layout.ndim != 1:
        raise StoreError(f"{refused} (no layout; refused)")
    try:
        doc = json.loads(layout.tobytes().decode())
    except ValueError:
        raise StoreError(f"{refused} (its layout is not JSON; refused)") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT or doc.get("version") != CHECKPOINT_VERSION:
        raise StoreError(f"{refused} (layout of another format; refused)")
    used = set()

    def decode(node, depth):
        if depth > 32 or not isinstance(node, dict) or len(node) != 1:
            raise StoreError(f"{refused} (malformed layout; refused)")
        (tag, value), = node.items()
        if tag in ("tensor", "array"):
            name = f"a{value}" if isinstance(value, int) and not isinstance(value, bool) else None
            if name not in arrays:
                raise StoreError(f"{refused} (layout names a missing array; refused)")
            used.add(name)
            if tag == "array":
                return arrays[name]
            import torch

            try:
                return torch.from_numpy(arrays[name].copy())
            except TypeError as exc:
                raise StoreError(f"{refused} ({exc}; refused)") from None
        if tag == "dict" and isinstance(value, dict):
            return {k: decode(v, depth + 1) for k, v in value.items()}
        if tag == "list" and isinstance(value, list):
            return [decode(v, depth + 1) for v in value]
        if tag == "value" and (value is None or isinstance(value, (bool, int, float, str))):
            return value
        raise StoreError(f"{refused} (malformed layout; refused)")

    state = decode(doc.get("state"), 0)
    if used != set(arrays):
        raise StoreError(f"{refused} (arrays outside its layout; refused)")
    return state


# -- the store -----------------------------------------------------------------------------------
class Store:
    """A memcross study store at ``path``.

    A missing file is created (``create=True``) together with its own folder, but not with a
    missing folder above that. An existing file is checked before anything else happens: SQLite
    header, ``PRAGMA quick_check``, the ``meta`` table's format and version, the tables; a store
    opened for writing (default: unless ``create=False``) must also accept a write, tried in a
    transaction that is rolled back. Whatever fails is a :class:`StoreError`, and nothing is
    written to the file.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "s.sqlite")
    >>> st = Store(path)
    >>> st.put("demo", {"a": 1}, {"x": 2.0}), st.get("demo", {"a": 1}), st.count("demo")
    (True, {'x': 2.0}, 1)
    >>> st.put("demo", {"a": 1}, {"x": 3.0})  # already there: nothing is written
    False
    """

    def __init__(self, path: str | Path, create: bool = True, readonly: bool | None = None):
        self.path = Path(path)
        self.readonly = (not create) if readonly is None else bool(readonly)
        self.db = None
        self._broken: str | None = None
        name = self._name = f"store {str(self.path)!r}"
        info = self._stat(self.path)
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise StoreError(f"{name} is a folder; give --store a file, such as {str(self.path / 'memcross.sqlite')!r}")
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise StoreError(f"{name} is not a regular file; choose another --store")
        if info is None and not create:
            raise StoreError(f"{name} does not exist")
        fresh = info is None or info.st_size == 0
        if fresh and self.readonly:
            raise StoreError(f"{name} is not a memcross store (an empty file); choose another --store")
        made = self._make_folder() if info is None else None
        if not fresh:
            self._check_header()
        try:
            if not self.readonly:
                self._check_access()
            with self._guard("open"):
                self.db = sqlite3.connect(str(self.path), timeout=60)
                if fresh:
                    self.db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + f"INSERT INTO meta VALUES ('format', "
                                          f"'{FORMAT}'), ('version', '{VERSION}'); COMMIT;")
                else:
                    self._check_integrity()
                    self._check_format()
                if not self.readonly:
                    self._check_writable()
        except BaseException:
            if self.db is not None:
                self.db.close()
            if info is None:  # remove only what this call created
                for leftover in (self.path, Path(str(self.path) + "-journal")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
                if made is not None:
                    with contextlib.suppress(OSError):
                        made.rmdir()
            raise

    # -- opening checks -------------------------------------------------------------------------
    def _stat(self, path: Path):
        try:
            return path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(f"{self._name} cannot be reached ({exc.strerror or exc}); choose another --store") from None

    def _make_folder(self) -> Path | None:
        """Create the store's own folder when it is missing (not a missing folder above it)."""
        parent = self.path.parent
        info = self._stat(parent)
        if info is not None:
            if not stat.S_ISDIR(info.st_mode):
                raise StoreError(f"{self._name}: {str(parent)!r} is not a folder; choose another --store")
            return None
        above = parent.parent
        info = self._stat(above)
        if info is None or not stat.S_ISDIR(info.st_mode):
            raise StoreError(f"{self._name}: folder {str(above)!r} does not exist (--store creates only the store's "
                             f"own folder, {str(parent)!r}); create it first or choose another --store")
        try:
            parent.mkdir()
        except OSError as exc:
            raise StoreError(f"{self._name}: cannot create folder {str(parent)!r} ({exc.strerror or exc}); "
                             "choose another --store") from None
        return parent

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise StoreError(f"{self._name} cannot be read ({exc.strerror or exc}); choose another --store") from None
        if head != _SQLITE_HEADER:
            raise StoreError(f"{self._name} is not a memcross store (not an SQLite file); it was left untouched; "
                             "choose another --store")

    def _check_access(self) -> None:
        """Permissions, where they mean something (the superuser passes; :meth:`_check_writable` decides)."""
        folder = self.path.parent
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreError(f"{self._name} is read-only (the file is not writable); make it writable or choose "
                             "another --store")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreError(f"{self._name} cannot be written: its folder {str(folder)!r} is not writable (SQLite "
                             "keeps a journal next to the store); choose another --store")

    def _check_integrity(self) -> None:
        try:
            rows = [str(r[0]) for r in self.db.execute("PRAGMA quick_check(1)").fetchall()]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            first = " ".join(" ".join(rows).replace("*** in database main ***", "").split())
            raise StoreError(f"{self._name} is damaged (SQLite quick_check: {first[:200]}); nothing was written to "
                             "it; restore a copy or choose another --store")

    def _check_format(self) -> None:
        """Refuse (without writing) a file that is not a memcross store of this version."""
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        what = f"{self._name} is not a memcross store"
        if "meta" not in tables or self._columns("meta") != _TABLES["meta"]:
            raise StoreError(what + " (an SQLite file without a memcross meta table); it was left untouched; "
                             "choose another --store")
        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('format', 'version')").fetchall())
        if rows.get("format") != FORMAT:
            raise StoreError(what + f" (its meta table says format {rows.get('format')!r}); it was left untouched; "
                             "choose another --store")
        if rows.get("version") != VERSION:
            raise StoreError(f"{self._name} is a memcross store of version {rows.get('version')!r}; this memcross reads "
                             f"version {VERSION!r} only; use the memcross that wrote it, or choose another --store")
        for table, columns in _TABLES.items():
            if table not in tables or self._columns(table) != columns:
                raise StoreError(f"{self._name} is a memcross store with a changed table {table!r}; it was left "
                                 "untouched; choose another --store")

    def _columns(self, table: str) -> list[str]:
        return [r[1] for r in self.db.execute(f"PRAGMA table_info({table})").fetchall()]

    def _check_writable(self) -> None:
        """Try a write in a transaction and roll it back: a read-only file or folder fails here."""
        with self._guard("write to it"):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('write-check', '1')")
            finally:
                self.db.execute("ROLLBACK")

    @contextlib.contextmanager
    def _guard(self, doing: str, write: bool = False):
        """Turn SQLite errors into one-line :class:`StoreError`; refuse writes into a damaged store."""
        if self._broken:
            raise StoreError(self._broken)
        if write and self.readonly:
            raise StoreError(f"{self._name} was opened read-only; cannot {doing}")
        try:
            if write:
                with self.db:
                    yield
            else:
                yield
        except sqlite3.Error as exc:
            text = str(exc)
            low = f"{text} {getattr(exc, 'sqlite_errorname', '')}".lower()
            if "readonly" in low or "read-only" in low:
                why, hint = "it is read-only here: the file or its folder is not writable", "make it writable"
            elif "malformed" in low or "not a database" in low or "corrupt" in low:
                why, hint = f"it is damaged: {text}", "restore a copy"
            elif "locked" in low or "busy" in low:
                why, hint = "another process holds it locked", "wait for that process"
            else:
                why, hint = text, "check the file"
            message = f"{self._name}: cannot {doing} ({why}); {hint} or choose another --store"
            if "damaged" in why:
                self._broken = message + "; nothing more is written to it"
            raise StoreError(message) from None

    def _json(self, text, what: str) -> dict:
        if not isinstance(text, str):
            raise StoreError(f"{self._name}: {what} is not JSON text ({type(text).__name__}); refused")
        try:
            value = json.loads(text)
        except ValueError:
            raise StoreError(f"{self._name}: {what} is not valid JSON; refused") from None
        if not isinstance(value, dict):
            raise StoreError(f"{self._name}: {what} is not a JSON object ({type(value).__name__}); refused")
        return value

    def close(self) -> None:
        """Close the database connection, if open."""
        if self.db is not None:
            self.db.close()

    # -- results ------------------------------------------------------------------------------
    def get(self, kind: str, config: dict, schema: dict | None = None) -> dict | None:
        """The stored result of ``kind`` for ``config`` (None if there is none), checked against
        ``schema`` (see :func:`check_record`) when given."""
        with self._guard(f"read a {kind} record"):
            row = self.db.execute("SELECT result FROM results WHERE key = ?", (config_key(kind, config),)).fetchone()
        if row is None:
            return None
        result = self._json(row[0], f"the stored {kind} record")
        return result if schema is None else check_record(result, schema, f"{self._name}: the stored {kind} record")

    def get_record(self, kind: str, config: dict, read):
        """The stored result of ``kind`` for ``config`` as ``read(result, what)`` makes it (a
        record's ``from_dict``), or None if there is none. What ``read`` refuses is a
        :class:`StoreError` that names the store."""
        result = self.get(kind, config)
        if result is None:
            return None
        try:
            return read(result, f"{self._name}: the stored {kind} record")
        except ValueError as exc:
            raise StoreError(str(exc)) from None

    def has(self, kind: str, config: dict) -> bool:
        """Whether a result of ``kind`` is stored for ``config``."""
        return self.get(kind, config) is not None

    def put(self, kind: str, config: dict, result: dict, blobs: dict[str, bytes] | None = None) -> bool:
        """Write a result (and its blobs) in one transaction; ``False`` if it was already stored."""
        key = config_key(kind, config)
        with self._guard(f"write a {kind} record", write=True):
            cur = self.db.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?)",
                                  (key, kind, canonical(config), json.dumps(result, default=_plain), time.time()))
            if cur.rowcount and blobs:
                self.db.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?)",
                                    [(key + ":" + name, kind, data) for name, data in blobs.items()])
        return bool(cur.rowcount)

    def replace(self, kind: str, config: dict, result: dict | None) -> None:
        """Write (or, with ``None``, delete) a record that may change, such as a cell's failure."""
        key = config_key(kind, config)
        with self._guard(f"write a {kind} record", write=True):
            if result is None:
                self.db.execute("DELETE FROM results WHERE key = ?", (key,))
            else:
                self.db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                                (key, kind, canonical(config), json.dumps(result, default=_plain), time.time()))

    def meta(self, name: str) -> str | None:
        """The text stored under ``name`` in the meta table, or None; :class:`StoreError` if it is not text."""
        with self._guard("read its meta table"):
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        if row is not None and not isinstance(row[0], str):
            raise StoreError(f"{self._name}: meta value {name!r} is not text; refused")
        return None if row is None else row[0]

    def meta_record(self, name: str, schema: dict) -> dict | None:
        """A JSON object kept in the meta table, checked against ``schema``; None if absent."""
        text = self.meta(name)
        if text is None:
            return None
        return check_record(self._json(text, f"meta value {name!r}"), schema, f"{self._name}: meta value {name!r}")

    def set_meta(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` in the meta table, replacing an older one; the keys ``format`` and ``version``
        are reserved (ValueError)."""
        if name in ("format", "version"):
            raise ValueError(f"meta key {name!r} is reserved")
        with self._guard("write its meta table", write=True):
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def records(self, kind: str | None = None, schema: dict | None = None,
                config_schema: dict | None = None) -> list[tuple[dict, dict]]:
        """All ``(config, result)`` pairs (of one kind), oldest first, each checked against
        ``config_schema`` and ``schema`` when given."""
        sql = "SELECT kind, config, result FROM results" + (" WHERE kind = ?" if kind else "") + " ORDER BY created, key"
        with self._guard("read its records"):
            rows = self.db.execute(sql, (kind,) if kind else ()).fetchall()
        out = []
        for k, c, r in rows:
            config, result = self._json(c, f"a stored {k} configuration"), self._json(r, f"a stored {k} record")
            if config_schema is not None:
                check_record(config, config_schema, f"{self._name}: a stored {k} configuration")
            if schema is not None:
                check_record(result, schema, f"{self._name}: a stored {k} record")
            out.append((config, result))
        return out

    def count(self, kind: str | None = None) -> int:
        """The number of stored results, only those of ``kind`` when given."""
        sql = "SELECT COUNT(*) FROM results" + (" WHERE kind = ?" if kind else "")
        with self._guard("count its records"):
            return self.db.execute(sql, (kind,) if kind else ()).fetchone()[0]

    def blob(self, kind: str, config: dict, name: str) -> bytes | None:
        """The binary blob ``name`` kept with the ``kind`` result for ``config``, or None; :class:`StoreError` if it is
        not bytes."""
        with self._guard(f"read a {kind} blob"):
            row = self.db.execute("SELECT data FROM blobs WHERE key = ?",
                                  (config_key(kind, config) + ":" + name,)).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise StoreError(f"{self._name}: the {kind} blob {name!r} is not binary data; refused")
        return row[0]

    def arrays(self, kind: str, config: dict, name: str) -> dict | None:
        """The arrays of an ``.npz`` blob (see :func:`read_arrays`), or None if there is none."""
        data = self.blob(kind, config, name)
        return None if data is None else read_arrays(data, f"{self._name}: the {kind} blob {name!r}")

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, key: str, step: int, state) -> None:
        """Keep ``state`` (see :func:`pack_state`) under ``key``, replacing an older one."""
        data = pack_state(state)
        with self._guard("write a checkpoint", write=True):
            self.db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)",
                            (key, int(step), data, time.time()))

    def load_checkpoint(self, key: str):
        """The state saved under ``key``, or None; :class:`StoreError` for anything but a checkpoint
        of :meth:`save_checkpoint` (nothing in it is unpickled)."""
        with self._guard("read a checkpoint"):
            row = self.db.execute("SELECT data FROM checkpoints WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return unpack_state(row[0], f"{self._name}: the training checkpoint {key[:12]}")
        except StoreError as exc:
            raise StoreError(f"{exc}; {_DROP_CHECKPOINTS}") from None

    def drop_checkpoint(self, key: str) -> None:
        """Delete the checkpoint under ``key`` (nothing happens if there is none)."""
        with self._guard("delete a checkpoint", write=True):
            self.db.execute("DELETE FROM checkpoints WHERE key = ?", (key,))


def default_store_path() -> Path:
    """``./memcross-runs/memcross.sqlite``."""
    return Path(DEFAULT_DIR) / "memcross.sqlite"
