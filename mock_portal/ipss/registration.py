"""The simulated IPSS (civil registration): what HIAP shared, and the registrations that use it.

A birth registration names MA_GCS, the mother's identity number and the child's name; a death
registration names MA_GBT and the deceased's identity number. Each is accepted only when the
certificate was shared to IPSS and its latest issue matches; otherwise every specific reason is
given. Names compare after Unicode NFC, case folding and whitespace collapsing (a name typed
with combining accents is the same name).

Errors: `mock_portal.results.errors.NotFound` (certificate never accepted, or accepted but not shared yet).
"""

from __future__ import annotations

import enum
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mock_portal.results.errors import NotFound
from mock_portal.results.findings import Finding, Severity
from mock_portal.store import Application, Repository, SharedDocument
from mock_portal.store import ipss as ipss_store

__all__ = [
    "Current",
    "IssueKind",
    "Reason",
    "RegistrationDecision",
    "RegistrationRefusal",
    "certificate_history",
    "current_issue",
    "issue_kinds",
    "normalise_name",
    "register_birth",
    "register_death",
]

_NAMES = {"GCS": ("giấy chứng sinh", "birth certificate"), "GBT": ("giấy báo tử", "death notice")}

NEVER_SIGNED = datetime(1, 1, 1, tzinfo=UTC)
"""Ranks a copy without a signing time before any with one (stored times are aware, like this one)."""


class Reason(enum.Enum):
    """Why IPSS refused a registration (stable codes)."""

    CERTIFICATE_NOT_FOUND = "CERTIFICATE_NOT_FOUND"
    CERTIFICATE_NOT_SHARED = "CERTIFICATE_NOT_SHARED"
    MOTHER_ID_MISMATCH = "MOTHER_ID_MISMATCH"
    CHILD_NAME_MISMATCH = "CHILD_NAME_MISMATCH"
    DECEASED_ID_MISMATCH = "DECEASED_ID_MISMATCH"


class IssueKind(enum.Enum):
    """How one shared copy relates to the earlier ones of the same certificate."""

    ISSUE = "ISSUE"
    """A first issue (CAP_LAN_DAU=1 / no SO_BAOTU_BD) with data not seen before."""
    REISSUE = "REISSUE"
    """A reissue (CAP_LAN_DAU=0, or a death notice naming the one it replaces)."""
    RESEND = "RESEND"
    """The same signed data as an earlier copy, sent again."""


@dataclass(frozen=True)
class RegistrationRefusal:
    """One reason a registration application is refused."""

    reason: Reason
    message_vi: str
    message_en: str
    field: str | None = None
    """The certificate field that did not match, when there is one."""

    def to_dict(self) -> dict[str, str | None]:
        return {
            "code": self.reason.value,
            "field": self.field,
            "message_vi": self.message_vi,
            "message_en": self.message_en,
        }


@dataclass(frozen=True)
class RegistrationDecision:
    """A stored application: accepted with the certificate issue it used, or refused with its reasons."""

    application: Application
    certificate: SharedDocument | None
    reasons: tuple[RegistrationRefusal, ...] = field(default=())

    @property
    def accepted(self) -> bool:
        return not self.reasons


def normalise_name(name: str) -> str:
    """NFC, case-folded, single spaces: `Nguyễn  văn A` (decomposed accents) == `NGUYỄN VĂN A`."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return " ".join(folded.split())


def _identity(number: str) -> str:
    return "".join(number.split())


def certificate_history(repo: Repository, doc_type: str, code: str) -> Sequence[SharedDocument]:
    """Every shared copy of the certificate, oldest first; NotFound says whether HIAP has it at all."""
    history = ipss_store.shared_by_code(repo, doc_type, code)
    if history:
        return history
    refusal = _absent(repo, doc_type, code)
    raise NotFound(refusal.reason.value, refusal.message_vi, refusal.message_en)


def _content(fields: dict[str, str]) -> str:
    """The signed fields as one canonical string (equal content, equal string)."""
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def issue_kinds(history: Sequence[SharedDocument]) -> list[IssueKind]:
    """The kind of each copy in `history` (oldest first); linear in the number of copies."""
    kinds, seen = [], set()
    for copy in history:
        content = _content(copy.fields)
        if content in seen:
            kinds.append(IssueKind.RESEND)
        else:
            kinds.append(IssueKind.ISSUE if copy.first_issue else IssueKind.REISSUE)
        seen.add(content)
    return kinds


@dataclass(frozen=True)
class Current:
    """The issue a registration must match, and what was odd about the history on the way."""

    issue: SharedDocument
    findings: tuple[Finding, ...] = ()


def current_issue(history: Sequence[SharedDocument], kinds: Sequence[IssueKind] | None = None) -> Current:
    """The issue in force, by issue semantics rather than arrival order: a resend never supersedes
    anything (it repeats an earlier issue); a reissue supersedes the first issue; of several reissues
    the latest by issue date, then signing time wins. Two first issues with different content are a
    conflict the real registry would have to resolve by hand: flagged, and resolved the same way on
    every server and in every commit order — the latest by issue date and signing time, ties broken
    by the content itself."""
    kinds = kinds if kinds is not None else issue_kinds(history)
    candidates = [copy for copy, kind in zip(history, kinds, strict=True) if kind is not IssueKind.RESEND]

    def rank(copy: SharedDocument) -> tuple[bool, str, datetime, str]:
        return (not copy.first_issue, copy.issue_date, copy.signing_time or NEVER_SIGNED, _content(copy.fields))

    current = max(candidates, key=rank)
    firsts = [copy for copy, kind in zip(history, kinds, strict=True) if kind is IssueKind.ISSUE]
    if len(firsts) < 2:
        return Current(current)
    codes = ", ".join(copy.ma_gd for copy in firsts)
    finding = Finding(
        "IPSS_CONFLICTING_FIRST_ISSUES",
        Severity.WARNING,
        f"{len(firsts)} bản cấp lần đầu với nội dung khác nhau ({codes}); dùng bản {current.ma_gd}",
        f"{len(firsts)} first issues with different content ({codes}); {current.ma_gd} is taken as current "
        "(latest issue date and signing time, then content order)",
        received=str(len(firsts)),
    )
    return Current(current, (finding,))


def register_birth(
    repo: Repository, now: datetime, ma_gcs: str, mother_id_number: str, child_name: str
) -> RegistrationDecision:
    request = {"ma_gcs": ma_gcs, "mother_id_number": mother_id_number, "child_name": child_name}
    latest, refusals = _latest(repo, "GCS", ma_gcs)
    if latest is not None:
        fields = latest.fields
        if _identity(mother_id_number) != _identity(fields.get("SO_CCCD_NND", "")):
            refusals.append(
                RegistrationRefusal(
                    Reason.MOTHER_ID_MISMATCH,
                    "Số định danh của người mẹ không khớp với SO_CCCD_NND trên giấy chứng sinh",
                    "The mother's identity number does not match SO_CCCD_NND of the birth certificate",
                    "SO_CCCD_NND",
                )
            )
        if normalise_name(child_name) != normalise_name(fields.get("TEN_CON", "")):
            refusals.append(
                RegistrationRefusal(
                    Reason.CHILD_NAME_MISMATCH,
                    "Tên của trẻ không khớp với TEN_CON trên giấy chứng sinh",
                    "The child's name does not match TEN_CON of the birth certificate (compared after Unicode "
                    "NFC, case and whitespace normalisation)",
                    "TEN_CON",
                )
            )
    return _decide(repo, now, "BIRTH", ma_gcs, request, latest, refusals)


def register_death(repo: Repository, now: datetime, ma_gbt: str, deceased_id_number: str) -> RegistrationDecision:
    request = {"ma_gbt": ma_gbt, "deceased_id_number": deceased_id_number}
    latest, refusals = _latest(repo, "GBT", ma_gbt)
    if latest is not None and _identity(deceased_id_number) != _identity(latest.fields.get("SO_GIAYTO", "")):
        refusals.append(
            RegistrationRefusal(
                Reason.DECEASED_ID_MISMATCH,
                "Số giấy tờ tùy thân của người chết không khớp với SO_GIAYTO trên giấy báo tử",
                "The deceased's identity number does not match SO_GIAYTO of the death notice",
                "SO_GIAYTO",
            )
        )
    return _decide(repo, now, "DEATH", ma_gbt, request, latest, refusals)


def _latest(repo: Repository, doc_type: str, code: str) -> tuple[SharedDocument | None, list[RegistrationRefusal]]:
    """The shared issue in force (the one a registration must match), or why there is none."""
    history = ipss_store.shared_by_code(repo, doc_type, code)
    if history:
        return current_issue(history).issue, []
    return None, [_absent(repo, doc_type, code)]


def _absent(repo: Repository, doc_type: str, code: str) -> RegistrationRefusal:
    vi, en = _NAMES[doc_type]
    if ipss_store.accepted_count(repo, doc_type, code):
        return RegistrationRefusal(
            Reason.CERTIFICATE_NOT_SHARED,
            f"Cổng tiếp nhận đã nhận {vi} {code} nhưng chưa chia sẻ sang IPSS; vui lòng thử lại sau",
            f"HIAP accepted the {en} {code} but has not shared it with IPSS yet; try again shortly",
        )
    return RegistrationRefusal(
        Reason.CERTIFICATE_NOT_FOUND,
        f"Không có {vi} {code} trên hệ thống",
        f"No {en} {code} exists: HIAP never accepted one with that code",
    )


def _decide(
    repo: Repository,
    now: datetime,
    kind: str,
    code: str,
    request: dict[str, str],
    latest: SharedDocument | None,
    refusals: list[RegistrationRefusal],
) -> RegistrationDecision:
    application = ipss_store.add_application(
        repo,
        Application(
            kind=kind,
            certificate_code=code[:64],
            shared_document_id=latest.id if latest is not None else None,
            request=request,
            status="REFUSED" if refusals else "ACCEPTED",
            reasons=[r.to_dict() for r in refusals],
            created_at=now,
        ),
    )
    return RegistrationDecision(application, latest, tuple(refusals))
