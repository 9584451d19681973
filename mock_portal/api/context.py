"""The workspace a request acts in: its `Portal` (docs/ARCHITECTURE.md, Workspaces).

The security functions (a sandbox or IPSS key) and the wire gateway (the account) put the workspace's
portal, and the caller, in the ASGI scope state; the dashboard puts the portal in `flask.g` from its
session. Handlers ask `request_portal()`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from starlette.types import Scope

from mock_portal.evidence.moves import EvidenceReview
from mock_portal.portal.exchange import WireExchange
from mock_portal.portal.service import Portal
from mock_portal.portal.workspaces import Caller

WORKSPACE_PORTAL = "workspace_portal"
"""Scope state (and `flask.g`) key of the portal of the request's workspace."""
CALLER = "workspace_caller"
"""Scope state key of the `Caller` the bearer key named."""
WIRE_LOGIN = "wire_login"
"""Scope state key of the wire gateway's check of a token request's password (`auth.PasswordCheck`), for
the handler's `Portal.take_token`: scrypt runs once per request."""
WIRE_EXCHANGE = "wire_exchange"
"""Scope state key of the `WireExchange` the wire gateway hands down (`hand_down`, `handed_down`)."""


FIELD_EVIDENCE = "FIELD_EVIDENCE"
"""Flask config key of the review of the field evidence loaded at start (`PORTAL_FIELD_EVIDENCE`), or None."""


def field_evidence() -> EvidenceReview | None:
    """The review of the field evidence this process loaded at start; None when none was named."""
    found = current_app.config.get(FIELD_EVIDENCE)
    return found if isinstance(found, EvidenceReview) else None


def hand_down(scope: Scope, exchange: WireExchange) -> None:
    """The wire gateway gives the layers inside what it knows of a wire request; they give its reply back."""
    scope.setdefault("state", {})[WIRE_EXCHANGE] = exchange


def handed_down(scope: Scope) -> WireExchange | None:
    """The wire exchange the gateway handed down (None when the app runs without the gateway)."""
    found = (scope.get("state") or {}).get(WIRE_EXCHANGE)
    return found if isinstance(found, WireExchange) else None


def _state() -> dict[str, Any]:
    scope = request.environ.get("asgi.scope") or {}
    return scope.get("state") or {}


def request_portal() -> Portal:
    """The portal of the request's workspace; the root (`default`) when nothing named one."""
    portal: Portal | None = g.get(WORKSPACE_PORTAL)
    if portal is None:
        portal = _state().get(WORKSPACE_PORTAL) or current_app.config["PORTAL"]
        setattr(g, WORKSPACE_PORTAL, portal)
    return portal


def request_caller() -> Caller | None:
    """Who the request's bearer key is (None: no key was checked)."""
    found = _state().get(CALLER)
    return found if isinstance(found, Caller) else None
