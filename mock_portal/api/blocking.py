"""Where the wire path's blocking work (examination, database) runs: on the event loop or on a thread.

A certificate-sized submission takes a few milliseconds of CPU. Handed to a thread, it pays two
hand-offs (a futex wake-up and a context switch each way) and, with several in flight, the threads'
contention for the GIL; on a 2-core machine they made a submission cost 25-40 % more CPU
(bench/README.md, `bench/stack.py`). So the wire gateway marks a small request to be served
inline (`Settings.inline_limit`: SQLite only, by default) — one at a time per server process, like a
synchronous worker — and everything bigger, or slow by nature (a token's scrypt), goes to a thread,
at most `WIRE_THREADS` at once per process.

What inline work costs the others of its process: the loop waits while it runs — a few ms, the
commit's fsync included (~0.3 ms here), ~8 ms for the worst 32 KiB form found — and while its write waits
for the SQLite write gate: normally another submission's commit, or one chunk of a sandbox reset, a
workspace deletion or a journal trim (`MAINTENANCE_CHUNKS` in the repository: before issue 24 a reset
held the gate for as long as it deleted, 1.8 s for 3,000 submissions beside 3,000 of another tenant,
and the inline process answered nothing meanwhile). On PostgreSQL the default is threads: its round trips, maybe
to another host, would hold the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from starlette.types import Scope

INLINE = "wire_inline"
"""Scope state key: True when the gateway found the request small enough to serve on the event loop."""
WIRE_THREADS = 10
_limiter: RunVar[anyio.CapacityLimiter] = RunVar("wire_threads")
"""One limiter per event loop (anyio's own default thread limiter is kept the same way)."""


def mark_inline(scope: Scope, inline: bool) -> None:
    scope.setdefault("state", {})[INLINE] = inline


def is_inline(scope: Scope) -> bool:
    return bool((scope.get("state") or {}).get(INLINE))


async def run(function: Callable[..., Any], *args: Any, inline: bool = False) -> Any:
    """`function(*args)` here when `inline`, else on a worker thread (at most `WIRE_THREADS` at once in
    this process). Neither can be cancelled half-way: what a commit acknowledges is never lost."""
    if inline:
        return function(*args)
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(WIRE_THREADS)
        _limiter.set(limiter)
    return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
