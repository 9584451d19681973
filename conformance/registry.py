"""A tiny generic registry of cases: `@case(id=…, basis=…, level=…)`, duplicate IDs refused loudly.

Case IDs are chosen by people and never derived from positions or function names (Inferno's short
ids); `case_ids.txt` lists them so a rename shows in review. A case declares what evidence it
`needs`; when that evidence is missing it is skipped with a precise reason, never failed. Any
unexpected exception in a check is `error`: a harness bug, not a vendor failure.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.model import CaseEvidence, CaseFinding, CaseResult, CaseVerdict, Level
from mock_portal.results.grades import Grade

if TYPE_CHECKING:
    from conformance.evidence import Bundle

__all__ = [
    "CaseOutcome",
    "CaseSpec",
    "Check",
    "DuplicateCase",
    "Registry",
    "SkipCase",
    "case",
    "failed",
    "passed",
    "registry",
    "verdict_of",
]

AREAS = ("documents", "signature", "api", "deadline", "flows")
RESULTS = ("portal", "strict")
"""`portal`: the case counts towards portal-compatible (the real portal accepts everything and files it
under the right facility); `strict`: towards strict-clean (nothing `strict` mode would refuse)."""
CASE_IDS_FILE = Path(__file__).with_name("case_ids.txt")


class DuplicateCase(ValueError):
    """Two cases claim the same ID: IDs are the contract with vendors, so this must never pass silently."""


class SkipCase(Exception):  # noqa: N818 - a control-flow signal like pytest's Skipped, not an error
    """Raised by a check whose evidence is not there; the message says exactly what is missing."""


@dataclass(frozen=True)
class CaseOutcome:
    """What a check returns: its verdict, a one-line reason and the evidence it judged."""

    verdict: CaseVerdict
    message: str
    evidence: CaseEvidence = field(default_factory=CaseEvidence)


def passed(
    message: str, *, journal: Iterable[int] = (), submissions: Iterable[int] = (), requests: Iterable[str] = ()
) -> CaseOutcome:
    return CaseOutcome(CaseVerdict.PASS, message, CaseEvidence(tuple(journal), tuple(submissions), tuple(requests)))


def failed(
    findings: list[CaseFinding],
    *,
    journal: Iterable[int] = (),
    submissions: Iterable[int] = (),
    requests: Iterable[str] = (),
    verdict: CaseVerdict = CaseVerdict.FAIL,
) -> CaseOutcome:
    """A failure: the first finding is the headline, each finding carries the exchanges that show it
    (`verdict` INCONCLUSIVE: the same shape for findings the run's timing resolution cannot settle)."""
    journal_ids = set(journal).union(*(f.journal_ids for f in findings))
    submission_ids = set(submissions).union(*(f.submission_ids for f in findings))
    request_ids = set(requests).union(*(f.request_ids for f in findings))
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return CaseOutcome(
        verdict,
        findings[0].message + more,
        CaseEvidence(
            tuple(sorted(journal_ids)), tuple(sorted(submission_ids)), tuple(sorted(request_ids)), tuple(findings)
        ),
    )


def verdict_of(
    problems: Sequence[CaseFinding],
    passing: str,
    *,
    undecided: Sequence[CaseFinding] = (),
    journal: Iterable[int] = (),
    submissions: Iterable[int] = (),
    requests: Iterable[str] = (),
) -> CaseOutcome:
    """The one way a case concludes on what it judged: FAIL on any problem; else INCONCLUSIVE on the
    findings the run's timing resolution cannot settle (`undecided`); else PASS saying `passing`. The
    same exchanges are the evidence whichever way it goes."""
    if problems:
        return failed(list(problems), journal=journal, submissions=submissions, requests=requests)
    if undecided:
        return failed(
            list(undecided),
            journal=journal,
            submissions=submissions,
            requests=requests,
            verdict=CaseVerdict.INCONCLUSIVE,
        )
    return passed(passing, journal=journal, submissions=submissions, requests=requests)


Check = Callable[["Bundle"], CaseOutcome]


@dataclass(frozen=True)
class CaseSpec:
    """One conformance case: stable ID, what it checks, why (basis, grade), how strongly (level)."""

    id: str
    title: str
    basis: str
    level: Level
    area: str
    needs: tuple[str, ...]
    check: Check
    grade: Grade
    result: str = "portal"

    def judge(self, bundle: Bundle) -> CaseResult:
        """Run the check on `bundle`, turning missing evidence into SKIP and any exception into ERROR."""
        started = time.perf_counter()
        missing = [need for need in self.needs if not bundle.provides(need)]
        try:
            if missing:
                raise SkipCase("; ".join(bundle.missing_reason(need) for need in missing))
            outcome = self.check(bundle)
        except SkipCase as skip:
            outcome = CaseOutcome(CaseVerdict.SKIP, str(skip))
        except Exception as exc:  # noqa: BLE001 - by design: a crashing check is a harness bug, reported as error
            where = traceback.extract_tb(exc.__traceback__)[-1]
            outcome = CaseOutcome(
                CaseVerdict.ERROR, f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
            )
        return CaseResult(
            case_id=self.id,
            title=self.title,
            area=self.area,
            level=self.level,
            basis=self.basis,
            verdict=outcome.verdict,
            message=outcome.message,
            evidence=outcome.evidence,
            duration_ms=(time.perf_counter() - started) * 1000,
            grade=self.grade.value,
            result=self.result,
        )


class Registry:
    """Cases by ID, in registration order; selection by ID, area or basis."""

    def __init__(self) -> None:
        self._cases: dict[str, CaseSpec] = {}

    def add(self, spec: CaseSpec) -> CaseSpec:
        if spec.id in self._cases:
            raise DuplicateCase(f"case ID {spec.id} is already registered ({self._cases[spec.id].title!r})")
        if spec.area not in AREAS:
            raise ValueError(f"case {spec.id}: area must be one of {', '.join(AREAS)}")
        if spec.result not in RESULTS:
            raise ValueError(f"case {spec.id}: result must be one of {', '.join(RESULTS)}")
        self._cases[spec.id] = spec
        return spec

    def all(self) -> list[CaseSpec]:
        """Every case, grouped by area in catalogue order (documents, signature, api, deadline, flows)."""
        return sorted(self._cases.values(), key=lambda spec: AREAS.index(spec.area))

    def get(self, case_id: str) -> CaseSpec:
        return self._cases[case_id]

    def ids(self) -> list[str]:
        return [spec.id for spec in self.all()]

    def select(self, *, ids: Iterable[str] = (), areas: Iterable[str] = (), basis: str | None = None) -> list[CaseSpec]:
        """Cases matching every given filter; an ID may end in `*` (prefix), unknown IDs raise KeyError."""
        wanted, areas = list(ids), set(areas)
        for pattern in wanted:
            if not any(_id_matches(pattern, case_id) for case_id in self._cases):
                raise KeyError(f"no case matches {pattern!r}")
        return [
            spec
            for spec in self.all()
            if (not wanted or any(_id_matches(p, spec.id) for p in wanted))
            and (not areas or spec.area in areas)
            and (basis is None or basis.lower() in spec.basis.lower())
        ]


def _id_matches(pattern: str, case_id: str) -> bool:
    return case_id.startswith(pattern[:-1]) if pattern.endswith("*") else case_id == pattern


registry = Registry()


def case(
    *,
    id: str,
    title: str,
    basis: str,
    grade: Grade,
    level: Level = Level.MUST,
    area: str,
    needs: tuple[str, ...] = (),
    result: str = "portal",
) -> Callable[[Check], Check]:
    """Register the decorated check in the global registry under `id` (see `Registry.add`); `grade` says
    how sure we are the real portal checks the same (docs/fidelity.md)."""

    def register(check: Check) -> Check:
        registry.add(CaseSpec(id, title, basis, level, area, needs, check, grade, result))
        return check

    return register
