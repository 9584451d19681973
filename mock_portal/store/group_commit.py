"""Group commit: writers that come while another one is committing share the next transaction.

Before issue 28 every accepted submission was its own transaction with `synchronous=FULL`: one fsync of the
WAL each (4 ms median on the 2-core VM's disk) behind the write gate. Now a writer queues its rows and, if
no writer of this process is committing, leads: it takes the write gate, then every write queued by then
(its own and those of writers that came meanwhile, at most `MAX_BATCH`), writes them in one transaction and
commits once; the writers it took wait for that commit (followers), and one of those left queued leads the
next batch. Nothing waits on purpose for more writes to come: a lone writer commits at once, on its own
thread — no hand-off to a committer thread, whose wake-ups and fight for the GIL, measured, cost more than
the fsyncs saved (issue 28's report). Writers on the event loop (SQLite's inline submissions) lead alone:
the loop serves one at a time anyway; the ones that share a commit are the threads' (PostgreSQL's
submissions, SQLite's heavy ones).

A write waits at most for the gate and the batch committed ahead of it; what one write does to the others
is bounded by its batch: a write whose rows fail is the writer's to isolate (`Repository._write_submissions`
writes the batch again one write per transaction), a failed commit fails every write of its batch, and no
write is ever given a result before the commit that covers it returned.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

Item = TypeVar("Item")
Done = TypeVar("Done")

MAX_BATCH = 64
"""Writes one transaction takes at most, so that a flood of queued writes is committed in bounded steps: the
gate is released between them (to other processes' writers, a reset's chunks, the IPSS sharing worker)."""


class GroupCommit(Generic[Item, Done]):
    """The writes of a process's writers, committed a batch at a time by one of them.

    `write(batch)` runs with `hold()` taken (the SQLite write gate) and gives one result per write, or the
    exception that failed it alone; if it raises, every write of the batch fails with that exception."""

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Sequence[Done | Exception]],
        hold: Callable[[], AbstractContextManager[object]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._write = write
        self._hold = hold
        self._max_batch = max_batch
        self._queue: deque[tuple[Item, Future[Done]]] = deque()
        self._turn = threading.Condition()
        self._leading = False

    def commit(self, item: Item) -> Done:
        """Write `item` and return once the commit that covers it is done (raise if it failed): in a batch
        this caller commits (no one else was committing) or in one another caller commits for it."""
        mine: Future[Done] = Future()
        with self._turn:
            self._queue.append((item, mine))
        while True:
            with self._turn:
                while self._leading and not mine.done():
                    self._turn.wait()
                if mine.done():
                    return mine.result()
                self._leading = True
            try:
                self._lead()
            finally:
                with self._turn:
                    self._leading = False
                    self._turn.notify_all()

    def _lead(self) -> None:
        batch: list[tuple[Item, Future[Done]]] = []
        try:
            with self._hold():
                batch = self._take()
                results = self._write([item for item, _ in batch])
        except BaseException as exc:  # the gate or the commit failed: no write of the batch is acknowledged
            for _, future in batch or self._take():
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _take(self) -> list[tuple[Item, Future[Done]]]:
        """The writes queued now, at most `max_batch`, oldest first."""
        with self._turn:
            return [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
