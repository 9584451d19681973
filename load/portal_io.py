"""What the load users need from the portal besides Locust: the wire adapter, provisioning, sandbox time.

* `LocustWire` lets the reference hospital's `PortalSession` (fixtures.hospital.session: token
  reuse, 401 handling, reply classification) send through a Locust `FastHttpSession`, so every
  wire request shows in Locust's statistics and a 200 that carries a refusal is marked as a failure
  (`catch_response`) under a text Locust can group, its detail kept in `FailureSamples`
  (load/summary.py); an expired token and the re-login after it have names of their own.
  Transport errors become the `httpx.TransportError`s the session expects.
* `Kit` is what the master provisions once (facilities, accounts, a test CA, one signing
  certificate per facility) and hands to its workers as plain JSON.
* `SandboxTime` estimates the portal's sandbox clock from one reading of `GET /sandbox/clock`.

No Locust import here (it is passed in), so this module stays importable by tests.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from conformance.portal import SandboxAdmin, warning_text
from conformance.scenarios import start_instant
from fixtures.hospital.session import SendOutcome, classify_submit, classify_token
from fixtures.hospital.wire import TOKEN_PATH, explain_of
from fixtures.pki import Credential, TestPKI, cert_pem, credential_from_pem, key_pem
from load.summary import EXPIRED_CODE, EXPIRED_NAME, RELOGIN_NAME, FailureSamples, cause_of, failure_text
from mock_portal.deadline.working_time import WorkingCalendar

log = logging.getLogger("load")

__all__ = ["FacilityKit", "Kit", "LocustWire", "SandboxTime", "provision", "report_failure"]

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class _Headers(dict[str, str]):
    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class _Reply:
    """The part of `httpx.Response` that `PortalSession` reads."""

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = _Headers({k.lower(): v for k, v in headers.items()})
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class LocustWire:
    """An `httpx.Client` stand-in over a Locust FastHttpSession, for `PortalSession(http=...)`."""

    def __init__(self, client: Any, samples: FailureSamples) -> None:
        self.client = client
        self.samples = samples
        self.relogin = False
        """The last submission's token had expired: token requests are re-logins until one succeeds."""

    def close(self) -> None:
        """The Locust user owns the connection pool."""

    def post(self, path: str, data: Mapping[str, str]) -> _Reply:
        token = path == TOKEN_PATH
        name = RELOGIN_NAME if token and self.relogin else None
        with self.client.post(path, data=urlencode(data), headers=FORM, name=name, catch_response=True) as resp:
            error = getattr(resp, "error", None)
            if not resp.status_code:  # a status (503 included) is a reply, even when FastHttp set `error`
                failure: Exception | None = _transport_error(error)
                report_failure(
                    resp, self.samples, f"no reply: {type(error).__name__ if error else 'connection closed'}", failure
                )
            else:
                failure = None
                self._judge(resp, token)
        if failure is not None:
            raise failure
        return _Reply(resp.status_code, dict(resp.headers.items()), resp.content)

    def _judge(self, resp: Any, token: bool) -> None:
        """Success, an expected expiry (a success of its own name), or a failure Locust can group."""
        body = _json(resp.content) or {}
        outcome = (classify_token if token else classify_submit)(resp.status_code, body)
        explain = explain_of(resp) or ""  # decoded before the samples cut it: no `%C3%A1`, no split escape
        code = body.get("maKetQua" if token else "MaKetQua")
        if outcome is SendOutcome.ACCEPTED:
            self.relogin = self.relogin and not token  # a token taken: the re-login is done
            resp.success()
        elif outcome is SendOutcome.AUTH and cause_of(explain).endswith(EXPIRED_CODE):
            self.relogin = True
            resp.request_meta["name"] = EXPIRED_NAME
            resp.success()
        else:
            submission = resp.headers.get("X-Sandbox-Submission") or "-"
            detail = (
                f"HTTP {resp.status_code} code {code} MaGD {body.get('MaGD') or '-'} submission {submission}: {explain}"
            )
            report_failure(resp, self.samples, failure_text(outcome.value, resp.status_code, code, explain), detail)


def report_failure(resp: Any, samples: FailureSamples, text: str, detail: object) -> None:
    """Mark a Locust response failed with a groupable `text`; its per-request `detail` goes to the samples."""
    resp.failure(text)
    samples.add(text, str(detail))


def _json(content: bytes | None) -> dict[str, Any] | None:
    try:
        body = json.loads(content or b"")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _transport_error(error: BaseException | None) -> httpx.TransportError:
    text = f"{type(error).__name__}: {error}" if error else "connection closed without a reply"
    if isinstance(error, TimeoutError | socket.timeout) or "timeout" in type(error).__name__.lower():
        return httpx.ReadTimeout(text)
    return httpx.RemoteProtocolError(text)


# --- sandbox time -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxTime:
    """The portal's clock as read once: sandbox `anchor` at real epoch `real`, running at `rate`."""

    anchor: datetime
    real: float
    rate: float

    @classmethod
    def read(cls, admin: SandboxAdmin) -> SandboxTime:
        sent = time.time()
        state = admin.clock()
        real = (sent + time.time()) / 2
        return cls(datetime.fromisoformat(state["now"]).astimezone(UTC), real, float(state["rate"]))

    def to_dict(self) -> dict[str, Any]:
        return {"anchor": self.anchor.isoformat(), "real": self.real, "rate": self.rate}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxTime:
        return cls(datetime.fromisoformat(data["anchor"]), float(data["real"]), float(data["rate"]))

    def now(self) -> datetime:
        """Sandbox time now, to the second (ThoiGianTiepNhan and SigningTime carry seconds)."""
        return (self.anchor + timedelta(seconds=(time.time() - self.real) * self.rate)).replace(microsecond=0)

    def real_seconds(self, sandbox: timedelta) -> float:
        """Real seconds for a sandbox span (a frozen clock never gets there: +inf)."""
        return sandbox.total_seconds() / self.rate if self.rate > 0 else float("inf")


# --- provisioning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FacilityKit:
    code: str
    username: str
    password: str
    key_pem: str
    cert_pem: str

    def credential(self) -> Credential:
        return credential_from_pem(self.key_pem.encode(), self.cert_pem.encode())


@dataclass(frozen=True)
class Kit:
    """Everything the users of every node share; travels master → workers as JSON."""

    facilities: tuple[FacilityKit, ...]
    workspace_key: str = ""
    """The key of the workspace the run opened for itself (sandbox and IPSS), empty when it runs in the
    workspace of the key it was given."""

    def to_dict(self) -> dict[str, Any]:
        return {"facilities": [asdict(f) for f in self.facilities], "workspace_key": self.workspace_key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Kit:
        return cls(tuple(FacilityKit(**f) for f in data["facilities"]), str(data.get("workspace_key") or ""))


def provision(admin: SandboxAdmin, codes: list[str], account: str = "BV", workspace_key: str = "") -> Kit:
    """Create each facility and its account `<code>_<account>` (idempotent; account names are unique
    across a portal's workspaces), trust a fresh test CA, register one signing certificate per facility."""
    pki = TestPKI.create({code: f"Bệnh viện tải {code}" for code in codes})
    _warn("the load kit's CA", admin.trust_ca(cert_pem(pki.root.cert)))
    kits = []
    for code in codes:
        username, password = f"{code}_{account}", f"load-{code}"
        admin.ensure_facility(code, username, password)
        credential = pki.issue_facility_cert(code)
        _warn(f"the certificate of facility {code}", admin.register_certificate(code, cert_pem(credential.cert)))
        kits.append(
            FacilityKit(code, username, password, key_pem(credential.key).decode(), cert_pem(credential.cert).decode())
        )
    return Kit(tuple(kits), workspace_key)


def _warn(what: str, warnings: list[dict[str, Any]]) -> None:
    """The portal's warnings about the kit's material (a sandbox clock moved past the certificates' validity:
    every submission would be refused) in the log, where the operator of the run reads."""
    for warning in warnings:
        log.warning("%s", warning_text(what, warning))


def set_clock(admin: SandboxAdmin, rate: float, start: str, calendar: WorkingCalendar) -> None:
    """`start` "monday": the next working Monday's first working minute on `calendar` (08:00 on the default);
    "now": keep the time, change the rate."""
    now = start_instant(date.today(), calendar).isoformat() if start == "monday" else None
    admin.set_clock(now=now, rate=rate)
