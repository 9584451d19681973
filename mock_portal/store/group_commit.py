"""Group commit: the writes a process queues while the write gate is taken share one transaction.

Before issue 28 every accepted submission was its own transaction with `synchronous=FULL`: one fsync of the
WAL each (4 ms median on the 2-core VM's disk), behind the write gate, with the caller — on SQLite the
worker's event loop — waiting through it. Now a caller queues its write and waits for the commit that covers
it (`GroupCommit.put` gives a future). One committer thread per queue takes the write gate as soon as a write
is queued, then takes every write queued by then, at most `MAX_BATCH`, and writes them in one transaction:
the writes queued while another process held the gate, or while this one's previous commit was syncing,
share one commit. Nothing waits on purpose for more writes to come: a lone write is committed at once.

Besides the gate, a write waits at most for the batch being committed ahead of it; what one write does
to the others is bounded by its batch: a write whose rows fail is the writer's to isolate
(`Repository._write_submissions` writes the batch again one write per transaction), a failed commit fails
every write of its batch, and a future is only ever given a result after the commit that covers its write
returned.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Done = TypeVar("Done")
After = TypeVar("After")

MAX_BATCH = 64
"""Writes one transaction takes at most, so that a flood of queued writes is committed in bounded steps: the
gate is released between them (to other processes' writers, a reset's chunks, the IPSS sharing worker)."""


class GroupCommit(Generic[Item, Done]):
    """A queue of writes and the thread that commits them a batch at a time.

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
        self._queued = threading.Condition()
        self._pid = 0
        """The process the committer thread runs in (a forked child starts its own)."""

    def put(self, item: Item) -> Future[Done]:
        """Queue a write; the future is done when the commit that covers it is (or failed)."""
        future: Future[Done] = Future()
        with self._queued:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._queue.clear()  # a parent's writes, copied by fork: the parent commits them
                threading.Thread(target=self._run, name="group-commit", daemon=True).start()
            self._queue.append((item, future))
            self._queued.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._queued:
                while not self._queue:
                    self._queued.wait()
            batch: list[tuple[Item, Future[Done]]] = []
            try:
                with self._hold():
                    batch = self._take()
                    self._commit(batch)
            except BaseException as exc:  # the write gate failed: so does the batch it was to cover
                log.exception("group commit: the write gate failed")
                for _, future in batch or self._take():
                    if not future.done():
                        future.set_exception(exc)

    def _take(self) -> list[tuple[Item, Future[Done]]]:
        """The writes queued now, at most `max_batch`, oldest first."""
        with self._queued:
            return [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]

    def _commit(self, batch: list[tuple[Item, Future[Done]]]) -> None:
        batch = [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]
        if not batch:  # every caller gave up before its turn: nothing to write
            return
        try:
            results = self._write([item for item, _ in batch])
        except Exception as exc:  # the commit (or the batch as a whole) failed: no write of it is acknowledged
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def then(future: Future[Done], finish: Callable[[Done], After]) -> Future[After]:
    """A future of `finish(result)` once `future` is done (its exception, if it failed)."""
    following: Future[After] = Future()
    following.set_running_or_notify_cancel()

    def done(source: Future[Done]) -> None:
        try:
            following.set_result(finish(source.result()))
        except Exception as exc:
            following.set_exception(exc)

    future.add_done_callback(done)
    return following
