"""Which grades field evidence would move, and what it contradicts (`mock-portal fidelity --evidence`).

From the tally of real sends (`tally.py`), per graded behaviour:
- **moves**: RECONSTRUCTED or ADVISORY, supported by some sends and contradicted by none: it would become
  OBSERVED with the source "field evidence: N sends, FIRST_DAY–LAST_DAY";
- **contradicted**: some sends show the real portal did the other thing than `portal` mode: the grade does
  not move, a maintainer must look (the sends may be of another time, or the sandbox's check may be wrong);
- **corroborated**: CONFIRMED or OBSERVED, supported and not contradicted;
- **not attributed**: only real refusals where other checks failed too (they name no single cause).
Nothing here changes `fidelity.py`: a grade moves when a maintainer edits its row, citing the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from mock_portal.evidence.field import FieldEvidence
from mock_portal.evidence.tally import BehaviourTally
from mock_portal.results.grades import Grade

MOVES, CONTRADICTED, CORROBORATED, NOT_ATTRIBUTED = "moves", "contradicted", "corroborated", "not_attributed"
STATUSES = (MOVES, CONTRADICTED, CORROBORATED, NOT_ATTRIBUTED)
_MOVABLE = {Grade.RECONSTRUCTED.value, Grade.ADVISORY.value}


@dataclass(frozen=True)
class GradeReview:
    """What the real sends say about one behaviour, and what it would do to its grade."""

    counts: BehaviourTally
    status: str

    @property
    def would_move_to(self) -> str | None:
        return Grade.OBSERVED.value if self.status == MOVES else None

    @property
    def source(self) -> str | None:
        """The source a moved grade would cite: the supporting sends, and the first and last day of the sends
        that bear on it (a refusal with other checks failing too counts in the days, not in N)."""
        if self.status != MOVES:
            return None
        days = sorted(self.counts.days)
        return f"field evidence: {self.counts.supports} sends, {days[0]}–{days[-1]}"

    def contradiction(self) -> str | None:
        """Which mode the sends contradict, and how."""
        counts, parts = self.counts, []
        if counts.accepted_refused:
            parts.append(f"portal mode refuses; the real portal accepted {counts.accepted_refused} sends failing it")
        if counts.refused_warned:
            parts.append(
                f"portal mode only warns; the real portal refused {counts.refused_warned} sends where it was the"
                " only failed check"
            )
        return "; ".join(parts) or None

    def listed(self) -> dict[str, object]:
        """The review's row: the behaviour's key and grade, then `to_dict()`."""
        return {"key": self.counts.key, "grade": self.counts.grade, **self.to_dict()}

    def to_dict(self) -> dict[str, object]:
        """The field-evidence counts `GET /sandbox/fidelity` adds to the behaviour."""
        counts = self.counts.to_dict()
        return {
            "status": self.status,
            "supports": self.counts.supports,
            "contradicts": self.counts.contradicts,
            "not_attributed": self.counts.refused_with_others,
            "first_day": counts["first_day"],
            "last_day": counts["last_day"],
            "would_move_to": self.would_move_to,
            "source": self.source,
            "contradiction": self.contradiction(),
        }


def _status(counts: BehaviourTally) -> str:
    if counts.contradicts:
        return CONTRADICTED
    if not counts.supports:
        return NOT_ATTRIBUTED
    return MOVES if counts.grade in _MOVABLE else CORROBORATED


@dataclass(frozen=True)
class EvidenceReview:
    """The review of some field evidence: each behaviour it bears on, and what fits no behaviour."""

    evidence: FieldEvidence
    behaviours: dict[str, GradeReview]
    unregistered: dict[str, int]
    """Failed checks whose code no behaviour names, with how many sends."""
    unexplained_refusals: int
    """Real refusals (205) where the sandbox finds nothing to refuse even in `strict` mode: a check it lacks."""

    def with_status(self, status: str) -> list[GradeReview]:
        return [review for key, review in sorted(self.behaviours.items()) if review.status == status]

    def to_dict(self) -> dict[str, object]:
        days = sorted(record.day for record in self.evidence.records)
        return {
            "files": list(self.evidence.files),
            "sandbox_versions": list(self.evidence.sandbox_versions),
            "sends": len(self.evidence.records),
            "duplicates": self.evidence.duplicates,
            "withheld": self.evidence.withheld,
            "first_day": days[0] if days else None,
            "last_day": days[-1] if days else None,
            **{status: [r.listed() for r in self.with_status(status)] for status in STATUSES},
            "unregistered": self.unregistered,
            "unexplained_refusals": self.unexplained_refusals,
        }


def review(evidence: FieldEvidence) -> EvidenceReview:
    counted = evidence.tally()
    return EvidenceReview(
        evidence,
        {key: GradeReview(counts, _status(counts)) for key, counts in counted.behaviours.items()},
        dict(sorted(counted.unregistered.items())),
        counted.unexplained_refusals,
    )


TITLES = {
    MOVES: "Would move to OBSERVED",
    CONTRADICTED: "Contradicted (the grade stays: a maintainer must look)",
    CORROBORATED: "Corroborated",
    NOT_ATTRIBUTED: "Not attributed (real refusals where other checks failed too)",
}


def _line(done: GradeReview) -> str:
    counts = done.counts
    if done.status == MOVES:
        return f"would be OBSERVED, {done.source}"
    if done.status == CONTRADICTED:
        return f"{done.contradiction()} ({counts.supports} sends agree)"
    if done.status == CORROBORATED:
        return f"{counts.supports} sends agree"
    return f"{counts.refused_with_others} sends"


def render_text(done: EvidenceReview) -> str:
    """The review for a terminal: the grades that would move first, then what the sends contradict."""
    whole = done.to_dict()
    span = f", {whole['first_day']}–{whole['last_day']}" if whole["first_day"] else ""
    lines = [
        f"Field evidence: {len(done.evidence.files)} file(s), {whole['sends']} sends{span}"
        f" (judged by sandbox {', '.join(done.evidence.sandbox_versions)}; {done.evidence.duplicates} duplicates"
        f" counted once, {done.evidence.withheld} withheld by their writers)",
    ]
    for status, title in TITLES.items():
        found = done.with_status(status)
        lines += ["", f"{title}: {len(found)}"] + [f"  {r.counts.key}  {r.counts.grade}: {_line(r)}" for r in found]
    if done.unregistered:
        named = ", ".join(f"{code} ({count})" for code, count in done.unregistered.items())
        lines += ["", f"Failed checks no behaviour names: {named}"]
    if done.unexplained_refusals:
        lines += [
            "",
            f"Real refusals the sandbox finds nothing to refuse in, in either mode: {done.unexplained_refusals}"
            " (a check the sandbox lacks)",
        ]
    return "\n".join(lines) + "\n"
