"""The harness's side of the sandbox control API, and a portal process of its own when none is given.

Everything the harness does to the portal goes through `SandboxAdmin` (provisioning, clock, fault
plans, expectations, journal, submissions), so the cases never talk to the portal: they judge what
`evidence.collect` gathered through it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from conformance import UsageError
from fixtures.ports import free_port
from mock_portal.results.codes import md5_upper

__all__ = [
    "LocalPortal",
    "PortRange",
    "PortalCallError",
    "PortalState",
    "Ports",
    "SandboxAdmin",
    "published_keys",
    "restoring",
    "start_local_portal",
]

log = logging.getLogger(__name__)

Json = dict[str, Any]
PEM = {"Content-Type": "application/x-pem-file"}


def _warnings(reply: httpx.Response) -> list[Json]:
    """The findings a 201 registration reply warns of: a certificate the hospital signs with would be refused
    by the portal's signature check, and the vendor should hear so before the run (none from a 409, where
    nothing was registered, or from a portal too old to warn)."""
    return list(reply.json().get("warnings") or ()) if reply.status_code == 201 else []


def warning_text(what: str, finding: Json) -> str:
    """One line for a user about a warning of the portal's (`what`: the material it is about)."""
    return f"{what}: {finding.get('code')}: {finding.get('message_en')}"


class PortalCallError(RuntimeError):
    """A call the harness needs failed at the portal (refused, or its answer unusable); the message carries
    the portal's problem detail. Not the portal's own `PortalError`, which is what the portal raises."""


def _bindable(port: int) -> bool:
    """Nothing listens on 127.0.0.1:`port` now (a probe as strict as the servers' own bind)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class PortRange:
    """The loopback ports a run may listen on (`--port-range LOW-HIGH`), for a CI runner or a firewall
    that allows only those."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        # ASCII digits only: `str.isdigit` also takes superscript and fullwidth digits, which `int` refuses or reads
        given = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", text, re.ASCII)
        if given is None:
            raise UsageError(f"--port-range {text!r}: give LOW-HIGH, e.g. 20000-20100")
        found = cls(int(given[1]), int(given[2]))
        if not 1 <= found.low <= found.high <= 65535:
            raise UsageError(f"--port-range {text!r}: ports lie in 1-65535, LOW first")
        return found

    def __len__(self) -> int:
        return self.high - self.low + 1

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


class Ports:
    """Hands out the ports a run's own servers listen on, each once: ones the kernel picks, or, given a
    `PortRange`, the free ones of that range in order."""

    def __init__(self, allowed: PortRange | None = None) -> None:
        self.allowed = allowed
        self.given: list[int] = []

    def take(self, what: str) -> int:
        """A free port for `what` (the portal, a hospital); UsageError when the range has none left."""
        if self.allowed is None:
            port = free_port()
        else:
            free = (p for p in range(self.allowed.low, self.allowed.high + 1) if p not in self.given and _bindable(p))
            port = next(free, 0)
            if not port:
                raise UsageError(
                    f"--port-range {self.allowed}: no free port left for {what} (this run took "
                    f"{', '.join(map(str, self.given)) or 'none'}; every other port of the range is in use)"
                )
        self.given.append(port)
        return port


class SandboxAdmin:
    """Thin typed wrapper over `/sandbox/*` with the admin bearer token."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.workspace: str | None = None
        """The workspace the run opened for itself (None: the key's own workspace)."""
        self.http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30.0
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 204), **kwargs: Any) -> httpx.Response:
        reply = self.http.request(method, path, **kwargs)
        if reply.status_code not in ok:
            raise PortalCallError(f"{method} {path} → {reply.status_code}: {reply.text[:300]}")
        return reply

    def _json(self, method: str, path: str, **kwargs: Any) -> Json:
        """The JSON object a sandbox call answers with."""
        body: Json = self._call(method, path, **kwargs).json()
        return body

    # provisioning
    def ensure_facility(self, code: str, username: str, password: str) -> bool:
        """Create the facility with its account; False when it already existed (left as it is)."""
        body = {"code": code, "name": f"Conformance {code}", "username": username, "password": password}
        return self._call("POST", "/sandbox/facilities", json=body, ok=(201, 409)).status_code == 201

    def credentials_differ(self, code: str, username: str, password: str) -> str | None:
        """Why the existing facility's account is not `username`/`password` (None when it is): the account
        list, then one login on the wire with the uppercase-MD5 password, as a hospital would."""
        detail = self._call("GET", f"/sandbox/facilities/{code}").json()
        accounts = [a.get("username") for a in detail.get("accounts", [])]
        if username not in accounts:
            return f"its account(s) are {', '.join(map(str, accounts)) or 'none'}, not {username}"
        reply = self.http.post("/api/token/take", data={"username": username, "password": md5_upper(password)})
        seen = reply.json().get("maKetQua") if reply.status_code == 200 else f"HTTP {reply.status_code}"
        return None if seen == "200" else f"the password given does not log in as {username} (maKetQua {seen})"

    def trust_ca(self, pem: bytes) -> list[Json]:
        """What the portal warns about the CA (`CERT_NOT_VALID_NOW`: trusted all the same); see `_warnings`."""
        return _warnings(self._call("POST", "/sandbox/trust/cas", content=pem, headers=PEM, ok=(201, 409)))

    def load_crl(self, pem: bytes) -> None:
        self._call("POST", "/sandbox/trust/crls", content=pem, headers=PEM)

    def register_certificate(self, code: str, pem: bytes) -> list[Json]:
        """What the portal warns about the certificate (`CERT_NOT_VALID_NOW`: registered all the same)."""
        path = f"/sandbox/facilities/{code}/certificates"
        return _warnings(self._call("POST", path, content=pem, headers=PEM, ok=(201, 409)))

    # workspaces (docs/ARCHITECTURE.md, Workspaces)
    def whoami(self) -> Json:
        """The key's workspace (`id`) and `role`: `operator` (the portal's admin token, which may open
        workspaces and acts in `default`) or `workspace`; a portal without workspaces is all `default`
        (role `legacy`)."""
        reply = self._call("GET", "/sandbox/workspace", ok=(200, 404))
        return reply.json() if reply.status_code == 200 else {"id": "default", "role": "legacy"}

    def role(self) -> str:
        """`operator`, `workspace`, or `legacy` (a portal from before workspaces: run as before)."""
        return str(self.whoami().get("role", "legacy"))

    def create_workspace(self, name: str, quotas: Json | None = None) -> tuple[str, str]:
        """A new workspace (operator key only): its id and its key (`quotas`: the portal's defaults if None)."""
        body = {"name": name, **({"quotas": quotas} if quotas is not None else {})}
        created = self._call("POST", "/sandbox/workspaces", json=body).json()
        return str(created["id"]), str(created["key"])

    def delete_workspace(self, workspace_id: str) -> None:
        self._call("DELETE", f"/sandbox/workspaces/{workspace_id}", ok=(204, 404))

    # time and faults
    def clock(self) -> Json:
        return self._json("GET", "/sandbox/clock")

    def set_clock(self, now: str | None = None, rate: float | None = None) -> Json:
        body = {k: v for k, v in (("now", now), ("rate", rate)) if v is not None}
        return self._json("PUT", "/sandbox/clock", json=body)

    def set_faults(self, code: str, plan: Json, *, missing_ok: bool = False) -> None:
        self._call("PUT", f"/sandbox/facilities/{code}/faults", json=plan, ok=(200, 404) if missing_ok else (200,))

    def clear_faults(self, code: str) -> None:
        self._call("DELETE", f"/sandbox/facilities/{code}/faults")

    def global_faults(self) -> Json:
        plan: Json = self._json("GET", "/sandbox/faults")["plan"]
        return plan

    def facility_faults(self, code: str) -> Json | None:
        """The facility's own plan, or None when the facility does not exist (yet)."""
        reply = self._call("GET", f"/sandbox/facilities/{code}/faults", ok=(200, 404))
        return reply.json()["plan"] if reply.status_code == 200 else None

    def set_global_faults(self, plan: Json) -> None:
        self._call("PUT", "/sandbox/faults", json=plan)

    def clear_global_faults(self) -> None:
        self._call("DELETE", "/sandbox/faults")

    def reset_clock(self) -> Json:
        return self._json("DELETE", "/sandbox/clock")

    # expectations, journal, submissions
    def expect(self, doc_type: str, facility: str, issued_at: str, match: dict[str, str]) -> Json:
        body = {"type": doc_type, "facility": facility, "issued_at": issued_at, "match": match}
        return self._json("POST", "/sandbox/expectations", json=body)

    def expectation(self, expectation_id: int) -> Json:
        return self._json("GET", f"/sandbox/expectations/{expectation_id}")

    def last_journal_id(self) -> int:
        entries = self._call("GET", "/sandbox/journal", params={"limit": 1}).json()
        return int(entries[0]["id"]) if entries else 0

    def journal(self, facility: str, after: int = 0, identity: str = "authenticated") -> list[Json]:
        """Every entry of `facility` with an id above `after`, oldest first (pages of 1000): those of requests
        that proved to be their account (the portal's default), or `identity` unauthenticated / all."""
        found: dict[int, Json] = {}
        params: Json = {"facility": facility, "limit": 1000}
        if identity != "authenticated":
            params["identity"] = identity
        while True:
            page = self._call("GET", "/sandbox/journal", params={**params, "after": after}).json()
            fresh = [e for e in page if e["id"] not in found]
            if not fresh:
                break
            found.update((e["id"], e) for e in fresh)
            after = max(e["id"] for e in fresh)
        return sorted(found.values(), key=lambda e: e["id"])

    # attestation (mock_portal.attestation)
    def attest(self, claim: Json) -> Json:
        """The portal's signed statement of what it observed of the run and the verdicts claimed for it."""
        return self._json("POST", "/sandbox/attestations", json=claim)

    def submission(self, submission_id: int) -> Json:
        detail = self._json("GET", f"/sandbox/submissions/{submission_id}")
        file = self.http.get(f"/sandbox/submissions/{submission_id}/file")
        detail["file_b64"] = base64.b64encode(file.content).decode() if file.status_code == 200 else None
        return detail


def published_keys(base_url: str) -> list[Json]:
    """The portal's attestation keys, active and retired (`GET /sandbox/attestation-keys`: no key needed)."""
    reply = httpx.get(f"{base_url.rstrip('/')}/sandbox/attestation-keys", timeout=30.0)
    if reply.status_code != 200:
        raise PortalCallError(f"GET /sandbox/attestation-keys → {reply.status_code}: {reply.text[:300]}")
    return list(reply.json())


@dataclass
class PortalState:
    """What a tool changes on a portal it shares with people: the clock and the fault plans.

    Taken before the tool touches them and put back when it ends, whatever the way it ends (normal
    exit, failure, Ctrl-C), so a vendor's portal is not left at 600x, days ahead, or failing on purpose.
    `conformance run --portal` and the Locust kit both use it.
    """

    clock: Json
    taken_at: float
    global_faults: Json
    facility_faults: dict[str, Json | None] = field(default_factory=dict)

    @classmethod
    def take(cls, admin: SandboxAdmin, facilities: tuple[str, ...] = ()) -> PortalState:
        return cls(
            clock=admin.clock(),
            taken_at=time.time(),
            global_faults=admin.global_faults(),
            facility_faults={code: admin.facility_faults(code) for code in facilities},
        )

    def clock_now(self) -> str:
        """Where the saved clock would be now had nobody touched it (a frozen clock stays put)."""
        elapsed = timedelta(seconds=time.time() - self.taken_at) * float(self.clock["rate"])
        return (datetime.fromisoformat(self.clock["now"]) + elapsed).isoformat()

    def restore(self, admin: SandboxAdmin) -> None:
        """Put the clock and every saved fault plan back; a facility created meanwhile gets no plan."""
        if self.clock.get("mode") == "real":
            admin.reset_clock()
        else:
            admin.set_clock(now=self.clock_now(), rate=float(self.clock["rate"]))
        admin.set_global_faults(self.global_faults)
        for code, plan in self.facility_faults.items():
            admin.set_faults(code, plan if plan is not None else {"faults": []}, missing_ok=True)

    def restore_or_log(self, admin: SandboxAdmin) -> bool:
        """`restore`, logging a failure instead of raising: the run's own outcome or error matters more."""
        try:
            self.restore(admin)
        except (PortalCallError, httpx.HTTPError) as exc:
            log.error("could not restore the portal's clock and fault plans: %s", exc)
            return False
        return True


@contextlib.contextmanager
def restoring(admin: SandboxAdmin, facilities: tuple[str, ...] = ()) -> Iterator[PortalState]:
    """Run the body with the portal's clock and fault plans saved, and restored at exit."""
    state = PortalState.take(admin, facilities)
    try:
        yield state
    finally:
        state.restore_or_log(admin)


@contextlib.contextmanager
def own_workspace(admin: SandboxAdmin, name: str, *, keep: bool = False) -> Iterator[SandboxAdmin]:
    """A workspace of the run's own on a shared portal (created with the operator key, deleted at exit
    unless `keep`), so its clock, faults and data touch no one else's; a workspace key is used as given."""
    if admin.role() != "operator":
        yield admin
        return
    workspace_id, key = admin.create_workspace(name)
    inner = SandboxAdmin(admin.base_url, key)
    inner.workspace = workspace_id
    try:
        yield inner
    finally:
        inner.close()
        if keep:
            print(f"workspace {workspace_id} kept; its key: {key}", file=sys.stderr)
        else:
            admin.delete_workspace(workspace_id)


@dataclass
class LocalPortal:
    """A `mock-portal serve` process started here on a loopback port: the harness's own portal when no
    `--portal` is given, and every portal the tests and the benches start."""

    base_url: str
    admin_token: str
    database_url: str
    workers: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def database(self) -> Path | None:
        """The SQLite file (None on another database)."""
        prefix = "sqlite:///"
        return Path(self.database_url.removeprefix(prefix)) if self.database_url.startswith(prefix) else None

    def admin(self) -> httpx.Client:
        """An HTTP client with the admin bearer token (the caller closes it)."""
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30.0
        )

    def stop(self) -> None:
        """SIGTERM the portal's process group (uvicorn's supervisor and its workers), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def start_local_portal(
    directory: Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    workers: int = 1,
    database_url: str | None = None,
    admin_token: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> LocalPortal:
    """Start a portal on `port` of `host` (default: one the kernel picks) over `database_url` (default: a
    new SQLite file in `directory`, which also holds its log), with `env` added to the environment; wait
    until `/sandbox/health` answers 200. Its own process group, so `stop` ends its workers too."""
    port = port or free_port(host)
    database_url = database_url or f"sqlite:///{directory / 'portal.sqlite3'}"
    token = admin_token or secrets.token_urlsafe(16)
    settings = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_ADMIN_TOKEN": token,
        "PORTAL_PORT": str(port),
        "PORTAL_HOST": host,
    }
    log = directory / "portal.log"
    command = [sys.executable, "-m", "mock_portal.cli", "serve", "--workers", str(workers), "--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            command,
            env={**os.environ, **settings, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    portal = LocalPortal(f"http://{host}:{port}", token, database_url, workers, process, log)
    try:
        wait_until_up(f"{portal.base_url}/sandbox/health", process, log, timeout)
    except BaseException:
        portal.stop()
        raise
    return portal


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM one process, SIGKILL it if it has not ended `grace` seconds later, and reap it."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll `url` until it answers 200; a process that exits or never answers raises with its log. One client
    for all the polls: `httpx.get` builds an SSL context each time (30 ms of CPU, ~1 s over a portal's start)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited early:\n{log.read_text(errors='replace')[-2000:]}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{process.args!r} did not answer at {url}:\n{log.read_text(errors='replace')[-2000:]}")
