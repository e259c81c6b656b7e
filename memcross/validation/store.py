"""The study store: one SQLite file, every finished unit of work written as soon as it exists.

A unit (an exact-loss table, a trained size's parameters, its metrics, a sweep's summary) is keyed
by the SHA-256 of its full configuration as canonical JSON, so re-running a command finds what is
done and skips it; the primary key makes a second copy impossible. Each write is one committed
transaction, so killing a process at any point loses at most the unit in progress. Long training
also leaves checkpoints (parameters, optimizer state, RNG state) that a re-run resumes from.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from pathlib import Path

FORMAT = "memcross-store"
VERSION = "1"
DEFAULT_DIR = "memcross-runs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, step INTEGER NOT NULL, data BLOB NOT NULL,
    updated REAL NOT NULL);
"""


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


class Store:
    """A memcross study store at ``path`` (created with its folder if missing).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "s.sqlite")
    >>> st = Store(path)
    >>> st.put("demo", {"a": 1}, {"x": 2.0}), st.get("demo", {"a": 1}), st.count("demo")
    (True, {'x': 2.0}, 1)
    >>> st.put("demo", {"a": 1}, {"x": 3.0})  # already there: nothing is written
    False
    """

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        exists = self.path.exists()
        if exists and not self.path.is_file():
            raise ValueError(f"store {str(self.path)!r} is not a file")
        if not exists and not create:
            raise ValueError(f"store {str(self.path)!r} does not exist")
        if exists:
            self._check_format()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        if not exists:
            with self.db:
                self.db.executescript(_SCHEMA)
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", FORMAT), ("version", VERSION)])

    def _check_format(self) -> None:
        """Refuse (without writing) a file that is not a memcross store of a known version."""
        what = f"store {str(self.path)!r} is not a memcross store"
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            finally:
                db.close()
        except sqlite3.DatabaseError:
            raise ValueError(what + " (not an SQLite file with a memcross meta table); choose another --store") from None
        if rows.get("format") != FORMAT:
            raise ValueError(what + f" (format {rows.get('format')!r}); choose another --store")
        if rows.get("version") != VERSION:
            raise ValueError(f"store {str(self.path)!r} has version {rows.get('version')!r}; this memcross reads "
                             f"version {VERSION}")

    def close(self) -> None:
        self.db.close()

    # -- results ------------------------------------------------------------------------------
    def get(self, kind: str, config: dict) -> dict | None:
        row = self.db.execute("SELECT result FROM results WHERE key = ?", (config_key(kind, config),)).fetchone()
        return None if row is None else json.loads(row[0])

    def has(self, kind: str, config: dict) -> bool:
        return self.get(kind, config) is not None

    def put(self, kind: str, config: dict, result: dict, blobs: dict[str, bytes] | None = None) -> bool:
        """Write a result (and its blobs) in one transaction; ``False`` if it was already stored."""
        key = config_key(kind, config)
        with self.db:
            cur = self.db.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?)",
                                  (key, kind, canonical(config), json.dumps(result, default=_plain), time.time()))
            if cur.rowcount and blobs:
                self.db.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?)",
                                    [(key + ":" + name, kind, data) for name, data in blobs.items()])
        return bool(cur.rowcount)

    def replace(self, kind: str, config: dict, result: dict | None) -> None:
        """Write (or, with ``None``, delete) a record that may change, such as a cell's failure."""
        key = config_key(kind, config)
        with self.db:
            if result is None:
                self.db.execute("DELETE FROM results WHERE key = ?", (key,))
            else:
                self.db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                                (key, kind, canonical(config), json.dumps(result, default=_plain), time.time()))

    def meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, name: str, value: str) -> None:
        if name in ("format", "version"):
            raise ValueError(f"meta key {name!r} is reserved")
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def records(self, kind: str | None = None) -> list[tuple[dict, dict]]:
        """All ``(config, result)`` pairs (of one kind), oldest first."""
        sql = "SELECT config, result FROM results" + (" WHERE kind = ?" if kind else "") + " ORDER BY created, key"
        rows = self.db.execute(sql, (kind,) if kind else ()).fetchall()
        return [(json.loads(c), json.loads(r)) for c, r in rows]

    def count(self, kind: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM results" + (" WHERE kind = ?" if kind else "")
        return self.db.execute(sql, (kind,) if kind else ()).fetchone()[0]

    def blob(self, kind: str, config: dict, name: str) -> bytes | None:
        row = self.db.execute("SELECT data FROM blobs WHERE key = ?", (config_key(kind, config) + ":" + name,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, key: str, step: int, state) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)",
                            (key, int(step), buf.getvalue(), time.time()))

    def load_checkpoint(self, key: str):
        import torch

        row = self.db.execute("SELECT data FROM checkpoints WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return torch.load(io.BytesIO(bytes(row[0])), weights_only=False)

    def drop_checkpoint(self, key: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM checkpoints WHERE key = ?", (key,))


def default_store_path() -> Path:
    """``./memcross-runs/memcross.sqlite``."""
    return Path(DEFAULT_DIR) / "memcross.sqlite"
