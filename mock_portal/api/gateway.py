"""The outermost ASGI layer for the [wire] paths: identity, faults, the sandbox clock and the journal.

For each request to `/api/token/take` or `/api/hososuckhoe/guiGiayToDienTu` it reads the body
(capped), decides first whether the request proves to be the account it names
(`portal/workspaces.py: wire_identity`), takes up the shared clock and — for an authenticated request
only — counts its workspace's quotas and asks the gate which faults apply, then either answers for
the fault (HTTP error, the portal's own error code, a locked account), closes the connection (reset),
or passes the request on — and, for commit-then-drop, lets the portal store it and swallows the
reply. A request that does not prove its account gets no fault, counts against no quota and is
journalled apart (`authenticated` false). Every exchange is journalled before its reply leaves, a
submission with its file's SHA-256. Other paths pass straight through.

Closing a connection without any reply relies on uvicorn closing the transport when the ASGI
callable returns a value (its documented error path); `mock-portal serve` always runs uvicorn.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_portal.api import blocking
from mock_portal.api.context import WIRE_LOGIN, WORKSPACE_PORTAL
from mock_portal.api.hiap import header_safe, header_text, submit_reply
from mock_portal.api.middleware import OVERSIZE
from mock_portal.api.validators import ON_LOOP_BODY_BYTES, without_lone_surrogates
from mock_portal.control.clock import system_now
from mock_portal.control.faults import Decision, Effect, Fault
from mock_portal.control.gate import Exchange, JournalSlot
from mock_portal.portal import workspaces
from mock_portal.portal.codes import SubmitResult, TokenResult
from mock_portal.portal.intake import FileIdentity, IntakePolicy, file_digest, identify, light
from mock_portal.portal.service import Portal
from mock_portal.store.repository import CLOCK

log = logging.getLogger(__name__)
OPERATIONS = {"/api/token/take": "token", "/api/hososuckhoe/guiGiayToDienTu": "submit"}
DROPPED = "connection closed without a reply (sandbox fault)"
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
        operation = OPERATIONS.get(scope.get("path", "")) if scope["type"] == "http" else None
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
        if decided.busy is not None:  # over a workspace quota: the real portal's busy answer (the overload guard's)
            explain = [(b"x-sandbox-explain", header_safe(f"WORKSPACE_BUSY: {decided.busy}").encode())]
            busy = submit_reply(SubmitResult.SERVER_ERROR, "", decided.received_at)
            payload = json.dumps(busy, separators=(",", ":")).encode()
            exchange = await self._with_file(exchange, body)
            await self._journal(replace(exchange, outcome=SubmitResult.SERVER_ERROR.value, http_status=200))
            await _send(self.send, 200, [(b"content-type", b"application/json"), *explain], payload)
            return None
        fault = decision.terminal
        if fault is not None:
            exchange = await self._with_file(exchange, body)
        if fault is not None and fault.effect is Effect.RESET:
            await self._journal(replace(exchange, outcome="RESET"))
            return DROPPED
        if fault is not None:
            status, headers, payload, outcome = self._fault_reply(fault, decided.received_at, decision)
            await self._journal(replace(exchange, outcome=outcome, http_status=status))
            await _send(self.send, status, headers, payload)
            return None
        if self.heavy:
            async with blocking.heavy():
                if await self._client_gone():  # it hung up while waiting for its turn: the reply reaches nobody
                    exchange = replace(exchange, faults=(*exchange.faults, CLIENT_GONE))
                started = time.perf_counter()
                try:
                    return await self._pass_on(body, decision, form, exchange=exchange, received_at=decided.received_at)
                finally:  # the reply has left: the next heavy one waits as long again (see blocking.heavy)
                    await asyncio.sleep(min((time.perf_counter() - started) * blocking.HEAVY_REST, blocking.MAX_REST))
        return await self._pass_on(body, decision, form, exchange=exchange, received_at=decided.received_at)

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
        gate = self.portal.gate
        found = self.portal.repo.get_settings([CLOCK, *gate.keys(facility)] if identity.authenticated else [CLOCK])
        self.portal.clock.refresh_from(found.get(CLOCK))
        at = self.portal.clock.at(self.real_at)
        if not identity.authenticated:
            return _Decided(at, Decision(), None, False, at)
        busy = workspaces.admit_submission(self.portal, identity.row) if self.operation == "submit" else None
        decision = gate.decide(self.operation, facility, at, found)
        held = timedelta(milliseconds=decision.latency_ms * self.portal.clock.state().rate)
        return _Decided(at, decision, busy, True, at + held)

    async def _with_file(self, exchange: Exchange, body: bytes, *, code: bool = True) -> Exchange:
        """A submission the handler never examined (answered here) with its file's SHA-256 and, when `code`,
        its document code (a parse: only for authenticated exchanges answered by a fault, so nobody can
        make the gateway parse files for free): the journal ties every attempt to its file."""
        if self.operation != "submit" or not self.portal.gate.keeps(exchange.authenticated):
            return exchange
        found = await blocking.run(_identify, body, self.portal.policy, code, inline=self.inline)
        return replace(exchange, file_sha256=found.sha256, document_code=exchange.document_code or found.document_code)

    async def _client_gone(self) -> bool:
        """Whether the client hung up while its request was held: the portal still stores the file (the
        real one would), but the reply reaches nobody, so the journal marks it for the hospital's judges."""
        with anyio.move_on_after(0.005):
            return (await self.receive())["type"] == "http.disconnect"
        return False

    async def _read_body(self) -> tuple[bytes, bool]:
        """The whole body, or the first part of it when it is over the cap (complete=False)."""
        limit, chunks, size = self.portal.settings.max_body_bytes, [], 0
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

        slot = None
        if exchange is not None and self.operation == "submit":
            slot = JournalSlot(exchange, self.started, decision.drop_after_commit, received_at)
            self.scope.setdefault("state", {})[JournalSlot.SCOPE_KEY] = slot
        await self.gateway.app(self.scope, replay, capture)
        status, headers, payload = _assemble(captured)
        if status >= 400:
            headers = _explain_problem(headers, payload)
        if decision.applied:
            headers = _explain_faults(headers, decision.applied)
        if exchange is None:
            self.portal.clock.now()  # takes up a state gone stale
            exchange = Exchange(
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
        elif slot is not None and slot.entry_id is None:  # refused before the handler, or it failed
            exchange = await self._with_file(exchange, body, code=False)
        if slot is None or slot.entry_id is None:  # else journalled in the transaction that stored it
            await self._journal(_with_reply(exchange, self.operation, status, headers, payload, decision))
        if decision.drop_after_commit:
            return DROPPED
        await _send(self.send, status, headers, payload)
        return None

    def _fault_reply(
        self, fault: Fault, received_at: datetime, decision: Decision
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, str]:
        explain = [(b"x-sandbox-explain", header_safe(f"FAULT {', '.join(decision.applied)}").encode())]
        if fault.effect is Effect.HTTP_ERROR:
            text = f"{fault.status} sandbox fault {fault.name}".encode()
            return (
                fault.status,
                [(b"content-type", b"text/plain; charset=utf-8"), *explain],
                text,
                f"HTTP-{fault.status}",
            )
        code = fault.code
        if fault.effect is Effect.ACCOUNT_LOCKED:
            code = TokenResult.LOCKED.value if self.operation == "token" else SubmitResult.AUTH_ERROR.value
        if self.operation == "token":
            body: dict[str, Any] = {"maKetQua": code, "APIKey": None}
        else:
            body = {**submit_reply(SubmitResult.SERVER_ERROR, "", received_at), "MaKetQua": code}
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return 200, [(b"content-type", b"application/json"), *explain], payload, code

    async def _journal(self, exchange: Exchange) -> None:
        done = replace(exchange, duration_ms=(time.perf_counter() - self.started) * 1000)
        await blocking.run(self.portal.gate.record, done, inline=self.inline)


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


def _explain_problem(headers: list[tuple[bytes, bytes]], payload: bytes) -> list[tuple[bytes, bytes]]:
    """A wire request refused before the portal saw it (problem+json: bad JSON, wrong media type…) is
    explained and journalled like the portal's own refusals: X-Sandbox-Explain and its code as a finding."""
    if any(k.lower() == b"x-sandbox-explain" for k, _ in headers):
        return headers
    try:
        problem = json.loads(payload)
    except ValueError:
        return headers
    if not isinstance(problem, dict) or not isinstance(problem.get("code"), str):
        return headers
    code = problem["code"]
    detail = str(problem.get("detail") or problem.get("title") or "").split(" | ", 1)[-1]  # the English half
    explain = header_safe(f"{code}: {detail}")
    return [*headers, (b"x-sandbox-explain", explain.encode()), (b"x-sandbox-findings", header_safe(code).encode())]


def _explain_faults(headers: list[tuple[bytes, bytes]], applied: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    prefix = f"FAULT {', '.join(applied)}; "
    out = [(k, v) for k, v in headers if k.lower() != b"x-sandbox-explain"]
    current = next((v.decode("latin-1") for k, v in headers if k.lower() == b"x-sandbox-explain"), "")
    out.append((b"x-sandbox-explain", header_safe(prefix + header_text(current)).encode()))
    return out


def _with_reply(
    exchange: Exchange,
    operation: str,
    status: int,
    headers: list[tuple[bytes, bytes]],
    payload: bytes,
    decision: Decision,
) -> Exchange:
    named = {k.lower(): v.decode("latin-1") for k, v in headers}
    try:
        body = json.loads(payload) if status == 200 else {}
    except ValueError:
        body = {}
    code = str(body.get("maKetQua" if operation == "token" else "MaKetQua", f"HTTP-{status}"))
    submission = named.get(b"x-sandbox-submission")
    findings = tuple(filter(None, named.get(b"x-sandbox-findings", "").split(",")))
    return replace(
        exchange,
        outcome="DROPPED" if decision.drop_after_commit else code,
        http_status=status,
        ma_gd=body.get("MaGD") or None,
        submission_id=int(submission) if submission and submission.isdigit() else None,
        document_code=header_text(named.get(b"x-sandbox-document", "")) or exchange.document_code,
        findings=findings,
    )


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
