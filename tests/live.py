"""A real portal server on a loopback port, as a test-session resource."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from conformance.portal import LocalPortal, start_local_portal, wait_until_up

IPSS_KEY = "test-ipss-key"
ADMIN_TOKEN = "test-admin-token"

new_database_url: Callable[[Path], str] = lambda directory: f"sqlite:///{directory / 'portal.sqlite3'}"  # noqa: E731
"""A fresh database for a portal whose files live in `directory`: SQLite by default; `--db postgresql`
(tests/conftest.py) makes it a new database on the session's PostgreSQL server."""


LiveServer = LocalPortal
"""A portal a test started (conformance/portal.py's `LocalPortal`: the product's own starter)."""


def start_server(
    directory: Path,
    *,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    database_url: str | None = None,
    host: str = "127.0.0.1",
) -> LiveServer:
    """A portal on a free port of `host`, on a new database of the session's backend unless
    `database_url` names an existing one, with the tests' admin token and IPSS key."""
    return start_local_portal(
        directory,
        host=host,
        workers=workers,
        database_url=database_url or new_database_url(directory),
        admin_token=ADMIN_TOKEN,
        env={"PORTAL_IPSS_API_KEY": IPSS_KEY, **(extra_env or {})},
    )


@contextmanager
def demo_server(workdir: Path, command: list[str], env: dict[str, str]) -> Iterator[str]:
    """`command` (a `serve --demo`) run in `workdir` with `env`, which names PORTAL_PORT: its base URL
    once healthy; stopped afterwards."""
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{env['PORTAL_PORT']}/sandbox/health", process, log, timeout=30)
        yield f"http://127.0.0.1:{env['PORTAL_PORT']}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def csrf_token(page: str) -> str:
    """The CSRF token a dashboard page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def dashboard_login(client: httpx.Client, token: str) -> httpx.Response:
    """Log in to the dashboard as a browser does: the login page first (its CSRF token), then the form."""
    page = client.get("/sandbox/ui/login")
    return client.post("/sandbox/ui/login", data={"token": token, "csrf": csrf_token(page.text)})
