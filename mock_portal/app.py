"""The portal's ASGI application.

`create_app(settings)` is the Connexion FlaskApp serving `openapi.yaml` (wire, sandbox, IPSS) with
Swagger UI at /ui and the Flask dashboard; `create_wire_app` is a Connexion AsyncApp serving the two
wire operations of the same spec without Flask. `create_asgi(settings)` is what `mock-portal serve`
runs: `RequestGuard` (slow and oversize bodies), the wire gateway (faults, clock, journal), then
`WireRoutes` sending wire POSTs to the AsyncApp and everything else to the FlaskApp.

Why two apps: the wire submission is the hot path (a hospital's every document). Through the FlaskApp
each request crossed a2wsgi's thread hand-off and Flask/werkzeug's request and response objects —
~15 % of the server's CPU per accepted submission; the AsyncApp runs the same operations, validators,
security and error handlers natively on ASGI. The sandbox API and the dashboard (which calls the
sandbox handlers inside Flask's request context) stay on the FlaskApp: they are not on the hot path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import connexion
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_portal.api.context import FIELD_EVIDENCE
from mock_portal.api.errors import register_error_handlers
from mock_portal.api.gateway import WireGateway
from mock_portal.api.guard import RequestGuard
from mock_portal.api.middleware import PortalMiddleware
from mock_portal.api.spec_servers import SpecServers, fresh_spec
from mock_portal.api.validators import allow_form_fields_up_to, validator_map
from mock_portal.config import Settings
from mock_portal.evidence.field import loaded_field_evidence
from mock_portal.evidence.moves import review
from mock_portal.ipss.sharing import SharingWorker
from mock_portal.portal.service import Portal, build_portal
from mock_portal.web import register_dashboard
from mock_portal.wire.reply import WIRE_OPERATIONS

SPEC = Path(__file__).with_name("openapi.yaml")


def create_app(settings: Settings, *, portal: Portal | None = None) -> connexion.FlaskApp:
    portal = portal or build_portal(settings)
    app = connexion.FlaskApp(__name__, specification_dir=str(SPEC.parent))
    app.add_api(fresh_spec(), **_api_options(settings))
    app.app.config["PORTAL"] = portal
    loaded = loaded_field_evidence(settings)  # once per process; GET /sandbox/fidelity shows its counts
    app.app.config[FIELD_EVIDENCE] = review(loaded) if loaded else None
    app.add_middleware(PortalMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, portal=portal)
    app.add_middleware(SpecServers, position=MiddlewarePosition.BEFORE_SWAGGER)
    register_error_handlers(app)
    register_dashboard(app.app, settings.admin_token)  # /sandbox/ui: plain Flask routes, outside the spec
    if settings.sharing_enabled:  # a daemon thread, stopped at exit (or by `.stop()` on the stored worker)
        worker = SharingWorker(
            portal.repo,
            portal.clock,
            settings.sharing_interval_ms,
            clock_of=lambda workspace: portal.workspace(workspace).clock,
        )
        app.app.extensions["ipss_sharing"] = worker.start()
    return app


def create_wire_app(settings: Settings, portal: Portal) -> connexion.AsyncApp:
    """The wire operations of `openapi.yaml` (token, submit) as a Connexion AsyncApp: the same
    validators, error handlers and body cap as the FlaskApp, no WSGI hand-off, no Swagger UI."""
    app = connexion.AsyncApp(__name__, swagger_ui_options=SwaggerUIOptions(swagger_ui=False))
    app.add_api(_wire_spec(), **_api_options(settings, wire=True))
    app.add_middleware(PortalMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, portal=portal)
    register_error_handlers(app)
    return app


def _api_options(settings: Settings, *, wire: bool = False) -> dict[str, Any]:
    """How both apps serve the spec: lenient parameters, no response validation, compact JSON (`wire`: lone
    surrogates in JSON are the handlers' to read, `validators.validator_map`)."""
    allow_form_fields_up_to(settings.max_body_bytes)
    return {
        "strict_validation": False,
        "validate_responses": False,
        "jsonifier": Jsonifier(json, separators=(",", ":"), ensure_ascii=False),
        "validator_map": validator_map(settings.max_body_bytes, wire=wire),
    }


def _wire_spec() -> dict[str, Any]:
    """`openapi.yaml` with only the wire paths (components kept)."""
    spec = fresh_spec()
    spec["paths"] = {path: item for path, item in spec["paths"].items() if path in WIRE_OPERATIONS}
    return spec


class WireRoutes:
    """Wire POSTs to the AsyncApp, every other request (and the lifespan) to the FlaskApp. Other methods
    on the wire paths stay with the FlaskApp, which knows every path of the spec (405 with `Allow`)."""

    def __init__(self, wire: ASGIApp, rest: ASGIApp) -> None:
        self.wire, self.rest = wire, rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in WIRE_OPERATIONS:
            await self.wire(scope, receive, send)
        else:
            await self.rest(scope, receive, send)


def create_asgi(settings: Settings) -> RequestGuard:
    """The guard (bodies under deadlines and a budget), then the wire gateway, then the Connexion apps."""
    portal = build_portal(settings)
    apps = WireRoutes(create_wire_app(settings, portal), create_app(settings, portal=portal))
    return RequestGuard(WireGateway(apps, portal), portal)
