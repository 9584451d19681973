"""[wire] handlers of the real portal's API: `/api/token/take` and `/api/hososuckhoe/guiGiayToDienTu`.

Thin: the form to domain values, the portal's call, then the reply `portal/exchange.py` derived from its
result (wire spelling, HTTP 200 for business errors, `X-Sandbox-*`), handed back up to the wire gateway
(`api/context.py: handed_down`) so that it journals what was sent without reading it back.

They are served by Connexion's AsyncApp (`mock_portal.app`), not through Flask: the handler runs on the
event loop and runs the blocking work (examination, database) there for a small submission, else on a
thread (`mock_portal.api.blocking`).
"""

from __future__ import annotations

import logging
from typing import Any

from connexion import context, request

from mock_portal.api import blocking
from mock_portal.api.context import WIRE_LOGIN, WORKSPACE_PORTAL, handed_down
from mock_portal.api.render import Reply, reply
from mock_portal.api.submission import answer_submission
from mock_portal.api.validators import without_lone_surrogates
from mock_portal.portal.auth import PasswordCheck, json_body_note
from mock_portal.portal.exchange import server_error_reply, token_reply
from mock_portal.portal.service import Portal
from mock_portal.wire.reply import WireReply

log = logging.getLogger(__name__)


def _portal() -> Portal:
    """The portal of the account's workspace (the gateway chose it), else the one `PortalMiddleware` set."""
    state = context.scope["state"]
    portal: Portal = state.get(WORKSPACE_PORTAL) or state["portal"]
    return portal


def _fields(body: Any) -> dict[str, str]:
    """The form fields; a body Connexion could not read as a form (no content type) has none. A lone
    surrogate of a JSON string (no account name or password has one; no database can store it) reads as
    U+FFFD, as bytes of a form that are not UTF-8 do: the request then gets the portal's own answer."""
    if not isinstance(body, dict):
        return {}
    return {without_lone_surrogates(str(key)): without_lone_surrogates(str(value)) for key, value in body.items()}


def _client() -> str:
    client = context.scope.get("client")
    return str(client[0]) if client else ""


def _render(wire: WireReply) -> Reply:
    """The derived reply, handed back up to the gateway (with the faults named) and rendered."""
    handed = handed_down(context.scope)
    sent = handed.answered(wire) if handed is not None else wire
    return reply(sent.body, sent.status, dict(sent.headers))


async def take_token(body: dict[str, Any] | None = None) -> Reply:
    form = _fields(body)
    notes = (json_body_note(),) if request.mimetype == "application/json" else ()
    checked = context.scope["state"].get(WIRE_LOGIN)  # the gateway checked the password already (scrypt once)
    portal = _portal()
    try:
        grant = await blocking.run(  # scrypt, ~60 ms, unless the gateway's check applies: on a thread
            portal.take_token,
            str(form.get("username", "")),
            str(form.get("password", "")),
            notes,
            _client(),
            checked if isinstance(checked, PasswordCheck) else None,
        )
    except Exception as exc:  # the real portal answers any failure of its own with maKetQua 500
        log.exception("token take failed")
        return _render(server_error_reply("token", exc))
    return _render(token_reply(grant))


async def send_document(body: dict[str, Any] | None = None) -> Reply:
    scope = context.scope
    answer = await answer_submission(_portal(), _fields(body), handed_down(scope), _client(), blocking.is_inline(scope))
    return _render(answer)
