"""Group commit: writers that come while another one is committing share the next transaction.

Before issue 28 every accepted submission was its own transaction with `synchronous=FULL`: one fsync of the
WAL each behind the write gate (a 4 KB fsync: median 4 ms on the 2-core VM at load 6). Now a writer queues
its rows and, if no writer of this process is committing, leads: it takes the write gate, then every write
queued by then (its own and those of writers that came meanwhile, at most `MAX_BATCH`), writes them in one
transaction and commits once; the writers it took wait for that commit (followers), and the oldest one left
queued leads the next batch. Nothing waits on purpose for more writes to come: a lone writer commits at
once, on its own thread. A committer thread instead (every writer handing its rows over and waiting) cost
more than the fsyncs it saved: in one sitting, bench/ingest.py on SQLite 208-225 accepted/s against
233-239 without it, 0.6-1.0 ms more CPU per submission; with it, a 2 ms wait for more writes did not make the
batches bigger (mean 1.63 → 1.69). Writers on the event loop (SQLite's inline submissions) lead alone: the
loop serves one at a time anyway; the ones that share a commit are the threads' (PostgreSQL's submissions:
42 % of them in a shared commit at 125 accepted/s; SQLite's heavy ones).

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
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Done = TypeVar("Done")

MAX_BATCH = 64
"""Writes one transaction takes at most, so that a flood of queued writes is committed in bounded steps: the
gate is released between them (to other processes' writers, a reset's chunks, the IPSS sharing worker)."""


@dataclass
class _Write(Generic[Item, Done]):
    item: Item
    done: Future[Done] = field(default_factory=Future)
    woken: threading.Event = field(default_factory=threading.Event)
    """Set when the write is committed (or failed), or when its writer is to lead the next batch."""


class GroupCommit(Generic[Item, Done]):
    """The writes of a process's writers, committed a batch at a time by one of them.

    `write(batch)` runs with `hold()` taken (the SQLite write gate) and gives one result per write, or the
    exception that failed it alone; if it raises, every write of the batch fails with that exception. Each
    waiting writer is woken once, when its write is done or it is to lead (no herd of waiters woken at
    every commit)."""

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Sequence[Done | Exception]],
        hold: Callable[[], AbstractContextManager[object]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._write = write
        self._hold = hold
        self._max_batch = max_batch
        self._queue: deque[_Write[Item, Done]] = deque()
        self._lock = threading.Lock()
        self._leading = False

    def commit(self, item: Item) -> Done:
        """Write `item` and return once the commit that covers it is done (raise if it failed): in a batch
        this caller commits (no one else was committing) or in one another caller commits for it."""
        mine: _Write[Item, Done] = _Write(item)
        with self._lock:
            self._queue.append(mine)
            leads = not self._leading
            self._leading = True
        while not mine.done.done():
            if not leads:
                mine.woken.wait()
                mine.woken.clear()
                if mine.done.done():
                    break
            self._lead()
            leads = self._pass_on(mine)
        return mine.done.result()

    def _pass_on(self, mine: _Write[Item, Done]) -> bool:
        """After a batch: wake the oldest writer still queued to lead the next one (or lead it when that is
        this caller's own write); whether this caller leads again."""
        with self._lock:
            if not self._queue:
                self._leading = False
                return False
            following = self._queue[0]
        if following is mine:
            return True
        following.woken.set()
        return False

    def _lead(self) -> None:
        batch: list[_Write[Item, Done]] = []
        try:
            with self._hold():
                batch = self._take()
                results = self._write([write.item for write in batch])
        except BaseException as exc:  # the gate or the commit failed: no write of the batch is acknowledged
            for write in batch or self._take():
                write.done.set_exception(exc)
                write.woken.set()
            if not isinstance(exc, Exception):
                raise
            return
        for write, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                write.done.set_exception(result)
            else:
                write.done.set_result(result)
            write.woken.set()

    def _take(self) -> list[_Write[Item, Done]]:
        """The writes queued now, at most `max_batch`, oldest first."""
        with self._lock:
            return [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
