"""A real portal server on a loopback port, as a test-session resource."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

IPSS_KEY = "test-ipss-key"

new_database_url: Callable[[Path], str] = lambda directory: f"sqlite:///{directory / 'portal.sqlite3'}"  # noqa: E731
"""A fresh database for a portal whose files live in `directory`: SQLite by default; `--db postgresql`
(tests/conftest.py) makes it a new database on the session's PostgreSQL server."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    admin_token: str
    database: Path | None
    """The SQLite file (None on PostgreSQL)."""
    database_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30.0
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(
    directory: Path,
    *,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    database_url: str | None = None,
    host: str = "127.0.0.1",
) -> LiveServer:
    """A portal on a free port of `host`, on a new database of the session's backend unless
    `database_url` names an existing one."""
    port = free_port()
    database_url = database_url or new_database_url(directory)
    database = Path(database_url.removeprefix("sqlite:///")) if database_url.startswith("sqlite:///") else None
    log = directory / "server.log"
    admin_token = "test-admin-token"
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_HOST": host,
        "PORTAL_ADMIN_TOKEN": admin_token,
        "PORTAL_IPSS_API_KEY": IPSS_KEY,
        "PORTAL_PORT": str(port),
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "mock_portal.cli",
        "serve",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://{host}:{port}", admin_token, database, database_url, log, process)
    try:
        wait_healthy(server.base_url, process, log)
    except RuntimeError:
        server.stop()
        raise
    return server


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    """Until `/sandbox/health` answers 200; the server's log in the error when it exits or never answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"portal exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/sandbox/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"portal did not start:\n{log.read_text()}")


@contextmanager
def demo_server(workdir: Path, command: list[str], env: dict[str, str]) -> Iterator[str]:
    """`command` (a `serve --demo`) run in `workdir` with `env`, which names PORTAL_PORT: its base URL
    once healthy; stopped afterwards."""
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{env['PORTAL_PORT']}", process, log)
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
