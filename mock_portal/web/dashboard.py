"""Routes of the dashboard (see the package docstring). Thin: parse the form, call the handler or the
domain, render a template."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import jsonschema
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from mock_portal.api import attestation, control, sandbox
from mock_portal.api.context import WORKSPACE_PORTAL
from mock_portal.api.reports import build_report, download
from mock_portal.api.spec_servers import written_spec
from mock_portal.api.validators import parse_json
from mock_portal.portal import expectations, workspaces
from mock_portal.portal.service import Portal
from mock_portal.reports import formats, semiannual
from mock_portal.reports.charts import Segment, StackedBar, stacked_bars
from mock_portal.reports.page import REPORT_CSS, render_report_section, vn_time
from mock_portal.results.errors import InvalidInput, PortalError
from mock_portal.web import sessions

PREFIX = "/sandbox/ui"
JOURNAL_PAGE = 100
ALL_TIME = semiannual.Period("all", date(1900, 1, 1), date(2199, 12, 31))

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

bp = Blueprint("dashboard", __name__, url_prefix=PREFIX, template_folder=str(TEMPLATES), static_folder=str(STATIC))
Params = ParamSpec("Params")
Returned = TypeVar("Returned")


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed cookie session, Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or app.config.get("SESSION_COOKIE_SECURE"))


def register_dashboard(app: Flask, admin_token: str) -> None:
    """Mount the dashboard on the inner Flask app of the Connexion app."""
    app.secret_key = hashlib.sha256(b"mock-portal dashboard session\0" + admin_token.encode()).digest()
    app.session_interface = _Sessions()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_NAME="portal_ui")
    app.register_blueprint(bp)
    # `/` is where a newcomer's browser goes first: send it to the dashboard rather than a JSON 404
    app.add_url_rule("/", "home", lambda: redirect(PREFIX + "/"))


def _portal() -> Portal:
    """The portal of the workspace the session logged in to (docs/ARCHITECTURE.md, Workspaces); the
    sandbox handlers the pages call find it in `flask.g` too."""
    portal: Portal | None = g.get(WORKSPACE_PORTAL)
    if portal is None:
        root: Portal = current_app.config["PORTAL"]
        portal = root.workspace(session.get("workspace") or workspaces.DEFAULT, session.get("generation", ""))
        setattr(g, WORKSPACE_PORTAL, portal)
    return portal


def _body(handler_reply: Any) -> Any:
    """The JSON body of a sandbox handler's reply tuple."""
    return handler_reply[0]


def login_required(view: Callable[Params, Returned]) -> Callable[Params, Returned | BaseResponse]:
    @functools.wraps(view)
    def wrapped(*args: Params.args, **kwargs: Params.kwargs) -> Returned | BaseResponse:
        if not session.get("admin") or not sessions.is_open(_portal().repo, session.get("sid")):
            session.clear()
            return redirect(url_for("dashboard.login", next=request.full_path if request.method == "GET" else None))
        if request.method == "POST":
            _check_csrf()
        return view(*args, **kwargs)

    return wrapped


def _check_csrf() -> None:
    """Refuse a form that does not carry the session's CSRF token (a cross-site POST cannot read it)."""
    expected = session.get("csrf")  # none without the session cookie (a cross-site POST sends none)
    if not expected or not hmac.compare_digest(request.form.get("csrf", ""), expected):
        abort(400, "CSRF token missing or wrong; reload the page")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
    return response


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {
        "csrf_token": session.get("csrf", ""),
        "prefix": PREFIX,
        "report_css": REPORT_CSS,
        "workspace": session.get("workspace"),
    }


bp.add_app_template_filter(vn_time, "vn_time")


# login ---------------------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form carries a CSRF token too, set in the signed (SameSite=Strict) cookie when the page
    is shown: without it a cross-site POST could log the victim's browser into the attacker's workspace
    (login CSRF), and the victim would then hand the attacker what it types there."""
    error, status = None, 200
    if request.method == "GET":
        session.setdefault("csrf", secrets.token_urlsafe(24))
    else:
        _check_csrf()
        root: Portal = current_app.config["PORTAL"]
        client = f"ui:{request.remote_addr}:{workspaces.claimed(request.form.get('token', ''))}"
        blocked = root.login_throttle.blocked(client)
        caller = None if blocked else workspaces.authenticate(root, request.form.get("token", ""))
        if blocked:
            error, status = "Quá nhiều lần đăng nhập sai, hãy thử lại sau (too many failed logins, try later)", 429
        elif caller is not None:
            root.login_throttle.succeeded(client)
            session.clear()
            session["admin"] = True
            session["workspace"] = caller.workspace
            session["generation"] = caller.generation
            session["sid"] = sessions.open_session(_portal().repo)
            session["csrf"] = secrets.token_urlsafe(24)
            target = request.args.get("next") or ""
            return redirect(target if target.startswith(PREFIX + "/") else url_for("dashboard.journal"))
        else:
            root.login_throttle.failed(client)
            error, status = "Sai token quản trị (wrong admin token)", 401
    return render_template("login.html", error=error), status


@bp.post("/logout")
@login_required
def logout() -> Any:
    sessions.close_session(_portal().repo, session.get("sid"))
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("/")
@login_required
def home() -> Any:
    return redirect(url_for("dashboard.journal"))


# pages ---------------------------------------------------------------------------------------------
@bp.get("/facilities")
@login_required
def facilities() -> str:
    return render_template(
        "facilities.html",
        facilities=_body(sandbox.list_facilities()),
        attestation_keys=_body(attestation.list_attestation_keys()),
        page="facilities",
    )


def _journal(after: int | None) -> tuple[list[dict[str, Any]], str | None]:
    try:
        # every row, the unauthenticated ones marked: a vendor whose password is wrong must see its refusals
        return _body(control.list_journal(after=after, limit=JOURNAL_PAGE, identity="all")), None
    except PortalError as exc:
        return [], f"{exc.detail_vi} ({exc.detail_en})"


@bp.get("/journal")
@login_required
def journal() -> str:
    entries, error = _journal(None)
    return render_template("journal.html", entries=entries, error=error, page="journal")


@bp.get("/journal/rows")
@login_required
def journal_rows() -> str:
    """The rows newer than `after`, newest first: what the page's poll prepends."""
    entries, _error = _journal(request.args.get("after", type=int) or None)
    return render_template("_journal_rows.html", entries=entries, new=True)


@bp.get("/submissions/<int:submission_id>")
@login_required
def submission(submission_id: int) -> Any:
    try:
        found = _body(sandbox.get_submission(submission_id))
    except PortalError as exc:
        return render_template("message.html", title="Không tìm thấy (not found)", message=exc.detail_en), 404
    return render_template("submission.html", s=found, page="journal")


@bp.get("/deadlines")
@login_required
def deadlines() -> str:
    portal = _portal()
    report = semiannual.for_portal(portal, ALL_TIME)
    bars = []
    for f in report.facilities:
        on_time = sum(f.rows[t].on_time for t in semiannual.DOC_TYPES)
        late = sum(f.rows[t].late for t in semiannual.DOC_TYPES)
        if on_time or late:
            bars.append(
                StackedBar(
                    f"{f.code} {f.name}",
                    (Segment(on_time, "on_time", "đúng hạn / on time"), Segment(late, "late", "trễ hạn / late")),
                )
            )
    chart = stacked_bars(bars, title="Tiếp nhận đúng hạn / trễ hạn theo cơ sở (accepted on time / late)")
    return render_template("deadlines.html", report=report, chart=chart, page="deadlines")


@bp.get("/deadlines/documents")
@login_required
def deadline_documents() -> Any:
    """Each certificate's deadline (of one facility, of one status), a page at a time."""
    args = request.args
    facility, status = args.get("facility") or None, (args.get("status") or "").upper() or None
    try:
        before, limit = _positive(args.get("before"), "before"), _positive(args.get("limit"), "limit")
        book = expectations.deadline_book(
            _portal(),
            facility=facility,
            status=status,
            before=before,
            limit=expectations.PAGE if limit is None else limit,
        )
    except PortalError as exc:
        return _documents_page(None, error=f"{exc.detail_vi} ({exc.detail_en})"), 400
    older = url_for("dashboard.deadline_documents", before=book.next_before, **_filters()) if book.next_before else None
    return _documents_page(book, older=older)


def _filters() -> dict[str, Any]:
    """The filters of the documents page as given (strings), for its form and its next-page link (`Any` for
    `url_for(**values)`, whose own keywords such as `_external` are not strings)."""
    return {name: request.args[name] for name in ("facility", "status", "limit") if request.args.get(name)}


def _documents_page(book: expectations.DeadlineBook | None, older: str | None = None, error: str | None = None) -> str:
    return render_template(
        "documents.html",
        book=book,
        older=older,
        error=error,
        facilities=_body(sandbox.list_facilities()),
        statuses=expectations.STATUSES,
        filters=_filters(),
        page="deadlines",
    )


def _positive(text: str | None, name: str) -> int | None:
    """A query parameter's digits as a number (the domain checks its range), None when absent."""
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise InvalidInput("NUMBER_INVALID", f"{name} phải là số nguyên dương", f"{name} must be a positive integer")
    return int(text)


# clock and faults -----------------------------------------------------------------------------------
def _done(message: str) -> Any:
    """After a change: back to the clock page (POST, redirect, GET), the message carried in the session."""
    session["flash"] = message
    return redirect(url_for("dashboard.clock"))


def _clock_page(message: str | None = None, error: str | None = None, plan_text: str | None = None) -> Any:
    message = message or session.pop("flash", None)
    clock = _body(control.get_clock())
    faults = _body(control.get_faults())
    text = plan_text if plan_text is not None else json.dumps(faults["plan"], ensure_ascii=False, indent=2)
    status = 400 if error else 200
    return render_template(
        "clock.html", clock=clock, faults=faults, plan_text=text, message=message, error=error, page="clock"
    ), status


@bp.get("/clock")
@login_required
def clock() -> Any:
    return _clock_page()


@bp.post("/clock")
@login_required
def change_clock() -> Any:
    form, action = request.form, request.form.get("action", "")
    try:
        if action == "set":
            body: dict[str, Any] = {}
            if form.get("now", "").strip():
                body["now"] = form["now"].strip()
            if form.get("rate", "").strip():
                body["rate"] = _number(form["rate"], "rate")
            _validate("ClockChange", body)
            control.set_clock(body)
            message = "Đã đặt đồng hồ (clock set)"
        elif action == "advance":
            unit = "working_minutes" if form.get("unit") == "working_minutes" else "minutes"
            advance = {unit: _number(form.get("amount", ""), "amount")}
            _validate("ClockAdvance", advance)
            control.advance_clock(advance)
            message = "Đã tua đồng hồ (clock advanced)"
        elif action == "reset":
            control.reset_clock()
            message = "Đồng hồ theo giờ thực (real time)"
        else:
            raise InvalidInput("ACTION_INVALID", "Thao tác không hợp lệ", f"Unknown action {action!r}")
    except PortalError as exc:
        return _clock_page(error=f"{exc.detail_vi} ({exc.detail_en})")
    return _done(message)


@bp.post("/faults")
@login_required
def change_faults() -> Any:
    if request.form.get("action") == "clear":
        control.clear_faults()
        return _done("Đã xoá kế hoạch lỗi (fault plan cleared)")
    text = request.form.get("plan", "")
    try:
        plan = parse_json(text or "{}")
        _validate_schema("FaultPlan", plan)
        control.set_faults(plan)
    except (ValueError, jsonschema.ValidationError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return _clock_page(error=f"Kế hoạch lỗi không hợp lệ (invalid fault plan): {message}", plan_text=text)
    except PortalError as exc:
        return _clock_page(error=f"{exc.detail_vi} ({exc.detail_en})", plan_text=text)
    return _done("Đã đặt kế hoạch lỗi (fault plan set)")


@functools.cache
def _components() -> dict[str, Any]:
    components: dict[str, Any] = written_spec()["components"]
    return components


def _validate_schema(name: str, body: Any) -> None:
    """The checks the API's schema `name` makes before its handler runs: the dashboard calls the same
    handlers, so it must pass the same gate (the handlers and the domain check the rest)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": _components()}
    jsonschema.validate(body, schema, cls=jsonschema.Draft4Validator, format_checker=jsonschema.FormatChecker())


def _validate(name: str, body: Any) -> None:
    """`_validate_schema` for a form: a refusal is an InvalidInput, shown on the page."""
    try:
        _validate_schema(name, body)
    except jsonschema.ValidationError as exc:
        raise InvalidInput("REQUEST_INVALID", "Giá trị không hợp lệ", exc.message) from exc


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidInput("NUMBER_INVALID", f"{name} phải là số", f"{name} must be a number") from exc
    if not math.isfinite(value):
        raise InvalidInput("NUMBER_INVALID", f"{name} phải là số hữu hạn", f"{name} must be a finite number")
    return int(value) if value.is_integer() else value


# the six-monthly report ------------------------------------------------------------------------------
def _report_args() -> tuple[str | None, str | None, str | None]:
    args = request.args
    period = args.get("period") or None
    date_from, date_to = args.get("from") or None, args.get("to") or None
    if not (period or date_from or date_to):
        portal = _portal()
        portal.clock.refresh()
        today = portal.clock.now().astimezone(semiannual.VN_TZ)
        period = f"{today.year}-H{1 if today.month <= 6 else 2}"
    return period, date_from, date_to


@bp.get("/report")
@login_required
def report() -> Any:
    period, date_from, date_to = _report_args()
    try:
        built = build_report(_portal(), period, date_from, date_to)
    except PortalError as exc:
        return render_template(
            "report.html", error=f"{exc.detail_vi} ({exc.detail_en})", period=period, page="report", report=None
        ), 400
    links = {
        fmt: url_for("dashboard.report_download", format=fmt, **_period_query(period, date_from, date_to))
        for fmt in formats.FORMATS
    }
    return render_template(
        "report.html",
        links=links,
        period=period,
        error=None,
        page="report",
        report_section=render_report_section(built),
    )


@bp.get("/report/download")
@login_required
def report_download() -> Any:
    period, date_from, date_to = _report_args()
    fmt = request.args.get("format", "csv")
    if fmt not in formats.FORMATS:
        abort(400, "format must be csv, json or html")
    try:
        return download(build_report(_portal(), period, date_from, date_to), fmt)
    except PortalError as exc:
        abort(400, exc.detail_en)


def _period_query(period: str | None, date_from: str | None, date_to: str | None) -> dict[str, Any]:
    if date_from or date_to:
        return {"from": date_from or "", "to": date_to or ""}
    return {"period": period or ""}
