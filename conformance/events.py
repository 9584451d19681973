"""Typed events the runner emits; reporters consume them and never call back into the runner.

Kept apart from the runner so a reporter imports only data (schemathesis' event handlers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance import EXIT_INCONCLUSIVE
from conformance.evidence import Bundle, Order, ScenarioRecord
from conformance.model import CaseResult

__all__ = [
    "CaseFinished",
    "Event",
    "Listener",
    "RunFinished",
    "RunStarted",
    "ScenarioFinished",
    "ScenarioStarted",
    "exit_code",
]


@dataclass(frozen=True)
class RunStarted:
    mode: str
    """`run`, `replay` or `check`."""
    suite_version: str
    tool_version: str
    seed: int | None
    portal: str
    trigger: str
    case_ids: tuple[str, ...]
    scenarios: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Said once at the start of the run (e.g. the portal did not publish its working calendar)."""


@dataclass(frozen=True)
class ScenarioStarted:
    name: str
    description: str
    facility: str


@dataclass(frozen=True)
class ScenarioFinished:
    record: ScenarioRecord
    orders: tuple[Order, ...]
    seconds: float


@dataclass(frozen=True)
class CaseFinished:
    result: CaseResult


@dataclass(frozen=True)
class RunFinished:
    results: tuple[CaseResult, ...]
    bundle: Bundle
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """Non-zero when the certification is not granted: 1 when a MUST case failed (or errored),
        `EXIT_INCONCLUSIVE` when none did but one stayed inconclusive."""
        return exit_code(self.results)


def exit_code(results: tuple[CaseResult, ...] | list[CaseResult]) -> int:
    if any(r.blocking for r in results):
        return 1
    return EXIT_INCONCLUSIVE if any(r.undecided for r in results) else 0


Event = RunStarted | ScenarioStarted | ScenarioFinished | CaseFinished | RunFinished
Listener = Callable[[Event], None]
