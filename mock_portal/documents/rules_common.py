"""Rules shared by GCS and GBT: the integration code, dates and the submitting facility."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import date, datetime

from ..results.findings import Severity
from .doctypes import DocumentType, FieldSpec
from .rulebook import (
    BOTH,
    DATE_FIELDS,
    DATE_KINDS,
    GBT,
    Fields,
    Issue,
    Issues,
    RuleContext,
    as_date,
    read_time,
    rule,
    text,
)

_DATE_FORMATS = {
    "date": "yyyyMMdd",
    "birthdate": "yyyy | yyyyMMdd",
    "datetime12": "yyyyMMddHHmm",
    "datetime14": "yyyyMMddHHmmss",
}
# The event the certificate records: birth (GCS) or death (GBT), and its timestamp length.
EVENT_FIELD = {DocumentType.GCS: ("NGAY_SINH_CON", 14), DocumentType.GBT: ("NGAY_TV", 12)}


def code_pattern(doc_type: DocumentType) -> re.Pattern[str]:
    return re.compile(rf"[0-9]{{5}}\.{doc_type.code_kind}\.[0-9A-Z]{{5}}\.[0-9]{{2}}")


def valid_code(doc_type: DocumentType, fields: Mapping[str, str]) -> str | None:
    value = text(fields, doc_type.code_field)
    return value if code_pattern(doc_type).fullmatch(value) else None


def issue_date(doc_type: DocumentType, fields: Mapping[str, str]) -> date | None:
    return as_date(text(fields, doc_type.issue_date_field))


def event_time(doc_type: DocumentType, fields: Mapping[str, str]) -> datetime | None:
    name, length = EVENT_FIELD[doc_type]
    value = read_time(f"datetime{length}", text(fields, name))
    return value if isinstance(value, datetime) else None


@rule(
    "RULE_CODE_FORMAT",
    Severity.ERROR,
    BOTH,
    ("MA_GCS", "MA_GBT"),
    "MA_GCS/MA_GBT có dạng XXXXX.GCS.ZZZZZ.YY (TT 22/2025 PL I mục 4).",
    "MA_GCS/MA_GBT has the form XXXXX.GCS.ZZZZZ.YY (Circular 22/2025 Annex I item 4).",
)
def code_format(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    value = text(fields, doc_type.code_field)
    if value and valid_code(doc_type, fields) is None:
        form = f"XXXXX.{doc_type.code_kind}.ZZZZZ.YY"
        yield Issue(
            doc_type.code_field,
            f"{doc_type.code_field} phải có dạng {form} (5 số thứ tự, mã cơ sở 5 ký tự, 2 số năm).",
            f"{doc_type.code_field} must look like {form} (5-digit serial, 5-char facility, 2-digit year).",
            expected=form,
            received=value,
        )


@rule(
    "RULE_CODE_FACILITY",
    Severity.ERROR,
    BOTH,
    ("MA_GCS", "MA_GBT"),
    "Mã cơ sở trong MA_GCS/MA_GBT là cơ sở gửi dữ liệu.",
    "The facility in MA_GCS/MA_GBT is the submitting facility.",
)
def code_facility(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    code = valid_code(doc_type, fields)
    if code and code[10:15] != ctx.facility_code:
        yield Issue(
            doc_type.code_field,
            f"Mã cơ sở trong {doc_type.code_field} ({code[10:15]}) khác cơ sở gửi ({ctx.facility_code}).",
            f"The facility in {doc_type.code_field} ({code[10:15]}) is not the sender ({ctx.facility_code}).",
            expected=ctx.facility_code,
            received=code[10:15],
        )


@rule(
    "RULE_CODE_YEAR",
    Severity.ERROR,
    BOTH,
    ("MA_GCS", "MA_GBT"),
    "Hai số năm trong MA_GCS/MA_GBT là năm của ngày cấp.",
    "The 2-digit year in MA_GCS/MA_GBT is the year of the issue date.",
)
def code_year(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    code = valid_code(doc_type, fields)
    issued = issue_date(doc_type, fields)
    if code and issued and code[-2:] != f"{issued.year % 100:02d}":
        yield Issue(
            doc_type.code_field,
            f"Năm trong {doc_type.code_field} ({code[-2:]}) khác năm của {doc_type.issue_date_field}.",
            f"The year in {doc_type.code_field} ({code[-2:]}) differs from {doc_type.issue_date_field}.",
            expected=f"{issued.year % 100:02d}",
            received=code[-2:],
        )


@functools.cache
def _date_fields(doc_type: DocumentType) -> tuple[FieldSpec, ...]:
    return tuple(spec for spec in doc_type.fields if spec.kind in DATE_KINDS)


@rule(
    "RULE_DATE_INVALID",
    Severity.ERROR,
    BOTH,
    (DATE_FIELDS,),
    "Mọi trường ngày/giờ là ngày giờ có thật theo đúng định dạng.",
    "Every date/time field is a real calendar date/time in its format.",
)
def real_dates(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for spec in _date_fields(doc_type):
        value = text(fields, spec.name)
        if value and read_time(spec.kind, value) is None:
            yield Issue(
                spec.name,
                f"{spec.name} không phải ngày/giờ hợp lệ dạng {_DATE_FORMATS[spec.kind]}.",
                f"{spec.name} is not a real date/time in the form {_DATE_FORMATS[spec.kind]}.",
                expected=_DATE_FORMATS[spec.kind],
                received=value,
            )


@rule(
    "RULE_ISSUE_DATE_FUTURE",
    Severity.ERROR,
    BOTH,
    ("NGAY_CT", "NGAY_CAPGIAYBT"),
    "Ngày cấp không sau ngày cổng tiếp nhận.",
    "The issue date is not after the day the portal receives the document.",
)
def issue_not_future(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    issued = issue_date(doc_type, fields)
    if issued and issued > ctx.receipt_date:
        yield Issue(
            doc_type.issue_date_field,
            f"Ngày cấp {issued:%d/%m/%Y} sau ngày tiếp nhận {ctx.receipt_date:%d/%m/%Y}.",
            f"Issue date {issued:%Y-%m-%d} is after the receipt date {ctx.receipt_date:%Y-%m-%d}.",
            expected=f"<= {ctx.receipt_date:%Y%m%d}",
            received=f"{issued:%Y%m%d}",
        )


@rule(
    "RULE_ISSUE_BEFORE_EVENT",
    Severity.ERROR,
    BOTH,
    ("NGAY_CT", "NGAY_CAPGIAYBT"),
    "Ngày cấp không trước ngày sinh (GCS) / ngày tử vong (GBT).",
    "The issue date is not before the birth (GCS) / the death (GBT).",
)
def issue_after_event(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    issued, event = issue_date(doc_type, fields), event_time(doc_type, fields)
    name = EVENT_FIELD[doc_type][0]
    if issued and event and issued < event.date():
        yield Issue(
            doc_type.issue_date_field,
            f"Ngày cấp {issued:%d/%m/%Y} trước {name} ({event:%d/%m/%Y}).",
            f"Issue date {issued:%Y-%m-%d} is before {name} ({event:%Y-%m-%d}).",
            expected=f">= {event:%Y%m%d}",
            received=f"{issued:%Y%m%d}",
        )


@rule(
    "RULE_EVENT_IN_FUTURE",
    Severity.ERROR,
    BOTH,
    ("NGAY_SINH_CON", "NGAY_TV"),
    "Thời điểm sinh/tử vong không sau thời điểm tiếp nhận.",
    "The time of birth/death is not after the time of receipt.",
)
def event_not_future(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    event = event_time(doc_type, fields)
    if event and event > ctx.received_local:
        name = EVENT_FIELD[doc_type][0]
        yield Issue(
            name,
            f"{name} ({event:%d/%m/%Y %H:%M}) sau thời điểm tiếp nhận ({ctx.received_local:%d/%m/%Y %H:%M}).",
            f"{name} ({event:%Y-%m-%d %H:%M}) is after receipt ({ctx.received_local:%Y-%m-%d %H:%M}).",
            received=text(fields, name),
        )


@rule(
    "RULE_FACILITY_MISMATCH",
    Severity.ERROR,
    GBT,
    ("MACSKCB",),
    "MACSKCB là cơ sở gửi dữ liệu.",
    "MACSKCB is the submitting facility.",
)
def facility_is_sender(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    value = text(fields, "MACSKCB")
    if value and value != ctx.facility_code:
        yield Issue(
            "MACSKCB",
            f"MACSKCB ({value}) khác cơ sở gửi ({ctx.facility_code}).",
            f"MACSKCB ({value}) is not the submitting facility ({ctx.facility_code}).",
            expected=ctx.facility_code,
            received=value,
        )
