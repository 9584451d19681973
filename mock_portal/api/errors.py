"""problem+json rendering: every sandbox error has a stable `code` and a Vietnamese and English detail."""

from __future__ import annotations

import ast
import functools
import json
import logging
import re
from urllib.parse import urlsplit

from connexion.apps.abstract import AbstractApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from mock_portal.api.spec_servers import written_spec
from mock_portal.results.errors import PortalError

log = logging.getLogger(__name__)

# Connexion's own problems, mapped to stable codes and bilingual text.
_CONNEXION = {
    400: ("REQUEST_INVALID", "Yêu cầu không hợp lệ"),
    401: ("UNAUTHORIZED", "Thiếu hoặc sai token quản trị (Authorization: Bearer ...)"),
    403: ("FORBIDDEN", "Không được phép"),
    404: ("NOT_FOUND", "Không tìm thấy"),
    405: ("METHOD_NOT_ALLOWED", "Phương thức không được hỗ trợ"),
    413: ("BODY_TOO_LARGE", "Nội dung yêu cầu quá lớn"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Kiểu nội dung không được hỗ trợ"),
}


# What the spec's patterns mean to a person: Connexion's message only quotes the regex. Keyed by the pattern
# as written in openapi.yaml; the code is the one the API documents for that value.
DATE_TIME = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_PATTERNS: dict[str, tuple[str, str, str]] = {
    r"^[0-9]{4}-H[12]$": (
        "REPORT_PERIOD_INVALID",
        "kỳ báo cáo dạng 2025-H1 hoặc 2025-H2 (hoặc dùng from/to)",
        "a period such as 2025-H1 or 2025-H2 (or give from/to)",
    ),
    DATE_TIME: (
        "TIME_INVALID",
        "thời điểm ISO 8601 có múi giờ, ví dụ 2026-03-09T08:00:00+07:00",
        "an ISO 8601 instant with an offset, such as 2026-03-09T08:00:00+07:00",
    ),
    r"^[0-9]{5}$": ("REQUEST_INVALID", "mã cơ sở gồm 5 chữ số", "a facility code of 5 digits"),
    r"^[a-z0-9][a-z0-9-]{1,19}$": (
        "WORKSPACE_ID_INVALID",
        "mã workspace gồm 2–20 chữ thường, chữ số hoặc '-'",
        "a workspace id of 2-20 lowercase letters, digits or '-'",
    ),
}
_MISMATCH = re.compile(r"^(?P<value>'.*') does not match (?P<pattern>'.*')$", re.DOTALL)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def _spec_methods() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each path template of the spec as a regex, with the methods it declares (for `Allow`)."""
    paths = written_spec()["paths"]
    table = []
    for template, item in paths.items():
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        methods = ", ".join(m.upper() for m in HTTP_METHODS if m in item)
        table.append((re.compile(f"^{regex}$", re.DOTALL), methods))
    return tuple(table)


def allowed_methods(path: str) -> str | None:
    """The `Allow` value for `path`: exactly the methods the spec declares for it."""
    for regex, methods in _spec_methods():
        if regex.match(path):
            return methods
    return None


def problem_body(status: int, code: str, detail_vi: str, detail_en: str, title: str = "") -> dict[str, object]:
    """The RFC 9457 body every sandbox error uses."""
    return {
        "type": "about:blank",
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "code": code,
        "detail": f"{detail_vi} | {detail_en}",
        "detail_vi": detail_vi,
        "detail_en": detail_en,
    }


def problem(
    status: int, code: str, detail_vi: str, detail_en: str, title: str = "", headers: dict[str, str] | None = None
) -> ConnexionResponse:
    body = problem_body(status, code, detail_vi, detail_en, title)
    return ConnexionResponse(
        status_code=status,
        mimetype="application/problem+json",
        headers=headers or {},
        body=json.dumps(body, ensure_ascii=False),
    )


def _portal_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, PortalError)  # noqa: S101 - registered for this type only
    return problem(exc.status, exc.code, exc.detail_vi, exc.detail_en)


def redirect(status: int, target: str) -> ConnexionResponse:
    """A redirect raised inside Flask (a missing trailing slash: werkzeug's 308) reaches the error layer
    as an exception whose detail is the new URL; it stays a redirect, with a same-origin `Location`."""
    parts = urlsplit(target)
    location = parts.path + (f"?{parts.query}" if parts.query else "")
    return ConnexionResponse(status_code=status, headers={"Location": location or "/"}, body=b"")


def _pattern_problem(detail: str) -> ConnexionResponse | None:
    """A value refused by one of the spec's known patterns, said in words with the API's own code."""
    found = _MISMATCH.match(detail)
    if not found:
        return None
    try:
        value, pattern = ast.literal_eval(found["value"]), ast.literal_eval(found["pattern"])
    except (ValueError, SyntaxError):
        return None
    if pattern not in _PATTERNS:
        return None
    code, vi, en = _PATTERNS[pattern]
    shown = repr(str(value)[:64])
    return problem(400, code, f"{shown} không phải {vi}", f"{shown} is not {en}")


def _connexion_problem(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    status = getattr(exc, "status", 0) or getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "") or getattr(exc, "title", "") or exc)
    if 300 <= status < 400:
        return redirect(status, detail)
    code, vi = _CONNEXION.get(status, ("INTERNAL_ERROR", "Lỗi hệ thống"))
    if status == 401 and _request.url.path.startswith("/ipss/"):
        vi = "Thiếu hoặc sai khóa API của IPSS (X-API-Key)"
    # Keep the headers the exception carries (`WWW-Authenticate` on a 401). A 405 must list in `Allow`
    # every method of the resource (RFC 9110), not only those of the route that happened to match.
    if status == 400:  # a jsonschema report: its first line says what is wrong; the schema dump does not help
        detail = detail.split("\n\nFailed validating", 1)[0]
        explained = _pattern_problem(detail)
        if explained is not None:
            return explained
    headers = {k: v for k, v in (getattr(exc, "headers", None) or {}).items() if k.lower() != "content-type"}
    if status == 405:
        allow = allowed_methods(_request.url.path)
        if allow:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"} | {"Allow": allow}
    return problem(status, code, vi, detail or code, headers=headers)


def _undecodable_body(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Connexion decodes JSON and text bodies as UTF-8 and lets the error escape: a client error."""
    return problem(
        400,
        "REQUEST_INVALID",
        "Nội dung yêu cầu không phải UTF-8 hợp lệ",
        f"The request body is not valid UTF-8: {exc}",
    )


def _bad_form(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """A form Starlette cannot parse (too many fields, broken multipart): a client error, not a 500."""
    return problem(
        400,
        "REQUEST_INVALID",
        "Biểu mẫu (form) của yêu cầu không đọc được",
        f"The request form cannot be read: {getattr(exc, 'message', exc)}",
    )


INTERNAL_ERROR = (500, "INTERNAL_ERROR", "Lỗi hệ thống", "Internal error; see the server log")
"""The problem an unexpected exception is answered with (the wire gateway's own path answers it too)."""


def problem_bytes(status: int, code: str, detail_vi: str, detail_en: str) -> bytes:
    """A problem+json body as `problem` sends it."""
    return json.dumps(problem_body(status, code, detail_vi, detail_en), ensure_ascii=False).encode()


def _unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(*INTERNAL_ERROR)


def register_error_handlers(app: AbstractApp) -> None:
    app.add_error_handler(PortalError, _portal_error)
    app.add_error_handler(UnicodeDecodeError, _undecodable_body)
    app.add_error_handler(MultiPartException, _bad_form)
    app.add_error_handler(ProblemException, _connexion_problem)
    app.add_error_handler(HTTPException, _connexion_problem)
    for status in (404, 405):
        app.add_error_handler(status, _connexion_problem)
    app.add_error_handler(Exception, _unexpected)
