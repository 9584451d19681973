"""ASGI entry point for `uvicorn mock_portal.asgi:app`: the one place a server reads its settings from
`PORTAL_*` itself (once, here); `mock-portal serve` reads them in the command and hands them to its
server processes (`serving.py`). A malformed value stops the import with `SettingsError` naming it."""

from mock_portal.config import Settings
from mock_portal.serving import server_app

app = server_app(Settings.from_env())
