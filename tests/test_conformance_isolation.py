"""A run's verdict and evidence belong to the hospital alone: an outsider naming its accounts changes
neither, and a run leaves nothing behind once its clock goes back (real HTTP, reference hospitals).

Both runs are on the module's portal, each in a workspace of its own (its own clock, faults, journal and report,
as `conformance run --portal` opens one): one portal start, not two (issue 26).
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.cases import load_cases
from conformance.harness import FacilityUnderTest, Provisioning, provision, reference_lanes
from conformance.portal import SandboxAdmin, own_workspace, restoring
from conformance.runner import Lane, Runner
from tests.live import LiveServer

pytestmark = pytest.mark.portal()

CASES = load_cases()
OUTSIDER_LOAI_HS = "99"
"""The outsider's submissions carry a loaiHs no hospital sends, so the journal shows whose a row is."""


@contextmanager
def outsider(base_url: str, facilities: list[FacilityUnderTest]) -> Iterator[Counter[str]]:
    """Floods, from another loopback address, the wire API with requests that name the run's accounts:
    submissions with a made-up token and logins with a wrong password, ~10 a second for each facility."""
    stop, sent = threading.Event(), Counter[str]()
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    file = base64.b64encode(b"<HSDLGCS><GIAYCHUNGSINH/></HSDLGCS>").decode()

    def flood() -> None:
        with httpx.Client(base_url=base_url, transport=transport, timeout=10.0) as client:
            while not stop.wait(0.1):
                for facility in facilities:
                    form = {"maCskcb": facility.code, "token": "x", "id_token": "x", "username": facility.username,
                            "password": "0" * 32, "loaiHs": OUTSIDER_LOAI_HS, "fileBase64Str": file}  # fmt: skip
                    sent[str(client.post("/api/hososuckhoe/guiGiayToDienTu", data=form).json()["MaKetQua"])] += 1
                    login = {"username": facility.username, "password": "F" * 32}
                    sent["token " + str(client.post("/api/token/take", data=login).json()["maKetQua"])] += 1

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join(timeout=15)


@contextmanager
def workspace_run(
    portal: LiveServer, workdir: Path, count: int
) -> Iterator[tuple[SandboxAdmin, list[Lane], list[FacilityUnderTest], Provisioning]]:
    """A workspace of the test's own on the module's portal (deleted afterwards) and `count` reference
    hospitals that submit to it once provisioned; the hospitals stop, then the workspace goes."""
    operator = SandboxAdmin(portal.base_url, portal.admin_token)
    try:
        with own_workspace(operator, workdir.name) as admin:
            lanes, facilities, material, hospitals = reference_lanes(
                portal.base_url, workdir, count, variant=None, clock_rate=1200.0, account=str(admin.workspace)
            )
            try:
                yield admin, lanes, facilities, material
            finally:
                hospitals.stop()
    finally:
        operator.close()


def hospital_exchanges(lane: Lane) -> list[dict]:
    """Every HTTP request the reference hospital behind `lane` made, as it recorded them."""
    status = httpx.get(lane.trigger.url, timeout=10).json()  # type: ignore[attr-defined]
    return [exchange for order in status["orders"] for exchange in order["exchanges"]]


def test_an_outsider_naming_the_run_s_accounts_changes_no_verdict_and_no_evidence(
    portal: LiveServer, tmp_path: Path
) -> None:
    """Faults, budgets and the journal are decided after the credentials: the outsider gets the portal's
    refusals (401) and none of the faults meant for the hospital, and none of its requests is evidence."""
    specs = [CASES.get(i) for i in ("API-001", "API-005", "API-007", "API-014", "DL-001")]
    with workspace_run(portal, tmp_path, 4) as (admin, lanes, facilities, material):
        provision(admin, facilities, material)
        with outsider(portal.base_url, facilities) as sent:
            finished = Runner(admin, lanes, rate=1200.0, seed=5, scenario_timeout=60.0).run(specs)
        journals = {lane.facility: admin.journal(lane.facility) for lane in lanes}
        strangers = {lane.facility: admin.journal(lane.facility, identity="unauthenticated") for lane in lanes}
        recorded = {lane.facility: hospital_exchanges(lane) for lane in lanes}
    verdicts = {r.case_id: r.verdict.value for r in finished.results}
    assert finished.exit_code == 0 and set(verdicts.values()) == {"pass"}, [r.message for r in finished.results]
    # the outsider was heard, and refused (its logins throttled per address after a few failures: 403)
    assert (
        sent["401"] > 100
        and sent["token 401"] + sent["token 403"] > 100
        and set(sent) <= {"401", "token 401", "token 403"}
    ), sent
    for facility, entries in journals.items():
        assert len(entries) == len(recorded[facility]), facility  # the hospital's requests, all and only
        assert not any(e.get("loai_hs") == OUTSIDER_LOAI_HS for e in entries)
        assert all(e["authenticated"] for e in entries)
        assert strangers[facility] and all(not e["authenticated"] and not e["faults"] for e in strangers[facility])
    retry = next(r for r in finished.bundle.scenarios if r.name == "retry")
    outcomes = Counter(e["outcome"] for e in journals[retry.facility] if e["faults"])
    assert outcomes == {"500": 1, "HTTP-503": 2, "RESET": 2}  # the whole fault plan met the hospital


def _shared_report(admin: SandboxAdmin, period: dict[str, str]) -> list[dict[str, Any]]:
    """The six-monthly report once the IPSS sharing worker (a background thread) has shared every accepted
    document: a report read before it did counts one `shared_ipss` fewer than the next (bounded wait)."""
    until = time.monotonic() + 15
    while True:
        rows = admin.http.get("/sandbox/reports/semiannual", params=period).json()["facilities"]
        pending = [r[t] for r in rows for t in ("GCS", "GBT") if r[t]["shared_ipss"] < r[t]["accepted"]]
        if not pending or time.monotonic() > until:
            return rows
        time.sleep(0.2)


def test_a_run_ends_with_no_order_in_flight_and_leaves_no_trace(portal: LiveServer, tmp_path: Path) -> None:
    """The overload scenario ends once its request budget is decided, its order still due. The run waits
    until the hospital has sent it before the clock goes back: afterwards nothing reaches the facility."""
    with workspace_run(portal, tmp_path, 1) as (admin, lanes, facilities, material):
        facility = facilities[0].code
        with restoring(admin, (facility,)):
            provision(admin, facilities, material)
            finished = Runner(admin, lanes, rate=1200.0, seed=7, scenario_timeout=60.0).run([CASES.get("API-014")])
        orders = httpx.get(lanes[0].trigger.url, timeout=10).json()["orders"]  # type: ignore[attr-defined]
        before = admin.journal(facility)
        period = {"period": f"{date.today().year}-H{1 + (date.today().month > 6)}"}
        report = _shared_report(admin, period)
        threading.Event().wait(5.0)  # nothing is left to send: the hospital's one order is sent (asserted below)
        after = admin.journal(facility)
        report_after = admin.http.get("/sandbox/reports/semiannual", params=period).json()["facilities"]
    assert finished.exit_code == 0, [r.message for r in finished.results]
    assert [o["state"] for o in orders] == ["sent"], orders  # delivered before the clock went back
    assert after == before and report_after == report
    assert not any("in flight" in note or "neither accepted" in note for note in finished.bundle.meta["notes"])
