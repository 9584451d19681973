"""Issue 25: every kind of marker a chart draws (`mark-<kind>`) has a legend entry (`legend-<kind>`):
the dashboard's and the six-monthly report's bars, the load kit's deadline picture (its hollow
"undelivered at end" dots had none) and report.html's timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from conformance.report.html_report import timeline_svg
from load.deadlines import DeadlineRecord, Status, render_svg
from mock_portal.reports.charts import Segment, StackedBar, stacked_bars


def _kinds(svg: str, prefix: str) -> set[str]:
    return {
        kind for classes in re.findall(r'class="([^"]*)"', svg) for kind in re.findall(rf"\b{prefix}-(\S+)", classes)
    }


def assert_every_marker_explained(svg: str, expected: set[str]) -> None:
    marks = _kinds(svg, "mark")
    assert marks == expected
    assert marks <= _kinds(svg, "legend"), f"no legend entry for {marks - _kinds(svg, 'legend')}"


def test_the_stacked_bars_explain_every_segment() -> None:
    segments = (Segment(3, "on_time", "on time"), Segment(1, "late", "late"), Segment(2, "refused", "refused"))
    svg = str(stacked_bars([StackedBar("79001 Bệnh viện", segments)], title="t"))
    assert_every_marker_explained(svg, {"on_time", "late", "refused"})


def test_the_load_deadline_picture_explains_its_hollow_dots() -> None:
    records = [
        DeadlineRecord(
            "hospital", "GCS", f"C{i}", "79001", f"2026-03-09T0{i}:00:00+07:00", status, working_minutes=60.0 * i
        )
        for i, status in enumerate(Status, start=1)
    ]
    svg = render_svg(records)
    assert_every_marker_explained(svg, {s.value for s in Status} | {"deadline"})
    undelivered = re.search(r'<g class="legend-PENDING"><circle [^>]*fill="none"[^>]*/><text [^>]*>([^<]*)<', svg)
    assert undelivered and "undelivered at end" in undelivered.group(1)


def test_the_conformance_timeline_explains_its_marks() -> None:
    def row(code: str, status: str, accepted: datetime | None) -> dict[str, object]:
        return {
            "code": code,
            "scenario": "a scenario whose name is long enough to need cutting before the bars begin",
            "status": status,
            "issued_at": datetime(2026, 3, 9, 1, tzinfo=UTC).isoformat(),
            "deadline": datetime(2026, 3, 9, 5, tzinfo=UTC).isoformat(),
            "accepted_at": accepted.isoformat() if accepted else None,
        }

    rows = [
        row("A", "ON_TIME", datetime(2026, 3, 9, 2, tzinfo=UTC)),
        row("B", "LATE", datetime(2026, 3, 9, 7, tzinfo=UTC)),
        row("C", "OVERDUE", None),
    ]
    assert_every_marker_explained(timeline_svg(rows), {"window", "deadline", "ON_TIME", "LATE", "missing"})
