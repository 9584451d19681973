"""Identity first (issue 22), through real HTTP: a wire request that does not prove to be the account it
names meets none of the account's faults or quotas and is journalled apart; every submit is tied to its
file; a submission is received when it arrives, not when the portal gets round to it."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import text

from fixtures.hospital.wire import SUBMIT_PATH, TOKEN_PATH
from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from mock_portal import store
from mock_portal.control.clock import vn_local
from mock_portal.documents import DocumentType, ParseLimits
from mock_portal.portal.auth import PasswordCheck, md5_upper, take_token
from mock_portal.portal.intake import FileIdentity, IntakePolicy, identify
from mock_portal.signature.verify import SignaturePolicy
from tests.conftest import Hospital, new_facility_code, provision
from tests.live import LiveServer
from tests.test_workspaces import close_workspace, open_workspace
from tests.wire import sample

THROTTLE = 3
UNAUTHENTICATED_KEPT = 3
pytestmark = pytest.mark.portal(
    env={
        "PORTAL_LOGIN_MAX_FAILURES": str(THROTTLE),
        "PORTAL_UNAUTHENTICATED_JOURNAL_MAX_ENTRIES": str(UNAUTHENTICATED_KEPT),
    }
)


@pytest.fixture(scope="module")
def operator(admin: httpx.Client, trusted: TestPKI) -> httpx.Client:
    """The operator's client of the module's portal, which trusts the test PKI."""
    return admin


@pytest.fixture()
def site(operator: httpx.Client, pki: TestPKI, portal: LiveServer) -> Iterator[Hospital]:
    yield provision(operator, pki, portal.base_url)
    assert operator.delete("/sandbox/clock").status_code == 200
    assert operator.delete("/sandbox/faults").status_code == 204


def _journal(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    found = api.get("/sandbox/journal", params={"limit": 1000, **params})
    assert found.status_code == 200, found.text
    return list(found.json())


def _same_minute(seconds_needed: float) -> None:
    """A fresh real minute when this one has too little left (the rate quota counts per real minute)."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.05)


def _code_of(xml: bytes) -> str:
    return str(etree.fromstring(xml).findtext("GIAYCHUNGSINH/MA_GCS"))


# who meets the faults, the quotas and the journal ------------------------------------------------------
def test_an_outsider_naming_an_account_meets_none_of_its_faults_quotas_or_journal(
    operator: httpx.Client, portal: LiveServer, pki: TestPKI
) -> None:
    """Issue 22 measured: `username=<account>&token=x` took the hospital's fault, counted against its
    quota and flooded its journal. Now the hospital gets its 503, the outsider 401 and nothing else."""
    tenant = open_workspace(operator, portal, pki, new_facility_code(), max_submissions_per_minute=4)
    hospital = tenant.hospital
    try:
        plan = {
            "faults": [{"name": "cold", "effect": "http_error", "status": 503, "first_n": 1, "operations": ["submit"]}]
        }
        assert tenant.api.put(f"/sandbox/facilities/{hospital.code}/faults", json=plan).status_code == 200
        _same_minute(20)
        hospital.client.take_token()
        xml = sample(hospital)
        forged = hospital.client.form("61", xml) | {"token": "x", "id_token": "x"}
        flood = 300  # past the journal's 256th write, when both kinds are trimmed
        with ThreadPoolExecutor(8) as pool, httpx.Client(base_url=portal.base_url, timeout=30) as outsider:
            replies = list(pool.map(lambda _: outsider.post(SUBMIT_PATH, data=forged), range(flood)))
        assert {(r.status_code, r.json()["MaKetQua"]) for r in replies} == {(200, "401")}
        assert not [r for r in replies if r.headers["x-sandbox-explain"].startswith("FAULT")]
        assert all(r.headers["x-sandbox-findings"] == "AUTH_TOKEN_INVALID" for r in replies)

        first = httpx.post(f"{portal.base_url}{SUBMIT_PATH}", data=hospital.client.form("61", sample(hospital)))
        assert first.status_code == 503 and first.headers["x-sandbox-explain"] == "FAULT cold", "its fault, intact"
        outcomes = [hospital.client.send("GCS", sample(hospital)).ma_ket_qua for _ in range(4)]
        assert outcomes == ["200", "200", "200", "500"], "the quota of 4 counted the hospital's sends only"

        mine = _journal(tenant.api)
        assert {e["username"] for e in mine} == {hospital.username} and all(e["authenticated"] for e in mine)
        assert [e["outcome"] for e in mine if e["operation"] == "submit"] == ["500", "200", "200", "200", "HTTP-503"]
        theirs = _journal(tenant.api, identity="unauthenticated")
        assert theirs and all(e["authenticated"] is False and e["faults"] == [] for e in theirs)
        assert {(e["outcome"], e["username"], e["file_sha256"]) for e in theirs} == {
            ("401", hospital.username, hashlib.sha256(xml).hexdigest())
        }
        assert len(theirs) <= UNAUTHENTICATED_KEPT + 256 < flood, "their own bound holds"
        both = tenant.api.get("/sandbox/journal/count", params={"identity": "all"}).json()["count"]
        assert both == len(mine) + len(theirs)
        assert operator.get("/sandbox/journal", params={"identity": "all", "facility": hospital.code}).json() == []
    finally:
        close_workspace(operator, tenant)


def test_wrong_passwords_from_another_address_do_not_lock_the_account_holder_out(
    site: Hospital, portal: LiveServer, operator: httpx.Client
) -> None:
    wrong = {"username": site.username, "password": md5_upper("guess")}
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=portal.base_url, transport=elsewhere) as outsider:
        codes = [outsider.post(TOKEN_PATH, data=wrong).json()["maKetQua"] for _ in range(THROTTLE + 2)]
    assert codes == ["401"] * THROTTLE + ["403"] * 2, "throttled at the outsider's address"
    assert site.client.take_token().access_token, "the hospital at its own address logs in"
    refused = _journal(operator, identity="unauthenticated", facility=site.code, operation="token")
    assert [e["outcome"] for e in refused] == ["403"] * 2 + ["401"] * THROTTLE
    assert [e["outcome"] for e in _journal(operator, facility=site.code)] == ["200"]


def test_an_expired_token_is_still_the_hospital_s_own(site: Hospital, operator: httpx.Client) -> None:
    """Its 401 is evidence the conformance suite judges (API-005): journalled as authenticated."""
    assert operator.put("/sandbox/faults", json={"faults": [], "token_ttl_minutes": 0}).status_code == 200
    xml = sample(site)
    reply = site.client.send("GCS", xml)
    assert reply.ma_ket_qua == "401" and reply.explain and reply.explain.startswith("AUTH_TOKEN_EXPIRED")
    [entry] = _journal(operator, facility=site.code, operation="submit")
    assert entry["authenticated"] is True and entry["findings"] == ["AUTH_TOKEN_EXPIRED"]
    assert entry["file_sha256"] == hashlib.sha256(xml).hexdigest()


# every submit tied to its file ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"effect": "http_error", "status": 503}, "HTTP-503"),
        ({"effect": "portal_error", "code": "500"}, "500"),
        ({"effect": "reset"}, "RESET"),
    ],
)
def test_a_faulted_submit_is_journalled_with_its_file(
    site: Hospital, portal: LiveServer, operator: httpx.Client, fault: dict[str, Any], outcome: str
) -> None:
    plan = {"faults": [{"name": "f", "first_n": 1, "operations": ["submit"], **fault}]}
    assert operator.put("/sandbox/faults", json=plan).status_code == 200
    xml = sample(site)
    try:
        httpx.post(portal.base_url + SUBMIT_PATH, data=site.client.form("61", xml))
    except httpx.TransportError:
        assert outcome == "RESET"
    [entry] = _journal(operator, facility=site.code, operation="submit")
    assert (entry["outcome"], entry["submission_id"], entry["loai_hs"]) == (outcome, None, "61")
    assert entry["file_sha256"] == hashlib.sha256(xml).hexdigest()
    assert entry["document_code"] == _code_of(xml)
    accepted = site.client.send("GCS", xml)  # and the one that got through, tied to the same file
    assert accepted.ma_ket_qua == "200"
    newest = _journal(operator, facility=site.code, operation="submit")[0]
    assert (newest["file_sha256"], newest["document_code"]) == (entry["file_sha256"], entry["document_code"])


def test_files_are_identified_with_the_hardened_parser(pki: TestPKI) -> None:
    policy = IntakePolicy(5 * 2**20, ParseLimits(), SignaturePolicy())
    assert identify("not base64!", policy) == FileIdentity()
    assert identify("PGE+", policy) == FileIdentity(hashlib.sha256(b"<a>").hexdigest())  # parses, names nothing
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><HSDLGCS>&a;</HSDLGCS>'
    assert identify(base64.b64encode(bomb).decode(), policy).document_code is None
    credential = pki.issue_facility_cert("79001")
    for kind, tag in (("GCS", "GIAYCHUNGSINH/MA_GCS"), ("GBT", "GIAYBAOTU/MA_GBT")):
        xml = signed_sample(DocumentType[kind], credential, facility_code="79001", serial=7)
        found = identify(base64.b64encode(xml).decode(), policy)
        assert found == FileIdentity(hashlib.sha256(xml).hexdigest(), etree.fromstring(xml).findtext(tag))


# received at arrival ----------------------------------------------------------------------------------
@contextmanager
def _portal_cannot_write(server: LiveServer) -> Iterator[None]:
    """Hold the portal's writes (the SQLite write gate; a PostgreSQL table lock) as a loaded machine would."""
    if server.database is not None:
        fd = os.open(f"{server.database.resolve()}-writer", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    engine = store.create_engine_for(server.database_url)
    with engine.connect() as connection, connection.begin():
        connection.execute(text("LOCK TABLE meta, submissions IN EXCLUSIVE MODE"))  # fault counters, submissions
        yield
    engine.dispose()


def _sent_while_held(
    server: LiveServer, operator: httpx.Client, site: Hospital, xml: bytes, hold: float
) -> tuple[httpx.Response, datetime]:
    """Send `xml` while the portal cannot write for `hold` seconds; the sandbox time just before it left."""
    form = site.client.form("61", xml)
    replies: list[httpx.Response] = []
    with _portal_cannot_write(server):
        before = datetime.fromisoformat(operator.get("/sandbox/clock").json()["now"])
        sender = threading.Thread(
            target=lambda: replies.append(httpx.post(server.base_url + SUBMIT_PATH, data=form, timeout=60))
        )
        sender.start()
        time.sleep(hold)
    sender.join(60)
    return replies[0], before


def _received(operator: httpx.Client, reply: httpx.Response) -> tuple[datetime, datetime]:
    """The submission's received_at and its journal row's arrival instant."""
    submission = operator.get(f"/sandbox/submissions/{reply.headers['x-sandbox-submission']}").json()
    [entry] = [e for e in _journal(operator, operation="submit") if e["submission_id"] == submission["id"]]
    received = datetime.fromisoformat(submission["received_at"])
    assert reply.json()["ThoiGianTiepNhan"] == vn_local(received).strftime("%Y%m%d%H%M%S")
    assert submission["document"]["accepted_at"] == submission["received_at"]
    return received, datetime.fromisoformat(entry["at"])


def test_a_submission_is_received_when_it_arrives_not_when_the_portal_gets_to_it(
    site: Hospital, portal: LiveServer, operator: httpx.Client
) -> None:
    """At 600x a second of the portal's own queueing is ten sandbox minutes: it must not count. Here the
    gateway's write of a fault plan's counter waits for the writer before it (as behind a long commit or
    a reset), then the submission's own write does."""
    counted = {"faults": [{"name": "rare", "effect": "http_error", "status": 503, "every_nth": 1000}]}
    assert operator.put("/sandbox/faults", json=counted).status_code == 200
    assert operator.put("/sandbox/clock", json={"rate": 600}).status_code == 200
    site.client.take_token()  # 60 sandbox minutes: 6 real seconds
    hold = 3.0  # real seconds the portal cannot write: 30 sandbox minutes
    reply, before = _sent_while_held(portal, operator, site, sample(site), hold=hold)
    assert reply.json()["MaKetQua"] == "200", reply.headers["x-sandbox-explain"]
    received, arrived = _received(operator, reply)
    assert received == arrived
    # the request leaves within a fraction of the hold (a CI run on a busy machine measured 0.29 s real,
    # 2.9 sandbox minutes); counting the portal's queueing would add the whole hold
    assert timedelta(0) <= arrived - before < timedelta(seconds=hold * 600 / 2), "arrival, not after the hold"


def test_an_injected_latency_counts_on_the_sandbox_clock(
    site: Hospital, portal: LiveServer, operator: httpx.Client
) -> None:
    """A "slow portal" the sandbox injects is the portal's slowness the hospital must live with: arrival
    plus the latency at the clock's rate."""
    plan = {"faults": [{"name": "slow", "effect": "latency", "latency": {"distribution": "fixed", "ms": 1000}}]}
    assert operator.put("/sandbox/clock", json={"rate": 600}).status_code == 200
    assert operator.put("/sandbox/faults", json=plan).status_code == 200
    site.client.take_token()
    reply = httpx.post(portal.base_url + SUBMIT_PATH, data=site.client.form("61", sample(site)), timeout=30)
    assert reply.json()["MaKetQua"] == "200", reply.headers["x-sandbox-explain"]
    received, arrived = _received(operator, reply)
    assert received - arrived == timedelta(minutes=10)


# scrypt once per token request ------------------------------------------------------------------------
def test_the_gateway_s_password_check_is_used_for_exactly_its_credentials(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mock_portal.portal import auth

    repo = store.Repository(store.create_engine_for(database_url))
    repo.create_schema()
    repo.add_facility(
        store.Facility(code="48201", name="BV", created_at=datetime(2026, 1, 1, tzinfo=UTC)),
        store.Account(
            username="48201_BV", facility_code="48201", password_hash=auth.hash_password_md5(md5_upper("pw"))
        ),
    )
    calls: list[str] = []
    real = auth._scrypt
    monkeypatch.setattr(auth, "_scrypt", lambda *a: calls.append(a[0]) or real(*a))
    auth._GOOD_PAIRS.clear()
    now, ttl = datetime(2026, 1, 1).astimezone(), timedelta(hours=1)
    wrong = md5_upper("guess")
    refused = take_token(
        repo, username="48201_BV", password_md5=wrong, now=now, ttl=ttl, checked=PasswordCheck("48201_BV", wrong, False)
    )
    assert refused.token is None and calls == [], "a wrong password checked at the gateway is not checked again"
    other = take_token(
        repo,
        username="48201_BV",
        password_md5=md5_upper("pw"),
        now=now,
        ttl=ttl,
        checked=PasswordCheck("48201_BV", wrong, False),
    )
    assert other.token is not None and len(calls) == 1, "a check of other credentials does not apply"
    repo.engine.dispose()
