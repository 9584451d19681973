"""Death-notice (GBT) rules: chronology of birth, admission and death; ICD-10 code form."""

from __future__ import annotations

import re
from datetime import date, datetime

from ..results.findings import Severity
from .doctypes import DocumentType
from .rulebook import GBT, Fields, Issue, Issues, RuleContext, as_birth, as_datetime, rule, text

_ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9]{1,4})?")


def _order_issue(earlier: str, later: str, first: datetime, second: datetime) -> Issue:
    return Issue(
        later,
        f"{later} ({second:%d/%m/%Y %H:%M}) trước {earlier} ({first:%d/%m/%Y %H:%M}).",
        f"{later} ({second:%Y-%m-%d %H:%M}) is before {earlier} ({first:%Y-%m-%d %H:%M}).",
        expected=f">= {first:%Y%m%d%H%M}",
        received=f"{second:%Y%m%d%H%M}",
    )


@rule(
    "RULE_GBT_CHRONOLOGY",
    Severity.ERROR,
    GBT,
    ("NGAYGIO_VV", "NGAY_TV"),
    "Ngày sinh ≤ giờ vào viện ≤ giờ tử vong.",
    "Birth <= admission <= death.",
)
def gbt_chronology(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    birth = as_birth(text(fields, "NGAY_SINH"))
    admitted = as_datetime(text(fields, "NGAYGIO_VV"), 12)
    died = as_datetime(text(fields, "NGAY_TV"), 12)
    birth_start = None
    if birth is not None:
        day = birth.day or date(birth.year, 1, 1)
        birth_start = datetime(day.year, day.month, day.day)
    # Compare each present time with the latest earlier one that is present.
    previous: tuple[str, datetime] | None = ("NGAY_SINH", birth_start) if birth_start else None
    for name, when in (("NGAYGIO_VV", admitted), ("NGAY_TV", died)):
        if when is None:
            continue
        if previous and when < previous[1]:
            yield _order_issue(previous[0], name, previous[1], when)
        previous = (name, when)


@rule(
    "RULE_ICD10_FORMAT",
    Severity.ERROR,
    GBT,
    ("BENH_ICD10_ID",),
    "BENH_ICD10_ID có dạng mã ICD-10 (ví dụ M00.00), tối đa 7 ký tự.",
    "BENH_ICD10_ID is an ICD-10 code (e.g. M00.00), at most 7 characters.",
)
def icd10_format(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    value = text(fields, "BENH_ICD10_ID")
    if value and (len(value) > 7 or not _ICD10.fullmatch(value)):
        yield Issue(
            "BENH_ICD10_ID",
            "BENH_ICD10_ID không đúng dạng mã ICD-10 (chữ cái + 2 số, tuỳ chọn '.' + 1–4 số).",
            "BENH_ICD10_ID is not an ICD-10 code (letter + 2 digits, optionally '.' + 1-4 digits).",
            expected="A00 | A00.0 ... A00.0000",
            received=value,
        )
