"""The portal's ASGI application.

`create_app(settings)` is the Connexion app serving `openapi.yaml` (wire, sandbox, IPSS) with Swagger
UI at /ui; `create_asgi(settings)` puts the wire gateway (faults, clock, journal) in front of it and
is what `mock-portal serve` runs, behind `RequestGuard` (slow and oversize bodies).
"""

from __future__ import annotations

import json
from pathlib import Path

import connexion
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition

from mock_portal import store
from mock_portal.api.errors import register_error_handlers
from mock_portal.api.gateway import WireGateway
from mock_portal.api.guard import RequestGuard
from mock_portal.api.middleware import PortalMiddleware
from mock_portal.api.spec_servers import SpecServers
from mock_portal.api.validators import allow_form_fields_up_to, validator_map
from mock_portal.config import Settings
from mock_portal.control.clock import SandboxClock
from mock_portal.ipss.sharing import SharingWorker
from mock_portal.portal.auth import upgrade_legacy_passwords
from mock_portal.portal.service import Portal
from mock_portal.web import register_dashboard

SPEC = Path(__file__).with_name("openapi.yaml")


def build_portal(settings: Settings) -> Portal:
    repo = store.Repository(store.create_engine_for(settings.database_url))
    repo.create_schema()
    upgrade_legacy_passwords(repo)
    return Portal(settings, repo, SandboxClock(repo))


def create_app(settings: Settings | None = None, *, portal: Portal | None = None) -> connexion.FlaskApp:
    settings = settings or (portal.settings if portal else Settings.from_env())
    portal = portal or build_portal(settings)
    allow_form_fields_up_to(settings.max_body_bytes)
    app = connexion.FlaskApp(__name__, specification_dir=str(SPEC.parent))
    app.add_api(
        SPEC.name,
        strict_validation=False,
        validate_responses=False,
        jsonifier=Jsonifier(json, separators=(",", ":"), ensure_ascii=False),
        validator_map=validator_map(settings.max_body_bytes),
    )
    app.app.config["PORTAL"] = portal
    app.add_middleware(PortalMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, portal=portal)
    app.add_middleware(SpecServers, position=MiddlewarePosition.BEFORE_SWAGGER)
    register_error_handlers(app)
    register_dashboard(app.app, settings.admin_token)  # /sandbox/ui: plain Flask routes, outside the spec
    if settings.sharing_enabled:  # a daemon thread, stopped at exit (or by `.stop()` on the stored worker)
        worker = SharingWorker(portal.repo, portal.clock, settings.sharing_interval_ms)
        app.app.extensions["ipss_sharing"] = worker.start()
    return app


def create_asgi(settings: Settings | None = None) -> RequestGuard:
    """The guard (bodies under deadlines and a budget), then the wire gateway, then the Connexion app."""
    settings = settings or Settings.from_env()
    portal = build_portal(settings)
    return RequestGuard(WireGateway(create_app(settings, portal=portal), portal), portal)
