"""The outermost ASGI layer: every request body is read here, under deadlines and a budget, first.

Flask views run in a small thread pool (10 per process): a view that reads a body a slow client
trickles in holds its thread, and a few dozen such clients stop every path, health included. So no
handler ever sees a body that has not fully arrived: this layer reads it on the event loop (where
waiting costs nothing), then hands the inner app the bytes in one message.

Bounds, per server process (`Settings`):

* a body must arrive within `body_timeout_seconds`, with no pause longer than
  `body_idle_timeout_seconds`;
* at most `max_open_bodies` bodies in flight and `max_inflight_bytes` held for them (the declared
  `Content-Length` is reserved up front, a chunked body is counted as it arrives);
* no body over `Settings.max_body_bytes` is read past the cap, however it arrives.

Headers are bounded by the server protocol (`serving.header_deadline`). Answers: on the wire paths
the real portal's codes with HTTP 200 — MaKetQua 1001 for an oversize file (a client error, never
retried), 500 for a timeout or a busy server (transient: the hospital may retry later), maKetQua 401
for an oversize token request (no such account); elsewhere problem+json 413, 408 or 503 with
`Retry-After`. The connection is closed after any of these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.types import Message, Receive, Scope, Send

from mock_portal.api.errors import problem_body
from mock_portal.api.middleware import OVERSIZE, content_length, send_json, send_wire
from mock_portal.portal.exchange import refused_reply
from mock_portal.portal.service import Portal
from mock_portal.results.codes import SubmitResult, TokenResult
from mock_portal.wire.reply import WIRE_OPERATIONS, header_safe

DRAIN_FACTOR = 4
"""An oversize body up to this many times the cap is read to its end (and dropped) before the 1001."""


@dataclass(frozen=True)
class Refusal:
    """Why a body was not read to the end: a stable code, the problem status and bilingual text."""

    code: str
    status: int
    vi: str
    en: str


def _timeout(en: str) -> Refusal:
    return Refusal("BODY_TIMEOUT", 408, "Gửi nội dung yêu cầu quá chậm", en)


def _busy(en: str) -> Refusal:
    return Refusal("SERVER_BUSY", 503, "Máy chủ đang bận, hãy thử lại sau", en)


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal


@dataclass
class _Hold:
    """Bytes one request holds in the process's in-flight budget (given back when it is done)."""

    bytes: int


WrappedApp = Callable[[Scope, Receive, Send], Awaitable[Any]]
"""An ASGI app that may return a value (the wire gateway's way to have uvicorn close a connection)."""


class RequestGuard:
    def __init__(self, app: WrappedApp, portal: Portal) -> None:
        self.app = app
        self.portal = portal
        self.open_bodies = 0
        self.inflight_bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = self.portal.settings
        declared = content_length(scope)
        if declared is not None and declared > settings.max_body_bytes:
            await self._drain(receive, declared)
            return await self._too_large(scope, receive, send, declared)
        if not declared and not _chunked(scope):  # no body to wait for (a GET, health): nothing to bound
            return await self.app(scope, receive, send)
        reserved = declared or 0
        if self.open_bodies >= settings.max_open_bodies:
            await self._refuse(scope, send, _busy(f"More than {settings.max_open_bodies} requests in flight"))
            return None
        if self.inflight_bytes + reserved > settings.max_inflight_bytes:
            await self._refuse(scope, send, _busy(f"More than {settings.max_inflight_bytes} bytes in flight"))
            return None
        self.open_bodies += 1
        self.inflight_bytes += reserved
        hold = _Hold(reserved)
        try:
            try:
                body = await self._read(receive, hold)
            except _TooLarge as exc:
                await self._drain(receive, declared)
                return await self._too_large(scope, receive, send, exc.size)
            except _Refused as exc:
                await self._refuse(scope, send, exc.refusal)
                return None
            if body is None:  # the client went away before its body was complete: nobody to answer
                return None
            return await self.app(scope, _replay(body, receive), send)
        finally:
            self.open_bodies -= 1
            self.inflight_bytes -= hold.bytes

    async def _read(self, receive: Receive, hold: _Hold) -> bytes | None:
        """The whole body within the deadlines (None if the client disconnected); `hold` keeps count of
        the bytes it holds in the budget."""
        settings = self.portal.settings
        limit, chunks, size = settings.max_body_bytes, [], 0
        deadline = anyio.current_time() + settings.body_timeout_seconds
        while True:
            wait = min(settings.body_idle_timeout_seconds, deadline - anyio.current_time())
            message = None
            with anyio.move_on_after(max(wait, 0)):
                message = await receive()
            if message is None:
                raise _Refused(_timeout(f"The request body did not arrive within the time allowed ({wait:.0f} s)"))
            if message["type"] != "http.request":  # http.disconnect
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge(size)
            if size > hold.bytes:  # more than declared (chunked): count it against the budget as it comes
                grow = size - hold.bytes
                if self.inflight_bytes + grow > settings.max_inflight_bytes:
                    raise _Refused(_busy(f"More than {settings.max_inflight_bytes} bytes in flight"))
                self.inflight_bytes += grow
                hold.bytes = size
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, size: int) -> Any:
        """Hand the request on without its body, marked oversize: the layers inside answer 1001 / 413 and
        the wire gateway journals the exchange, as for any other reply."""
        scope.setdefault("state", {})[OVERSIZE] = size
        return await self.app(scope, _replay(b"", receive), send)

    async def _drain(self, receive: Receive, declared: int | None) -> None:
        """Read and drop the rest of an oversize body (never held) so that the client, which reads the
        reply only after sending everything, gets its MaKetQua 1001 instead of a reset connection.
        Bounded: at most `DRAIN_FACTOR` x the body cap, within the body deadlines; past that the reply
        is sent and the connection closed."""
        settings = self.portal.settings
        budget = settings.max_body_bytes * DRAIN_FACTOR
        if declared is not None and declared > budget:
            return
        deadline = anyio.current_time() + settings.body_timeout_seconds
        drained = 0
        while drained <= budget:
            wait = min(settings.body_idle_timeout_seconds, deadline - anyio.current_time())
            with anyio.move_on_after(max(wait, 0)) as scope:
                message = await receive()
            if scope.cancelled_caught or message["type"] != "http.request" or not message.get("more_body", False):
                return
            drained += len(message.get("body", b""))

    async def _refuse(self, scope: Scope, send: Send, refusal: Refusal) -> None:
        operation = WIRE_OPERATIONS.get(scope.get("path", ""))
        explain = f"{refusal.code}: {refusal.en}"
        if operation == "submit":
            await send_wire(send, refused_reply(operation, SubmitResult.SERVER_ERROR, explain, self.portal.clock.now()))
        elif operation == "token":
            await send_wire(send, refused_reply(operation, TokenResult.SYSTEM_ERROR, explain))
        else:
            problem = problem_body(refusal.status, refusal.code, refusal.vi, refusal.en)
            headers = [
                (b"content-type", b"application/problem+json"),
                (b"x-sandbox-explain", header_safe(explain).encode()),
            ]
            if refusal.status == 503:
                headers.append((b"retry-after", b"5"))
            await send_json(send, refusal.status, headers, problem)


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", []))


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body as one message, then whatever the connection says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
