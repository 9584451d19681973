"""The sandbox clock, fault plans and the journal through real HTTP (a server of this module's own,
since clock and faults are global)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fixtures.pki import TestPKI
from tests.conftest import Hospital, provision, trust_root
from tests.live import LiveServer, start_server
from tests.wire import explain, sample

SUBMIT = "/api/hososuckhoe/guiGiayToDienTu"


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("timed"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def timed_admin(timed: LiveServer, pki: TestPKI) -> Iterator[httpx.Client]:
    with timed.admin() as admin:
        trust_root(admin, pki)
        yield admin


@pytest.fixture(autouse=True)
def fresh_time_and_faults(timed_admin: httpx.Client) -> Iterator[None]:
    yield
    assert timed_admin.delete("/sandbox/clock").status_code == 200
    assert timed_admin.delete("/sandbox/faults").status_code == 204


@pytest.fixture()
def site(timed_admin: httpx.Client, pki: TestPKI, timed: LiveServer) -> Hospital:
    return provision(timed_admin, pki, timed.base_url)


def set_faults(admin: httpx.Client, *faults: dict, path: str = "/sandbox/faults", **plan: object) -> None:
    reply = admin.put(path, json={"faults": list(faults), **plan})
    assert reply.status_code == 200, reply.text


def token_codes(server: LiveServer, site: Hospital, n: int) -> list[str]:
    form = {"username": site.username, "password": site.client.password_md5}
    return [httpx.post(f"{server.base_url}/api/token/take", data=form).json()["maKetQua"] for _ in range(n)]


# fault triggers --------------------------------------------------------------------------------


def test_first_n_fails_exactly_the_first_n(timed: LiveServer, timed_admin: httpx.Client, site: Hospital) -> None:
    set_faults(
        timed_admin,
        {"name": "cold-start", "effect": "portal_error", "code": "500", "first_n": 2, "operations": ["token"]},
    )
    assert token_codes(timed, site, 5) == ["500", "500", "200", "200", "200"]


def test_every_nth_fails_exactly_every_nth(timed: LiveServer, timed_admin: httpx.Client, site: Hospital) -> None:
    set_faults(timed_admin, {"name": "flaky", "effect": "portal_error", "every_nth": 3, "operations": ["token"]})
    assert token_codes(timed, site, 7) == ["200", "200", "500", "200", "200", "500", "200"]


def test_probability_is_reproducible_with_a_seed(timed: LiveServer, timed_admin: httpx.Client, site: Hospital) -> None:
    runs = []
    for _ in range(2):  # replacing the plan restarts its counters: the same seed gives the same run
        set_faults(timed_admin, {"name": "coin", "effect": "portal_error", "probability": 0.5}, seed=11)
        runs.append(token_codes(timed, site, 12))
    assert runs[0] == runs[1]
    assert {"200", "500"} == set(runs[0])


def test_http_error_and_latency_are_named_in_explain_and_journal(
    timed: LiveServer, timed_admin: httpx.Client, site: Hospital
) -> None:
    set_faults(
        timed_admin,
        {"name": "slow", "effect": "latency", "latency": {"distribution": "fixed", "ms": 300}},
        {"name": "gateway", "effect": "http_error", "status": 502, "operations": ["submit"]},
    )
    started = time.monotonic()
    reply = httpx.post(timed.base_url + SUBMIT, data=site.client.form("61", sample(site)))
    assert time.monotonic() - started >= 0.3
    assert reply.status_code == 502
    assert reply.headers["x-sandbox-explain"] == "FAULT slow, gateway"
    [entry] = timed_admin.get("/sandbox/journal", params={"facility": site.code, "operation": "submit"}).json()
    assert entry["outcome"] == "HTTP-502" and entry["faults"] == ["slow", "gateway"]
    assert entry["duration_ms"] >= 300


def test_a_client_that_hangs_up_during_a_hold_is_marked_in_the_journal(
    timed: LiveServer, timed_admin: httpx.Client, site: Hospital
) -> None:
    """The file is still stored (as the real portal would), but its reply reached nobody: conformance's
    API-015 then asks for the resend a hospital that gave up waiting owes."""
    set_faults(timed_admin, {"name": "late", "effect": "latency", "latency": {"distribution": "fixed", "ms": 1500}})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(timed.base_url + SUBMIT, data=site.client.form("61", sample(site)), timeout=0.5)
    waited = httpx.post(timed.base_url + SUBMIT, data=site.client.form("61", sample(site)), timeout=10)
    assert waited.json()["MaKetQua"] == "200"
    deadline = time.monotonic() + 10
    while (
        len(
            entries := timed_admin.get("/sandbox/journal", params={"facility": site.code, "operation": "submit"}).json()
        )
        < 2
    ):
        assert time.monotonic() < deadline, entries
        time.sleep(0.1)
    faults = {entry["id"]: entry["faults"] for entry in entries}
    gone, read = sorted(faults)
    assert faults[gone] == ["late", "client-gone"] and faults[read] == ["late"]
    assert all(entry["outcome"] == "200" for entry in entries)  # stored either way


def test_facility_plan_touches_only_that_facility(
    timed: LiveServer, timed_admin: httpx.Client, site: Hospital, pki: TestPKI
) -> None:
    other = provision(timed_admin, pki, timed.base_url)
    set_faults(timed_admin, {"effect": "account_locked"}, path=f"/sandbox/facilities/{site.code}/faults")
    assert token_codes(timed, site, 1) == ["403"]
    assert token_codes(timed, other, 1) == ["200"]


def test_deleted_facility_plan_is_gone_until_put_again(
    timed: LiveServer, timed_admin: httpx.Client, site: Hospital
) -> None:
    """The contract's model: a facility's plan exists (empty) from creation; DELETE removes it, GET is 404."""
    path = f"/sandbox/facilities/{site.code}/faults"
    assert timed_admin.get(path).json()["plan"] == {"faults": []}
    set_faults(timed_admin, {"effect": "account_locked"}, path=path)
    assert timed_admin.delete(path).status_code == 204
    gone = timed_admin.get(path)
    assert gone.status_code == 404 and gone.json()["code"] == "FAULT_PLAN_NOT_SET", gone.text
    assert "deleted" in gone.json()["detail_en"] and gone.json()["detail_vi"]
    assert token_codes(timed, site, 1) == ["200"], "a deleted plan injects nothing"
    assert timed_admin.delete(path).status_code == 204, "DELETE is idempotent"
    assert timed_admin.put(path, json={}).json()["plan"] == {"faults": []}
    assert timed_admin.get(path).status_code == 200


def test_shortened_token_expiry(timed: LiveServer, timed_admin: httpx.Client, site: Hospital) -> None:
    set_faults(timed_admin, token_ttl_minutes=0)
    reply = site.client.send("GCS", sample(site))
    assert reply.ma_ket_qua == "401"
    assert "AUTH_TOKEN_EXPIRED" in explain(timed_admin, reply)["findings"][0]["code"]


def test_reset_closes_the_connection_and_stores_nothing(
    timed: LiveServer, timed_admin: httpx.Client, site: Hospital
) -> None:
    set_faults(timed_admin, {"name": "rst", "effect": "reset", "first_n": 1, "operations": ["submit"]})
    before = timed_admin.get("/sandbox/submissions", params={"facility": site.code}).json()
    with pytest.raises(httpx.TransportError):
        httpx.post(timed.base_url + SUBMIT, data=site.client.form("61", sample(site)))
    assert timed_admin.get("/sandbox/submissions", params={"facility": site.code}).json() == before
    [entry] = timed_admin.get("/sandbox/journal", params={"facility": site.code, "outcome": "RESET"}).json()
    assert entry["faults"] == ["rst"] and entry["submission_id"] is None


def test_commit_then_drop_stores_the_document_and_sends_no_reply(
    timed: LiveServer, timed_admin: httpx.Client, site: Hospital
) -> None:
    set_faults(timed_admin, {"name": "drop", "effect": "drop_after_commit", "first_n": 1, "operations": ["submit"]})
    xml = sample(site)
    with pytest.raises(httpx.TransportError):
        httpx.post(timed.base_url + SUBMIT, data=site.client.form("61", xml))
    [entry] = timed_admin.get("/sandbox/journal", params={"facility": site.code, "outcome": "DROPPED"}).json()
    assert entry["ma_gd"] and entry["submission_id"]
    stored = timed_admin.get(f"/sandbox/submissions/{entry['submission_id']}").json()
    assert stored["result"] == "200" and stored["document"]["ma_gd"] == entry["ma_gd"]
    retry = site.client.send("GCS", xml)  # the hospital never heard back: it resends, a second record
    assert retry.ma_ket_qua == "200" and retry.ma_gd != entry["ma_gd"]


def test_outage_window_fails_then_recovers(timed: LiveServer, timed_admin: httpx.Client, site: Hospital) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    timed_admin.put("/sandbox/clock", json={"now": now.isoformat(), "rate": 0})
    form = site.client.form("61", sample(site))  # token taken before the outage
    set_faults(
        timed_admin,
        {
            "name": "outage",
            "effect": "http_error",
            "status": 503,
            "window": {"start": now.isoformat(), "minutes": 60},
        },
    )
    assert httpx.post(timed.base_url + SUBMIT, data=form).status_code == 503
    advanced = timed_admin.post("/sandbox/clock/advance", json={"minutes": 60})
    assert advanced.status_code == 200
    site.client.take_token()  # the old token expired with the hour that passed
    assert site.client.send("GCS", sample(site)).ma_ket_qua == "200"
    outcomes = [e["outcome"] for e in timed_admin.get("/sandbox/journal", params={"facility": site.code}).json()]
    assert outcomes[0] == "200" and outcomes[-2:] == ["HTTP-503", "200"]  # newest first; the first token was 200


@pytest.mark.parametrize(
    "fault",
    [
        {"effect": "http_error", "status": 418},
        {"effect": "portal_error", "first_n": 1, "every_nth": 2},
        {"effect": "reset", "window": {"start": "2026-01-01T00:00:00", "minutes": 5}},
        {"effect": "teapot"},
    ],
    ids=["status-418", "two-triggers", "window-without-offset", "unknown-effect"],
)
def test_bad_fault_plans_are_refused(timed_admin: httpx.Client, fault: dict) -> None:
    reply = timed_admin.put("/sandbox/faults", json={"faults": [fault]})
    assert reply.status_code == 400 and reply.json()["code"] == "REQUEST_INVALID"
    assert timed_admin.get("/sandbox/faults").json()["plan"]["faults"] == [], "nothing stored"


# the clock -------------------------------------------------------------------------------------


def test_clock_can_be_frozen_set_and_advanced_by_working_minutes(timed_admin: httpx.Client) -> None:
    frozen = timed_admin.put("/sandbox/clock", json={"now": "2025-08-29T15:59:00+07:00", "rate": 0}).json()
    assert frozen["mode"] == "frozen" and frozen["now_vn"] == "2025-08-29T15:59:00+07:00"
    time.sleep(0.2)
    assert timed_admin.get("/sandbox/clock").json()["now_vn"] == "2025-08-29T15:59:00+07:00"
    advanced = timed_admin.post("/sandbox/clock/advance", json={"working_minutes": 240}).json()
    assert advanced["now_vn"] == "2025-09-03T10:59:00+07:00"  # over the weekend and 1–2/9


def test_rate_600_makes_half_an_hour_pass_in_three_real_seconds(timed_admin: httpx.Client, site: Hospital) -> None:
    """At rate 600 the deadline of 12:00 passes 30 sandbox minutes (3 real seconds) after 11:30."""
    start = "2026-03-09T11:30:00+07:00"  # a Monday; the certificate was issued at 08:00
    timed_admin.put("/sandbox/clock", json={"now": start, "rate": 600})
    began = time.monotonic()
    expectation = timed_admin.post(
        "/sandbox/expectations", json={"type": "GCS", "facility": site.code, "issued_at": "2026-03-09T08:00:00+07:00"}
    ).json()
    assert expectation["deadline"] == "2026-03-09T05:00:00Z"  # 12:00 in Vietnam
    assert timed_admin.get(f"/sandbox/expectations/{expectation['id']}").json()["status"] == "PENDING"
    time.sleep(max(0.0, began + 3.3 - time.monotonic()))
    assert timed_admin.get(f"/sandbox/expectations/{expectation['id']}").json()["status"] == "OVERDUE"
    now = datetime.fromisoformat(timed_admin.get("/sandbox/clock").json()["now_vn"])
    expected = datetime.fromisoformat(start) + timedelta(seconds=(time.monotonic() - began) * 600)
    assert abs(now - expected) < timedelta(seconds=90)


# deadlines of accepted documents ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki_2025(timed_admin: httpx.Client) -> TestPKI:
    """A PKI whose certificates are valid in August 2025, when these documents are signed."""
    pki = TestPKI.create({"79500": "Bệnh viện 2025"}, now=datetime(2025, 8, 1, tzinfo=UTC))
    trust_root(timed_admin, pki)
    return pki


@pytest.mark.parametrize(
    ("sent", "deadline", "status"),
    [
        ("2025-08-29T11:59:00+07:00", "2025-08-29T16:59:00+07:00", "ON_TIME"),
        ("2025-08-29T12:01:00+07:00", "2025-08-29T17:00:00+07:00", "ON_TIME"),
        ("2025-08-29T15:59:00+07:00", "2025-09-03T10:59:00+07:00", "ON_TIME"),
        ("2025-08-29T16:01:00+07:00", "2025-09-03T11:01:00+07:00", "ON_TIME"),
    ],
    ids=["11:59", "12:01", "15:59-over-2-9", "16:01-over-2-9"],
)
def test_deadline_of_a_document_signed_and_sent_before_a_holiday(
    timed: LiveServer, timed_admin: httpx.Client, pki_2025: TestPKI, sent: str, deadline: str, status: str
) -> None:
    at = datetime.fromisoformat(sent)
    timed_admin.put("/sandbox/clock", json={"now": sent, "rate": 0})
    site = provision(timed_admin, pki_2025, timed.base_url)
    reply = site.client.send("GCS", sample(site, issued_at=at, signing_time=at))
    document = explain(timed_admin, reply)["document"]
    assert reply.ma_ket_qua == "200", explain(timed_admin, reply)["findings"]
    accounting = document["deadline"]
    assert accounting["source"] == "signing_time"
    assert datetime.fromisoformat(accounting["deadline"].replace("Z", "+00:00")) == datetime.fromisoformat(deadline)
    assert (accounting["status"], accounting["working_minutes_late"]) == (status, 0)


def test_expectation_sets_the_issue_instant_and_a_late_arrival_is_counted(
    timed: LiveServer, timed_admin: httpx.Client, pki_2025: TestPKI
) -> None:
    site = provision(timed_admin, pki_2025, timed.base_url)
    issued = "2025-08-28T09:00:00+07:00"  # Thursday: deadline 14:00 the same day
    xml = sample(site, issued_at=datetime.fromisoformat(issued), signing_time=datetime.fromisoformat(issued))
    code = re.search(rb"<MA_GCS>([^<]+)</MA_GCS>", xml).group(1).decode()
    expectation = timed_admin.post(
        "/sandbox/expectations",
        json={"type": "GCS", "facility": site.code, "issued_at": issued, "match": {"MA_GCS": code}},
    ).json()
    assert expectation["status"] in {"PENDING", "OVERDUE"} and expectation["deadline"] == "2025-08-28T07:00:00Z"
    timed_admin.put("/sandbox/clock", json={"now": "2025-08-29T09:30:00+07:00", "rate": 0})  # next morning
    reply = site.client.send("GCS", xml)
    assert reply.ma_ket_qua == "200"
    arrived = timed_admin.get(f"/sandbox/expectations/{expectation['id']}").json()
    assert arrived["status"] == "ARRIVED"
    accounting = arrived["document"]["deadline"]
    assert accounting["source"] == "expectation" and accounting["status"] == "LATE"
    assert accounting["working_minutes_late"] == 180 + 90  # 14:00–17:00, then 08:00–09:30
