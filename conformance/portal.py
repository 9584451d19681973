"""The harness's side of the sandbox control API, and a portal process of its own when none is given.

Everything the harness does to the portal goes through `SandboxAdmin` (provisioning, clock, fault
plans, expectations, journal, submissions), so the cases never talk to the portal: they judge what
`evidence.collect` gathered through it.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["LocalPortal", "PortalError", "SandboxAdmin", "free_port", "start_local_portal"]

Json = dict[str, Any]
PEM = {"Content-Type": "application/x-pem-file"}


class PortalError(RuntimeError):
    """The portal refused a control call the harness needs; the message carries its problem detail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxAdmin:
    """Thin typed wrapper over `/sandbox/*` with the admin bearer token."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30.0
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 204), **kwargs: Any) -> httpx.Response:
        reply = self.http.request(method, path, **kwargs)
        if reply.status_code not in ok:
            raise PortalError(f"{method} {path} → {reply.status_code}: {reply.text[:300]}")
        return reply

    # provisioning
    def ensure_facility(self, code: str, username: str, password: str) -> None:
        body = {"code": code, "name": f"Conformance {code}", "username": username, "password": password}
        self._call("POST", "/sandbox/facilities", json=body, ok=(201, 409))

    def trust_ca(self, pem: bytes) -> None:
        self._call("POST", "/sandbox/trust/cas", content=pem, headers=PEM, ok=(201, 409))

    def load_crl(self, pem: bytes) -> None:
        self._call("POST", "/sandbox/trust/crls", content=pem, headers=PEM)

    def register_certificate(self, code: str, pem: bytes) -> None:
        self._call("POST", f"/sandbox/facilities/{code}/certificates", content=pem, headers=PEM, ok=(201, 409))

    # time and faults
    def clock(self) -> Json:
        return self._call("GET", "/sandbox/clock").json()

    def set_clock(self, now: str | None = None, rate: float | None = None) -> Json:
        body = {k: v for k, v in (("now", now), ("rate", rate)) if v is not None}
        return self._call("PUT", "/sandbox/clock", json=body).json()

    def set_faults(self, code: str, plan: Json) -> None:
        self._call("PUT", f"/sandbox/facilities/{code}/faults", json=plan)

    def clear_faults(self, code: str) -> None:
        self._call("DELETE", f"/sandbox/facilities/{code}/faults")

    def set_global_faults(self, plan: Json) -> None:
        self._call("PUT", "/sandbox/faults", json=plan)

    def clear_global_faults(self) -> None:
        self._call("DELETE", "/sandbox/faults")

    def reset_clock(self) -> Json:
        return self._call("DELETE", "/sandbox/clock").json()

    # expectations, journal, submissions
    def expect(self, doc_type: str, facility: str, issued_at: str, match: dict[str, str]) -> Json:
        body = {"type": doc_type, "facility": facility, "issued_at": issued_at, "match": match}
        return self._call("POST", "/sandbox/expectations", json=body).json()

    def expectation(self, expectation_id: int) -> Json:
        return self._call("GET", f"/sandbox/expectations/{expectation_id}").json()

    def last_journal_id(self) -> int:
        entries = self._call("GET", "/sandbox/journal", params={"limit": 1}).json()
        return int(entries[0]["id"]) if entries else 0

    def journal(self, facility: str, after: int = 0) -> list[Json]:
        """Every entry of `facility` with an id above `after`, oldest first (pages of 1000)."""
        found: dict[int, Json] = {}
        while True:
            page = self._call(
                "GET", "/sandbox/journal", params={"facility": facility, "after": after, "limit": 1000}
            ).json()
            fresh = [e for e in page if e["id"] not in found]
            if not fresh:
                break
            found.update((e["id"], e) for e in fresh)
            after = max(e["id"] for e in fresh)
        return sorted(found.values(), key=lambda e: e["id"])

    def submission(self, submission_id: int) -> Json:
        detail = self._call("GET", f"/sandbox/submissions/{submission_id}").json()
        file = self.http.get(f"/sandbox/submissions/{submission_id}/file")
        detail["file_b64"] = base64.b64encode(file.content).decode() if file.status_code == 200 else None
        return detail


@dataclass
class LocalPortal:
    """A `mock-portal serve` process the harness started for itself on a free loopback port."""

    base_url: str
    admin_token: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_local_portal(directory: Path, *, timeout: float = 30.0) -> LocalPortal:
    """Start a portal with its own SQLite database in `directory`; wait until it answers."""
    port, token = free_port(), secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": f"sqlite:///{directory / 'portal.sqlite3'}",
        "PORTAL_ADMIN_TOKEN": token,
        "PORTAL_PORT": str(port),
        "PORTAL_HOST": "127.0.0.1",
    }
    log = directory / "portal.log"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "mock_portal.cli", "serve", "--log-level", "warning"]
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    portal = LocalPortal(f"http://127.0.0.1:{port}", token, process, log)
    wait_until_up(f"{portal.base_url}/sandbox/health", process, log, timeout)
    return portal


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll `url` until it answers 200; a process that exits or never answers raises with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited early:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{process.args} did not answer at {url}:\n{log.read_text(errors='replace')[-2000:]}")
