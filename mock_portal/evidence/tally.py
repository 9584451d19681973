"""What real sends say about each graded behaviour of `mock_portal.fidelity`.

A check failed in a send when either mode made it an error: each mode stops where it refuses, so one
mode may never reach a check the other refuses on (`strict` stops at a UTF-8 BOM, `portal` reads on and
finds the signature broken: two failed checks, not one). A send the real portal accepted (MaKetQua 200)
although one of the sandbox's checks failed shows the real portal does not refuse on that check. A send
it refused (205) where exactly one behaviour's check failed shows it refuses on that one; when several
failed, the refusal is not attributed to any of them (counted apart). Other real codes (401, 500, 1001,
no reply) say nothing about a document's checks. Whether a send supports or contradicts `portal` mode
depends on what that mode did with the failed check in that very send (a schema field between the
sources is a warning, outside every source's shape a refusal): `portal` mode refused on it when it made
it an error; a real 200 supports a warning and contradicts a refusal, a real 205 the other way round.
`strict` refuses every failed check it reaches, so each real 200 counted here is a send `strict` mode is
stricter than the real portal on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mock_portal import fidelity
from mock_portal.evidence.record import ABSENT, EvidenceRecord
from mock_portal.results.codes import SubmitResult
from mock_portal.results.findings import Severity

ACCEPTED, REFUSED = SubmitResult.OK.value, SubmitResult.INVALID_FILE.value
_LAST_STEP = re.compile(r"([^/\[]+)(?:\[\d+\])?$")


@dataclass
class BehaviourTally:
    """The real sends that bear on one behaviour."""

    key: str
    grade: str
    portal_action: str
    """`refuse` or `warn`: what `portal` mode does when the check fails."""
    accepted_warned: int = 0
    """Real 200 although the check failed; `portal` mode warned: supports it."""
    accepted_refused: int = 0
    """Real 200 although the check failed; `portal` mode refused: contradicts it."""
    refused_refused: int = 0
    """Real 205 with this the only behaviour whose check failed; `portal` mode refused: supports it."""
    refused_warned: int = 0
    """Real 205 with this the only failed behaviour; `portal` mode only warned: contradicts it."""
    refused_with_others: int = 0
    """Real 205 with other behaviours' checks failing too: not attributed."""
    days: set[str] = field(default_factory=set)

    @property
    def supports(self) -> int:
        """Sends that agree with what `portal` mode did."""
        return self.accepted_warned + self.refused_refused

    @property
    def contradicts(self) -> int:
        """Sends that show the real portal did the other thing."""
        return self.accepted_refused + self.refused_warned

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "grade": self.grade,
            "portal_action": self.portal_action,
            "accepted_warned": self.accepted_warned,
            "accepted_refused": self.accepted_refused,
            "refused_refused": self.refused_refused,
            "refused_warned": self.refused_warned,
            "refused_with_others": self.refused_with_others,
            "supports": self.supports,
            "contradicts": self.contradicts,
            "first_day": min(self.days) if self.days else None,
            "last_day": max(self.days) if self.days else None,
        }


def _behaviours() -> tuple[dict[str, fidelity.Behaviour], dict[str, fidelity.Behaviour]]:
    by_key = {behaviour.key: behaviour for behaviour in fidelity.registry()}
    by_code: dict[str, fidelity.Behaviour] = {}
    for behaviour in fidelity.registry():
        for code in behaviour.codes:
            by_code.setdefault(code, behaviour)
    return by_key, by_code


_BY_KEY, _BY_CODE = _behaviours()


def behaviour_of(code: str, path: str | None, doc_type: str) -> fidelity.Behaviour | None:
    """The graded behaviour a failed check reports: a field's own row for a schema finding on a disputed
    field (`schema.GBT.NGAY_SINH`), else the behaviour that names the code; None for a code no behaviour
    names (counted as unregistered)."""
    if code in fidelity.SCHEMA_CODES and path:
        step = _LAST_STEP.search(path)
        own = _BY_KEY.get(f"schema.{doc_type}.{step.group(1)}") if step else None
        if own is not None:
            return own
    return _BY_CODE.get(code)


@dataclass
class Tally:
    """Every behaviour some real send bears on, and the failed checks no behaviour names."""

    behaviours: dict[str, BehaviourTally] = field(default_factory=dict)
    unregistered: dict[str, int] = field(default_factory=dict)
    unexplained_refusals: int = 0
    """Real 205 where the sandbox found nothing to refuse in either mode: a check it lacks."""

    def add(self, record: EvidenceRecord) -> None:
        if record.real_code not in (ACCEPTED, REFUSED):
            return
        failed = self._failed(record)
        if record.real_code == REFUSED and not failed:
            self.unexplained_refusals += 1
        for behaviour, portal_refused in failed.values():
            tally = self.behaviours.setdefault(
                behaviour.key,
                BehaviourTally(behaviour.key, behaviour.evidence.grade.value, behaviour.evidence.portal.value),
            )
            tally.days.add(record.day)
            if record.real_code == ACCEPTED and portal_refused:
                tally.accepted_refused += 1
            elif record.real_code == ACCEPTED:
                tally.accepted_warned += 1
            elif len(failed) > 1:
                tally.refused_with_others += 1
            elif portal_refused:
                tally.refused_refused += 1
            else:
                tally.refused_warned += 1

    def _failed(self, record: EvidenceRecord) -> dict[str, tuple[fidelity.Behaviour, bool]]:
        """The behaviours whose check failed (an error in either mode, or one `strict` would refuse where only
        `portal` mode got that far: `strict` stops at a BOM), each with whether `portal` mode refused on it in
        this send (an error there)."""
        failed: dict[str, tuple[fidelity.Behaviour, bool]] = {}
        for finding in record.findings:
            portal_only = finding.strict == ABSENT and fidelity.strict_refuses(finding.code, finding.portal)
            if Severity.ERROR.value not in (finding.portal, finding.strict) and not portal_only:
                continue
            behaviour = behaviour_of(finding.code, finding.path, record.doc_type)
            if behaviour is None:
                self.unregistered[finding.code] = self.unregistered.get(finding.code, 0) + 1
                continue
            refused = finding.portal == Severity.ERROR.value or failed.get(behaviour.key, (behaviour, False))[1]
            failed[behaviour.key] = (behaviour, refused)
        return failed

    def to_dict(self) -> dict[str, object]:
        return {
            "behaviours": [self.behaviours[key].to_dict() for key in sorted(self.behaviours)],
            "unregistered": dict(sorted(self.unregistered.items())),
            "unexplained_refusals": self.unexplained_refusals,
        }


def tally(records: Iterable[EvidenceRecord]) -> Tally:
    """What `records` say about each behaviour."""
    result = Tally()
    for record in records:
        result.add(record)
    return result
