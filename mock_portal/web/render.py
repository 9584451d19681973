"""Jinja2 rendering shared by the dashboard and the standalone report page (no Flask here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from mock_portal.web.charts import Segment, StackedBar, stacked_bars

if TYPE_CHECKING:
    from mock_portal.reports import Report

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))


def report_context(report: Report) -> dict[str, Any]:
    """What the report partial needs: the report, its columns and one chart per document type."""
    from mock_portal.reports import COLUMNS, DOC_TYPES

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


def render_report_page(report: Report) -> str:
    css = Markup((STATIC / "style.css").read_text(encoding="utf-8"))  # noqa: S704 - our own file
    return _env.get_template("report_page.html").render(css=css, **report_context(report))
