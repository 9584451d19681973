"""Issue 24: what one tenant's maintenance (a sandbox reset, a workspace deletion) costs the other tenants.

    .venv/bin/python bench/maintenance.py [--submissions 10700] [--journal 10700] [--file-bytes 12000] [--bystander 0]
        [--operation reset|delete]

In-process, on a fresh SQLite file: fills workspace `big` with `--submissions` accepted submissions (each with
its document, outbox row and IPSS copy) and `--journal` journal rows (`fixtures/history.py`), and workspace
`bystander` with `--bystander` accepted submissions (other tenants' documents: every deleted submission's
foreign key is checked against them), then runs
`Repository.reset` (or `delete_workspace`) of `big` on one thread while another thread writes journal rows into
workspace `other`, one transaction each, as a wire submission does. Measures the operation's wall time, the
longest single hold of the SQLite write gate by the maintenance thread, and the longest wait of one of the
other workspace's writes. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixtures.history import fill
from mock_portal.store import JournalEntry
from mock_portal.store.repository import JournalFilter, Repository, Retention, create_engine_for
from mock_portal.store.write_gate import WriteGate


def _instrument(holds: list[float], thread: list[int]) -> None:
    """Record how long each outermost hold of the gate by the maintenance thread lasted (seconds)."""
    original = WriteGate.hold

    @contextmanager
    def hold(self: WriteGate) -> Iterator[None]:
        with original(self):
            outermost = self._depth == 1  # this thread's first hold: the gate's lock and flock were just taken
            started = time.perf_counter()
            try:
                yield
            finally:
                if outermost and threading.get_ident() in thread:
                    holds.append(time.perf_counter() - started)

    WriteGate.hold = hold  # type: ignore[method-assign]


def _entry() -> JournalEntry:
    now = datetime.now(UTC)
    return JournalEntry(
        at=now, real_at=now, facility_code="79002", username="79002_BV", operation="submit", outcome="200",
        faults=[], findings=[], duration_ms=1.0,
    )  # fmt: skip


def measure(submissions: int, journal: int, file_bytes: int, bystander: int, operation: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine_for(f"sqlite:///{Path(tmp) / 'portal.sqlite3'}")
        root = Repository(engine)
        root.create_schema()
        big, other = root.scoped("big"), root.scoped("other")
        started = time.perf_counter()
        fill(big, "79001", submissions=submissions, journal=journal, file_bytes=file_bytes)
        fill(root.scoped("bystander"), "79003", submissions=bystander, journal=0, file_bytes=1000)
        print(f"filled {submissions} submissions, {journal} journal rows in {time.perf_counter() - started:.1f} s")
        holds: list[float] = []
        maintainer: list[int] = []
        _instrument(holds, maintainer)
        waits: list[float] = []
        done = threading.Event()

        def write_other() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                other.add_journal(_entry(), Retention())
                waits.append(time.perf_counter() - t0)
                time.sleep(0.002)

        def maintain() -> None:
            maintainer.append(threading.get_ident())
            big.reset() if operation == "reset" else big.delete_workspace()

        writer = threading.Thread(target=write_other)
        writer.start()
        time.sleep(0.1)
        worker = threading.Thread(target=maintain)
        t0 = time.perf_counter()
        worker.start()
        worker.join()
        took = time.perf_counter() - t0
        done.set()
        writer.join()
        left = big.count_submissions() + big.count_journal(JournalFilter())
        engine.dispose()
    return {
        "operation": operation,
        "submissions": submissions,
        "journal": journal,
        "file_bytes": file_bytes,
        "bystander": bystander,
        "seconds": round(took, 3),
        "transactions": len(holds),
        "longest_hold_ms": round(max(holds) * 1000, 1),
        "hold_p95_ms": round(sorted(holds)[int(0.95 * (len(holds) - 1))] * 1000, 1),
        "other_writes": len(waits),
        "other_longest_wait_ms": round(max(waits) * 1000, 1),
        "rows_left": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=10_700)
    parser.add_argument("--journal", type=int, default=10_700)
    parser.add_argument("--file-bytes", type=int, default=12_000, help="each submission's stored file")
    parser.add_argument("--bystander", type=int, default=0, help="accepted submissions of a third workspace")
    parser.add_argument("--operation", choices=("reset", "delete"), default="reset")
    args = parser.parse_args()
    result = measure(args.submissions, args.journal, args.file_bytes, args.bystander, args.operation)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
