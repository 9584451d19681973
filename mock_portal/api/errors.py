"""problem+json rendering: every sandbox error has a stable `code` and a Vietnamese and English detail."""

from __future__ import annotations

import json
import logging

import connexion
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from mock_portal.errors import PortalError

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


def problem(status: int, code: str, detail_vi: str, detail_en: str, title: str = "",
            headers: dict[str, str] | None = None) -> ConnexionResponse:
    body = {
        "type": "about:blank",
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "code": code,
        "detail": f"{detail_vi} | {detail_en}",
        "detail_vi": detail_vi,
        "detail_en": detail_en,
    }
    return ConnexionResponse(status_code=status, mimetype="application/problem+json",
                             headers=headers or {},
                             body=json.dumps(body, ensure_ascii=False))


def _portal_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, PortalError)  # noqa: S101 - registered for this type only
    return problem(exc.status, exc.code, exc.detail_vi, exc.detail_en)


def _connexion_problem(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    status = getattr(exc, "status", None) or getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "") or getattr(exc, "title", "") or exc)
    code, vi = _CONNEXION.get(status, ("INTERNAL_ERROR", "Lỗi hệ thống"))
    # Keep the headers the exception carries: `Allow` on a 405 (RFC 9110), `WWW-Authenticate` on a 401.
    headers = {k: v for k, v in (getattr(exc, "headers", None) or {}).items() if k.lower() != "content-type"}
    return problem(status, code, vi, detail or code, headers=headers)


def _unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "INTERNAL_ERROR", "Lỗi hệ thống", "Internal error; see the server log")


def register_error_handlers(app: connexion.FlaskApp) -> None:
    app.add_error_handler(PortalError, _portal_error)
    app.add_error_handler(ProblemException, _connexion_problem)
    app.add_error_handler(HTTPException, _connexion_problem)
    for status in (404, 405):
        app.add_error_handler(status, _connexion_problem)
    app.add_error_handler(Exception, _unexpected)
