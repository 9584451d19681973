"""What a fault does to a wire reply: the answer of a terminal fault, derived here as data.

The gateway (`api/gateway.py`) asks `plan.FaultPlans.decide` first; when the decision has a terminal
fault it writes `fault_reply`'s reply instead of the portal's (a reset closes the connection with no
reply at all); faults that let the request pass on (latency, drop after commit) are named in the
portal's reply by `WireReply.faults_named`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mock_portal.faults.plan import Decision, Effect, Fault
from mock_portal.results.codes import SubmitResult, TokenResult
from mock_portal.wire.reply import EXPLAIN, WireReply, header_safe, submit_body

RESET = "RESET"
"""The journal's outcome of an exchange whose connection a fault closed before any reply."""
DROPPED = "DROPPED"
"""The journal's outcome of a request stored, then left without its reply (drop after commit)."""


def fault_reply(fault: Fault, operation: str, received_at: datetime, decision: Decision) -> WireReply:
    """The reply of a terminal fault other than a reset: an HTTP error, or HTTP 200 with the portal's own
    error code (a locked account: token maKetQua 403, submission MaKetQua 401)."""
    explain = ((EXPLAIN, header_safe(f"FAULT {', '.join(decision.applied)}")),)
    if fault.effect is Effect.HTTP_ERROR:
        return WireReply(fault.status, f"{fault.status} sandbox fault {fault.name}", explain, f"HTTP-{fault.status}")
    code = fault.code
    if fault.effect is Effect.ACCOUNT_LOCKED:
        code = TokenResult.LOCKED.value if operation == "token" else SubmitResult.AUTH_ERROR.value
    body: dict[str, Any]
    if operation == "token":
        body = {"maKetQua": code, "APIKey": None}
    else:
        body = {**submit_body(SubmitResult.SERVER_ERROR, "", received_at), "MaKetQua": code}
    return WireReply(200, body, explain, code)
