"""[sandbox] handler of the six-monthly report (Dispatch 4410/BYT-KCB Appendix 02). Thin: parse, build, render."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from mock_portal.api.render import Reply, reply
from mock_portal.portal.service import Portal
from mock_portal.reports import formats, semiannual


def build_report(portal: Portal, period: str | None, date_from: str | None, date_to: str | None) -> semiannual.Report:
    """Parse the period and build the report with the portal's calendar and clock (also used by the dashboard)."""
    return semiannual.for_portal(portal, semiannual.parse_period(period, date_from, date_to))


def download(report: semiannual.Report, fmt: str) -> Response:
    """The report as a file: CSV and JSON as attachments, HTML inline."""
    body = formats.render(report, fmt)
    response = Response(body, status=200, content_type=formats.FORMATS[fmt])
    if fmt != "html":
        name = f"bao-cao-4410-{report.period.label.replace('..', '_')}.{fmt}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def get_semiannual_report(**query: Any) -> Reply | Response:
    """`from` is a Python keyword, hence **query."""
    portal: Portal = current_app.config["PORTAL"]
    fmt = query.get("format") or "json"
    report = build_report(portal, query.get("period"), query.get("from"), query.get("to"))
    if fmt == "json":
        return reply(report.to_dict())
    return download(report, fmt)
