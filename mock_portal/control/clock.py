"""The sandbox clock: every portal time reads it, so tests can freeze, jump or accelerate time.

Sandbox time is `anchor_sandbox + (real_now - anchor_real) * rate`: rate 1 is real time (possibly
shifted), 0 is frozen, 600 makes 4 working hours pass in 24 real seconds. The state lives in the
database (a shared setting), so several server processes agree; each process re-reads it at the
start of a request (`refresh`), which costs one small query, and computes `now()` from it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_RATE = 100_000.0
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""Sandbox time stays in [EARLIEST, LATEST): documents carry 4-digit 20xx years, and every date
computation the portal makes (deadlines, tokens, reports) must stay far from datetime's year 9999."""
MAX_ADVANCE_MINUTES = 5_256_000
"""Ten years: the most one `advance` may move the clock."""
MAX_ADVANCE_WORKING_MINUTES = 525_600
"""The most working minutes one `advance` may add (each costs a walk over the calendar)."""


def check_span(value: object, limit: float, name: str) -> float:
    """`value` as a finite number of minutes in [0, limit], or ValueError (NaN, inf, negative, huge)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not 0 <= value <= limit:
        raise ValueError(f"{name} must be between 0 and {limit:g}, got {value:g}")
    return value


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


def system_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClockState:
    anchor_real: datetime
    anchor_sandbox: datetime
    rate: float = 1.0

    def at(self, real: datetime) -> datetime:
        return self.anchor_sandbox + (real - self.anchor_real) * self.rate

    @property
    def mode(self) -> str:
        if self.rate == 0:
            return "frozen"
        if self.rate == 1:
            return "real" if abs((self.anchor_sandbox - self.anchor_real).total_seconds()) < 1 else "shifted"
        return "accelerated"

    def to_dict(self) -> dict[str, Any]:
        return {
            "anchor_real": self.anchor_real.isoformat(),
            "anchor_sandbox": self.anchor_sandbox.isoformat(),
            "rate": self.rate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClockState:
        return cls(
            datetime.fromisoformat(data["anchor_real"]),
            datetime.fromisoformat(data["anchor_sandbox"]),
            float(data["rate"]),
        )


class ClockStore(Protocol):
    """Where the clock state is shared between processes (the repository implements it)."""

    def load_clock(self) -> tuple[int, dict[str, Any]] | None:
        """(version, state) of the shared clock, or None when it was never set."""
        ...

    def save_clock(self, state: dict[str, Any]) -> int:
        """Store a new state; returns its version (always higher than any before)."""
        ...


class SandboxClock:
    """The portal's clock: real unless told otherwise, shared through a `ClockStore`."""

    def __init__(
        self,
        store: ClockStore | None = None,
        real: Callable[[], datetime] = system_now,
        max_staleness: timedelta = timedelta(seconds=1),
    ) -> None:
        self._store = store
        self._real = real
        self._lock = threading.Lock()
        self._max_staleness = max_staleness
        now = real()
        self._state = ClockState(now, now, 1.0)
        self._version = 0
        self._refreshed = now - max_staleness

    def over(self, store: ClockStore) -> SandboxClock:
        """A clock of the same kind over another store (another workspace's clock)."""
        return SandboxClock(store, self._real, self._max_staleness)

    def now(self) -> datetime:
        """Sandbox time; a state older than `max_staleness` is re-read first (background threads)."""
        real = self._real()
        if real - self._refreshed > self._max_staleness:
            self.refresh()
        return self._state.at(real)

    def at(self, real: datetime) -> datetime:
        """The sandbox instant of an earlier real instant (a request's arrival) under the current state;
        an instant before the state's anchor (the clock was set since) is the anchor's own."""
        state = self._state
        return state.at(max(real, state.anchor_real))

    def state(self) -> ClockState:
        return self._state

    def refresh(self) -> None:
        """Take up a change another process made."""
        self.refresh_from(self._store.load_clock() if self._store is not None else None)

    def refresh_from(self, found: tuple[int, dict[str, Any]] | None) -> None:
        """Take up a (version, state) read from the store, unless this process already has a newer one
        (a read that raced with a `set` must not undo it)."""
        with self._lock:  # never between set()'s save and its swap
            self._refreshed = self._real()
            if found is not None and found[0] > self._version:
                self._version, self._state = found[0], ClockState.from_dict(found[1])

    def set(self, *, now: datetime | None = None, rate: float | None = None) -> ClockState:
        """Jump to `now` and/or run at `rate` from here on (continuity is kept when only the rate changes)."""
        if rate is not None:
            check_span(rate, MAX_RATE, "rate")
        if now is not None and now.tzinfo is None:
            raise ValueError("now must carry a time zone offset")
        if now is not None and not EARLIEST <= now < LATEST:
            span = f"[{EARLIEST:%Y-%m-%d}, {LATEST:%Y-%m-%d})"
            raise ValueError(f"the sandbox time must lie in {span}, got {now.isoformat()}")
        with self._lock:
            real = self._real()
            current = self._state.at(real)
            state = ClockState(real, (now or current).astimezone(UTC), self._state.rate if rate is None else rate)
            if self._store is not None:
                self._version = self._store.save_clock(state.to_dict())
            self._state = state
            return state

    def advance(self, delta: timedelta) -> ClockState:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        return self.set(now=self.now() + delta)

    def reset(self) -> ClockState:
        now = self._real()
        return self.set(now=now, rate=1.0)


def vn_local(instant: datetime) -> datetime:
    """The instant as Vietnam wall-clock time (the portal's ThoiGianTiepNhan is in this zone)."""
    return instant.astimezone(VN_TZ)
