"""Fault-plan decisions and the sandbox clock as pure code (their HTTP behaviour: test_time_and_faults)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mock_portal.control.clock import SandboxClock
from mock_portal.faults.plan import Effect, FaultPlanError, RequestInfo, decide, parse_plan

AT = datetime(2026, 3, 9, 2, 0, tzinfo=UTC)


def counter() -> Any:
    counts: Counter[str] = Counter()

    def count(key: str) -> int:
        counts[key] += 1
        return counts[key]

    return count


def run(plan: dict, n: int, operation: str = "submit", at: datetime = AT) -> list[tuple[str, ...]]:
    parsed, count = parse_plan(plan), counter()
    return [decide([("faults@1", parsed)], RequestInfo(operation, "79001", at), count).applied for _ in range(n)]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"faults": "x"}, "must be a list"),
        ({"faults": [{"effect": "nope"}]}, "effect must be one of"),
        ({"faults": [{"effect": "reset", "operations": ["upload"]}]}, "operations"),
        ({"faults": [{"effect": "http_error", "status": 404}]}, "status"),
        ({"faults": [{"effect": "reset", "probability": 2}]}, "probability"),
        ({"faults": [{"effect": "reset", "every_nth": 0}]}, "every_nth"),
        ({"faults": [{"effect": "reset", "first_n": 1, "every_nth": 2}]}, "one of"),
        ({"faults": [{"effect": "reset", "window": {"start": "2026-03-09T09:00:00"}}]}, "window"),
        ({"faults": [{"effect": "latency", "latency": {"distribution": "pareto"}}]}, "distribution"),
        ({"faults": [{"effect": "latency", "latency": {"ms": -1}}]}, "latency"),
        ({"token_ttl_minutes": -5}, "token_ttl_minutes"),
        ({"seed": "x", "faults": []}, "malformed"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_plans_say_what_is_wrong(plan: dict, message: str) -> None:
    with pytest.raises(FaultPlanError, match=message):
        parse_plan(plan)


def test_triggers() -> None:
    assert run({"faults": [{"name": "f", "effect": "reset", "first_n": 2}]}, 4) == [("f",), ("f",), (), ()]
    assert run({"faults": [{"name": "e", "effect": "reset", "every_nth": 2}]}, 4) == [(), ("e",), (), ("e",)]
    assert run({"faults": [{"name": "a", "effect": "reset"}]}, 2) == [("a",), ("a",)]
    assert run({"faults": [{"name": "t", "effect": "reset", "operations": ["token"]}]}, 1) == [()]


def test_probability_is_seeded_and_close_to_its_rate() -> None:
    plan = {"seed": 3, "faults": [{"name": "p", "effect": "reset", "probability": 0.3}]}
    first, second = run(plan, 1000), run(plan, 1000)
    assert first == second
    assert 240 <= sum(1 for applied in first if applied) <= 360
    assert run({**plan, "seed": 4}, 1000) != first


def test_window_is_half_open_in_sandbox_time() -> None:
    plan = {"faults": [{"name": "w", "effect": "http_error", "window": {"start": AT.isoformat(), "minutes": 60}}]}
    assert run(plan, 1, at=AT - timedelta(seconds=1)) == [()]
    assert run(plan, 1, at=AT) == [("w",)]
    assert run(plan, 1, at=AT + timedelta(minutes=60)) == [()]


def test_latency_adds_up_and_the_first_terminal_fault_wins() -> None:
    plan = parse_plan(
        {
            "faults": [
                {"name": "l1", "effect": "latency", "latency": {"ms": 100}},
                {"name": "l2", "effect": "latency", "latency": {"distribution": "uniform", "min_ms": 50, "max_ms": 50}},
                {"name": "down", "effect": "http_error", "status": 503},
                {"name": "rst", "effect": "reset"},
                {"name": "drop", "effect": "drop_after_commit"},
            ]
        }
    )
    decision = decide([("s", plan)], RequestInfo("submit", "79001", AT), counter())
    assert decision.latency_ms == pytest.approx(150)
    assert decision.terminal is not None and decision.terminal.effect is Effect.HTTP_ERROR
    assert decision.drop_after_commit is False, "nothing to drop when no reply is made"
    assert decision.applied == ("l1", "l2", "down", "rst", "drop")


def test_global_and_facility_plans_both_apply() -> None:
    everyone = parse_plan({"faults": [{"name": "slow", "effect": "latency", "latency": {"ms": 10}}]})
    one = parse_plan({"faults": [{"name": "lock", "effect": "account_locked"}], "token_ttl_minutes": 1})
    decision = decide([("g", everyone), ("f", one)], RequestInfo("token", "79001", AT), counter())
    assert decision.applied == ("slow", "lock") and one.token_ttl_minutes == 1


class MemoryStore:
    def __init__(self) -> None:
        self.found: tuple[int, dict[str, Any]] | None = None

    def load_clock(self) -> tuple[int, dict[str, Any]] | None:
        return self.found

    def save_clock(self, state: dict[str, Any]) -> int:
        version = (self.found[0] if self.found else 0) + 1
        self.found = (version, state)
        return version


def fake_real(start: datetime, step: timedelta) -> Any:
    ticks = itertools.count()
    return lambda: start + step * next(ticks)


def test_clock_rates_and_sharing_between_processes() -> None:
    store = MemoryStore()
    real = fake_real(AT, timedelta(seconds=1))  # every reading of real time is one second later
    mine, theirs = SandboxClock(store, real), SandboxClock(store, real)
    target = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
    mine.set(now=target, rate=600)
    theirs.refresh()
    ahead = theirs.now() - target
    assert timedelta(minutes=10) <= ahead <= timedelta(minutes=60), "600 sandbox seconds per real second"
    frozen = mine.set(rate=0)
    assert mine.now() == mine.now() == frozen.anchor_sandbox
    with pytest.raises(ValueError, match="forward"):
        mine.advance(timedelta(minutes=-1))
    with pytest.raises(ValueError, match="time zone"):
        mine.set(now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="rate"):
        mine.set(rate=-1)
    assert mine.reset().rate == 1.0


def test_a_stale_read_never_undoes_a_newer_clock() -> None:
    store = MemoryStore()
    clock = SandboxClock(store, fake_real(AT, timedelta(0)))
    first = clock.set(now=datetime(2026, 1, 5, tzinfo=UTC), rate=0)
    stale = store.load_clock()  # a request read this before the admin moved the clock
    moved = clock.set(now=datetime(2026, 3, 9, tzinfo=UTC))
    clock.refresh_from(stale)
    assert clock.now() == moved.anchor_sandbox != first.anchor_sandbox
