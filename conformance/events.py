"""Typed events the runner emits; reporters consume them and never call back into the runner.

Kept apart from the runner so a reporter imports only data (schemathesis' event handlers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from conformance import EXIT_INCONCLUSIVE
from conformance.evidence import Bundle, Order, ScenarioRecord
from conformance.model import CaseResult

if TYPE_CHECKING:
    from conformance.attestation import SignedAttestation

__all__ = [
    "CaseFinished",
    "Event",
    "Listener",
    "RunFinished",
    "RunStarted",
    "ScenarioFinished",
    "ScenarioStarted",
    "Witness",
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


class Witness(Protocol):
    """Who can attest the run's bundle: the portal that served it (`conformance.attestation.PortalWitness`).
    The file reporter hands it the bundle's manifest once written."""

    def attest(self, manifest: bytes) -> SignedAttestation: ...


@dataclass(frozen=True)
class RunFinished:
    results: tuple[CaseResult, ...]
    bundle: Bundle
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    witness: Witness | None = None
    """The portal that observed the run, to attest its bundle (None: offline, replayed, or no portal)."""

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
