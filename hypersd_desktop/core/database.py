"""SQLite connections as every store of the app opens them: pragmas, transactions, migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class Database:
    """One connection (WAL, foreign keys, busy timeout), shared between threads behind a lock.

    `migrations` are SQL scripts applied in order, each in one transaction with `user_version`.
    """

    def __init__(self, path: Path, migrations: Sequence[str], timeout: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.connection = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={int(timeout * 1000)}",
                       "synchronous=NORMAL"):
            self.connection.execute(f"PRAGMA {pragma}")
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
