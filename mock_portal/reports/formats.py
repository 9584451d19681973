"""The report's file formats (JSON, CSV for Excel, one HTML page) and the one call that picks among them."""

from __future__ import annotations

from mock_portal.reports.page import render_report_page
from mock_portal.reports.semiannual import Report, to_csv, to_json
from mock_portal.results.errors import InvalidInput

FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def render(report: Report, fmt: str) -> bytes:
    if fmt == "json":
        return to_json(report).encode()
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return render_report_page(report).encode()
    raise InvalidInput(
        "REPORT_FORMAT_INVALID", f"Định dạng không hỗ trợ: {fmt!r}", f"Unknown format {fmt!r}: use csv, json or html"
    )
