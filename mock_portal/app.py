"""`create_app(settings)`: the Connexion app serving `openapi.yaml` (wire, sandbox) with Swagger UI at /ui."""

from __future__ import annotations

import json
from pathlib import Path

import connexion
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition

from mock_portal import store
from mock_portal.api.errors import register_error_handlers
from mock_portal.api.middleware import PortalMiddleware
from mock_portal.clock import Clock, SystemClock
from mock_portal.config import Settings
from mock_portal.portal import Portal

SPEC = Path(__file__).with_name("openapi.yaml")


def build_portal(settings: Settings, clock: Clock | None = None) -> Portal:
    repo = store.Repository(store.create_engine_for(settings.database_url))
    repo.create_schema()
    return Portal(settings, repo, clock or SystemClock())


def create_app(settings: Settings | None = None, *, portal: Portal | None = None) -> connexion.FlaskApp:
    settings = settings or (portal.settings if portal else Settings.from_env())
    portal = portal or build_portal(settings)
    app = connexion.FlaskApp(__name__, specification_dir=str(SPEC.parent))
    app.add_api(
        SPEC.name,
        strict_validation=False,
        validate_responses=False,
        jsonifier=Jsonifier(json, separators=(",", ":"), ensure_ascii=False),
    )
    app.app.config["PORTAL"] = portal
    app.add_middleware(PortalMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, portal=portal)
    register_error_handlers(app)
    return app
