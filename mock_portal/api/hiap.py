"""[wire] handlers of the real portal's API: `/api/token/take` and `/api/hososuckhoe/guiGiayToDienTu`.

Replies use the wire's own spelling (`maKetQua` for tokens, `MaKetQua` for submissions) and
HTTP 200 for business errors, as the real portal does.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import current_app

from mock_portal.api.render import Reply, reply
from mock_portal.auth import Credentials
from mock_portal.clock import vn_local
from mock_portal.codes import SubmitResult, TokenResult
from mock_portal.portal import Outcome, Portal, SubmissionForm

log = logging.getLogger(__name__)


def _portal() -> Portal:
    return current_app.config["PORTAL"]


def take_token(body: dict[str, Any] | None = None) -> Reply:
    form = body or {}
    try:
        grant = _portal().take_token(str(form.get("username", "")), str(form.get("password", "")))
    except Exception:  # the real portal answers any failure of its own with maKetQua 500
        log.exception("token take failed")
        return reply({"maKetQua": TokenResult.SYSTEM_ERROR.value, "APIKey": None})
    if grant.token is None:
        return reply({"maKetQua": grant.result.value, "APIKey": None})
    token = grant.token
    return reply(
        {
            "maKetQua": grant.result.value,
            "APIKey": {
                "access_token": token.access_token,
                "id_token": token.id_token,
                "token_type": "Bearer",
                "username": token.username,
                "expires_in": token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }
    )


def send_document(body: dict[str, Any] | None = None) -> Reply:
    form = {key: str(value) for key, value in (body or {}).items()}
    portal = _portal()
    try:
        outcome = portal.submit(_submission_form(form))
    except Exception as exc:  # nothing was committed: the real portal's MaKetQua 500, HTTP 200
        log.exception("submission failed")
        explain = {"X-Sandbox-Explain": header_safe(f"SERVER_ERROR: {type(exc).__name__}")}
        return reply(submit_reply(SubmitResult.SERVER_ERROR, "", portal.clock.now()), 200, explain)
    return reply(submit_reply(outcome.verdict.result, outcome.ma_gd, outcome.received_at), 200, _headers(outcome))


def _submission_form(form: dict[str, str]) -> SubmissionForm:
    """Wire names to Python names, in one place."""
    return SubmissionForm(
        credentials=Credentials(
            facility_code=form.get("maCskcb", ""),
            access_token=form.get("token", ""),
            id_token=form.get("id_token", ""),
            username=form.get("username", ""),
            password_md5=form.get("password", ""),
        ),
        loai_hs=form.get("loaiHs", ""),
        file_b64=form.get("fileBase64Str", ""),
    )


def submit_reply(result: SubmitResult, ma_gd: str, received_at: datetime) -> dict[str, str]:
    return {
        "MaKetQua": result.value,
        "MaGD": ma_gd,
        "ThoiGianTiepNhan": vn_local(received_at).strftime("%Y%m%d%H%M%S"),
    }


def header_safe(text: str, limit: int = 300) -> str:
    """HTTP header values are Latin-1: keep ASCII, drop the rest, cap the length."""
    return text.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")[:limit]


def _headers(outcome: Outcome) -> dict[str, str]:
    verdict = outcome.verdict
    return {
        "X-Sandbox-Submission": str(outcome.submission_id),
        "X-Sandbox-Explain": header_safe(verdict.explain()),
        "X-Sandbox-Findings": header_safe(",".join(f.code for f in verdict.findings), limit=2000),
        "X-Sandbox-Document": header_safe(verdict.document_code or ""),
    }
