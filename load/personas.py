"""The personas of the load kit: one abstract base, one subclass each."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, tag, task

from fixtures.certificates import build_xml, scenario
from fixtures.hospital.session import PortalSession, RetryPolicy, SendOutcome
from fixtures.pki import Credential
from fixtures.signer import sign_document
from load.deadlines import DeadlineRecord
from load.portal_io import Kit, LocustWire, SandboxTime, report_failure
from load.run import STATE, deadline_event, opt
from mock_portal.control.clock import VN_TZ
from mock_portal.deadline.working_time import DEADLINE_MINUTES, deadline_for

__all__ = ["HospitalUser", "IpssReaderUser", "IssuingDeskUser", "PortalUser"]


class PortalUser(FastHttpUser):
    """What every persona shares: timeouts like the reference hospital's, the run's kit and clock."""

    abstract = True
    network_timeout = 15.0
    connection_timeout = 3.0

    def wait_for_kit(self) -> tuple[Kit, SandboxTime]:
        for _ in range(600):
            if STATE.kit is not None and STATE.time is not None:
                return STATE.kit, STATE.time
            gevent.sleep(0.1)
        raise RuntimeError("no provisioning kit from the master within 60 s")

    def opt(self, name: str, default: Any = None) -> Any:
        return opt(self.environment, name, default)


@dataclass
class _Issued:
    doc_type: str
    code: str
    xml: bytes
    issued: Any


class HospitalUser(PortalUser):
    weight = 8
    persona: ClassVar[str] = "hospital"

    def on_start(self) -> None:
        kit, self.clock = self.wait_for_kit()
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.index = worker * 10_000 + next(STATE.users)
        self.facility = kit.facilities[self.index % len(kit.facilities)]
        self.credential: Credential = self.facility.credential()
        self.serials = itertools.count(self.index * 1000 % 99_000)
        self.variant = self.opt("hospital_variant", "reference")
        self.policy = RetryPolicy(
            self.opt("retry_base", 0.2),
            self.opt("retry_cap", 5.0),
            1 if self.variant == "no-retry" else self.opt("max_attempts", 12),
        )
        self.session = PortalSession(
            self.host or "",  # never empty: a run without -H stops at its start (locustfile)
            facility_code=self.facility.code,
            username=self.facility.username,
            password=self.facility.password,
            clock_rate=max(self.clock.rate, 1e-9),
            http=LocustWire(self.client, STATE.failures),  # type: ignore[arg-type]  # an httpx.Client stand-in
        )
        self.backlog: deque[_Issued] = deque()
        self.rng = random.Random(self.index)
        self.issuer = gevent.spawn(self._issue_loop)

    def on_stop(self) -> None:
        if getattr(self, "issuer", None) is None:
            return  # stopped before it started
        self.issuer.kill(block=False)
        end = self.clock.now()
        while self.backlog:
            self._record(self.backlog.popleft(), None, end=end)

    def _issue_loop(self) -> None:
        """Issue certificates at a Poisson rate in sandbox time, whatever the delivery is doing."""
        per_real_second = self.opt("issue_rate", 6.0) / 3600 * self.clock.rate
        if per_real_second <= 0:
            return
        while True:
            gevent.sleep(self.rng.expovariate(per_real_second))
            self.backlog.append(self._issue())

    def _issue(self) -> _Issued:
        issued = self.clock.now()
        doc_type = "GBT" if self.rng.random() < self.opt("gbt_share", 0.2) else "GCS"
        story = "gcs_normal" if doc_type == "GCS" else "gbt_inpatient"
        serial = next(self.serials) % 99_999 + 1
        kind, fields = scenario(story, facility_code=self.facility.code, serial=serial, issued_at=issued, seed=serial)[
            0
        ]
        cred = self.credential
        xml = sign_document(build_xml(kind, fields), cred.key, cred.cert, signing_time=issued, chain=cred.chain)
        return _Issued(doc_type, fields[kind.code_field], xml, issued)

    @tag("hospital")
    @task
    def deliver_backlog(self) -> None:
        """Deliver the oldest issued certificate (earliest deadline); idle briefly when none is waiting."""
        if not self.backlog:
            gevent.sleep(0.05)
            return
        item = self.backlog[0]
        if self.variant == "late-sender":
            hold = deadline_for(item.issued, STATE.calendar, DEADLINE_MINUTES + 30) - item.issued
            wait = self.clock.real_seconds(hold) - self.clock.real_seconds(self.clock.now() - item.issued)
            if wait > 0:
                gevent.sleep(min(wait, 0.5))
                return
        accepted, attempts, refused = self._deliver(item)
        self.backlog.popleft()
        self._record(item, accepted, attempts=attempts, refused=refused)

    def _deliver(self, item: _Issued) -> tuple[Any, int, bool]:
        """The reference protocol: resend the same signed bytes with full-jitter backoff; re-login once
        on 401; never resend after 205 / 1001; after a round of `max_attempts`, pause and start again."""
        failures, relogin, attempts, started = 0, True, 0, time.monotonic()
        while True:
            exchanges = self.session.send(item.doc_type, item.xml)
            attempts += sum(1 for e in exchanges if e.operation == "submit")
            last = exchanges[-1]
            if last.outcome is SendOutcome.ACCEPTED:
                return _accepted_at(last.received_at), attempts, False
            if last.outcome is SendOutcome.AUTH and relogin:
                relogin = False
                continue
            if last.outcome in (SendOutcome.REFUSED, SendOutcome.TOO_LARGE):
                return None, attempts, True
            failures += 1
            if self.policy.exhausted(failures, started, time.monotonic()):
                if self.variant == "no-retry":
                    return None, attempts, False
                gevent.sleep(self.opt("requeue_after", 10.0))
                failures, relogin, started = 0, True, time.monotonic()
                continue
            gevent.sleep(self.policy.delay(failures, self.rng))

    def _record(
        self, item: _Issued, accepted: Any, *, end: Any = None, attempts: int = 0, refused: bool = False
    ) -> None:
        record = DeadlineRecord.judged(
            persona=self.persona,
            doc_type=item.doc_type,
            code=item.code,
            facility=self.facility.code,
            issued_at=item.issued,
            accepted_at=accepted,
            calendar=STATE.calendar,
            end=end or self.clock.now(),
            attempts=attempts,
            refused=refused,
        )
        STATE.book.add(record)
        deadline_event(self.environment, record)


def _accepted_at(thoi_gian_tiep_nhan: str) -> datetime:
    return datetime.strptime(thoi_gian_tiep_nhan, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)


class IssuingDeskUser(PortalUser):
    """Orders certificates from a hospital system under test and watches them arrive at the portal."""

    weight = 1
    persona: ClassVar[str] = "desk"

    def on_start(self) -> None:
        _, self.clock = self.wait_for_kit()
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.index = worker * 10_000 + next(STATE.users)
        self.serials = itertools.count(50_000 + self.index * 100 % 49_000)
        key = STATE.kit.workspace_key if STATE.kit else ""
        self.admin_headers = {"Authorization": f"Bearer {key or self.opt('admin_token', '')}"}
        self.pending: dict[int, tuple[str, str, Any]] = {}
        self.rng = random.Random(self.index)

    def wait_time(self) -> float:
        per_real_second = self.opt("desk_issue_rate", 6.0) / 3600 * self.clock.rate
        return self.rng.expovariate(per_real_second) if per_real_second > 0 else 3600.0

    def on_stop(self) -> None:
        if getattr(self, "pending", None) is None:
            return
        end = self.clock.now()
        self._poll()
        for doc_type, code, issued in self.pending.values():
            self._record(doc_type, code, issued, None, end)

    @tag("desk")
    @task
    def order_certificate(self) -> None:
        self._poll()
        issued, facility = self.clock.now(), self.opt("desk_facility", "79001")
        doc_type = "GBT" if self.rng.random() < self.opt("gbt_share", 0.2) else "GCS"
        story = "gcs_normal" if doc_type == "GCS" else "gbt_inpatient"
        serial = next(self.serials) % 99_999 + 1
        kind, data = scenario(story, facility_code=facility, serial=serial, issued_at=issued, seed=serial)[0]
        code = data[kind.code_field]
        match = {kind.code_field: code}
        expectation = {"type": doc_type, "facility": facility, "issued_at": issued.isoformat(), "match": match}
        with self.client.post(
            "/sandbox/expectations", json=expectation, headers=self.admin_headers, catch_response=True
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"expectation not registered: HTTP {resp.status_code}")
                return
            expectation_id = int(resp.json()["id"])
        order = {
            "request_id": str(uuid.uuid4()),
            "type": doc_type,
            "facility": facility,
            "issued_at": issued.isoformat(),
        }
        order["data"] = data
        with self.client.post(
            self.opt("trigger_url"), json=order, name="trigger: POST order", catch_response=True
        ) as r:
            if not 200 <= r.status_code < 300:
                report_failure(r, STATE.failures, f"order not taken: HTTP {r.status_code}", r.text or "")
                return
        self.pending[expectation_id] = (doc_type, code, issued)

    def _poll(self) -> None:
        for expectation_id, (doc_type, code, issued) in list(self.pending.items()):
            with self.client.get(
                f"/sandbox/expectations/{expectation_id}",
                headers=self.admin_headers,
                name="/sandbox/expectations/{id}",
                catch_response=True,
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"HTTP {resp.status_code}")
                    continue
                body = resp.json()
            if body.get("status") == "ARRIVED" and body.get("document"):
                accepted = datetime.fromisoformat(body["document"]["accepted_at"].replace("Z", "+00:00"))
                accepted = accepted if accepted.tzinfo else accepted.replace(tzinfo=UTC)
                del self.pending[expectation_id]
                self._record(doc_type, code, issued, accepted, None)

    def _record(self, doc_type: str, code: str, issued: Any, accepted: Any, end: Any) -> None:
        record = DeadlineRecord.judged(
            persona=self.persona,
            doc_type=doc_type,
            code=code,
            facility=self.opt("desk_facility", "79001"),
            issued_at=issued,
            accepted_at=accepted,
            calendar=STATE.calendar,
            end=end or self.clock.now(),
        )
        STATE.book.add(record)
        deadline_event(self.environment, record)


class IpssReaderUser(PortalUser):
    """The civil-registration side: follows the feed and reads the certificates it lists."""

    weight = 2

    def on_start(self) -> None:
        self.wait_for_kit()
        key = STATE.kit.workspace_key if STATE.kit else ""  # the run's own workspace: its key reads its IPSS view
        self.headers = {"X-API-Key": key or self.opt("ipss_api_key", "")}
        self.cursor = 0
        self.seen: deque[tuple[str, str]] = deque(maxlen=200)

    def wait_time(self) -> float:
        return random.uniform(0.2, 1.0)

    @tag("ipss")
    @task(3)
    def read_feed(self) -> None:
        with self.client.get(
            f"/ipss/v1/feed?after={self.cursor}&limit=100",
            headers=self.headers,
            name="/ipss/v1/feed",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
                return
            body = resp.json()
        self.cursor = int(body.get("next_after", self.cursor))
        self.seen.extend((item.get("type", ""), item.get("code", "")) for item in body.get("items", []))

    @tag("ipss")
    @task(1)
    def read_certificate(self) -> None:
        if not self.seen:
            return
        doc_type, code = random.choice(self.seen)
        kind = "birth-certificates" if doc_type == "GCS" else "death-certificates"
        self.client.get(f"/ipss/v1/{kind}/{code}", headers=self.headers, name=f"/ipss/v1/{kind}/{{code}}")
