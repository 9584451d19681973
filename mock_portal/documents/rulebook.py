"""The business-rule registry: what a rule is, the context it runs in, and value readers.

Rules live in `rules_common`, `rules_identity`, `rules_gcs` and `rules_gbt`; each is a function
registered with `@rule(...)` under a stable code and severity. A rule yields `Issue`s (field +
message); `check_rules` turns them into `Finding`s with the rule's code, severity and the field's
XPath, so a rule can never report under someone else's code.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from ..results.findings import Finding, Severity
from .doctypes import DocumentType, FieldSpec

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DATE_KINDS = ("date", "birthdate", "datetime12", "datetime14")
"""The field kinds (doctypes.KIND_PATTERNS) whose values are dates or times."""
DATE_FIELDS = "*date fields*"
"""A rule's `fields` entry for every field of a kind in DATE_KINDS."""
BOTH = frozenset(DocumentType)
GCS = frozenset({DocumentType.GCS})
GBT = frozenset({DocumentType.GBT})


@dataclass(frozen=True)
class RuleContext:
    """Facts about the submission that rules compare the document with."""

    facility_code: str
    """`maCskcb` of the submitting facility (the authenticated account's facility)."""
    received_at: datetime
    """Receipt instant (timezone-aware), from the sandbox clock."""
    tz: ZoneInfo = field(default=VN_TZ)
    """Zone of the document's local dates and times (Vietnam time)."""

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None:
            raise ValueError("RuleContext.received_at must be timezone-aware")

    @property
    def received_local(self) -> datetime:
        """Receipt time as naive local time, comparable with the document's timestamps."""
        return self.received_at.astimezone(self.tz).replace(tzinfo=None)

    @property
    def receipt_date(self) -> date:
        return self.received_local.date()


@dataclass(frozen=True)
class Issue:
    """One problem a rule found, before it becomes a `Finding`."""

    field: str
    message_vi: str
    message_en: str
    expected: str | None = None
    received: str | None = None


Fields = Mapping[str, str]
"""A document's field values as the rules read them: `run_rules` strips each once per document."""
Issues = Iterator[Issue]
Check = Callable[[DocumentType, Mapping[str, str], RuleContext], Iterable[Issue]]


@dataclass(frozen=True)
class Rule:
    """A registered business rule: stable code, severity, scope, description, check function."""

    code: str
    severity: Severity
    doc_types: frozenset[DocumentType]
    fields: tuple[str, ...]
    description_vi: str
    description_en: str
    check: Check = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.check.__name__

    def reads(self, spec: FieldSpec) -> bool:
        """Does the rule judge this field? `fields` names fields, globs (`MATINH_*`) or `*date fields*`."""
        if DATE_FIELDS in self.fields and spec.kind in DATE_KINDS:
            return True
        return any(fnmatch.fnmatchcase(spec.name, pattern) for pattern in self.fields)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description, for the control API and the docs."""
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "doc_types": sorted(d.name for d in self.doc_types),
            "fields": list(self.fields),
            "description_vi": self.description_vi,
            "description_en": self.description_en,
        }


REGISTRY: list[Rule] = []


def rule(
    code: str,
    severity: Severity,
    doc_types: frozenset[DocumentType],
    fields: tuple[str, ...],
    vi: str,
    en: str,
) -> Callable[[Check], Check]:
    """Register the decorated check; a duplicate code is a programming error."""
    if not re.fullmatch(r"RULE_[A-Z0-9_]+", code):
        raise ValueError(f"bad rule code {code!r}")

    def register(check: Check) -> Check:
        if any(r.code == code for r in REGISTRY):
            raise ValueError(f"duplicate rule code {code}")
        REGISTRY.append(Rule(code, severity, doc_types, fields, vi, en, check))
        return check

    return register


def run_rules(doc_type: DocumentType, fields: Mapping[str, str], ctx: RuleContext) -> list[Finding]:
    """Every applicable rule's findings, in registry order. Each field's value is read (stripped) once
    here, not by each rule that reads it: the rules read fields about 170 times per document."""
    values = {name: value.strip() for name, value in fields.items() if isinstance(value, str)}
    findings = []
    for registered in REGISTRY:
        if doc_type not in registered.doc_types:
            continue
        for issue in registered.check(doc_type, values, ctx):
            findings.append(
                Finding(
                    registered.code,
                    registered.severity,
                    issue.message_vi,
                    issue.message_en,
                    path=doc_type.path(issue.field),
                    expected=issue.expected,
                    received=issue.received,
                )
            )
    return findings


# --- value readers: None means "absent or not in its own format" (dependent rules then skip) ---

_DIGITS = re.compile(r"[0-9]+")


def text(fields: Fields, name: str) -> str:
    """The value of field `name` ("" when absent); `run_rules` has stripped it."""
    return fields.get(name, "")


def whole(value: str) -> int | None:
    return int(value) if _DIGITS.fullmatch(value) and len(value) <= 9 else None


def as_date(value: str) -> date | None:
    """yyyyMMdd as a real calendar date."""
    if len(value) != 8 or not _DIGITS.fullmatch(value):
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def as_datetime(value: str, length: int) -> datetime | None:
    """yyyyMMddHHmm (12) or yyyyMMddHHmmss (14) as a real local time."""
    if len(value) != length or not _DIGITS.fullmatch(value):
        return None
    year, month, day, hour, minute = (int(value[i:j]) for i, j in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12)))
    try:
        return datetime(year, month, day, hour, minute, int(value[12:14] or 0))
    except ValueError:
        return None


@dataclass(frozen=True)
class BirthDate:
    """A birth date that may be known to the year only (`yyyy`, allowed by PL02)."""

    year: int
    day: date | None


def as_birth(value: str) -> BirthDate | None:
    if len(value) == 4 and _DIGITS.fullmatch(value):
        return BirthDate(int(value), None) if int(value) >= 1 else None
    day = as_date(value)
    return BirthDate(day.year, day) if day else None


def read_time(kind: str, value: str) -> date | datetime | BirthDate | None:
    """Read a value of a date-like field kind (see doctypes.KIND_PATTERNS)."""
    if kind == "date":
        return as_date(value)
    if kind == "birthdate":
        return as_birth(value)
    if kind == "datetime12":
        return as_datetime(value, 12)
    if kind == "datetime14":
        return as_datetime(value, 14)
    raise KeyError(kind)


def fold(value: str) -> str:
    """Normalise for phrase comparison: NFC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFC", value).casefold().split())
