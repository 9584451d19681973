"""The timing resolution (`conformance.timing`): what a run measures of the machine, and the verdicts it
turns inconclusive instead of failing the hospital for the test bed's delays (hand-made evidence)."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conformance import EXIT_INCONCLUSIVE
from conformance.cases import load_cases
from conformance.events import RunFinished
from conformance.evidence import Bundle, Order, ScenarioRecord
from conformance.model import CaseVerdict
from conformance.outcome import summary
from conformance.report.junit import write_junit
from conformance.runner import Lane, Runner
from conformance.scenarios import SCENARIOS
from conformance.selftest import same_message
from conformance.timing import SAFETY, TimingProbe, resolution
from conformance.trigger import Taken

CASES = load_cases()
ISSUED = "2026-11-30T08:00:00+07:00"


def record(name: str = "issue", *tags: str, attempt: int = 1, rate: float = 600.0, **timing: float) -> ScenarioRecord:
    measured = {"scheduling": 0.1, "harness": 0.2, "trigger": 0.3, **timing}
    return ScenarioRecord(
        name if attempt == 1 else f"{name}@{attempt}", name, "79101", tags or ("base",), {"faults": []},
        rate=rate, plan=name, attempt=attempt, timing=measured,
    )  # fmt: skip


def order(request_id: str, scenario: str = "issue", expectation_id: int = 1, code: str = "00001.GCS.79101.26") -> Order:
    return Order(request_id, scenario, "gcs_normal", "GCS", "79101", ISSUED, {"MA_GCS": code, "CAP_LAN_DAU": "1"},
                 taken=True, expectation_id=expectation_id)  # fmt: skip


def arrived(eid: int, late_minutes: float | None) -> dict:
    status = {"status": "ON_TIME"} if late_minutes is None else {"status": "LATE", "working_minutes_late": late_minutes}
    document = {"submission_id": eid, "accepted_at": "2026-11-30T05:00:00Z", "fields": {}, "deadline": status}
    return {
        "id": eid,
        "status": "ARRIVED",
        "issued_at": ISSUED,
        "deadline": "2026-11-30T05:00:00Z",
        "document": document,
    }


def test_the_resolution_adds_the_delays_measured_and_the_portals_own_time() -> None:
    """Parts in real seconds; the portal's part leaves the latency a fault plan injected on purpose out."""
    plan = {"faults": [{"name": "slow", "effect": "latency", "latency": {"ms": 3000}}]}
    slow = replace(record(), fault_plan=plan, journal_after=0, journal_until=10)
    journal = (
        {"id": 1, "facility": "79101", "operation": "submit", "faults": ["slow"], "duration_ms": 3400},
        {"id": 2, "facility": "79101", "operation": "token", "faults": [], "duration_ms": 100},
        {"id": 3, "facility": "79109", "operation": "token", "faults": [], "duration_ms": 9000},  # another facility
    )
    found = resolution(Bundle(scenarios=(slow,), journal=journal), slow)
    assert found.parts == pytest.approx({"scheduling": 0.1, "harness": 0.2, "trigger": 0.3, "portal": 0.5})
    assert found.seconds == pytest.approx(SAFETY * 1.1)
    assert found.minutes == pytest.approx(found.seconds * 600 / 60)
    assert "at 600×" in found.describe()
    assert resolution(Bundle(), replace(slow, timing={})).seconds == 0  # older evidence measured nothing


@pytest.mark.parametrize(
    ("late", "verdict"),
    [(None, CaseVerdict.PASS), (10, CaseVerdict.INCONCLUSIVE), (30, CaseVerdict.FAIL)],
    ids=["on-time", "late-inside-the-resolution", "late-beyond-it"],
)
def test_lateness_inside_the_resolution_is_inconclusive_not_a_failure(late: float | None, verdict: CaseVerdict) -> None:
    """The resolution here is 2 × 1.2 s = 2.4 s, 24 sandbox minutes at 600×."""
    bundle = Bundle(scenarios=(record(trigger=0.9),), orders=(order("r1"),), expectations=(arrived(1, late),))
    result = CASES.get("DL-001").judge(bundle)
    assert result.verdict is verdict, result.message
    if verdict is CaseVerdict.INCONCLUSIVE:
        assert "inside the timing resolution of 24.0 sandbox min at 600×" in result.message
        assert result.undecided and not result.blocking


def test_a_scenario_run_again_settles_what_the_first_run_could_not() -> None:
    first, again = record(), record(attempt=2, rate=300.0)
    orders = (order("r1"), order("r2", scenario="issue@2", expectation_id=2, code="00002.GCS.79101.26"))
    settled = Bundle(scenarios=(first, again), orders=orders, expectations=(arrived(1, 10), arrived(2, None)))
    assert CASES.get("DL-001").judge(settled).verdict is CaseVerdict.PASS
    still = replace(settled, expectations=(arrived(1, 10), arrived(2, 5)))
    assert CASES.get("DL-001").judge(still).verdict is CaseVerdict.INCONCLUSIVE
    # late beyond the resolution in the first run: the hospital's, whatever the second run shows
    beyond = replace(settled, expectations=(arrived(1, 90), arrived(2, None)))
    assert CASES.get("DL-001").judge(beyond).verdict is CaseVerdict.FAIL


def test_disorder_is_judged_by_when_the_hospital_started_and_what_it_held_then() -> None:
    """Outage: the first started may be in flight; after it, starting a later-deadline certificate while an
    earlier-deadline one had been in the hospital's hands beyond the resolution (3 s here) is an inversion."""
    outage = replace(record("outage", "outage", scheduling=0.0, harness=0.0, trigger=1.5), journal_after=0)
    codes = ["00001.GCS.79101.26", "00002.GBT.79101.26", "00003.GCS.79101.26"]
    deadlines = ["2026-11-30T05:10:00Z", "2026-11-30T05:05:00Z", "2026-11-30T05:00:00Z"]

    def bundle(taken: list[float], started: list[float]) -> Bundle:
        orders = tuple(
            replace(order(f"r{i}", "outage", i + 1, code), taken_real_at=_at(taken[i])) for i, code in enumerate(codes)
        )
        journal = tuple(
            {"id": 10 + i, "facility": "79101", "operation": "submit", "outcome": "200", "real_at": _at(started[i]),
             "faults": [], "document_code": code, "submission_id": i + 1, "duration_ms": 10}
            for i, code in enumerate(codes)
        )  # fmt: skip
        expectations = tuple({**arrived(i + 1, None), "deadline": deadlines[i]} for i in range(3))
        return Bundle(scenarios=(outage,), orders=orders, journal=journal, expectations=expectations)

    # FIFO: r0 in flight, then r1 (deadline +5) although r2 (earliest) had been held 10 s
    fifo = CASES.get("DL-003").judge(bundle([0.0, 0.1, 0.2], [1.0, 10.2, 11.0]))
    assert fifo.verdict is CaseVerdict.FAIL and "held 10.0 s" in fifo.message
    # r2 reached the hospital only after it had started r1: no disorder it could have avoided
    assert CASES.get("DL-003").judge(bundle([0.0, 0.1, 10.5], [1.0, 10.2, 11.0])).verdict is CaseVerdict.PASS
    # held 2 s, inside 3 s: the machine may have been late to hand it over
    assert CASES.get("DL-003").judge(bundle([0.0, 0.1, 8.2], [1.0, 10.2, 11.0])).verdict is CaseVerdict.INCONCLUSIVE


def _at(seconds: float) -> str:
    return f"2026-11-30T01:00:{seconds:06.3f}+00:00"


def test_an_inconclusive_must_case_is_no_certificate_and_exits_3(tmp_path: Path) -> None:
    bundle = Bundle(scenarios=(record(trigger=0.9),), orders=(order("r1"),), expectations=(arrived(1, 10),))
    results = (CASES.get("DL-001").judge(bundle),)
    info = summary(results)
    assert (info["verdict"], info["headline"], info["must_inconclusive"]) == (
        "inconclusive",
        "INCONCLUSIVE",
        ["DL-001"],
    )
    assert info["exit_code"] == EXIT_INCONCLUSIVE == RunFinished(results, bundle, 1.0).exit_code
    case = ET.parse(write_junit(RunFinished(results, bundle, 1.0), tmp_path / "junit.xml")).find(".//testcase")
    assert case is not None and case.find("skipped").get("type") == "inconclusive"  # type: ignore[union-attr]


def test_the_scenario_behind_an_inconclusive_case_runs_again_at_half_the_rate_not_below_its_floor() -> None:
    runner = Runner(object(), [Lane("79101", Nowhere())], rate=600.0)  # type: ignore[arg-type]
    backlog = next(s for s in SCENARIOS if s.name == "backlog")
    bundle = Bundle(
        scenarios=(record("issue", rate=600.0), record("backlog", "backlog", rate=600.0)),
        orders=(order("r1"), order("r2", scenario="backlog")),
    )
    undecided = replace(CASES.get("DL-001").judge(Bundle()), verdict=CaseVerdict.INCONCLUSIVE)
    undecided = replace(undecided, evidence=replace(undecided.evidence, request_ids=("r1", "r2")))
    again = runner._to_run_again([undecided], bundle)
    assert {(plan.name, rate) for _, plan, rate in again} == {("issue", 300.0), ("backlog", backlog.min_rate)}
    assert backlog.min_rate == 300.0  # its slow replies stay under a 15 s client timeout
    third = replace(bundle, scenarios=(record("issue", attempt=3, rate=150.0),), orders=(order("r1", "issue@3"),))
    assert runner._to_run_again([undecided], third) == []  # three runs in all


class Nowhere:
    """A trigger no hospital answers."""

    description = "nowhere"

    def send(self, order: dict) -> Taken:
        return Taken(False, "no")


def test_a_scenario_run_again_files_its_orders_under_its_own_run() -> None:
    """`retry@2`'s orders name `retry@2`, not `retry`: a case finds an order's run (its clock rate, its timing,
    whether a later run superseded it) by that name. Filed under the first run, a storm's second, undecided
    run counted as superseded and API-008 passed a client that retries at once (CI, stop 36)."""

    class Admin:
        def set_faults(self, facility: str, plan: dict) -> None:
            pass

        def last_journal_id(self) -> int:
            return 7

        def expect(self, *args: object) -> dict:
            return {"id": 1}

    runner = Runner(Admin(), [Lane("79101", Nowhere())], rate=600.0)  # type: ignore[arg-type]
    retry = next(s for s in SCENARIOS if s.name == "retry")
    start = datetime(2026, 11, 30, 8, 0, tzinfo=timezone(timedelta(hours=7)))
    first, again = (
        runner._prepare(runner.lanes[0], retry, start, rate, attempt) for rate, attempt in ((600, 1), (300, 2))
    )
    assert {o.scenario for _, o in first.orders} == {"retry"} and {o.scenario for _, o in again.orders} == {"retry@2"}
    runs = (record("retry", "retry", rate=600.0), record("retry", "retry", attempt=2, rate=300.0))
    bundle = Bundle(scenarios=runs, orders=tuple(o for _, o in first.orders + again.orders))
    assert [bundle.record_of(o).name for _, o in again.orders] == ["retry@2"] * len(again.orders)  # type: ignore[union-attr]
    assert all(bundle.orders_of(run) for run in runs)


def test_an_overdue_certificate_is_waited_for_the_resolution_the_harness_measured() -> None:
    """A certificate the machine made late still arrives while the run waits (then it is late inside the
    resolution, not never sent); with no grace, waiting stops at the deadline (fail fast)."""

    class Admin:
        def __init__(self) -> None:
            self.polls = 0

        def expectation(self, expectation_id: int) -> dict:
            self.polls += 1
            return {"status": "ARRIVED" if self.polls > 3 else "OVERDUE"}

    def waited(grace: float) -> int:
        admin = Admin()
        runner = Runner(admin, [Lane("79101", Nowhere())], rate=600.0)  # type: ignore[arg-type]
        runner._wait([order("r1")], time.monotonic(), grace=grace)
        return admin.polls

    assert waited(0.0) == 1
    assert waited(5.0) == 4  # it stopped once the certificate arrived, long before the grace ran out


def test_the_probe_sees_a_process_that_could_not_run() -> None:
    """A thread that cannot get the interpreter for 0.3 s stands for a CPU taken by other processes."""
    interval = sys.getswitchinterval()
    with TimingProbe(interval=0.01) as probe:
        began = time.monotonic()
        time.sleep(0.1)
        sys.setswitchinterval(1.0)
        try:
            until = time.monotonic() + 0.3
            while time.monotonic() < until:
                pass
        finally:
            sys.setswitchinterval(interval)
        time.sleep(0.1)
        measured = probe.measure(began)
    assert measured["scheduling"] >= 0.2 and measured["jitter"] < measured["scheduling"]


def test_two_failure_messages_say_the_same_when_only_numbers_differ() -> None:
    full = "81234.GCS.79101.26 resent after MaKetQua 200: submission 12 carries the very file acknowledged as MaGD "
    full += "HS_GCS79101_0F8FAD5B-D9CB-469F-A165-70867728950E (submission 9) (+3 more)"
    only = full.replace("81234", "80417").replace("12", "7").replace(" (+3 more)", "")
    assert same_message(full, only)
    assert not same_message(full, "00001.GCS.79101.26 accepted 2 times: MaGD ? (submission 1)")
    digest = "submission 1: Digest mismatch for Reference '#Object-CHUKYDONVI-Id-{}'"
    ids = ("5e286b46-faec-4d1b-879a-5ec7fde2c1db", "b6e03f44-fe43-4874-9afc-5cd4ddff0a11")
    assert same_message(digest.format(ids[0]), digest.format(ids[1]))  # a data element's Id: a lowercase GUID
    twice = "00008.GCS.79101.26/1 accepted 2 times for request_id {}-issue-1a sent 2x: taken as a new order"
    assert same_message(twice.format("c7-ad0a18"), twice.format("c7-dafcfd")), "a run id of hex letters only"
