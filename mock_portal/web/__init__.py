"""The dashboard at `/sandbox/ui`: server-rendered pages (Jinja2) over the sandbox, no CDN, works offline.

Plain Flask routes on the inner Flask app (outside `openapi.yaml`): they call the same handlers and
domain functions as the sandbox API and render HTML. Every page but the login page requires a key
(the operator key, or a workspace key: then every page shows that workspace alone), given once on the
login page and kept in Flask's signed session cookie (HttpOnly, SameSite=Strict, Secure when served
over HTTPS), signed with a key derived from the operator key. Every form carries a CSRF token bound to
the session, the login form too (a token set in the cookie when the login page is shown: else a
cross-site POST could log a browser into someone else's workspace); a POST without it is 400.
May import `api`, `portal`, `reports`, `results` and `store`.
"""

from __future__ import annotations

from mock_portal.web.dashboard import PREFIX, register_dashboard

__all__ = ["PREFIX", "register_dashboard"]
