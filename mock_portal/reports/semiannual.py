"""The six-monthly implementation report of Official Dispatch 4410/BYT-KCB (Appendix 02).

For a period (`2025-H1`, `2025-H2`, or a from/to pair of dates, read in Vietnam time) and for each
facility and in total, for GCS and for GBT:

* **issued** — certificates issued in the period: each expectation whose issue instant lies in it,
  plus each distinct code of an accepted first issue (issue instant in the period) that no
  expectation accounts for;
* **sent** — submissions received in the period (loaiHs 61 = GCS, 60 = GBT), whatever their result;
* **accepted**, **refused** (by reason: the code of the submission's first error finding, else
  `MaKetQua <code>`), accepted **on time** / **late** (Decree 63/2024 Art. 25.1);
* **median** and **p95** working minutes from issue to acceptance (nearest rank), under the portal's
  working-time calendar;
* **shared to IPSS** — documents accepted in the period that IPSS holds now;
* **reissues** — accepted documents that are not first issues (CAP_LAN_DAU=0, SO_BAOTU_BD …).

`build(repo, period, calendar)` reads the repository and returns a frozen `Report`; `to_json` and
`to_csv` (UTF-8 with a BOM, headings in Vietnamese with English beside them) render it, `page` renders
it as HTML and `formats` picks one. Bad periods raise `InvalidInput`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from mock_portal import store
from mock_portal.control.clock import VN_TZ
from mock_portal.deadline.working_time import WorkingCalendar, counted_minutes
from mock_portal.portal.service import Portal
from mock_portal.results.errors import InvalidInput
from mock_portal.results.findings import Finding, first_error

__all__ = [
    "COLUMNS",
    "DOC_TYPES",
    "Period",
    "Report",
    "Row",
    "VN_TZ",
    "build",
    "parse_period",
    "to_csv",
    "to_json",
]

DOC_TYPES = ("GCS", "GBT")
LOAI_HS = {"61": "GCS", "60": "GBT"}
BASIS = "Công văn 4410/BYT-KCB, Phụ lục 02; Nghị định 63/2024/NĐ-CP Điều 25.1"
MIN_YEAR, MAX_YEAR = 1900, 2199
_HALF = re.compile(r"^(\d{4})-H([12])$")

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("issued", "Số {t} đã cấp", "{t} issued"),
    ("sent", "Số {t} đã gửi", "{t} sent"),
    ("accepted", "Số {t} được tiếp nhận", "{t} accepted"),
    ("refused", "Số {t} bị từ chối", "{t} refused"),
    ("refused_by_reason", "Lý do từ chối {t}", "{t} refusal reasons"),
    ("on_time", "Số {t} đúng hạn", "{t} accepted on time"),
    ("late", "Số {t} trễ hạn", "{t} accepted late"),
    ("median_working_minutes", "Trung vị phút làm việc từ cấp đến tiếp nhận {t}", "{t} median working minutes"),
    ("p95_working_minutes", "P95 phút làm việc từ cấp đến tiếp nhận {t}", "{t} p95 working minutes"),
    ("shared_ipss", "Số {t} đã chia sẻ sang IPSS", "{t} shared to IPSS"),
    ("reissues", "Số {t} cấp lại", "{t} reissues"),
)
"""(key, Vietnamese heading, English heading) of each per-type column; `{t}` is GCS or GBT."""


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end) of aware instants, named by `label`."""

    label: str
    first_day: date
    last_day: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), VN_TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time(), VN_TZ)


def parse_period(period: str | None = None, date_from: str | None = None, date_to: str | None = None) -> Period:
    """`2025-H1` / `2025-H2`, or inclusive ISO dates `from` and `to` (Vietnam time); exactly one form."""
    if period and (date_from or date_to):
        raise _bad("Chỉ dùng period hoặc from/to, không dùng cả hai", "Give period or from/to, not both")
    if period:
        found = _HALF.match(period.strip())
        if not found or not MIN_YEAR <= int(found.group(1)) <= MAX_YEAR:
            raise _bad(
                f"Kỳ báo cáo không hợp lệ: {period!r} (dạng 2025-H1 hoặc 2025-H2)",
                f"Invalid period {period!r}: use YYYY-H1 or YYYY-H2",
            )
        year, half = int(found.group(1)), int(found.group(2))
        first = date(year, 1 if half == 1 else 7, 1)
        last = date(year, 6, 30) if half == 1 else date(year, 12, 31)
        return Period(f"{year}-H{half}", first, last)
    if not (date_from and date_to):
        raise _bad("Cần period, hoặc cả from và to", "Give period, or both from and to")
    first, last = _day(date_from, "from"), _day(date_to, "to")
    if last < first:
        raise _bad("Ngày to trước ngày from", "to is before from")
    if first.year < MIN_YEAR or last.year > MAX_YEAR:
        raise _bad(f"Năm phải trong {MIN_YEAR}–{MAX_YEAR}", f"Years must lie in {MIN_YEAR}-{MAX_YEAR}")
    return Period(f"{first.isoformat()}..{last.isoformat()}", first, last)


@dataclass
class Row:
    """The figures of one document type, for one facility or in total."""

    issued: int = 0
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    on_time: int = 0
    late: int = 0
    median_working_minutes: float | None = None
    p95_working_minutes: float | None = None
    shared_ipss: int = 0
    reissues: int = 0

    @property
    def on_time_ratio(self) -> float | None:
        judged = self.on_time + self.late
        return self.on_time / judged if judged else None

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key, _vi, _en in COLUMNS}


@dataclass(frozen=True)
class FacilityReport:
    code: str
    name: str
    rows: dict[str, Row]
    """GCS and GBT."""


@dataclass(frozen=True)
class Report:
    period: Period
    generated_at: datetime
    calendar: str
    deadline_working_minutes: int
    facilities: tuple[FacilityReport, ...]
    total: dict[str, Row]

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": BASIS,
            "period": {
                "label": self.period.label,
                "from": self.period.first_day.isoformat(),
                "to": self.period.last_day.isoformat(),
                "timezone": "Asia/Ho_Chi_Minh",
            },
            "generated_at": self.generated_at.isoformat(),
            "calendar": self.calendar,
            "deadline_working_minutes": self.deadline_working_minutes,
            "columns": [{"key": key, "vi": vi, "en": en} for key, vi, en in COLUMNS],
            "facilities": [
                {"code": f.code, "name": f.name, **{t: f.rows[t].to_dict() for t in DOC_TYPES}} for f in self.facilities
            ],
            "total": {t: self.total[t].to_dict() for t in DOC_TYPES},
        }


# building -------------------------------------------------------------------------------------------
def build(
    repo: store.Repository,
    period: Period,
    calendar: WorkingCalendar,
    *,
    now: datetime,
    calendar_name: str = "default",
    deadline_working_minutes: int = 240,
) -> Report:
    start, end = period.start, period.end
    Document, Submission, Expectation = store.Document, store.Submission, store.Expectation
    # The report of one workspace: every query of its rows starts from `repo.query`, limited to it.
    # Read-only, so not behind the write gate: a report over a busy half-year reads for seconds, and
    # every writer (the wire submissions of every process) would wait for it. A document committed
    # between two of these queries may show up in one table and not yet in another.
    with repo.reading() as s:
        facilities = [(f.code, f.name) for f in s.scalars(repo.query(store.Facility).order_by(store.Facility.code))]
        in_period = (Document.accepted_at >= start) & (Document.accepted_at < end)
        accepted = s.scalars(repo.query(Document).where(in_period)).all()
        first_issues = s.execute(
            repo.query(Document, Document.facility_code, Document.doc_type, Document.code).where(
                Document.first_issue.is_(True), Document.issue_instant >= start, Document.issue_instant < end
            )
        ).all()
        expected_codes = {
            (row.facility_code, row.doc_type, row.code)
            for row in s.execute(
                repo.query(Document, Document.facility_code, Document.doc_type, Document.code).where(
                    Document.expectation_id.is_not(None)
                )
            )
        }
        expectations = s.execute(
            repo.query(Expectation, Expectation.facility_code, Expectation.doc_type).where(
                Expectation.issued_at >= start, Expectation.issued_at < end
            )
        ).all()
        submissions = s.execute(
            repo.query(
                Submission, Submission.facility_code, Submission.loai_hs, Submission.result, Submission.findings
            ).where(Submission.received_at >= start, Submission.received_at < end)
        ).all()
        shared_ids = set(
            s.scalars(
                select(store.SharedDocument.document_id).where(
                    store.SharedDocument.document_id.in_([d.id for d in accepted])
                )
            )
        )
    known = {code for code, _ in facilities}
    rows: dict[tuple[str, str], Row] = defaultdict(Row)
    minutes: dict[tuple[str, str], list[float]] = defaultdict(list)
    reasons: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)

    for facility, doc_type in expectations:
        rows[facility, doc_type].issued += 1
    for facility, doc_type, code in {(r.facility_code, r.doc_type, r.code) for r in first_issues}:
        if (facility, doc_type, code) not in expected_codes:
            rows[facility, doc_type].issued += 1
    for facility, loai_hs, result, findings in submissions:
        kind = LOAI_HS.get(loai_hs)
        if kind is None or facility not in known:
            continue
        row = rows[facility, kind]
        row.sent += 1
        if result != "200":
            row.refused += 1
            reasons[facility, kind][_reason(result, findings)] += 1
    for document in accepted:
        key = (document.facility_code, document.doc_type)
        row = rows[key]
        row.accepted += 1
        row.on_time += document.deadline_status == "ON_TIME"
        row.late += document.deadline_status == "LATE"
        row.shared_ipss += document.id in shared_ids
        row.reissues += not document.first_issue
        if document.issue_instant is not None:
            minutes[key].append(counted_minutes(calendar, document.issue_instant, document.accepted_at))

    per_facility = []
    for code, name in facilities:
        per_type = {}
        for doc_type in DOC_TYPES:
            row = rows.get((code, doc_type)) or Row()
            _finish(row, minutes.get((code, doc_type), []), reasons.get((code, doc_type), Counter()))
            per_type[doc_type] = row
        per_facility.append(FacilityReport(code, name, per_type))
    total = {}
    for doc_type in DOC_TYPES:
        keys = [(code, doc_type) for code in known]
        row = Row()
        for key in keys:
            one = rows.get(key)
            if one is None:
                continue
            for name in ("issued", "sent", "accepted", "refused", "on_time", "late", "shared_ipss", "reissues"):
                setattr(row, name, getattr(row, name) + getattr(one, name))
        merged = Counter[str]()
        for key in keys:
            merged.update(reasons.get(key, Counter()))
        _finish(row, [m for key in keys for m in minutes.get(key, [])], merged)
        total[doc_type] = row
    return Report(
        period=period,
        generated_at=now,
        calendar=calendar_name,
        deadline_working_minutes=deadline_working_minutes,
        facilities=tuple(per_facility),
        total=total,
    )


def _finish(row: Row, minutes: Sequence[float], reasons: Counter[str]) -> None:
    row.refused_by_reason = dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    if minutes:
        ordered = sorted(minutes)
        row.median_working_minutes = round(statistics.median(ordered), 1)
        row.p95_working_minutes = round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 1)


def _reason(result: str, findings: Iterable[dict[str, Any]] | None) -> str:
    """The stored submission's cause (`first_error`, as its X-Sandbox-Explain named it), else its MaKetQua."""
    cause = first_error(Finding.from_dict(f) for f in findings or ())
    return cause.code if cause is not None else f"MaKetQua {result}"


# rendering ------------------------------------------------------------------------------------------
def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2)


def csv_headings() -> list[str]:
    headings = ["Kỳ báo cáo (Period)", "Mã CSKCB (Facility code)", "Tên cơ sở KCB (Facility name)"]
    for doc_type in DOC_TYPES:
        headings += [f"{vi.format(t=doc_type)} ({en.format(t=doc_type)})" for _key, vi, en in COLUMNS]
    return headings


def to_csv(report: Report) -> bytes:
    """UTF-8 with a BOM (Excel then reads the Vietnamese right), CRLF line ends, one row per facility and a total."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(csv_headings())
    lines = [(f.code, f.name, f.rows) for f in report.facilities]
    lines.append(("", "Tổng cộng (Total)", report.total))
    for code, name, rows in lines:
        cells: list[Any] = [report.period.label, code, name]
        for doc_type in DOC_TYPES:
            cells += [_cell(getattr(rows[doc_type], key)) for key, _vi, _en in COLUMNS]
        writer.writerow(cells)
    return out.getvalue().encode("utf-8-sig")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):
        return "; ".join(f"{code}: {count}" for code, count in value.items())
    return value


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise _bad(
            f"{name} không phải ngày YYYY-MM-DD: {text!r}", f"{name} is not a YYYY-MM-DD date: {text!r}"
        ) from exc


def _bad(vi: str, en: str) -> InvalidInput:
    return InvalidInput("REPORT_PERIOD_INVALID", vi, en)


def for_portal(portal: Portal, period: Period) -> Report:
    """The report of `period` with the portal's calendar, deadline and clock (API, dashboard and CLI)."""
    portal.clock.refresh()
    return build(
        portal.repo,
        period,
        portal.calendar,
        now=portal.clock.now(),
        calendar_name=portal.settings.calendar,
        deadline_working_minutes=portal.settings.deadline_working_minutes,
    )
