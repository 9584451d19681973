"""Where the wire path's blocking work (examination, database) runs: on the event loop or on a thread.

A certificate-sized submission takes a few milliseconds of CPU. Handed to a thread, it pays two
hand-offs (a futex wake-up and a context switch each way) and, with several in flight, the threads'
contention for the GIL; on a 2-core machine they made a submission cost 25-40 % more CPU
(bench/README.md, `bench/stack.py`). So the wire gateway marks a submission to be served inline —
one at a time per server process, like a synchronous worker — when it needs little work, decided by
the work, not the size alone: its body is within `Settings.inline_limit` (SQLite only, by default),
its file passes a pre-scan of byte counts (`portal.intake.light`: elements, attributes, character
references, signature references, certificates: 4,200 empty elements fit in a 22 KB file, whose
examination alone took a median 38 ms of CPU here, max 110 ms) and judging its password costs no
scrypt (`WireIdentity.scrypt_free`: a pair the process verified already, or no account to check it
against). The gateway marks the scope in one place (`_Exchange._decide`), after both tests. Everything
else — bigger, heavier, an unknown password, a token's scrypt — goes to a thread, at most
`WIRE_THREADS` at once per process.

What inline work costs the others of its process: the loop waits while it runs, and while its write
waits for the SQLite write gate: normally another submission's commit, or one chunk of a sandbox
reset, a workspace deletion or a journal trim (`MAINTENANCE_CHUNKS` in the repository: before issue 24
a reset held the gate for as long as it deleted, 1.8 s for 3,000 submissions beside 3,000 of another
tenant, and the inline process answered nothing meanwhile). Measured by `bench/inline_worst.py` (the
worst forms that still go inline, each handled 30 times in the in-process stack; 2-core VM shared with
other work, load average 2.8-3.9): a certificate's GCS held the loop for a median 6.1 ms of CPU (max
7.7); the worst inline forms — 17 KB of text in one field, 147 comments, 256 character references — a
median of 8.5-9.8 ms (max 13.4 ms). Wall times on that busy machine were about twice that (max 51 ms,
the process descheduled). The 4,200-element form now goes to a thread. On PostgreSQL the default is
threads: its round trips, maybe to another host, would hold the loop.

Heavy requests — a body over 64 KiB (a submission's or a token request's), or a file the pre-scan finds
much work in — take turns (`heavy`): one at a time per process, and after each (its reply sent) the
turn rests as long as it took (`HEAVY_REST`, at most `MAX_REST`), so the turns' work gets about half of
a core per process whatever is sent (the gateway's own form parse of a big body, on a thread before the
turn, is not counted in it); their senders wait, the loop and the inline submissions keep the rest.
The turns are one queue per process, first come first served, for every tenant and for senders no
account vouches for: a flood of heavy requests delays another tenant's heavy (multi-MB) submissions by
the queue's length times twice a turn, never its certificate-sized ones. `bench/stall.py` (2-core VM,
4 and 8 connections sending 5 MiB of empty elements, health p99): 1.7 s with every heavy one on its own
thread; 136-188 ms with turns but no rest; 50-112 ms with both over six runs, valid-submission p99
59-369 ms (bench/README.md, "Stall targets").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from starlette.types import Scope

T = TypeVar("T")
Args = TypeVarTuple("Args")

INLINE = "wire_inline"
"""Scope state key: True when the gateway found the request light enough to serve on the event loop."""
WIRE_THREADS = 10
HEAVY_AT_ONCE = 1
"""Heavy requests (see above) handled at once per process; the rest wait for their turn without using
a thread or the CPU. A certificate's submission (a signed GCS: 153 '<', 26 '=', no '&') is not heavy,
whatever the database: on PostgreSQL (no inline serving) it still runs on up to `WIRE_THREADS` threads
at once; one writing every Vietnamese letter as a character reference (over 256 '&') is."""
HEAVY_REST = 1.0
"""After each heavy request (its reply sent) the turn stays taken, asleep, this many times as long as it
took (wall time, at most `MAX_REST`): the turns' work gets about half of a core per process, and the
loops and inline submissions the rest, however many heavy ones are sent at once."""
MAX_REST = 2.0
"""Seconds: the longest rest, so that a turn slowed by others (the write gate, the GIL) does not slow
the queue twice as long."""
_limiter: RunVar[anyio.CapacityLimiter] = RunVar("wire_threads")
"""One limiter per event loop (anyio's own default thread limiter is kept the same way)."""
_heavy: RunVar[anyio.CapacityLimiter] = RunVar("wire_heavy")
LOGIN_THREADS = 1
"""Threads for token requests' password checks per process (scrypt: one at a time anyway)."""
_login: RunVar[anyio.CapacityLimiter] = RunVar("wire_login")


def mark_inline(scope: Scope, inline: bool) -> None:
    scope.setdefault("state", {})[INLINE] = inline


def is_inline(scope: Scope) -> bool:
    return bool((scope.get("state") or {}).get(INLINE))


def _per_loop(var: RunVar[anyio.CapacityLimiter], tokens: int) -> anyio.CapacityLimiter:
    try:
        return var.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(tokens)
        var.set(limiter)
        return limiter


def heavy() -> anyio.CapacityLimiter:
    """The turn of a heavy request (`HEAVY_AT_ONCE` per process). Without it, 8
    connections sending 5 MiB files kept 8 threads of each process parsing and storing at once, and the
    event loop waited for the GIL behind them: health p99 1.7 s (bench/README.md, "Stall targets")."""
    return _per_loop(_heavy, HEAVY_AT_ONCE)


async def run(function: Callable[[*Args], T], *args: *Args, inline: bool = False, login: bool = False) -> T:
    """`function(*args)` here when `inline`, else on a worker thread: at most `WIRE_THREADS` at once in
    this process, or, for a token request's password check (`login`), `LOGIN_THREADS` of their own — so
    token requests queue on the loop, not on the threads every submission needs (scrypt runs one at a
    time per process: a flood of wrong passwords for many accounts once held all ten threads waiting for
    it). Neither can be cancelled half-way: what a commit acknowledges is never lost."""
    if inline:
        return function(*args)
    limiter = _per_loop(_login, LOGIN_THREADS) if login else _per_loop(_limiter, WIRE_THREADS)
    return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
