"""The six-monthly report as HTML: a standalone page, or a section the dashboard embeds (Jinja2, no Flask).

The report owns its markup and its stylesheet, so the API, the CLI and the dashboard render it the same
way without the report importing the dashboard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from mock_portal.reports.charts import Segment, StackedBar, stacked_bars
from mock_portal.reports.semiannual import COLUMNS, DOC_TYPES, VN_TZ, Report

TEMPLATES = Path(__file__).parent / "templates"
REPORT_CSS = Markup((TEMPLATES / "report.css").read_text(encoding="utf-8"))  # noqa: S704 - our own file
"""Colours, type, tables and charts: inlined into the standalone page and into every dashboard page."""


def vn_time(value: str | datetime | None, seconds: bool = False) -> Markup:
    """An instant (RFC 3339 text or aware datetime) as a person in Vietnam reads it, the UTC instant kept
    for machines: `<time datetime="2026-12-07T05:00:00Z">2026-12-07 12:00 (UTC+7)</time>` (a Jinja filter
    of the report and of the dashboard)."""
    if not value:
        return Markup("–")
    try:
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        utc = instant.astimezone(UTC)
        local = utc.astimezone(VN_TZ)
    except (TypeError, ValueError, OverflowError):  # a signer's SigningTime of year 1 or 9999 is shown as written
        return Markup(escape(value))
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    machine = utc.isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}">{} (UTC+7)</time>').format(machine, shown)


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
_env.filters["vn_time"] = vn_time


def report_context(report: Report) -> dict[str, Any]:
    """What the report section needs: the report, its columns and one chart per document type."""
    charts = {}
    for doc_type in DOC_TYPES:
        bars = [
            StackedBar(
                f"{f.code} {f.name}",
                (
                    Segment(f.rows[doc_type].on_time, "on_time", "đúng hạn / on time"),
                    Segment(f.rows[doc_type].late, "late", "trễ hạn / late"),
                    Segment(f.rows[doc_type].refused, "refused", "bị từ chối / refused"),
                ),
            )
            for f in report.facilities
            if f.rows[doc_type].sent or f.rows[doc_type].issued or f.rows[doc_type].accepted
        ]
        charts[doc_type] = stacked_bars(
            bars, title=f"{doc_type}: đúng hạn, trễ hạn, bị từ chối (on time, late, refused)"
        )
    return {"report": report, "columns": COLUMNS, "doc_types": DOC_TYPES, "charts": charts}


def render_report_section(report: Report) -> Markup:
    """The tables and charts alone, for a page of the dashboard."""
    return Markup(_env.get_template("_report.html").render(**report_context(report)))  # noqa: S704 - autoescaped


def render_report_page(report: Report) -> str:
    """One self-contained page: the tables and inline SVG charts, styles inline, no external resource."""
    return _env.get_template("report_page.html").render(css=REPORT_CSS, **report_context(report))
