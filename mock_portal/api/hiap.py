"""[wire] handlers of the real portal's API: `/api/token/take` and `/api/hososuckhoe/guiGiayToDienTu`.

Replies use the wire's own spelling (`maKetQua` for tokens, `MaKetQua` for submissions) and
HTTP 200 for business errors, as the real portal does.

They are served by Connexion's AsyncApp (`mock_portal.app`), not through Flask: the handler runs on the
event loop and runs the blocking work (examination, database) there for a small submission, else on a
thread (`mock_portal.api.blocking`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from connexion import context, request

from mock_portal.api import blocking
from mock_portal.api.context import WIRE_LOGIN, WORKSPACE_PORTAL
from mock_portal.api.render import Reply, reply
from mock_portal.api.validators import without_lone_surrogates
from mock_portal.control.clock import vn_local
from mock_portal.control.gate import Exchange, JournalSlot
from mock_portal.portal.auth import Credentials, PasswordCheck, json_body_note
from mock_portal.portal.codes import SubmitResult, TokenResult
from mock_portal.portal.service import Outcome, Portal, SubmissionForm
from mock_portal.results.findings import EXPLAIN_CHARS, Finding

log = logging.getLogger(__name__)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""Characters a header value must not carry (httptools refuses them and drops the connection)."""
HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
"""What `header_safe` writes as it is: printable ASCII but the escape character."""


def _portal() -> Portal:
    """The portal of the account's workspace (the gateway chose it), else the one `PortalMiddleware` set."""
    state = context.scope["state"]
    return state.get(WORKSPACE_PORTAL) or state["portal"]


def _fields(body: Any) -> dict[str, str]:
    """The form fields; a body Connexion could not read as a form (no content type) has none. A lone
    surrogate of a JSON string (no account name or password has one; no database can store it) reads as
    U+FFFD, as bytes of a form that are not UTF-8 do: the request then gets the portal's own answer."""
    if not isinstance(body, dict):
        return {}
    return {without_lone_surrogates(str(key)): without_lone_surrogates(str(value)) for key, value in body.items()}


async def take_token(body: dict[str, Any] | None = None) -> Reply:
    form = _fields(body)
    notes = (json_body_note(),) if request.mimetype == "application/json" else ()
    state, client = context.scope["state"], context.scope.get("client")
    checked = state.get(WIRE_LOGIN)  # the gateway checked the password already (scrypt once)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    try:
        grant = await blocking.run(  # scrypt, ~60 ms, unless the gateway's check applies: on a thread
            _portal().take_token,
            username,
            password,
            notes,
            str(client[0]) if client else "",
            checked if isinstance(checked, PasswordCheck) else None,
        )
    except Exception as exc:  # the real portal answers any failure of its own with maKetQua 500
        log.exception("token take failed")
        explain = {"X-Sandbox-Explain": header_safe(f"SERVER_ERROR: {type(exc).__name__}")}
        return reply({"maKetQua": TokenResult.SYSTEM_ERROR.value, "APIKey": None}, 200, explain)
    headers = {
        "X-Sandbox-Explain": header_safe(grant.explain()),
        "X-Sandbox-Findings": header_safe(",".join(f.code for f in grant.findings), limit=2000),
        "X-Sandbox-Grades": grades_header(grant.findings),
    }
    if grant.token is None:
        return reply({"maKetQua": grant.result.value, "APIKey": None}, 200, headers)
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
        },
        200,
        headers,
    )


async def send_document(body: dict[str, Any] | None = None) -> Reply:
    form = _fields(body)
    portal = _portal()
    slot = _journal_slot()
    inline = blocking.is_inline(context.scope)
    try:
        journal = _journal_row(slot) if slot is not None else None
        received_at = slot.received_at if slot is not None else None  # when it arrived at the gateway
        client = context.scope.get("client")
        outcome = await blocking.run(
            portal.submit, _submission_form(form), journal, received_at, str(client[0]) if client else "", inline=inline
        )
    except Exception as exc:  # nothing was committed: the real portal's MaKetQua 500, HTTP 200
        log.exception("submission failed")
        explain = {"X-Sandbox-Explain": header_safe(f"SERVER_ERROR: {type(exc).__name__}")}
        now = await blocking.run(portal.clock.now, inline=inline)  # may read the database
        return reply(submit_reply(SubmitResult.SERVER_ERROR, "", now), 200, explain)
    if slot is not None:
        slot.entry_id = outcome.journal_id  # committed with the submission: the gateway need not journal
    return reply(submit_reply(outcome.verdict.result, outcome.ma_gd, outcome.received_at), 200, _headers(outcome))


def _journal_slot() -> JournalSlot | None:
    """The exchange the wire gateway handed down (absent when the app runs without the gateway)."""
    slot = (context.scope.get("state") or {}).get(JournalSlot.SCOPE_KEY)
    return slot if isinstance(slot, JournalSlot) else None


def _journal_row(slot: JournalSlot) -> Callable[[Outcome], Exchange]:
    """The journal row exactly as the gateway would derive it from this handler's reply."""

    def build(outcome: Outcome) -> Exchange:
        headers = _headers(outcome)
        return replace(
            slot.exchange,
            outcome="DROPPED" if slot.dropped else outcome.verdict.result.value,
            http_status=200,
            ma_gd=outcome.ma_gd or None,
            submission_id=outcome.submission_id,
            document_code=header_text(headers["X-Sandbox-Document"]) or None,
            file_sha256=outcome.file_sha256,
            findings=tuple(filter(None, headers["X-Sandbox-Findings"].split(","))),
            duration_ms=(time.perf_counter() - slot.started) * 1000,
        )

    return build


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


def header_safe(text: str, limit: int = EXPLAIN_CHARS) -> str:
    """An ASCII header value that says what `text` (cut to `limit` characters) says: clients decode a header
    as Latin-1 or ASCII, so a typographic dash or a Vietnamese name sent raw arrives mangled ('?').

    Every character outside printable ASCII, and `%` itself, is percent-encoded as its UTF-8 bytes (the
    encoding of RFC 8187's ext-value), so `urllib.parse.unquote` / `decodeURIComponent` gives back the text
    exactly; control characters become spaces (httptools refuses them and drops the connection)."""
    return quote(CONTROL.sub(" ", text[:limit]), safe=HEADER_SAFE, errors="replace")


def header_text(value: str) -> str:
    """The text a `header_safe` value says."""
    return unquote(value)


def _headers(outcome: Outcome) -> dict[str, str]:
    verdict = outcome.verdict
    return {
        "X-Sandbox-Submission": str(outcome.submission_id),
        "X-Sandbox-Explain": header_safe(verdict.explain()),
        "X-Sandbox-Findings": header_safe(",".join(f.code for f in verdict.findings), limit=2000),
        "X-Sandbox-Grades": grades_header(verdict.findings),
        "X-Sandbox-Document": header_safe(verdict.document_code or ""),
    }


def grades_header(findings: tuple[Finding, ...]) -> str:
    """`CODE=GRADE:severity`, comma-separated, in the order of X-Sandbox-Findings."""
    return header_safe(",".join(f"{f.code}={f.grade or '?'}:{f.severity.value}" for f in findings), limit=4000)
