"""SQLite connections as every store of the app opens them: pragmas, transactions, migrations."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def below(folder: str | Path) -> tuple[str, str]:
    """The bounds of the paths below `folder` (not it) as text: `path >= low AND path < high` reads them off a
    path column's index, where LIKE would scan the table."""
    low = str(folder).rstrip("/\\") + os.sep
    return low, low + "\U0010ffff"


class Database:
    """One connection (WAL, foreign keys, busy timeout), shared between threads behind a lock.

    `migrations` are SQL scripts applied in order, each in one transaction with `user_version`; they may call the
    `functions` (SQL name: a Python function of one argument), which every statement of the connection can call.
    """

    def __init__(self, path: Path, migrations: Sequence[str], timeout: float = 30.0,
                 functions: Mapping[str, Callable] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.notice: str | None = None  # set when a damaged file was put aside and a new one started
        self.timeout = timeout
        self.functions = dict(functions or {})
        problem = _damage(path)
        if problem is None:
            try:
                self._open(migrations)
                return
            except sqlite3.DatabaseError as error:  # "file is not a database", "database disk image is malformed"
                self.connection.close()
                problem = str(error)
        kept = _put_aside(path)
        self.notice = (f"The database {path} was damaged ({problem}). It was kept as {kept.name} and a new one was "
                       "started.")
        self._open(migrations)

    def _open(self, migrations: Sequence[str]) -> None:
        self.connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                          check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        for name, function in self.functions.items():
            self.connection.create_function(name, 1, function, deterministic=True)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={int(self.timeout * 1000)}",
                       "synchronous=NORMAL"):
            self.connection.execute(f"PRAGMA {pragma}")
        self.connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the schema pages
        self._migrate(migrations)

    def close(self) -> None:
        with self.lock:
            self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def execute(self, sql: str, args: Sequence = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.connection.execute(sql, args).fetchall()

    def _migrate(self, migrations: Sequence[str]) -> None:
        with self.lock:
            version = self.connection.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(migrations[version:], start=version + 1):
                try:
                    self.connection.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;")
                except BaseException:
                    if self.connection.in_transaction:
                        self.connection.execute("ROLLBACK")
                    raise


_HEADER = b"SQLite format 3\x00"


def _damage(path: Path) -> str | None:
    """Why the file at `path` cannot be a database, judged from its size and header; None if it may be."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None  # absent: a new database is made, as on the first start
    if size == 0:
        return "it is empty: 0 bytes"
    with path.open("rb") as handle:
        if handle.read(16) != _HEADER:
            return "it is not an SQLite database"
    return None


def _put_aside(path: Path) -> Path:
    """Rename a damaged database (with its WAL and shared-memory files) out of the way; never delete it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 2
    while kept.exists():
        kept = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
        number += 1
    for suffix in ("", "-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, kept.with_name(kept.name + suffix))
    return kept
