"""One SQLite writer at a time, queued in the process and across processes, without sleeping.

A module of its own because both the repository and the migrations (which run before any repository
exists) write through it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Engine


class WriteGate:
    """Lets one write transaction at a time at an SQLite file, queueing the others without sleeping.

    SQLite has one writer; a writer that finds the lock taken waits in SQLite's busy handler, which
    sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between tries and leaves the lock idle in between: under
    load the threads and processes of the portal spent more time asleep there than writing. The
    gate queues writers on a re-entrant lock in the process and an `flock` on `<database>-writer`
    across processes, both woken as soon as the holder is done. Read-only sessions do not take it
    (WAL readers never wait for the writer). One gate per database file and process (an `flock`
    taken twice through two descriptors in one process would block itself)."""

    _registry: ClassVar[dict[str, WriteGate]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, lock_file: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644) if lock_file else None

    @classmethod
    def for_engine(cls, engine: Engine) -> WriteGate | None:
        """The gate of an SQLite file (shared by every repository of this process on it); None for
        other databases (PostgreSQL has row locks and no single writer)."""
        if engine.dialect.name != "sqlite":
            return None
        database = engine.url.database or ""
        key = str(Path(database).resolve()) if database and database != ":memory:" else f":memory:{id(engine)}"
        with cls._registry_lock:
            gate = cls._registry.get(key)
            if gate is None:
                gate = cls(key + "-writer" if not key.startswith(":memory:") else None)
                cls._registry[key] = gate
            return gate

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            outermost = self._depth == 0
            if outermost and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if outermost and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
