"""HIAP -> IPSS sharing: the outbox worker. Pure domain over the store; knows nothing of HTTP.

Every accepted document has an outbox row written in the transaction that accepted it. The worker
takes the unshared rows oldest first and shares a batch of them in one transaction (see
`mock_portal.store.ipss.share_entries`), so a document is shared exactly once however many server
processes run a worker on the same database, and a document accepted while no worker ran is shared
by the next one that starts.
"""

from __future__ import annotations

import atexit
import logging
import threading
from datetime import datetime

from mock_portal.control.clock import Clock
from mock_portal.store import Repository
from mock_portal.store import ipss as ipss_store

log = logging.getLogger(__name__)

BATCH = 100
"""Outbox rows looked at per round."""

__all__ = ["BATCH", "SharingWorker", "share_pending"]


def share_pending(repo: Repository, now: datetime, limit: int = BATCH) -> int:
    """Share up to `limit` pending outbox rows, oldest first; returns how many this call shared."""
    pending = [outbox_id for outbox_id, _document_id in ipss_store.pending_entries(repo, limit)]
    shared = ipss_store.share_entries(repo, pending, now)  # one transaction for the whole batch
    if shared is not None:
        return shared
    shared = 0  # a copy existed already (cannot happen while the claims hold): row by row
    for outbox_id in pending:
        if ipss_store.share_entry(repo, outbox_id, now):
            shared += 1
    return shared


class SharingWorker:
    """A daemon thread that runs `share_pending` every `interval_ms` until stopped."""

    def __init__(self, repo: Repository, clock: Clock, interval_ms: int, batch: int = BATCH) -> None:
        self._repo = repo
        self._clock = clock
        self._interval = max(interval_ms, 1) / 1000
        self._batch = batch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipss-sharing", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> SharingWorker:
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for the round in progress (its transactions are atomic anyway)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        atexit.unregister(self.stop)

    def run_once(self) -> int:
        # Drain the backlog in batches, reading the portal clock for each batch.
        total = 0
        while not self._stop.is_set():
            shared = share_pending(self._repo, self._clock.now(), self._batch)
            total += shared
            if shared < self._batch:
                break
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end sharing: log it and try again next round
                log.exception("IPSS sharing round failed")
            self._stop.wait(self._interval)
