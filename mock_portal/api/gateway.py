"""The outermost ASGI layer for the [wire] paths: it moves the bytes of a wire exchange.

For each request to a wire path (`wire/reply.py: WIRE_OPERATIONS`) it reads the body (capped), decides
first whether the request proves to be the account it names (`portal/workspaces.py: wire_identity`),
takes up the shared clock and — for an authenticated request only — counts its workspace's quotas and
asks the workspace's fault plans (`faults/plan.py`) what to do. Then it only moves bytes: it waits
the injected latency, closes the connection (reset), writes the reply a fault or a busy workspace
answers with (`faults/apply.py`, `portal/exchange.py`), answers a plain submission form with the
handler's own function (`api/submission.py`: Connexion would hand it the same fields), or passes the
request on with a `WireExchange` handed down (`api/context.py: hand_down`) — and, for commit-then-drop, lets the portal
store it and swallows the reply. Whoever answers hands its reply back up as data, and the journal row
is derived from that, never parsed back from the bytes sent (only Connexion's own problem+json, which no
handler derived, is read). A request that does not prove its account gets no fault, counts against no
quota and is journalled apart (`authenticated` false). Every exchange is journalled before its reply
leaves, a submission with its file's SHA-256. Other paths pass straight through.

Closing a connection without any reply relies on uvicorn closing the transport when the ASGI
callable returns a value (its documented error path); `mock-portal serve` always runs uvicorn.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_portal.api import blocking
from mock_portal.api.context import WIRE_LOGIN, WORKSPACE_PORTAL, hand_down
from mock_portal.api.errors import INTERNAL_ERROR, problem_bytes
from mock_portal.api.middleware import OVERSIZE
from mock_portal.api.submission import answer_submission
from mock_portal.api.validators import ON_LOOP_BODY_BYTES, without_lone_surrogates
from mock_portal.control.clock import system_now
from mock_portal.faults.apply import RESET, fault_reply
from mock_portal.faults.plan import Decision, Effect
from mock_portal.portal import workspaces
from mock_portal.portal.exchange import WireExchange, journal_row, problem_reply, refused_reply
from mock_portal.portal.intake import FileIdentity, IntakePolicy, file_digest, identify, light
from mock_portal.portal.service import Portal
from mock_portal.results.codes import SubmitResult
from mock_portal.store.repository import CLOCK
from mock_portal.wire.journal import Exchange
from mock_portal.wire.reply import WIRE_OPERATIONS, WireReply

log = logging.getLogger(__name__)
CLOSED = "connection closed without a reply (sandbox fault)"
MAX_FORM_FIELDS = 64
"""The wire's forms have seven fields; one with tens of thousands (`a=&a=&…`, ~14 ms to parse on the event
loop) is read as having none here (the handler refuses it)."""
CLIENT_GONE = "client-gone"
"""Added to the journal's faults of a held exchange whose client hung up before its reply (a lost reply)."""
FILE_FIELD = "fileBase64Str"


@dataclass(frozen=True)
class _Decided:
    """What `_Exchange._decide` found out about a request."""

    at: datetime
    """The sandbox instant the request arrived at (the clock state read then, applied to `real_at`)."""
    decision: Decision
    busy: str | None
    """Why the workspace is over a quota, else None."""
    authenticated: bool
    received_at: datetime
    """`at` plus the injected latency on the sandbox clock: the receipt instant of a submission."""


class WireGateway:
    def __init__(self, app: ASGIApp, portal: Portal) -> None:
        self.app = app
        self.portal = portal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> str | None:
        operation = WIRE_OPERATIONS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if operation is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return None
        return await _Exchange(self, scope, receive, send, operation).run()


class _Exchange:
    """One wire request on its way through the gateway."""

    def __init__(self, gateway: WireGateway, scope: Scope, receive: Receive, send: Send, operation: str) -> None:
        self.gateway, self.portal = gateway, gateway.portal
        self.scope, self.receive, self.send, self.operation = scope, receive, send, operation
        self.started = time.perf_counter()
        self.real_at = system_now()
        self.inline = self.heavy = False

    async def run(self) -> str | None:
        body, complete = await self._read_body()
        if not complete or OVERSIZE in self.scope.get("state", {}):  # over the cap: the inner middleware
            # answers (1001 / 413) from what it is given, and the reply is journalled here (unread, so
            # no account is proven: journalled apart)
            return await self._pass_on(body, Decision(), {}, complete=False)
        small = len(body) <= ON_LOOP_BODY_BYTES
        form = await blocking.run(functools.partial(_form, with_file=True), body, inline=small)
        file_b64 = form.pop(FILE_FIELD, "")  # not kept while the request is held
        # heavy: a body over 64 KiB (a token request's too), or a file whose pre-scan finds much work; one
        # at a time per process. Inline: small and not heavy; else (up to ~7 MB, or always) on threads
        busy_file = self.operation == "submit" and not light(file_b64, self.portal.policy.max_file_bytes)
        self.heavy = not small or busy_file
        del file_b64
        limit = self.portal.settings.inline_limit
        self.inline = limit > 0 and len(body) <= limit and not self.heavy
        facility = _facility_of(form)
        # a token request's identity is its password: scrypt, never on the event loop
        inline = self.inline and self.operation == "submit"
        try:
            decided: _Decided = await blocking.run(
                self._decide, facility, form, inline=inline, login=self.operation == "token"
            )
        except Exception:  # the database failed under us: nothing proven, no fault; the handler answers (500)
            log.exception("wire gateway: no identity decided")
            at = self.portal.clock.at(self.real_at)
            decided = _Decided(at, Decision(), None, False, at)
        decision = decided.decision
        gone = False
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
            gone = await self._client_gone()
        exchange = Exchange(
            at=decided.at,
            real_at=self.real_at,
            facility_code=facility,
            username=form.get("username", ""),
            operation=self.operation,
            outcome="",
            http_status=None,
            duration_ms=0.0,
            faults=(*decision.applied, CLIENT_GONE) if gone else decision.applied,
            loai_hs=form.get("loaiHs"),
            authenticated=decided.authenticated,
        )
        answer: WireReply | None = None
        if decided.busy is not None:  # over a workspace quota: the real portal's busy answer (the overload guard's)
            explain = f"WORKSPACE_BUSY: {decided.busy}"
            answer = refused_reply("submit", SubmitResult.SERVER_ERROR, explain, decided.received_at)
        elif decision.terminal is not None and decision.terminal.effect is not Effect.RESET:
            answer = fault_reply(decision.terminal, self.operation, decided.received_at, decision)
        if answer is not None or decision.terminal is not None:  # answered here: the handler never sees it
            exchange = await self._with_file(exchange, body)
        if answer is None and decision.terminal is not None:  # a reset: no reply at all
            await self._journal(replace(exchange, outcome=RESET))
            return CLOSED
        if answer is not None:
            await self._journal(replace(exchange, outcome=answer.outcome, http_status=answer.status))
            await _send(self.send, answer.status, _headers(answer), _payload(answer))
            return None
        if self.heavy:
            async with blocking.heavy():
                if await self._client_gone():  # it hung up while waiting for its turn: the reply reaches nobody
                    exchange = replace(exchange, faults=(*exchange.faults, CLIENT_GONE))
                started = time.perf_counter()
                try:
                    return await self._handle(body, decision, form, exchange, decided.received_at)
                finally:  # the reply has left: the next heavy one waits as long again (see blocking.heavy)
                    await asyncio.sleep(min((time.perf_counter() - started) * blocking.HEAVY_REST, blocking.MAX_REST))
        return await self._handle(body, decision, form, exchange, decided.received_at)

    async def _handle(
        self, body: bytes, decision: Decision, form: dict[str, str], exchange: Exchange, received_at: datetime
    ) -> str | None:
        """A plain submission form of a light request is answered here, with the handler's own function
        (`api/submission.py`); anything else goes through Connexion (`_pass_on`), whose layers then make the
        same reply (a heavy body's form is parsed there, off the event loop)."""
        fields = plain_submission(self.scope, body) if self.operation == "submit" and not self.heavy else None
        if fields is None:
            return await self._pass_on(body, decision, form, exchange=exchange, received_at=received_at)
        handed = WireExchange(exchange, self.started, decision.applied, decision.drop_after_commit, received_at)
        client = self.scope.get("client")
        try:
            answer = handed.answered(
                await answer_submission(
                    self.portal, fields, handed, str(client[0]) if client else "", blocking.is_inline(self.scope)
                )
            )
        except Exception:  # what Connexion's error handler answers (api/errors.py: _unexpected), journalled
            log.exception("unhandled error")
            payload = problem_bytes(*INTERNAL_ERROR)
            headers = [(b"content-type", b"application/problem+json")]
            return await self._finish(handed, INTERNAL_ERROR[0], headers, payload, body, form)
        return await self._finish(handed, answer.status, _headers(answer), _payload(answer) + b"\n", body, form)

    def _decide(self, facility: str, form: dict[str, str]) -> _Decided:
        """Who the request speaks for, first (`workspaces.wire_identity`; an unknown account is refused in
        `default`, docs/ARCHITECTURE.md, Workspaces); then take up the workspace's clock and, for an
        authenticated request only, count a submission against its quotas and decide its faults (the
        clock and fault plans read together in one query). The workspace's portal, and a token
        request's password check, go down to the handler in the scope."""
        client = self.scope.get("client")
        identity = workspaces.wire_identity(self.portal, self.operation, form, str(client[0]) if client else "")
        self.portal = self.portal.workspace(identity.workspace, identity.generation)
        state = self.scope.setdefault("state", {})
        state[WORKSPACE_PORTAL], state[WIRE_LOGIN] = self.portal, identity.login
        # the handler runs inline only when checking the password costs no scrypt
        blocking.mark_inline(self.scope, self.inline and self.operation == "submit" and identity.scrypt_free)
        faults = self.portal.faults
        found = self.portal.repo.get_settings([CLOCK, *faults.keys(facility)] if identity.authenticated else [CLOCK])
        self.portal.clock.refresh_from(found.get(CLOCK))
        at = self.portal.clock.at(self.real_at)
        if not identity.authenticated:
            return _Decided(at, Decision(), None, False, at)
        busy = workspaces.admit_submission(self.portal, identity.row) if self.operation == "submit" else None
        decision = faults.decide(self.operation, facility, at, found)
        held = timedelta(milliseconds=decision.latency_ms * self.portal.clock.state().rate)
        return _Decided(at, decision, busy, True, at + held)

    async def _with_file(self, exchange: Exchange, body: bytes, *, code: bool = True) -> Exchange:
        """A submission the handler never examined (answered here) with its file's SHA-256 and, when `code`,
        its document code (a parse: only for authenticated exchanges answered by a fault, so nobody can
        make the gateway parse files for free): the journal ties every attempt to its file."""
        if self.operation != "submit" or not self.portal.journal.keeps(exchange.authenticated):
            return exchange
        found = await blocking.run(_identify, body, self.portal.policy, code, inline=self.inline)
        return replace(exchange, file_sha256=found.sha256, document_code=exchange.document_code or found.document_code)

    async def _client_gone(self) -> bool:
        """Whether the client hung up while its request was held: the portal still stores the file (the
        real one would), but the reply reaches nobody, so the journal marks it for the hospital's judges."""
        with anyio.move_on_after(0.005):
            message: Message = await self.receive()
            return bool(message["type"] == "http.disconnect")
        return False

    async def _read_body(self) -> tuple[bytes, bool]:
        """The whole body, or the first part of it when it is over the cap (complete=False)."""
        limit, size = self.portal.settings.max_body_bytes, 0
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                return b"".join(chunks), True
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks), False
            if not message.get("more_body", False):
                return b"".join(chunks), True

    async def _pass_on(
        self,
        body: bytes,
        decision: Decision,
        form: dict[str, str],
        *,
        complete: bool = True,
        exchange: Exchange | None = None,
        received_at: datetime | None = None,
    ) -> str | None:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": not complete}
            return await self.receive()

        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        handed = WireExchange(exchange, self.started, decision.applied, decision.drop_after_commit, received_at)
        hand_down(self.scope, handed)
        await self.gateway.app(self.scope, replay, capture)
        status, headers, payload = _assemble(captured)
        return await self._finish(handed, status, headers, payload, body, form)

    async def _finish(
        self,
        handed: WireExchange,
        status: int,
        headers: list[tuple[bytes, bytes]],
        payload: bytes,
        body: bytes,
        form: dict[str, str],
    ) -> str | None:
        """Journal the exchange from the reply whoever answered handed back (Connexion's own problem+json
        when nobody did), then send it, or drop it (drop_after_commit)."""
        answer = handed.reply
        if answer is None:  # refused before any handler (Connexion's problem+json), or the app failed
            answer = problem_reply(status, _problem(payload) if status >= 400 else None).faults_named(handed.applied)
            headers = [*headers, *_sandbox_headers(answer)]
        if handed.exchange is None:
            self.portal.clock.now()  # takes up a state gone stale
            handed.exchange = Exchange(
                at=self.portal.clock.at(self.real_at),
                real_at=self.real_at,
                facility_code=_facility_of(form),
                username=form.get("username", ""),
                operation=self.operation,
                outcome="",
                http_status=None,
                duration_ms=0.0,
                authenticated=False,
            )
        elif answer.journal_id is None:  # refused before the handler, or it failed: not journalled yet
            handed.exchange = await self._with_file(handed.exchange, body, code=False)
        if answer.journal_id is None:  # else journalled in the transaction that stored it
            await self._journal(journal_row(handed, answer))
        if handed.dropped:
            return CLOSED
        await _send(self.send, status, headers, payload)
        return None

    async def _journal(self, exchange: Exchange) -> None:
        done = replace(exchange, duration_ms=(time.perf_counter() - self.started) * 1000)
        await blocking.run(self.portal.journal.record, done, inline=self.inline)


def _form(body: bytes, *, with_file: bool = False) -> dict[str, str]:
    """The fields the gateway needs (username, token, password, maCskcb, loaiHs), from a form or a JSON body
    (token/take; a lone surrogate read as U+FFFD, as the handler reads it); the file too when asked (it is not
    kept while a request is held)."""
    try:
        text = body.decode("utf-8")
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            if not isinstance(data, dict):
                return {}
            fields = ((without_lone_surrogates(str(k)), without_lone_surrogates(str(v))) for k, v in data.items())
            return {k: v for k, v in fields if with_file or k != FILE_FIELD}
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return {key: values[0] for key, values in parsed.items() if with_file or key != FILE_FIELD}


def plain_submission(scope: Scope, body: bytes) -> dict[str, str] | None:
    """The fields of a submission whose form Connexion's layers would hand the handler as they are — one
    `application/x-www-form-urlencoded` Content-Type (a charset parameter at most), ASCII throughout, each
    pair `name=value` once, at most `MAX_FORM_FIELDS` — else None (Connexion reads it). What every hospital
    system sends: URL-encoded base64 and ASCII names."""
    types = [value for name, value in scope.get("headers", ()) if name.lower() == b"content-type"]
    if len(types) != 1 or _FORM_TYPE.fullmatch(types[0]) is None or not body.isascii():
        return None
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:
        return None
    fields = dict(pairs)
    if len(fields) != len(pairs) or not all(value.isascii() for value in fields.values()):
        return None
    return fields


_FORM_TYPE = re.compile(rb"application/x-www-form-urlencoded(?:\s*;\s*charset=\"?utf-8\"?)?", re.IGNORECASE)


def _identify(body: bytes, policy: IntakePolicy, code: bool) -> FileIdentity:
    """The file of a submission's body: its digest and, when `code`, its document code (`intake.identify`)."""
    file_b64 = _form(body, with_file=True).get(FILE_FIELD, "")
    return identify(file_b64, policy) if code else FileIdentity(file_digest(file_b64, policy.max_file_bytes))


def _facility_of(form: dict[str, str]) -> str:
    """The facility an exchange belongs to: the account's (`<MA_CSKCB>_BV`), else the maCskcb sent — so a
    document sent with another facility's maCskcb is journalled (and faulted) with its sender."""
    username = form.get("username", "")
    return (username.split("_", 1)[0] if "_" in username else "") or form.get("maCskcb", "")


def _assemble(messages: list[Message]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    return int(start["status"]), headers, body


def _problem(payload: bytes) -> Any:
    """The JSON of a problem+json reply Connexion made (None when it is none)."""
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _sandbox_headers(answer: WireReply) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in answer.headers]


def _headers(answer: WireReply) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", answer.content_type.encode()), *_sandbox_headers(answer)]


def _payload(answer: WireReply) -> bytes:
    if isinstance(answer.body, str):
        return answer.body.encode()
    return json.dumps(answer.body, ensure_ascii=False, separators=(",", ":")).encode()


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
