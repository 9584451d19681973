"""Placement in working time: outages measured in working minutes, every scenario started at a slot,
and a bug's verdict the same whichever scenarios ran before it (`--only`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conformance.cases import load_cases
from conformance.evidence import Order
from conformance.harness import provision, reference_lanes
from conformance.model import Verdict
from conformance.portal import SandboxAdmin, start_local_portal
from conformance.runner import Runner
from conformance.scenarios import OUTAGE_WORKING_MINUTES, SCENARIOS, next_slot, working_window
from mock_portal.deadline.working_time import WorkingCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CALENDAR = WorkingCalendar.default()


def instants(first: date, days: int, step_minutes: int = 13) -> list[datetime]:
    start = datetime.combine(first, datetime.min.time(), VN)
    return [start + timedelta(minutes=m) for m in range(0, days * 24 * 60, step_minutes)]


# 2026-04-24 (Fri) … 2026-05-05: a weekend, Hùng Kings' day observed, 30/4 and 1/5, another weekend
AROUND_HOLIDAYS = instants(date(2026, 4, 24), 12)


def test_an_outage_holds_the_same_working_time_wherever_it_starts() -> None:
    """Over lunch, a night or a holiday the window stretches: the hospital always loses one working hour."""
    for start in AROUND_HOLIDAYS:
        window = working_window(start, OUTAGE_WORKING_MINUTES)
        end = start + timedelta(minutes=window["minutes"])
        assert CALENDAR.working_minutes_between(start, end) == pytest.approx(OUTAGE_WORKING_MINUTES, abs=0.01)
    outage = next(s for s in SCENARIOS if s.name == "outage")
    lunch = datetime(2026, 12, 7, 11, 30, tzinfo=VN)
    assert outage.faults(lunch, 600.0)[0]["window"]["minutes"] == 120  # 11:30–12:00, lunch, 13:00–13:30


def test_every_slot_is_the_first_working_minute_of_a_working_day() -> None:
    for now in AROUND_HOLIDAYS:
        slot = next_slot(now)
        day = slot.date()
        assert slot > now and CALENDAR.is_working_day(day) and slot.timetz().replace(tzinfo=None).hour == 8
        assert slot == CALENDAR.working_windows(day)[0][0]
        skipped = [
            d for d in (now.date() + timedelta(days=i) for i in range((day - now.date()).days)) if d > now.date()
        ]
        assert not any(CALENDAR.is_working_day(d) for d in skipped)  # no working day left out
    assert next_slot(datetime(2026, 4, 29, 16, 0, tzinfo=VN)).date() == date(2026, 5, 4)  # past 30/4, 1/5, weekend


def test_a_bugs_verdict_does_not_depend_on_the_scenarios_run_before_it(tmp_path: Path) -> None:
    """One facility, scenarios one after the other (a vendor run), a hospital that holds every order a
    fixed 12.5 real seconds (250 sandbox minutes at 1200×): from a slot its first outage orders (the twins)
    are due at 12:00 and arrive 12:10, LATE. Started where the clock happened to stand after another scenario (say
    09:30), the same hold lands inside its deadline stretched over lunch, and the bug would pass DL-002.
    Placement makes the verdict the same with `--only DL-002` and after the issue scenario."""
    cases = load_cases()
    results = {}
    for label, wanted in (("alone", ["DL-002"]), ("after issue", ["DL-001", "DL-002"])):
        workdir = tmp_path / label.replace(" ", "-")
        workdir.mkdir()
        portal = start_local_portal(workdir)
        admin = SandboxAdmin(portal.base_url, portal.admin_token)
        lanes, facilities, material, hospitals = reference_lanes(
            portal.base_url,
            workdir,
            1,
            variant="late-sender",
            clock_rate=1200.0,
            hospital_args=("--late-seconds", "12.5"),
        )
        try:
            provision(admin, facilities, material)
            finished = Runner(admin, lanes, rate=1200.0, seed=3, scenario_timeout=40.0).run(
                [cases.get(i) for i in wanted]
            )
        finally:
            hospitals.stop()
            admin.close()
            portal.stop()
        outage = next(r for r in finished.bundle.scenarios if r.name == "outage")
        assert datetime.fromisoformat(outage.started_at).astimezone(VN).strftime("%H:%M") == "08:00", label
        results[label] = next(r for r in finished.results if r.case_id == "DL-002")
    assert [r.verdict for r in results.values()] == [Verdict.FAIL, Verdict.FAIL], results
    stories = [
        sorted((f.message.split("(", 1)[1].split(",", 1)[0], "LATE" in f.message) for f in r.evidence.findings)
        for r in results.values()
    ]
    assert stories[0] == stories[1] and ("gcs_twins", True) in stories[0], stories


def test_fail_fast_a_blown_request_budget_decides_the_overload_scenario() -> None:
    """API-014's budget is at most 10 + 0.5 per busy second of the whole window (24 s at 600×): 22 requests."""
    overload = next(s for s in SCENARIOS if s.name == "overload")
    assert overload.decided_when is not None

    def busy(n: int) -> list[dict]:
        return [{"id": 1, "operation": "token", "faults": []}] + [
            {"id": i + 2, "operation": "submit", "faults": ["busy"]} for i in range(n)
        ]

    assert not overload.decided_when(busy(22), 600.0) and overload.decided_when(busy(23), 600.0)
    assert not overload.decided_when(busy(40), 60.0)  # a slower clock: a longer window, a larger budget
    assert not overload.decided_when([], 600.0)


def test_fail_fast_a_certificate_refused_for_good_is_no_longer_awaited() -> None:
    def order(code: str, expectation: int) -> Order:
        return Order(
            f"r{expectation}", "issue", "gcs_normal", "GCS", "79101", "", {"MA_GCS": code}, expectation_id=expectation
        )

    journal = [
        {"operation": "submit", "document_code": "A", "outcome": "205"},
        {"operation": "submit", "document_code": "B", "outcome": "1001"},
        {"operation": "submit", "document_code": "C", "outcome": "205"},
        {"operation": "submit", "document_code": "C", "outcome": "200"},
        {"operation": "submit", "document_code": "D", "outcome": "500"},
    ]
    pending = {i: order(code, i) for i, code in enumerate("ABCDE", 1)}
    assert Runner._refused(journal, pending) == {1, 2}  # C was accepted after all; D may still come; E not sent yet
