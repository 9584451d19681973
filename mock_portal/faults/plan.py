"""Fault plans: latency, errors, outages, resets and dropped replies, decided for each wire request.

A plan is data (JSON, set through `PUT /sandbox/faults` or per facility) and deciding is pure:
`decide(plan, request, count)` returns what to do to one request; `FaultPlans` reads a workspace's plans
(shared settings: `faults` for every facility, `faults:<MA_CSKCB>` for one, parsed once per version and
per process) and decides with counters shared by every server process. What a decision does to the
reply is `faults/apply.py`'s. Randomness is seeded by the plan
seed, the fault and the request's ordinal, so a run can be replayed exactly; ordinals come from
`count(key)`, a counter shared by every server process.

    {"seed": 7, "token_ttl_minutes": 2,
     "faults": [{"name": "slow", "effect": "latency", "latency": {"distribution": "lognormal",
                 "median_ms": 200, "sigma": 0.5}},
                {"name": "down", "effect": "http_error", "status": 503,
                 "window": {"start": "2026-03-10T09:00:00+07:00", "minutes": 60}},
                {"name": "flaky", "effect": "portal_error", "code": "500", "every_nth": 3,
                 "operations": ["submit"]}]}
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mock_portal.store import Repository


class Effect(StrEnum):
    LATENCY = "latency"
    """Delay the reply (fixed, uniform or lognormal); combines with any other effect."""
    HTTP_ERROR = "http_error"
    """Answer with an HTTP error status (500/502/503/504) instead of the portal's reply."""
    PORTAL_ERROR = "portal_error"
    """Answer HTTP 200 with the portal's own error code (MaKetQua / maKetQua, e.g. 500)."""
    RESET = "reset"
    """Close the connection before any reply; nothing is stored."""
    DROP_AFTER_COMMIT = "drop_after_commit"
    """Process and store the request, then close the connection without the reply."""
    ACCOUNT_LOCKED = "account_locked"
    """Token replies maKetQua 403, submissions MaKetQua 401 (AUTH_ACCOUNT_LOCKED)."""


TERMINAL = (Effect.RESET, Effect.HTTP_ERROR, Effect.PORTAL_ERROR, Effect.ACCOUNT_LOCKED)
OPERATIONS = frozenset({"token", "submit"})
HTTP_STATUSES = frozenset({500, 502, 503, 504})


GLOBAL = "faults"
"""The shared setting of the plan for every facility (`faults:<MA_CSKCB>` for one)."""
MAX_LATENCY_MS = 120_000.0
"""No drawn delay is longer than this (a lognormal tail could otherwise hold a request for hours)."""


class FaultPlanError(ValueError):
    """The plan cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class Latency:
    distribution: str = "fixed"
    ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    median_ms: float = 100.0
    sigma: float = 0.5

    def draw(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            return rng.uniform(self.min_ms, self.max_ms)
        if self.distribution == "lognormal":
            return min(rng.lognormvariate(math.log(self.median_ms), self.sigma), MAX_LATENCY_MS)
        return self.ms


@dataclass(frozen=True)
class Fault:
    name: str
    effect: Effect
    operations: frozenset[str] = OPERATIONS
    status: int = 503
    code: str = "500"
    latency: Latency | None = None
    probability: float | None = None
    every_nth: int | None = None
    first_n: int | None = None
    window: tuple[datetime, datetime] | None = None

    @property
    def counted(self) -> bool:
        """Whether the request's ordinal matters (count-based triggers and seeded randomness)."""
        return any(x is not None for x in (self.probability, self.every_nth, self.first_n)) or (
            self.latency is not None and self.latency.distribution != "fixed"
        )


@dataclass(frozen=True)
class FaultPlan:
    faults: tuple[Fault, ...] = ()
    seed: int = 0
    token_ttl_minutes: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestInfo:
    operation: str
    facility_code: str
    at: datetime
    """Sandbox time of the request."""


@dataclass(frozen=True)
class Decision:
    latency_ms: float = 0.0
    terminal: Fault | None = None
    drop_after_commit: bool = False
    applied: tuple[str, ...] = ()
    """Names of the faults that touched this request, for X-Sandbox-Explain and the journal."""


def parse_plan(data: Mapping[str, Any] | None) -> FaultPlan:
    """Validate a plan given as JSON data."""
    if not data:
        return FaultPlan()
    faults = data.get("faults") or []
    if not isinstance(faults, list):
        raise FaultPlanError("faults must be a list")
    ttl = data.get("token_ttl_minutes")
    if ttl is not None and (not isinstance(ttl, int) or not 0 <= ttl <= 525_600):
        raise FaultPlanError("token_ttl_minutes must be a whole number from 0 to 525600 (a year)")
    try:
        parsed = tuple(_fault(item, i) for i, item in enumerate(faults))
        seed = int(data.get("seed", 0))
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, FaultPlanError):
            raise
        raise FaultPlanError(f"malformed fault plan: {exc}") from exc
    return FaultPlan(parsed, seed, ttl, dict(data))


def _fault(item: Mapping[str, Any], index: int) -> Fault:
    where = f"faults[{index}]"
    try:
        effect = Effect(str(item.get("effect")))
    except ValueError as exc:
        raise FaultPlanError(f"{where}.effect must be one of {', '.join(e.value for e in Effect)}") from exc
    operations = frozenset(item.get("operations") or OPERATIONS)
    if not operations <= OPERATIONS:
        raise FaultPlanError(f"{where}.operations must be among token, submit")
    status = int(item.get("status", 503))
    if effect is Effect.HTTP_ERROR and status not in HTTP_STATUSES:
        raise FaultPlanError(f"{where}.status must be one of 500, 502, 503, 504")
    latency = _latency(item.get("latency"), where) if "latency" in item else None
    if effect is Effect.LATENCY and latency is None:
        latency = Latency(ms=1000.0)
    probability = item.get("probability")
    if probability is not None and not 0 <= float(probability) <= 1:
        raise FaultPlanError(f"{where}.probability must be between 0 and 1")
    for key in ("every_nth", "first_n"):
        if item.get(key) is not None and int(item[key]) < 1:
            raise FaultPlanError(f"{where}.{key} must be >= 1")
    if sum(item.get(k) is not None for k in ("probability", "every_nth", "first_n")) > 1:
        raise FaultPlanError(f"{where}: use one of probability, every_nth, first_n")
    return Fault(
        name=str(item.get("name") or f"{effect.value}-{index + 1}"),
        effect=effect,
        operations=operations,
        status=status,
        code=str(item.get("code", "500")),
        latency=latency,
        probability=None if probability is None else float(probability),
        every_nth=None if item.get("every_nth") is None else int(item["every_nth"]),
        first_n=None if item.get("first_n") is None else int(item["first_n"]),
        window=_window(item.get("window"), where),
    )


def _latency(data: Any, where: str) -> Latency:
    if not isinstance(data, Mapping):
        raise FaultPlanError(f"{where}.latency must be an object")
    kind = data.get("distribution", "fixed")
    values = {k: float(v) for k, v in data.items() if k != "distribution"}
    latency = Latency(distribution=kind, **values)
    if kind not in {"fixed", "uniform", "lognormal"}:
        raise FaultPlanError(f"{where}.latency.distribution must be fixed, uniform or lognormal")
    bounds = (latency.ms, latency.min_ms, latency.max_ms, latency.median_ms)
    if min(bounds) < 0 or max(bounds) > 120_000 or latency.median_ms <= 0:
        raise FaultPlanError(f"{where}.latency must be between 0 and 120000 ms (median above 0)")
    return latency


def _window(data: Any, where: str) -> tuple[datetime, datetime] | None:
    if data is None:
        return None
    try:
        start, minutes = datetime.fromisoformat(data["start"]), float(data["minutes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FaultPlanError(f"{where}.window needs an ISO 8601 start and minutes") from exc
    if start.tzinfo is None or not 0 < minutes <= 5_256_000:
        raise FaultPlanError(f"{where}.window needs a start with a time zone offset and minutes above 0")
    return start, start + timedelta(minutes=minutes)


def decide(plans: list[tuple[str, FaultPlan]], request: RequestInfo, count: Callable[[str], int]) -> Decision:
    """What the plans do to one request. `plans` are (scope key, plan): the global plan, then the facility's."""
    latency, terminal, drop, applied = 0.0, None, False, []
    for scope, plan in plans:
        for index, fault in enumerate(plan.faults):
            if request.operation not in fault.operations:
                continue
            if fault.window and not fault.window[0] <= request.at < fault.window[1]:
                continue
            ordinal = count(f"fault:{scope}:{index}") if fault.counted else 0
            rng = random.Random(f"{plan.seed}:{fault.name}:{ordinal}")
            if not _triggered(fault, ordinal, rng):
                continue
            if fault.latency is not None:
                latency += fault.latency.draw(rng)
            if fault.effect is Effect.DROP_AFTER_COMMIT:
                drop = True
            elif fault.effect in TERMINAL and terminal is None:
                terminal = fault
            applied.append(fault.name)
    return Decision(latency, terminal, drop and terminal is None, tuple(applied))


def _triggered(fault: Fault, ordinal: int, rng: random.Random) -> bool:
    if fault.every_nth is not None:
        return ordinal % fault.every_nth == 0
    if fault.first_n is not None:
        return ordinal <= fault.first_n
    if fault.probability is not None:
        return rng.random() < fault.probability
    return True


def plan_key(facility_code: str | None) -> str:
    return f"{GLOBAL}:{facility_code}" if facility_code else GLOBAL


class FaultPlans:
    """The fault plans in force in a workspace, read from its shared settings."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[int, FaultPlan]] = {}

    @staticmethod
    def keys(facility_code: str) -> list[str]:
        """The shared settings that hold the plans for a facility."""
        return [GLOBAL, plan_key(facility_code)] if facility_code else [GLOBAL]

    def plans(
        self, facility_code: str, found: dict[str, tuple[int, dict[str, Any]]] | None = None
    ) -> list[tuple[str, FaultPlan]]:
        """The global plan and the facility's, read in one query (or taken from `found`, settings the
        caller read with others), parsed once per version.

        Each comes with its scope `<key>@<version>`, so counters start afresh when a plan is replaced."""
        keys = self.keys(facility_code)
        if found is None:
            found = self.repo.get_settings(keys)
        plans = []
        with self._lock:
            for key in keys:
                if key not in found:
                    continue
                version, value = found[key]
                cached = self._parsed.get(key)
                if cached is None or cached[0] != version:
                    cached = (version, parse_plan(value))
                    self._parsed[key] = cached
                plans.append((f"{key}@{version}", cached[1]))
        return plans

    def decide(
        self,
        operation: str,
        facility_code: str,
        at: datetime,
        found: dict[str, tuple[int, dict[str, Any]]] | None = None,
    ) -> Decision:
        plans = self.plans(facility_code, found)
        if not any(plan.faults for _, plan in plans):
            return Decision()
        return decide(plans, RequestInfo(operation, facility_code, at), self.repo.increment)

    def token_ttl_minutes(self, facility_code: str, default: int) -> int:
        """A plan may shorten token lifetimes (the facility's plan wins over the global one)."""
        ttl = default
        for _, plan in self.plans(facility_code):
            if plan.token_ttl_minutes is not None:
                ttl = plan.token_ttl_minutes
        return ttl
