"""Security functions named in `openapi.yaml` (`x-bearerInfoFunc`)."""

from __future__ import annotations

import hmac
from typing import Any


def admin_bearer(token: str, request: Any) -> dict[str, Any] | None:
    """Accept the admin token of the portal this request reached (set by PortalMiddleware)."""
    portal = request.scope["state"]["portal"]
    if hmac.compare_digest(token.encode(), portal.settings.admin_token.encode()):
        return {"sub": "admin", "scope": []}
    return None
