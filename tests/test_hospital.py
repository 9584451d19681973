"""The reference hospital (`fixtures.hospital`) against a real portal of this module's own: triggers,
token reuse and refresh, retries, refusals, EDF order, restart, and the broken variants."""

from __future__ import annotations

import dataclasses
import itertools
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from fixtures.certificates import mutate, scenario
from fixtures.hospital import (
    Hospital,
    HospitalConfig,
    OrderQueue,
    OrderRejected,
    RetryPolicy,
    SendOutcome,
    Variant,
    classify_submit,
    parse_order,
)
from fixtures.pki import TestPKI, cert_pem, key_pem
from fixtures.ports import free_port
from mock_portal.deadline.working_time import WorkingCalendar
from tests.conftest import Hospital as Site
from tests.conftest import provision
from tests.live import LiveServer

FAST = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=5)
ROOT = Path(__file__).resolve().parents[1]
_serials = itertools.count(100)


@pytest.fixture()
def site(admin: httpx.Client, trusted: TestPKI, portal: LiveServer) -> Site:
    return provision(admin, trusted, portal.base_url)


def order_for(
    site: Site | str, *, kind: str = "GCS", ago: timedelta = timedelta(minutes=10), invalid: str | None = None
) -> dict[str, Any]:
    """A valid order (or broken in the `invalid` way) for the facility of `site` (or a bare code)."""
    code = site if isinstance(site, str) else site.code
    serial = next(_serials)
    issued_at = (datetime.now(UTC) - ago).replace(microsecond=0)
    name = "gcs_normal" if kind == "GCS" else "gbt_inpatient"
    _, fields = scenario(name, facility_code=code, serial=serial, issued_at=issued_at, seed=serial)[0]
    if invalid:
        fields = mutate(fields, invalid)
    return {
        "request_id": f"order-{code}-{serial}",
        "type": kind,
        "facility": code,
        "issued_at": issued_at.isoformat(),
        "data": fields,
    }


def hospital_for(site: Site, portal: LiveServer, state: Path, **options: Any) -> Hospital:
    config = HospitalConfig(
        portal_url=portal.base_url,
        facility=site.code,
        username=site.username,
        password=site.password,
        credential=site.credential,
        retry=FAST,
    )
    config = dataclasses.replace(config, **options)
    return Hospital(config, OrderQueue(state, config.calendar))


def queue_orders(hospital: Hospital, *orders: dict[str, Any]) -> None:
    for order in orders:
        assert hospital.queue.add(parse_order(order))


def status(hospital: Hospital) -> dict[str, dict[str, Any]]:
    return {entry["request_id"]: entry for entry in hospital.queue.status()}


def journal(admin: httpx.Client, site: Site, **params: str) -> list[dict[str, Any]]:
    """The facility's journal, oldest first."""
    entries = admin.get("/sandbox/journal", params={"facility": site.code, "limit": "1000", **params})
    assert entries.status_code == 200, entries.text
    return list(reversed(entries.json()))


def set_plan(admin: httpx.Client, site: Site, **plan: Any) -> None:
    reply = admin.put(f"/sandbox/facilities/{site.code}/faults", json={"faults": [], **plan})
    assert reply.status_code == 200, reply.text


def document_fields(admin: httpx.Client, code: str) -> dict[str, str]:
    """The fields of the one document stored under MA_GCS / MA_GBT `code`."""
    found = admin.get(f"/sandbox/documents/{code}")
    assert found.status_code == 200, found.text
    [document] = found.json()
    return document["fields"]


def credential_files(site: Site, directory: Path) -> list[str]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    key.write_bytes(key_pem(site.credential.key))
    cert.write_bytes(cert_pem(site.credential.cert, *site.credential.chain))
    return ["--facility", site.code, "--username", site.username, "--password", site.password]


def cli(*args: str, stdin: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "fixtures.hospital", *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=timeout, cwd=ROOT, check=False)


def worker_args(site: Site, portal: LiveServer, state: Path) -> list[str]:
    return [
        "--state-dir",
        str(state),
        "--portal",
        portal.base_url,
        *credential_files(site, state),
        "--key",
        str(state / "key.pem"),
        "--cert",
        str(state / "cert.pem"),
        "--retry-base",
        "0.01",
        "--retry-cap",
        "0.05",
    ]


# --- the trigger contract -------------------------------------------------------------------------


def test_command_trigger_order_is_sent_with_exactly_its_data(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    order = order_for(site)
    taken = cli("order", "--state-dir", str(tmp_path), stdin=json.dumps(order).encode())
    assert taken.returncode == 0, taken.stderr
    again = cli("order", "--state-dir", str(tmp_path), stdin=json.dumps(order).encode())
    assert again.returncode == 0 and json.loads(again.stdout)["duplicate"] is True
    worked = cli("work", *worker_args(site, portal, tmp_path), "--drain")
    assert worked.returncode == 0, worked.stderr
    shown = json.loads(cli("status", "--state-dir", str(tmp_path)).stdout)["orders"]
    assert [(o["request_id"], o["state"], o["attempts"]) for o in shown] == [(order["request_id"], "sent", 1)]
    stored = document_fields(admin, order["data"]["MA_GCS"])
    assert {name: stored.get(name, "") for name in order["data"]} == order["data"]
    assert shown[0]["ma_gd"] and shown[0]["ma_gd"] == journal(admin, site, operation="submit")[0]["ma_gd"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda o: o.pop("issued_at"), "missing required field(s): issued_at"),
        (lambda o: o.update(type="GCX"), "type must be GCS or GBT"),
        (lambda o: o.update(facility="7900"), "facility must be 5 digits"),
        (lambda o: o.update(issued_at="2026-03-09T08:00:00"), "issued_at must carry an offset"),
        (lambda o: o.update(extra=1), "unknown field(s): extra"),
        (lambda o: o["data"].update(MA_GCS=1), "data values must be strings: MA_GCS"),
        (lambda o: o["data"].update(HO_TEN="X"), "does not have: HO_TEN"),
    ],
    ids=["no-issued_at", "bad-type", "bad-facility", "naive-time", "extra-key", "number-value", "foreign-field"],
)
def test_invalid_orders_are_refused_with_a_reason(change: Any, reason: str) -> None:
    order = order_for("79999")
    change(order)
    with pytest.raises(OrderRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_order(order)


PORTAL = {"base_url": "http://127.0.0.1:8080", "clock_rate": 600, "sandbox_time": "2026-03-09T08:00:00+07:00"}


def test_the_optional_portal_object_gives_the_signing_clock() -> None:
    """With `portal` (run --order-portal) the reference signs by the portal's clock as sent, never before issue."""
    order = parse_order({**order_for("79999"), "portal": {**PORTAL, "later": "ignored"}})
    assert order.portal == PORTAL and order.sandbox_time == (datetime.fromisoformat(PORTAL["sandbox_time"]), 600.0)
    assert parse_order(json.loads(json.dumps(order.to_json()))) == order  # it survives the queue
    assert parse_order(order_for("79999")).sandbox_time is None


def test_order_validation_agrees_with_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "conformance" / "trigger.schema.json").read_text())
    good = order_for("79999")
    jsonschema.validate(good, schema)
    parse_order(good)
    jsonschema.validate({**good, "portal": PORTAL}, schema)
    parse_order({**good, "portal": PORTAL})
    no_rate = {k: v for k, v in PORTAL.items() if k != "clock_rate"}
    for bad in (
        {**good, "type": "X"},
        {**good, "request_id": ""},
        {k: v for k, v in good.items() if k != "data"},
        {**good, "portal": no_rate},
        {**good, "portal": {**PORTAL, "clock_rate": 0}},
        {**good, "portal": "http://127.0.0.1:8080"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(OrderRejected):
            parse_order(bad)


def test_invalid_order_on_stdin_exits_2(tmp_path: Path) -> None:
    refused = cli("order", "--state-dir", str(tmp_path), stdin=b'{"request_id": "x"}')
    assert refused.returncode == 2 and b"missing required field(s)" in refused.stderr


def test_http_trigger_takes_and_sends_and_refuses_invalid_orders(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "fixtures.hospital", "serve", *worker_args(site, portal, tmp_path)]
    process = subprocess.Popen(
        [*command, "--listen", f"127.0.0.1:{port}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}/orders"
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        order = order_for(site)
        assert httpx.post(url, json=order).status_code == 202
        invalid = httpx.post(url, json={**order, "facility": "ABCDE"})
        assert invalid.status_code == 400 and "facility must be 5 digits" in invalid.json()["error"]
        assert httpx.post(url, content=b"{not json").status_code == 400
        for _ in range(100):
            [shown] = httpx.get(url).json()["orders"]
            if shown["state"] != "queued":
                break
            time.sleep(0.1)
        assert shown["state"] == "sent", shown
        stored = document_fields(admin, order["data"]["MA_GCS"])
        assert {name: stored.get(name, "") for name in order["data"]} == order["data"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, process.stderr.read() if process.stderr else ""


# --- token policy ---------------------------------------------------------------------------------


def test_one_token_is_reused_for_several_sends(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    hospital = hospital_for(site, portal, tmp_path)
    queue_orders(hospital, order_for(site), order_for(site, kind="GBT"), order_for(site))
    assert hospital.drain() == 3
    assert [e["operation"] for e in journal(admin, site)] == ["token", "submit", "submit", "submit"]
    assert {o["state"] for o in status(hospital).values()} == {"sent"}


def test_expired_token_gives_401_then_one_login_and_one_resend(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    hospital = hospital_for(site, portal, tmp_path)
    set_plan(admin, site, token_ttl_minutes=0)
    assert hospital.session.take_token().outcome is SendOutcome.ACCEPTED  # a token that is already expired
    set_plan(admin, site)
    queue_orders(hospital, order_for(site))
    hospital.drain()
    assert [(e["operation"], e["outcome"]) for e in journal(admin, site)] == [
        ("token", "200"),
        ("submit", "401"),
        ("token", "200"),
        ("submit", "200"),
    ]
    [shown] = status(hospital).values()
    assert (shown["state"], shown["attempts"]) == ("sent", 2)


def test_token_per_request_variant_logs_in_before_every_send(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    hospital = hospital_for(site, portal, tmp_path, variant=Variant.TOKEN_PER_REQUEST)
    queue_orders(hospital, order_for(site), order_for(site))
    hospital.drain()
    assert [e["operation"] for e in journal(admin, site)] == ["token", "submit", "token", "submit"]


# --- retries and refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "outcomes"),
    [
        ({"effect": "portal_error", "code": "500", "first_n": 2}, ["500", "500", "200"]),
        ({"effect": "reset", "first_n": 1}, ["RESET", "200"]),
        ({"effect": "http_error", "status": 503, "first_n": 1}, ["HTTP-503", "200"]),
        ({"effect": "drop_after_commit", "first_n": 1}, ["DROPPED", "200"]),  # stored, unacknowledged: resent
    ],
    ids=["maketqua-500-twice", "reset", "http-503", "dropped-reply"],
)
def test_transient_failures_are_retried_with_the_same_file(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path, fault: dict[str, Any], outcomes: list[str]
) -> None:
    set_plan(admin, site, faults=[{"name": "flaky", "operations": ["submit"], **fault}])
    hospital = hospital_for(site, portal, tmp_path)
    queue_orders(hospital, order_for(site))
    hospital.drain()
    assert [e["outcome"] for e in journal(admin, site, operation="submit")] == outcomes
    [shown] = status(hospital).values()
    assert (shown["state"], shown["attempts"]) == ("sent", len(outcomes))


def test_no_retry_variant_gives_up_after_the_first_failure(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    set_plan(admin, site, faults=[{"effect": "portal_error", "first_n": 1, "operations": ["submit"]}])
    hospital = hospital_for(site, portal, tmp_path, variant=Variant.NO_RETRY)
    queue_orders(hospital, order_for(site))
    hospital.drain()
    [shown] = status(hospital).values()
    assert (shown["state"], shown["attempts"]) == ("failed", 1)
    assert [e["outcome"] for e in journal(admin, site, operation="submit")] == ["500"]


def test_refused_file_is_not_resent(admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path) -> None:
    hospital = hospital_for(site, portal, tmp_path)
    queue_orders(hospital, order_for(site, invalid="bad_pattern"))
    hospital.drain()
    [shown] = status(hospital).values()
    assert (shown["state"], shown["attempts"]) == ("refused", 1)
    assert "SCHEMA_" in shown["reason"]
    assert [e["outcome"] for e in journal(admin, site, operation="submit")] == ["205"]


def test_retry_refused_variant_resends_the_same_file_three_times(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    hospital = hospital_for(site, portal, tmp_path, variant=Variant.RETRY_REFUSED)
    queue_orders(hospital, order_for(site, invalid="bad_pattern"))
    hospital.drain()
    [shown] = status(hospital).values()
    assert (shown["state"], shown["attempts"]) == ("refused", 4)
    submits = journal(admin, site, operation="submit")
    assert [e["outcome"] for e in submits] == ["205"] * 4
    assert len({e["document_code"] for e in submits}) == 1


def test_resend_acked_variant_sends_the_acknowledged_file_again_when_the_order_comes_again(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    """Repeated while still queued: one more send after the acknowledgement; repeated once sent: queued again.
    Both times the very bytes the portal acknowledged (what API-011 names a resend after MaKetQua 200)."""
    hospital = hospital_for(site, portal, tmp_path, variant=Variant.RESEND_ACKED)
    early, late = order_for(site), order_for(site)
    queue_orders(hospital, early, late)
    hospital.queue.repeat(early["request_id"])
    hospital.drain()
    hospital.queue.repeat(late["request_id"])
    assert status(hospital)[late["request_id"]]["state"] == "queued"
    hospital.drain()
    submits = journal(admin, site, operation="submit")
    for order in (early, late):
        mine = [e for e in submits if e["document_code"] == order["data"]["MA_GCS"]]
        assert [e["outcome"] for e in mine] == ["200", "200"] and len({e["file_sha256"] for e in mine}) == 1
    assert {o["state"] for o in status(hospital).values()} == {"sent"}


def test_a_certificate_signed_again_gets_a_later_signing_time(site: Site, portal: LiveServer, tmp_path: Path) -> None:
    """Two signings in the same second would be the same bytes: a signer's clock only moves forward."""
    hospital = hospital_for(site, portal, tmp_path, clock_rate=1.0)
    order = parse_order(order_for(site))
    taken = datetime.now(UTC)
    first, second = hospital.sign(order, taken), hospital.sign(order, taken)
    assert first != second and b"<SigningTime>" in first


# --- the queue ------------------------------------------------------------------------------------


def test_queue_is_drained_earliest_deadline_first(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    orders = [order_for(site, ago=timedelta(hours=hours)) for hours in (1, 3, 2)]
    taker = OrderQueue(tmp_path)  # as `order` without --calendar: default working time
    for order in orders:
        taker.add(parse_order(order))
    hospital = hospital_for(site, portal, tmp_path, calendar=WorkingCalendar.always_open())
    hospital.drain()  # deadlines recomputed with the worker's 24/7 calendar: strictly by issued_at
    sent = [e["document_code"] for e in journal(admin, site, operation="submit")]
    assert sent == [orders[i]["data"]["MA_GCS"] for i in (1, 2, 0)]


def test_order_taken_before_an_outage_is_sent_once_after_a_restart(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    order = order_for(site)
    assert cli("order", "--state-dir", str(tmp_path), stdin=json.dumps(order).encode()).returncode == 0
    set_plan(admin, site, faults=[{"name": "outage", "effect": "http_error", "status": 503, "operations": ["submit"]}])
    args = worker_args(site, portal, tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "fixtures.hospital", "work", *args, "--retry-base", "0.2", "--max-attempts", "1000"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(journal(admin, site, operation="submit")) < 2:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, process.stderr.read() if process.stderr else ""
    [shown] = json.loads(cli("status", "--state-dir", str(tmp_path)).stdout)["orders"]
    assert shown["state"] == "queued" and shown["attempts"] >= 2
    set_plan(admin, site)
    assert cli("work", *args, "--drain").returncode == 0
    assert cli("work", *args, "--drain").returncode == 0  # acknowledged: never sent again
    outcomes = [e["outcome"] for e in journal(admin, site, operation="submit")]
    assert outcomes.count("200") == 1 and outcomes[-1] == "200"
    assert set(outcomes[:-1]) == {"HTTP-503"}


def test_late_sender_holds_orders_past_the_delay(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    hospital = hospital_for(site, portal, tmp_path, variant=Variant.LATE_SENDER, late_seconds=1.0)
    queue_orders(hospital, order_for(site))
    hospital.drain()
    assert journal(admin, site, operation="submit") == []
    time.sleep(1.1)
    hospital.drain()
    assert [e["outcome"] for e in journal(admin, site, operation="submit")] == ["200"]


def test_late_sender_default_delay_passes_the_deadline_at_the_clock_rate(
    site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    hospital = hospital_for(
        site, portal, tmp_path, variant=Variant.LATE_SENDER, clock_rate=600.0, calendar=WorkingCalendar.always_open()
    )
    queue_orders(hospital, order_for(site))
    [queued] = [hospital.queue.next_due()]
    assert queued is not None
    hold = hospital._hold_until(queued)
    assert hold == pytest.approx(queued.taken_at.timestamp() + (240 + 60) * 60 / 600)


VN = ZoneInfo("Asia/Ho_Chi_Minh")
SUNDAY_NIGHT = datetime(2026, 12, 13, 22, 0, tzinfo=VN)
MONDAY = datetime(2026, 12, 14, tzinfo=VN)


@pytest.mark.parametrize(
    ("variant", "issued", "released"),
    [
        (Variant.NIGHT_NEXT_DAY, SUNDAY_NIGHT, MONDAY.replace(hour=17)),  # the end of the next working day
        (Variant.NIGHT_NEXT_DAY, MONDAY.replace(hour=9), None),  # issued in working time: sent at once
        (Variant.UTC_WORKDAY, MONDAY.replace(hour=9), MONDAY.replace(hour=15)),  # 02:00 UTC: "night" until 08:00 UTC
        (Variant.UTC_WORKDAY, MONDAY.replace(hour=16), None),  # 09:00 UTC: working time on the server's clock too
    ],
    ids=["night-next-day", "next-day-by-day", "utc-morning", "utc-afternoon"],
)
def test_night_holding_variants_release_at_their_wrong_hour(
    site: Site, portal: LiveServer, tmp_path: Path, variant: Variant, issued: datetime, released: datetime | None
) -> None:
    """Held from the order's issue instant on its clock (no `portal` object: issued_at at `clock_rate`)."""
    hospital = hospital_for(site, portal, tmp_path, variant=variant, clock_rate=600.0)
    queue_orders(hospital, {**order_for(site), "issued_at": issued.isoformat()})
    queued = hospital.queue.next_due()
    assert queued is not None
    hold = hospital._hold_until(queued)
    expected = None if released is None else queued.taken_at.timestamp() + (released - issued).total_seconds() / 600
    assert hold == (None if expected is None else pytest.approx(expected))


def test_drop_overdue_never_sends_an_order_past_its_deadline(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    """Past its deadline by the portal's clock, which the order's `portal` object gives (its issued_at cannot)."""
    hospital = hospital_for(site, portal, tmp_path, variant=Variant.DROP_OVERDUE)
    now = {"base_url": portal.base_url, "clock_rate": 1.0, "sandbox_time": datetime.now(UTC).isoformat()}
    late, due = {**order_for(site, ago=timedelta(days=10)), "portal": now}, order_for(site)
    queue_orders(hospital, late, due)
    hospital.drain()
    states = status(hospital)
    assert states[late["request_id"]]["state"] == "refused" and states[due["request_id"]]["state"] == "sent"
    assert [e["outcome"] for e in journal(admin, site, operation="submit")] == ["200"]


def test_racing_workers_send_one_order_twice(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path
) -> None:
    hospital = hospital_for(site, portal, tmp_path, variant=Variant.RACING_WORKERS)
    queue_orders(hospital, order_for(site))
    hospital.drain()
    sent = journal(admin, site, operation="submit")
    assert [e["outcome"] for e in sent] == ["200", "200"] and sent[0]["file_sha256"] != sent[1]["file_sha256"]


# --- broken signatures and codes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "finding"),
    [(Variant.SHA1, "SIG_ALGORITHM_REFUSED"), (Variant.WRONG_YEAR, "RULE_CODE_YEAR")],
    ids=["sha1", "wrong-year"],
)
def test_broken_document_variants_are_refused_for_their_reason(
    admin: httpx.Client, site: Site, portal: LiveServer, tmp_path: Path, variant: Variant, finding: str
) -> None:
    if variant is Variant.WRONG_YEAR:  # the real portal takes it (R10: accounting year); strict mode refuses it
        put = admin.put(f"/sandbox/facilities/{site.code}/strictness", json={"strictness": "strict"})
        assert put.status_code == 200, put.text
    hospital = hospital_for(site, portal, tmp_path, variant=variant)
    order = order_for(site)
    queue_orders(hospital, order)
    hospital.drain()
    [entry] = journal(admin, site, operation="submit")
    assert entry["outcome"] == "205"
    submission = admin.get(f"/sandbox/submissions/{entry['submission_id']}").json()
    assert finding in [f["code"] for f in submission["findings"]]
    [shown] = status(hospital).values()
    assert shown["state"] == "refused" and finding in shown["reason"]
    if variant is Variant.WRONG_YEAR:
        serial, _, facility, year = order["data"]["MA_GCS"].split(".")
        assert entry["document_code"] == f"{serial}.GCS.{facility}.{int(year) - 1:02d}"


# --- pure pieces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "body", "outcome"),
    [
        (200, {"MaKetQua": "200"}, SendOutcome.ACCEPTED),
        (200, {"MaKetQua": "205"}, SendOutcome.REFUSED),
        (200, {"MaKetQua": "401"}, SendOutcome.AUTH),
        (200, {"MaKetQua": "500"}, SendOutcome.RETRY),
        (200, {"MaKetQua": "1001"}, SendOutcome.TOO_LARGE),
        (200, {"MaKetQua": "999"}, SendOutcome.REFUSED),
        (200, None, SendOutcome.RETRY),
        (502, None, SendOutcome.RETRY),
        (429, None, SendOutcome.RETRY),
        (404, None, SendOutcome.REFUSED),
        (None, None, SendOutcome.RETRY),
    ],
    ids=["200", "205", "401", "500", "1001", "unknown", "garbage", "http-502", "http-429", "http-404", "no-reply"],
)
def test_replies_are_classified(status_code: int | None, body: dict[str, str] | None, outcome: SendOutcome) -> None:
    assert classify_submit(status_code, body) is outcome


def test_backoff_has_full_jitter_under_a_cap() -> None:
    policy = RetryPolicy(base_seconds=0.2, cap_seconds=1.0, max_attempts=3)
    delays = [policy.delay(n) for n in (1, 2, 3, 8) for _ in range(200)]
    assert all(0 <= d <= 1.0 for d in delays) and max(delays[:200]) <= 0.2 and max(delays[600:]) > 0.5
    assert not policy.exhausted(2, 0, 0) and policy.exhausted(3, 0, 0)


def test_public_api_is_pinned() -> None:
    import fixtures.hospital as module

    assert sorted(module.__all__) == sorted(
        [
            "LOAI_HS",
            "SUBMIT_PATH",
            "TOKEN_PATH",
            "SessionExchange",
            "HiapClient",
            "Hospital",
            "HospitalConfig",
            "HospitalOrder",
            "OrderRejected",
            "OrderQueue",
            "OrderServer",
            "SendOutcome",
            "PortalSession",
            "PortalToken",
            "QueuedOrder",
            "RetryPolicy",
            "SubmitReply",
            "TokenRefused",
            "Variant",
            "classify_submit",
            "classify_token",
            "main",
            "parse_order",
            "read_order",
            "worker_lock",
        ]
    )
    assert all(hasattr(module, name) for name in module.__all__)
    assert [v.value for v in Variant] == [
        "no-retry",
        "sha1",
        "retry-refused",
        "token-per-request",
        "wrong-year",
        "late-sender",
        "resign-205",
        "fixed-retry",
        "retry-storm",
        "fifo",
        "double-send",
        "ack-misread",
        "no-dedupe",
        "retry-1001",
        "no-relogin",
        "wrong-loaihs",
        "plain-password",
        "data-drift",
        "no-reply-sent",
        "resend-acked",
        "expired-cert",
        "not-yet-valid-cert",
        "revoked-cert",
        "key-usage-cert",
        "unregistered-cert",
        "self-made-ca",
        "windows-1258",
        "dmy-dates",
        "gbt-seconds",
        "unpadded-code",
        "gbt-code-kind",
        "head-office-code",
        "gbt-head-office",
        "nfd-text",
        "twins-so-con",
        "no-admission",
        "pretty-print",
        "countersign",
        "signing-time-locale",
        "no-id-token",
        "relogin-by-clock",
        "drop-overdue",
        "night-next-day",
        "utc-workday",
        "no-timeout",
        "receipt-as-utc",
        "racing-workers",
    ]


# Issue 26: the slowest tests


def test_the_reference_hospital_starts_without_the_portals_store() -> None:
    """A conformance run starts one hospital per scenario facility (13 for a full run): each loads the client
    side only, not SQLAlchemy and Alembic (over half a CPU second each, measured)."""
    probe = "import json, sys, fixtures.hospital.cli; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert not {"sqlalchemy", "alembic", "connexion", "flask"} & set(json.loads(loaded.stdout)), loaded.stdout
