"""The record of one judged send that carries no personal data (Decree 13/2023/NĐ-CP).

Kept: the document type and loaiHs, the day it was sent (Vietnam time), the real reply code, the code
the sandbox answers in each mode, and per finding its code, field path and severity in each mode (or
`absent`: no finding in that mode); the
SHA-256 of the file (to count a file sent twice once). Never kept: a field's value, a finding's
message or expected/received text (they quote values), the facility, the account, MaGD, a token or a
password.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mock_portal.evidence.judge import Judged
from mock_portal.portal.intake import Verdict
from mock_portal.results.grades import Strictness

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class FindingRecord:
    """One check that failed, without its message: the code, the field path, what each mode made of it."""

    code: str
    path: str | None
    portal: str
    """`error` or `warning` in `portal` mode; `absent` when it has no finding there (it passed: its shapes are
    looser)."""
    strict: str
    """The same in `strict` mode (which stops at the first refusal of a stage, as the portal does)."""

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "path": self.path, "portal": self.portal, "strict": self.strict}


@dataclass(frozen=True)
class EvidenceRecord:
    doc_type: str
    """GCS, GBT, or "" when the file did not say."""
    loai_hs: str
    day: str
    """The day it was sent, YYYY-MM-DD in Vietnam time."""
    real_code: str
    """MaKetQua the real portal answered; "" for no reply."""
    portal_code: str
    strict_code: str
    findings: tuple[FindingRecord, ...]
    file_sha256: str

    def to_dict(self) -> dict[str, object]:
        return {
            "doc_type": self.doc_type,
            "loai_hs": self.loai_hs,
            "day": self.day,
            "real_code": self.real_code,
            "sandbox": {"portal": self.portal_code, "strict": self.strict_code},
            "findings": [finding.to_dict() for finding in self.findings],
            "file_sha256": self.file_sha256,
        }


ABSENT = "absent"
"""A finding's severity in a mode that never reached its check."""


def _severities(verdict: Verdict) -> dict[tuple[str, str | None], str]:
    """(code, path) -> severity of each finding of `verdict`, in its order (the first of a pair seen twice)."""
    found: dict[tuple[str, str | None], str] = {}
    for finding in verdict.findings:
        found.setdefault((finding.code, finding.path), finding.severity.value)
    return found


def _findings(strict: Verdict, portal: Verdict) -> tuple[FindingRecord, ...]:
    """The union of both verdicts' findings by code and path: strict's in its order (the order of causes),
    then those only `portal` mode reached, in its order. Each mode stops where it refuses, `strict` often
    sooner (a UTF-8 BOM: `strict` stops there, `portal` reads on to the signature): a finding one mode
    never reached is `absent` there (so is one `portal` mode passed), and the tally tells the two apart by
    which mode has it: `strict` refuses whatever fails in `portal` mode."""
    in_strict, in_portal = _severities(strict), _severities(portal)
    keys = list(in_strict) + [key for key in in_portal if key not in in_strict]
    return tuple(
        FindingRecord(code, path, in_portal.get((code, path), ABSENT), in_strict.get((code, path), ABSENT))
        for code, path in keys
    )


def record_of(judged: Judged) -> EvidenceRecord:
    """The shareable record of `judged`: the findings of both modes (`_findings`), each with its severity
    in both."""
    strict = judged.verdicts[Strictness.STRICT]
    portal = judged.verdicts[Strictness.PORTAL]
    findings = _findings(strict, portal)
    sent = judged.sent
    return EvidenceRecord(
        doc_type=strict.doc_type.name if strict.doc_type else "",
        loai_hs=sent.loai_hs,
        day=sent.sent_at.astimezone(VIETNAM).date().isoformat(),
        real_code=sent.real_code,
        portal_code=portal.result.value,
        strict_code=strict.result.value,
        findings=findings,
        file_sha256=hashlib.sha256(strict.file).hexdigest() if strict.file else "",
    )
