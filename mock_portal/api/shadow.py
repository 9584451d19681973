"""`mock-portal shadow`: a transparent proxy in front of the real portal that judges on the side.

The hospital points at the proxy instead of the portal. Every request goes to the upstream as sent
(method, path, query, end-to-end headers, body bytes, streamed as they arrive; `Host` names the
upstream), and the upstream's reply comes back as received (status, end-to-end headers, body bytes;
uvicorn writes header names in lower case and the proxy adds no `server` or `date` of its own). Only
`/shadow/` (the page) and `/shadow/comparisons` (its JSON) are the proxy's own, and a 400 for a request
target no URL can carry (`OPTIONS *`).

Failures are passed on as the same failure: an upstream that closes or resets the connection without
a reply (or cannot be reached) gets the hospital's connection closed without a reply (uvicorn closes
the transport when the ASGI callable returns a value, as `gateway.py` does for an injected reset); one
that stops mid-reply gets the reply cut at the same byte. An upstream silent for `timeout` seconds is
a closed connection too, logged as `timeout`; a hospital whose own timeout fires first hangs up, and the
proxy then drops the upstream request (logged as `timeout`).

After a submission's reply has left, its body and reply go to `evidence/shadow.py: SideJudge` (judged in
a process of its own, logged, counted); with `explain` the proxy judges before it replies and sends the
sandbox's verdict in `X-Sandbox-Explain` (replacing an upstream's), which holds the reply for the
judging. Token requests are passed on and counted, never kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import ssl
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import httpx
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from mock_portal.evidence.shadow import MODES, REPLY_BYTES, Seen, ShadowBook, SideJudge
from mock_portal.wire.reply import EXPLAIN, WIRE_OPERATIONS, header_safe

CLOSED = "connection closed without a reply (passed on from the upstream)"
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
"""Headers that belong to one connection (RFC 9110 7.6.1), not passed on; `host` is the upstream's."""
PAGE = "/shadow"
DRAIN_SECONDS = 10.0
"""How long the rest of a kept body may take to arrive when the upstream never read it."""


class ClientGone(Exception):
    """The hospital hung up before its request's body had arrived."""


class ShadowProxy:
    """The ASGI app of `mock-portal shadow`."""

    def __init__(
        self,
        upstream: str,
        side: SideJudge,
        book: ShadowBook,
        *,
        timeout: float = 120.0,
        explain: bool = False,
        verify: ssl.SSLContext | bool = True,
        max_body_bytes: int,
    ) -> None:
        self.upstream = httpx.URL(upstream)
        self.side, self.book, self.explain, self.max_body_bytes = side, book, explain, max_body_bytes
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), verify=verify, trust_env=False, follow_redirects=False
        )
        for name in list(self.client.headers):  # no User-Agent, Accept or Accept-Encoding of httpx's own
            del self.client.headers[name]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> str | None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return None
        if scope["type"] != "http":
            return CLOSED
        path = scope.get("path", "")
        if path == PAGE or path.startswith(PAGE + "/"):
            await self._page(path, send)
            return None
        return await _Pass(self, scope, receive, send).run()

    def target(self, scope: Scope) -> httpx.URL:
        """The upstream URL of a request: the upstream's base path, then the request's path and query as sent."""
        raw = self.upstream.raw_path.split(b"?", 1)[0].rstrip(b"/") + scope.get("raw_path", scope["path"].encode())
        query = scope.get("query_string", b"")
        return self.upstream.copy_with(raw_path=raw + (b"?" + query if query else b""))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.side.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await anyio.to_thread.run_sync(self.side.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _page(self, path: str, send: Send) -> None:
        snapshot = self.book.snapshot()
        if path.rstrip("/") == PAGE + "/comparisons":
            body, kind = json.dumps(snapshot, ensure_ascii=False).encode(), b"application/json"
        elif path.rstrip("/") == PAGE:
            body, kind = page(snapshot, str(self.upstream)).encode(), b"text/html; charset=utf-8"
        else:
            await _plain(send, 404, b"not found")
            return
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _Pass:
    """One request on its way through the proxy."""

    def __init__(self, proxy: ShadowProxy, scope: Scope, receive: Receive, send: Send) -> None:
        self.proxy, self.scope, self.receive, self.send = proxy, scope, receive, send
        self.operation = WIRE_OPERATIONS.get(scope.get("path", "")) if scope.get("method") == "POST" else None
        self.sent_at = datetime.now(UTC)
        self.started = time.perf_counter()
        self.body_done = asyncio.Event()
        self.kept: bytearray | None = None
        self.reserved = 0
        self.encoding = ""
        """The reply's Content-Encoding: the kept copy is decoded for judging, the bytes passed on are not."""

    async def run(self) -> str | None:
        if self.operation:
            self.proxy.book.count(self.operation)
        if self.operation == "submit":
            self._reserve()
        try:
            return await self._exchange()
        finally:
            if self.reserved:  # not handed to the judge: give its room back
                self.proxy.side.release(self.reserved)

    def _reserve(self) -> None:
        declared = _declared_length(self.scope)
        if declared is None or declared > self.proxy.max_body_bytes or not _is_form(self.scope):
            self.proxy.book.count("unkept")
        elif self.proxy.side.reserve(declared):
            self.kept, self.reserved = bytearray(), declared

    async def _exchange(self) -> str | None:
        has_body = bool(_declared_length(self.scope)) or _header(self.scope, b"transfer-encoding") is not None
        if not has_body:  # none to stream: httpx would send an empty chunked one
            self.body_done.set()
        try:
            request = self.proxy.client.build_request(
                self.scope["method"],
                self.proxy.target(self.scope),
                headers=_forwarded(self.scope),
                content=self._body() if has_body else None,
            )
        except httpx.InvalidURL:  # a target no URL can carry (`OPTIONS *`): the proxy's own 400
            await _plain(self.send, 400, b"bad request target: not passed on")
            return None
        upstream = asyncio.ensure_future(self.proxy.client.send(request, stream=True))
        hang_up = asyncio.ensure_future(self._hang_up())
        try:
            await asyncio.wait({upstream, hang_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hang_up.cancel()
        if not upstream.done():  # the hospital gave up waiting: so does the proxy
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError, ClientGone):
                await upstream
            return await self._failed("timeout")
        try:
            response = upstream.result()
        except ClientGone:
            return CLOSED
        except httpx.TimeoutException:
            return await self._failed("timeout")
        except httpx.HTTPError:  # closed, reset, refused, a broken reply: no reply to pass on
            return await self._failed("reset")
        try:
            return await self._reply(response)
        finally:
            await response.aclose()

    async def _body(self) -> AsyncIterator[bytes]:
        """The request body as it arrives, kept for judging while there is room."""
        while True:
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if self.kept is not None:
                self.kept += chunk
                if len(self.kept) > self.reserved:  # more than it declared: not judged
                    self.kept = None
                    self.proxy.book.count("unkept")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.body_done.set()
                return

    async def _hang_up(self) -> None:
        """Returns when the hospital hangs up while it waits for the reply."""
        await self.body_done.wait()
        while (await self.receive())["type"] != "http.disconnect":
            pass

    async def _reply(self, response: httpx.Response) -> str | None:
        self.encoding = response.headers.get("content-encoding", "")
        headers = [(name.lower(), value) for name, value in response.headers.raw if name.lower() not in HOP_BY_HOP]
        if self._explain_now(response):
            payload, whole = await self._read(response)
            if not whole:  # the upstream stopped mid-reply: so does the proxy, at the same byte
                self._hand_over(response.status_code, None, "reset")
                await self.send({"type": "http.response.start", "status": response.status_code, "headers": headers})
                await self.send({"type": "http.response.body", "body": payload, "more_body": True})
                return CLOSED
            explain = await anyio.to_thread.run_sync(self._judge_now, response.status_code, payload)
            if explain is not None:
                headers = [(n, v) for n, v in headers if n != EXPLAIN.lower().encode()]
                headers.append((EXPLAIN.lower().encode(), header_safe(explain).encode()))
            await self.send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await self.send({"type": "http.response.body", "body": payload})
            return None
        await self.send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        kept = bytearray()
        try:
            async for chunk in response.aiter_raw():
                if len(kept) <= REPLY_BYTES:
                    kept += chunk
                await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError:  # the upstream stopped mid-reply: so does the proxy
            self._hand_over(response.status_code, None, "reset")
            return CLOSED
        await self.send({"type": "http.response.body", "body": b""})
        self._hand_over(response.status_code, bytes(kept) if len(kept) <= REPLY_BYTES else None)
        return None

    def _explain_now(self, response: httpx.Response) -> bool:
        """`--explain` on a kept submission whose reply says it is small (read whole, then sent); any other
        reply is streamed as it comes."""
        length = response.headers.get("content-length", "")
        return self.proxy.explain and self.kept is not None and length.isdigit() and int(length) <= REPLY_BYTES

    @staticmethod
    async def _read(response: httpx.Response) -> tuple[bytes, bool]:
        """The reply's bytes as sent, and whether they all came."""
        payload = bytearray()
        try:
            async for chunk in response.aiter_raw():
                payload += chunk
        except httpx.HTTPError:
            return bytes(payload), False
        return bytes(payload), True

    def _judge_now(self, status: int, payload: bytes) -> str | None:
        seen = self._seen(status, payload if len(payload) <= REPLY_BYTES else None, None)
        if seen is None:
            return None
        self.reserved = 0  # judge_now gives the room back
        comparison = self.proxy.side.judge_now(seen)
        return "SHADOW " + comparison.explain if comparison else None

    def _seen(self, status: int | None, reply: bytes | None, failure: str | None) -> Seen | None:
        if self.kept is None or not self.body_done.is_set():
            return None
        duration = (time.perf_counter() - self.started) * 1000
        return Seen(self.sent_at, bytes(self.kept), status, _decoded(reply, self.encoding), failure, duration)

    def _hand_over(self, status: int | None, reply: bytes | None, failure: str | None = None) -> None:
        """The exchange to the side judge (after its reply has left), when its body was kept."""
        if self.operation is not None and self.operation != "submit":
            self.proxy.book.count(f"{self.operation}:{failure or status}")
        seen = self._seen(status, reply, failure)
        if seen is None:
            return
        self.reserved = 0  # the judge gives the room back
        self.proxy.side.submit(seen)

    async def _failed(self, failure: str) -> str:
        """No reply to pass on: the hospital's connection is closed. A body the upstream never read (it could not
        be reached) is read to its end first, within `DRAIN_SECONDS`, so the send is judged all the same."""
        if self.kept is not None and not self.body_done.is_set():
            with contextlib.suppress(ClientGone, TimeoutError):
                async with asyncio.timeout(DRAIN_SECONDS):
                    async for _chunk in self._body():
                        pass
        self._hand_over(None, None, failure)
        return CLOSED


def _decoded(reply: bytes | None, encoding: str) -> bytes | None:
    """The reply's body as the hospital's client reads it, for judging: a gzip or deflate Content-Encoding
    undone, within `REPLY_BYTES` (a small body that inflates beyond is not judged); None for another coding
    or a body that does not inflate."""
    coding = encoding.strip().lower()
    if reply is None or coding in ("", "identity"):
        return reply
    if coding not in ("gzip", "x-gzip", "deflate"):
        return None
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, told apart by zlib
    try:
        body = inflate.decompress(reply, REPLY_BYTES + 1)
    except zlib.error:
        return None
    return body if len(body) <= REPLY_BYTES else None


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    return next((value for name, value in scope.get("headers", []) if name == wanted), None)


def _declared_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _is_form(scope: Scope) -> bool:
    """An urlencoded body, as the wire's forms are: any other (multipart, JSON) is passed on, not judged (read as
    a form it would be judged as an empty one)."""
    kind = _header(scope, b"content-type") or b""
    return kind.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"


async def _plain(send: Send, status: int, body: bytes) -> None:
    """A reply of the proxy's own (its page's 404, a request it cannot pass on)."""
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _forwarded(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request's end-to-end headers as received (`Host` is set to the upstream's by httpx)."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    named = {token.strip().lower() for name, value in headers if name == b"connection" for token in value.split(b",")}
    return [(name, value) for name, value in headers if name not in HOP_BY_HOP | named and name != b"host"]


def page(snapshot: dict[str, Any], upstream: str) -> str:
    """The proxy's page: its counts, the real x sandbox matrix per mode, the latest comparisons."""
    counts = snapshot["counts"]
    rows = "".join(
        f"<tr><td>{html.escape(c['sent_at'])}</td><td>{html.escape(c['maCskcb'])}</td>"
        f"<td>{html.escape(c['doc_type'])}</td>"
        + "".join(
            f"<td class={'agree' if c['agrees'][m.value] else 'disagree'}>{html.escape(c['sentences'][m.value])}</td>"
            for m in MODES
        )
        + "</tr>"
        for c in snapshot["comparisons"]
    )
    matrices = "".join(
        f"<h2>{mode.value} mode</h2><table><tr><th>real</th><th>sandbox</th><th>sends</th></tr>"
        + "".join(
            f"<tr><td>{html.escape(r['real'])}</td><td>{html.escape(r['sandbox'])}</td><td>{r['count']}</td></tr>"
            for r in snapshot["matrix"][mode.value]
        )
        + "</table>"
        for mode in MODES
    )
    listed = ", ".join(f"{html.escape(name)}: {count}" for name, count in sorted(counts.items()))
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Shadow proxy</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
        ".disagree{background:#fde2e1}.agree{background:#e3f6e5}</style>"
        f"<h1>Shadow proxy of {html.escape(upstream)}</h1><p>{listed or 'nothing passed on yet'}</p>{matrices}"
        "<h2>Latest submissions</h2><table><tr><th>sent at</th><th>maCskcb</th><th>type</th>"
        f"<th>portal mode</th><th>strict mode</th></tr>{rows}</table></html>"
    )


def serve_shadow(proxy: ShadowProxy, host: str, port: int, *, log_level: str = "warning") -> int:
    """Run the proxy under uvicorn, with no `server` or `date` header of uvicorn's own."""
    config = uvicorn.Config(
        proxy, host=host, port=port, log_level=log_level, lifespan="on", server_header=False, date_header=False
    )
    logging.getLogger("uvicorn.error").addFilter(_not_a_passed_on_close)
    uvicorn.Server(config).run()
    return 0


def _not_a_passed_on_close(record: logging.LogRecord) -> bool:
    """uvicorn logs an error for the value an ASGI callable returns to close the connection: for the proxy
    that is a failure passed on, not an error of its own."""
    return not (record.args == (CLOSED,) and record.msg.startswith("ASGI callable should return None"))
