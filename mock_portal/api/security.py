"""Security functions named in `openapi.yaml` (`x-bearerInfoFunc`, `x-apikeyInfoFunc`).

A key names a workspace (docs/ARCHITECTURE.md, Workspaces): the operator key `default`, a workspace
key its own. The workspace's portal is put in the scope state for the handlers (`api/context.py`).
"""

from __future__ import annotations

import hmac
from typing import Any

from mock_portal.api.context import CALLER, WORKSPACE_PORTAL
from mock_portal.portal import workspaces
from mock_portal.portal.service import Portal


def is_admin(portal: Portal, token: str) -> bool:
    """Whether a bearer key opens the sandbox API (the operator key or a workspace key)."""
    return workspaces.authenticate(portal, token) is not None


def admin_bearer(token: str, request: Any) -> dict[str, Any] | None:
    """Accept the operator key or a workspace key at the portal this request reached (set by PortalMiddleware)."""
    portal: Portal = request.scope["state"]["portal"]
    found = workspaces.authenticate(portal, token)
    if found is None:
        return None
    request.scope["state"][WORKSPACE_PORTAL] = portal.workspace(found.workspace, found.generation)
    request.scope["state"][CALLER] = found
    return {"sub": found.role.value, "workspace": found.workspace, "scope": []}


def is_ipss_client(portal: Portal, api_key: str) -> bool:
    return hmac.compare_digest(api_key.encode(), portal.settings.ipss_api_key.encode())


def ipss_key(api_key: str, request: Any) -> dict[str, Any] | None:
    """Accept the IPSS API key (`X-API-Key`, the `default` workspace's IPSS) or a workspace key (that
    workspace's IPSS view)."""
    portal: Portal = request.scope["state"]["portal"]
    if is_ipss_client(portal, api_key):
        return {"sub": "ipss", "workspace": workspaces.DEFAULT, "scope": []}
    found = workspaces.authenticate(portal, api_key)
    if found is None or found.role is not workspaces.Role.WORKSPACE:
        return None
    request.scope["state"][WORKSPACE_PORTAL] = portal.workspace(found.workspace, found.generation)
    return {"sub": "ipss", "workspace": found.workspace, "scope": []}
