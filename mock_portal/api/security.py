"""Security functions named in `openapi.yaml` (`x-bearerInfoFunc`)."""

from __future__ import annotations

import hmac
from typing import Any

from mock_portal.portal import Portal


def is_admin(portal: Portal, token: str) -> bool:
    return hmac.compare_digest(token.encode(), portal.settings.admin_token.encode())


def admin_bearer(token: str, request: Any) -> dict[str, Any] | None:
    """Accept the admin token of the portal this request reached (set by PortalMiddleware)."""
    if is_admin(request.scope["state"]["portal"], token):
        return {"sub": "admin", "scope": []}
    return None
