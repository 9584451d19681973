"""The workspace a request acts in: its `Portal` (docs/ARCHITECTURE.md, Workspaces).

The security functions (a sandbox or IPSS key) and the wire gateway (the account) put the workspace's
portal, and the caller, in the ASGI scope state; the dashboard puts the portal in `flask.g` from its
session. Handlers ask `request_portal()`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from mock_portal.portal.service import Portal
from mock_portal.portal.workspaces import Caller

WORKSPACE_PORTAL = "workspace_portal"
"""Scope state (and `flask.g`) key of the portal of the request's workspace."""
CALLER = "workspace_caller"
"""Scope state key of the `Caller` the bearer key named."""
WIRE_LOGIN = "wire_login"
"""Scope state key of the wire gateway's check of a token request's password (`auth.PasswordCheck`), for
the handler's `Portal.take_token`: scrypt runs once per request."""


def _state() -> dict[str, Any]:
    scope = request.environ.get("asgi.scope") or {}
    return scope.get("state") or {}


def request_portal() -> Portal:
    """The portal of the request's workspace; the root (`default`) when nothing named one."""
    portal = g.get(WORKSPACE_PORTAL)
    if portal is None:
        portal = _state().get(WORKSPACE_PORTAL) or current_app.config["PORTAL"]
        setattr(g, WORKSPACE_PORTAL, portal)
    return portal


def request_caller() -> Caller | None:
    """Who the request's bearer key is (None: no key was checked)."""
    found = _state().get(CALLER)
    return found if isinstance(found, Caller) else None
