"""Security functions named in `openapi.yaml` (`x-bearerInfoFunc`, `x-apikeyInfoFunc`)."""

from __future__ import annotations

import hmac
from typing import Any

from mock_portal.portal.service import Portal


def is_admin(portal: Portal, token: str) -> bool:
    return hmac.compare_digest(token.encode(), portal.settings.admin_token.encode())


def admin_bearer(token: str, request: Any) -> dict[str, Any] | None:
    """Accept the admin token of the portal this request reached (set by PortalMiddleware)."""
    if is_admin(request.scope["state"]["portal"], token):
        return {"sub": "admin", "scope": []}
    return None


def is_ipss_client(portal: Portal, api_key: str) -> bool:
    return hmac.compare_digest(api_key.encode(), portal.settings.ipss_api_key.encode())


def ipss_key(api_key: str, request: Any) -> dict[str, Any] | None:
    """Accept the IPSS API key (`X-API-Key`) of the portal this request reached."""
    if is_ipss_client(request.scope["state"]["portal"], api_key):
        return {"sub": "ipss", "scope": []}
    return None
