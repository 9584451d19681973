"""ASGI middleware: hands the portal to the security layer, caps request bodies and reads
`application/x-pem-file` as the contract's `text/plain`.

The body cap is applied while the body streams in, so an oversize upload is never held in memory.
On the wire submission path the real portal's answer to an oversize file is MaKetQua 1001 (HTTP 200).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_portal.api.context import handed_down
from mock_portal.api.errors import problem_body
from mock_portal.api.security import is_admin
from mock_portal.portal.exchange import refused_reply
from mock_portal.portal.service import Portal
from mock_portal.results.codes import SubmitResult, TokenResult
from mock_portal.wire.reply import WIRE_OPERATIONS, WireReply

OVERSIZE = "portal.oversize"
"""Scope state key: the outer guard found the body over the cap (its size) and did not keep it."""


class BodyTooLarge(Exception):
    pass


class PortalMiddleware:
    def __init__(self, app: ASGIApp, portal: Portal) -> None:
        self.app = app
        self.portal = portal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["portal"] = self.portal
        if scope.get("method") == "POST" and PEM_UPLOAD.fullmatch(scope.get("path", "")):
            scope["headers"] = pem_as_text(scope.get("headers", []))
        if _unroutable_path(scope.get("path", "")):
            await _unroutable(scope, send, self.portal)
            return
        limit = self.portal.settings.max_body_bytes
        declared = scope["state"].get(OVERSIZE) or content_length(scope)
        if declared is not None and declared > limit:
            await too_large(scope, send, declared, self.portal)
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await too_large(scope, send, received, self.portal)


PEM_FILE = b"application/x-pem-file"
PEM_UPLOAD = re.compile(r"/sandbox/(facilities/[^/]+/certificates|trust/cas|trust/crls)")
"""The operations whose body is a PEM file (their `POST`): the only ones `application/x-pem-file` is read
as `text/plain` on; elsewhere it is the media type the client sent, and Connexion's 415 names it."""


def pem_as_text(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`application/x-pem-file`, what PEM tooling and existing clients send, read as `text/plain`: the
    contract lists only `text/plain` for PEM bodies, a media type generic tools (Schemathesis, generated
    clients) can send, and Connexion refuses a media type the operation does not list (415). Only that
    exact media type (any case, parameters such as `charset` kept): `application/x-pem-filexyz` stays as sent."""
    return [(name, _pem_as_text(value) if name == b"content-type" else value) for name, value in headers]


def _pem_as_text(value: bytes) -> bytes:
    media_type, semicolon, parameters = value.partition(b";")
    return b"text/plain" + semicolon + parameters if media_type.strip().lower() == PEM_FILE else value


def content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


async def too_large(scope: Scope, send: Send, size: int, portal: Portal) -> None:
    operation = WIRE_OPERATIONS.get(scope.get("path", ""))
    if operation is not None:
        reply = _oversize_reply(operation, portal)
        handed = handed_down(scope)
        await send_wire(send, handed.answered(reply) if handed is not None else reply)
        return
    problem = problem_body(
        413,
        "BODY_TOO_LARGE",
        "Nội dung yêu cầu quá lớn",
        f"Request body larger than {portal.settings.max_body_bytes} bytes",
        "Payload Too Large",
    )
    await send_json(send, 413, [(b"content-type", b"application/problem+json")], problem)


def _oversize_reply(operation: str, portal: Portal) -> WireReply:
    """The real portal's answer to an oversize file: MaKetQua 1001; no account has a name that long: a token
    request's is the portal's "no such account"."""
    if operation == "submit":
        explain = f"FILE_TOO_LARGE: request body over {portal.settings.max_file_bytes} bytes"
        return refused_reply(operation, SubmitResult.FILE_TOO_LARGE, explain, portal.clock.now())
    explain = f"BODY_TOO_LARGE: request body over {portal.settings.max_body_bytes} bytes"
    return refused_reply(operation, TokenResult.NO_ACCOUNT, explain)


async def send_wire(send: Send, reply: WireReply) -> None:
    """A wire reply the portal answers with before any handler: JSON, and the connection closed."""
    if not isinstance(reply.body, dict):
        raise TypeError("a wire reply sent before the handler is JSON")
    headers = [(b"content-type", b"application/json"), *((k.lower().encode(), v.encode()) for k, v in reply.headers)]
    await send_json(send, reply.status, headers, reply.body)


async def send_json(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: dict[str, Any]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [*headers, (b"content-length", str(len(payload)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _unroutable_path(path: str) -> bool:
    """A path Connexion's router and Flask's disagree on, so that it would reach Flask without an
    operation (a 500): a line break (the router's mount regex stops at `\\n`) or an empty segment
    (`//sandbox/...`: Flask merges the slashes, the router does not). No resource has either."""
    return "\n" in path or "//" in path


async def _unroutable(scope: Scope, send: Send, portal: Portal) -> None:
    """A path `_unroutable_path` names: answer 404, after the admin token check the sandbox API would
    have made."""
    path = scope.get("path", "")
    authorization = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
    if path.startswith("/sandbox/") and not is_admin(portal, authorization.removeprefix("Bearer ")):
        status, code, vi, en = (
            401,
            "UNAUTHORIZED",
            "Thiếu hoặc sai token quản trị (Authorization: Bearer ...)",
            "No such token",
        )
        headers = [(b"www-authenticate", b"Bearer")]
    else:
        status, code, vi, en = 404, "NOT_FOUND", "Không tìm thấy", "No resource has a line break or `//` in its path"
        headers = []
    await send_json(
        send, status, [(b"content-type", b"application/problem+json"), *headers], problem_body(status, code, vi, en)
    )
