"""ASGI entry point for `uvicorn mock_portal.asgi:app` (settings from `PORTAL_*`)."""

from mock_portal.app import create_asgi

app = create_asgi()
