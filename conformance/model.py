"""The suite's vocabulary as frozen data: verdicts, levels, findings, evidence references, case results.

Kept free of I/O so the registry, the cases, the runner and every reporter share one set of types
without importing each other (Inferno's runnable/result split; schemathesis' `Failure`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["CaseEvidence", "CaseFinding", "CaseResult", "CaseVerdict", "Level", "roll_up"]


class CaseVerdict(StrEnum):
    """The closed verdict set. `error` is a harness bug, never a vendor failure; `inconclusive` is a
    timing verdict the machine could not settle: a lateness or an inversion within the run's timing
    resolution (`conformance.timing`), still there after the scenario ran again at lower clock rates.
    It is no failure of the hospital, and no certificate either."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    OMIT = "omit"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"

    @property
    def rank(self) -> int:
        """Precedence when rolling up a group: error > fail > inconclusive > skip > pass > omit."""
        return _RANK[self]


_RANK = {
    CaseVerdict.OMIT: 0,
    CaseVerdict.PASS: 1,
    CaseVerdict.SKIP: 2,
    CaseVerdict.INCONCLUSIVE: 3,
    CaseVerdict.FAIL: 4,
    CaseVerdict.ERROR: 5,
}


class Level(StrEnum):
    """RFC 2119 strength of a case: a MUST failure fails the certification, a SHOULD failure is a warning."""

    MUST = "MUST"
    SHOULD = "SHOULD"


@dataclass(frozen=True)
class CaseFinding:
    """One reason behind a verdict, tied to the exchanges that show it (journal and submission ids)."""

    message: str
    journal_ids: tuple[int, ...] = ()
    submission_ids: tuple[int, ...] = ()
    request_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "journal_ids": list(self.journal_ids),
            "submission_ids": list(self.submission_ids),
            "request_ids": list(self.request_ids),
        }


@dataclass(frozen=True)
class CaseEvidence:
    """What a case looked at: the journal entries and submissions it judged, and what it found."""

    journal_ids: tuple[int, ...] = ()
    submission_ids: tuple[int, ...] = ()
    request_ids: tuple[str, ...] = ()
    findings: tuple[CaseFinding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "journal_ids": list(self.journal_ids),
            "submission_ids": list(self.submission_ids),
            "request_ids": list(self.request_ids),
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class CaseResult:
    """The verdict of one case, its one-line reason and the evidence behind it."""

    case_id: str
    title: str
    area: str
    level: Level
    basis: str
    verdict: CaseVerdict
    message: str = ""
    evidence: CaseEvidence = field(default_factory=CaseEvidence)
    duration_ms: float = 0.0
    grade: str = ""
    """Evidence grade of what the case checks (CONFIRMED, OBSERVED, RECONSTRUCTED, ADVISORY)."""
    result: str = "portal"
    """Which of the two results the case counts towards: `portal` (portal-compatible) or `strict`."""

    @property
    def blocking(self) -> bool:
        """A MUST case that failed (or could not be judged for a harness bug) blocks certification."""
        return self.level is Level.MUST and self.verdict in (CaseVerdict.FAIL, CaseVerdict.ERROR)

    @property
    def undecided(self) -> bool:
        """A MUST case the machine's timing could not settle: no failure, and no certificate either."""
        return self.level is Level.MUST and self.verdict is CaseVerdict.INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "title": self.title,
            "area": self.area,
            "level": self.level.value,
            "basis": self.basis,
            "grade": self.grade,
            "result": self.result,
            "verdict": self.verdict.value,
            "message": self.message,
            "duration_ms": round(self.duration_ms, 3),
            "evidence": self.evidence.to_dict(),
        }


def roll_up(verdicts: list[CaseVerdict] | tuple[CaseVerdict, ...]) -> CaseVerdict:
    """The verdict of a group: the highest by precedence; an empty group is omitted."""
    return max(verdicts, key=lambda v: v.rank, default=CaseVerdict.OMIT)
