"""One wire exchange, derived once from domain data: its reply (status, JSON, `X-Sandbox-*` values) and
its journal row.

The wire gateway (`api/gateway.py`) takes a request and decides identity, clock and faults; it hands
what it knows down to the handler as one `WireExchange` (in the ASGI scope, through
`api/context.py: hand_down`). The handler calls the portal and renders the `WireReply` derived here;
`Portal.submit` writes the journal row (`journal_row`) in the transaction that stores the submission;
the gateway journals every other exchange from the same `WireReply`, never from the bytes it sends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mock_portal.faults.apply import DROPPED
from mock_portal.portal.auth import TokenGrant
from mock_portal.portal.intake import Verdict
from mock_portal.results.codes import SubmitResult, TokenResult
from mock_portal.wire.journal import Exchange
from mock_portal.wire.reply import EXPLAIN, WireReply, findings_header, grades_header, header_safe, submit_body


@dataclass
class WireExchange:
    """What the gateway hands down with a wire request, and the reply that comes back up."""

    exchange: Exchange | None
    """The journal row as the gateway knows it before the reply (None: it knows nothing yet)."""
    started: float
    """`time.perf_counter()` when the gateway took the request (for duration_ms)."""
    applied: tuple[str, ...] = ()
    """Names of the faults that touched the request: named in X-Sandbox-Explain."""
    dropped: bool = False
    """The reply will be swallowed (drop_after_commit): the journal's outcome is DROPPED."""
    received_at: datetime | None = None
    """The submission's receipt instant: the sandbox instant it arrived at, plus any injected latency on
    the sandbox clock — so the portal's own queueing never counts against the hospital's deadline."""
    reply: WireReply | None = None
    """The reply whoever answered derived (the handler, the body cap); None until then."""

    def answered(self, reply: WireReply) -> WireReply:
        """Keep the reply (with the faults named) for the gateway, and give it back to be rendered."""
        self.reply = reply.faults_named(self.applied)
        return self.reply


def token_reply(grant: TokenGrant) -> WireReply:
    headers = (
        (EXPLAIN, header_safe(grant.explain())),
        ("X-Sandbox-Findings", findings_header(grant.findings)),
        ("X-Sandbox-Grades", grades_header(grant.findings)),
    )
    key = None
    if grant.token is not None:
        token = grant.token
        key = {
            "access_token": token.access_token,
            "id_token": token.id_token,
            "token_type": "Bearer",
            "username": token.username,
            "expires_in": token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    body = {"maKetQua": grant.result.value, "APIKey": key}
    return WireReply(200, body, headers, grant.result.value, findings=tuple(f.code for f in grant.findings))


def submission_reply(
    verdict: Verdict,
    submission_id: int,
    ma_gd: str,
    received_at: datetime,
    file_sha256: str | None,
    journal_id: int | None = None,
) -> WireReply:
    headers = (
        ("X-Sandbox-Submission", str(submission_id)),
        (EXPLAIN, header_safe(verdict.explain())),
        ("X-Sandbox-Findings", findings_header(verdict.findings)),
        ("X-Sandbox-Grades", grades_header(verdict.findings)),
        ("X-Sandbox-Document", header_safe(verdict.document_code or "")),
    )
    return WireReply(
        200,
        submit_body(verdict.result, ma_gd, received_at),
        headers,
        verdict.result.value,
        ma_gd=ma_gd or None,
        submission_id=submission_id,
        document_code=verdict.document_code or None,
        findings=tuple(f.code for f in verdict.findings),
        file_sha256=file_sha256,
        journal_id=journal_id,
    )


def refused_reply(
    operation: str, code: SubmitResult | TokenResult, explain: str, now: datetime | None = None
) -> WireReply:
    """The portal's own refusal of a request it did not examine (a body over the cap or too slow, a busy
    workspace, a failure of its own): HTTP 200 with the wire code and X-Sandbox-Explain. `now`: the
    receipt instant a submission's reply states (a token's states none)."""
    body: dict[str, Any]
    if operation == "submit":
        if now is None:
            raise ValueError("a submission's reply states its receipt instant")
        body = submit_body(code, "", now)
    else:
        body = {"maKetQua": code.value, "APIKey": None}
    return WireReply(200, body, ((EXPLAIN, header_safe(explain)),), code.value)


def server_error_reply(operation: str, exc: Exception, now: datetime | None = None) -> WireReply:
    """The real portal answers any failure of its own with its code 500, HTTP 200."""
    code = SubmitResult.SERVER_ERROR if operation == "submit" else TokenResult.SYSTEM_ERROR
    return refused_reply(operation, code, f"SERVER_ERROR: {type(exc).__name__}", now)


def problem_reply(status: int, problem: Any) -> WireReply:
    """A wire request refused before the portal saw it (Connexion's problem+json: bad JSON, wrong media
    type…), explained and journalled like the portal's own refusals: X-Sandbox-Explain and its code as a
    finding."""
    if not isinstance(problem, dict) or not isinstance(problem.get("code"), str):
        return WireReply(status, {}, (), f"HTTP-{status}")
    code = problem["code"]
    detail = str(problem.get("detail") or problem.get("title") or "").split(" | ", 1)[-1]  # the English half
    headers = ((EXPLAIN, header_safe(f"{code}: {detail}")), ("X-Sandbox-Findings", header_safe(code)))
    return WireReply(status, problem, headers, f"HTTP-{status}", findings=(code,))


def journal_row(handed: WireExchange, reply: WireReply) -> Exchange:
    """The journal row of an exchange the gateway handed down, completed from its reply."""
    if handed.exchange is None:
        raise ValueError("the gateway handed down no exchange to journal")
    exchange = handed.exchange
    return replace(
        exchange,
        outcome=DROPPED if handed.dropped else reply.outcome,
        http_status=reply.status,
        ma_gd=reply.ma_gd,
        submission_id=reply.submission_id,
        document_code=reply.document_code or exchange.document_code,
        file_sha256=reply.file_sha256 or exchange.file_sha256,
        findings=reply.findings,
        duration_ms=(time.perf_counter() - handed.started) * 1000,
    )
