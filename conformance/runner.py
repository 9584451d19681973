"""Runs the live scenarios against a hospital system, collects evidence, judges the cases.

The runner sets the clock, applies each scenario's fault plan to its facility, sends the orders
through the trigger, registers an expectation per order, waits (bounded) until each expected
document arrived or is overdue, then collects the journal, submissions and expectations and judges
every selected case on that evidence. It reports only through typed events (`conformance.events`);
it knows no output format.

Timing: a probe measures the machine while scenarios run (`conformance.timing`), so every scenario
has a timing resolution. A case whose verdict lies inside it is INCONCLUSIVE; the scenarios behind
it run again at half the clock rate (not below the scenario's `min_rate`), at most `MAX_ATTEMPTS`
times in all, and the cases are judged again on all the evidence. A run ends clean: where the portal
outlives it, it waits (bounded) until the hospital has no order of the run in flight before the clock
goes back.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance import SUITE_VERSION
from conformance.attestation import PortalWitness
from conformance.events import CaseFinished, Listener, RunFinished, RunStarted, ScenarioFinished, ScenarioStarted
from conformance.evidence import Bundle, Json, Order, ScenarioRecord
from conformance.model import CaseResult, CaseVerdict
from conformance.portal import PortalCallError, SandboxAdmin
from conformance.registry import CaseSpec
from conformance.scenarios import (
    DEFAULT_RATE,
    LATE,
    SCENARIOS,
    OrderPlan,
    Scenario,
    build_orders,
    issued_for_deadline,
    next_slot,
    scenarios_for,
    start_instant,
)
from conformance.timing import SAFETY, TimingProbe
from conformance.trigger import Trigger
from mock_portal import sandbox_version
from mock_portal.control.clock import VN_TZ
from mock_portal.deadline.working_time import WorkingCalendar

__all__ = ["Lane", "Runner", "judge", "needed_tags"]

POLL = 0.25
MAX_ATTEMPTS = 3
"""How often a scenario runs in all when its timing verdicts stay inside the resolution."""
SETTLE_SECONDS = 45.0
"""The longest a run waits at its end for orders in flight (a hospital that never stops sending one)."""
QUIET_SECONDS = 20.0
"""At the end of a run, a hospital that made no request for this long while orders of the run are
unsettled has stopped sending them (it gave up, or holds them): the run ends. Above the reference
hospital's longest pause (its backoff cap plus its requeue pause)."""
UNAUTHENTICATED_KEPT = 200
"""The newest unauthenticated exchanges naming a facility that the evidence keeps (anyone can send them)."""
REFUSAL_POLLS = 4
"""Read the scenario's journal (final refusals, a decided outcome) every this many polls: once a second."""
FINAL = frozenset({"205", "1001"})
"""Answers after which the portal will not accept the same certificate unchanged."""
OLD_PORTAL_CALENDAR = (
    "the portal's clock reply has no working calendar (an older portal): scenarios are placed on the default "
    "calendar (Mon–Fri 08:00–12:00, 13:00–17:00 Asia/Ho_Chi_Minh, VN holidays); if the portal runs another "
    "PORTAL_CALENDAR, outage windows and deadline-timed orders may land on the wrong hours"
)


@dataclass(frozen=True)
class _ClockView:
    """The sandbox clock from one reading (`sandbox` at monotonic `real`), run forward at `rate`."""

    sandbox: datetime
    real: float
    rate: float

    def now(self) -> datetime:
        return self.sandbox + timedelta(seconds=(time.monotonic() - self.real) * self.rate)

    def real_at(self, sandbox: datetime) -> float:
        """The monotonic instant the clock reads (or read) `sandbox`."""
        return self.real + (sandbox - self.sandbox).total_seconds() / max(self.rate, 1e-9)


@dataclass(frozen=True)
class Lane:
    """A facility the hospital issues for, and how to reach the hospital for it."""

    facility: str
    trigger: Trigger


def needed_tags(specs: Iterable[CaseSpec]) -> set[str]:
    """Scenario tags the selected cases need; cases without a scenario need judge the base scenario."""
    tags: set[str] = set()
    for spec in specs:
        wanted = {n.split(":", 1)[1] for n in spec.needs if n.startswith("scenario:")}
        tags |= wanted or {"base"}
    return tags


def judge(specs: Iterable[CaseSpec], bundle: Bundle, emit: Listener | None = None) -> list[CaseResult]:
    """Judge each case on `bundle`; the same code serves live runs, replays and offline checks."""
    results = []
    for spec in specs:
        result = spec.judge(bundle)
        results.append(result)
        if emit:
            emit(CaseFinished(result))
    return results


class Runner:
    def __init__(
        self,
        admin: SandboxAdmin,
        lanes: list[Lane],
        *,
        listeners: Iterable[Listener] = (),
        rate: float = DEFAULT_RATE,
        seed: int | None = None,
        start: datetime | None = None,
        scenario_timeout: float = 150.0,
        trigger_description: str = "",
        order_portal: bool = False,
        settle: bool = True,
    ) -> None:
        if not lanes:
            raise ValueError("at least one lane (facility + trigger) is needed")
        self.admin, self.lanes, self.rate = admin, lanes, rate
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1, 1 << 30)
        self.calendar = WorkingCalendar.default()
        """The portal's working calendar, read at the start of `run` (every placement uses it)."""
        self.calendar_notes: tuple[str, ...] = ()
        self.notes: list[str] = []
        """What the run says about itself at the end (re-runs, orders still in flight)."""
        self.start: datetime | None = start
        self.scenario_timeout = scenario_timeout
        self.trigger_description = trigger_description or lanes[0].trigger.description
        self.listeners = list(listeners)
        self.order_portal = order_portal
        self.settle = settle
        """Wait at the end until no order is in flight (`_settle`): where the portal outlives the run. A portal
        or a workspace of the run's own is thrown away with whatever the hospital still sends."""
        self.run_id = f"c{self.seed}-{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._clock: list[Json] = []
        self._probe = TimingProbe()
        self._view = _ClockView(datetime.now(UTC), time.monotonic(), 1.0)
        """The sandbox clock as the runner last set it, run forward here (no request on an order's way)."""

    def emit(self, event: Any) -> None:
        with self._lock:
            for listener in self.listeners:
                listener(event)

    def _mark_clock(self, event: str) -> Json:
        state = self.admin.clock()
        entry = {
            "event": event,
            "real_at": datetime.now(UTC).isoformat(),
            "sandbox_at": state["now_vn"],
            "rate": state["rate"],
        }
        with self._lock:
            self._clock.append(entry)
        return state

    def run(self, specs: list[CaseSpec]) -> RunFinished:
        started = time.monotonic()
        plans = scenarios_for(needed_tags(specs))
        self._read_calendar()
        start = self.start = self.start or start_instant(datetime.now(UTC).date(), self.calendar)
        self.emit(
            RunStarted(
                "run",
                SUITE_VERSION,
                sandbox_version(),
                self.seed,
                self.admin.base_url,
                self.trigger_description,
                tuple(s.id for s in specs),
                tuple(p.name for p in plans),
                self.calendar_notes,
            )
        )
        places = {p.name: i for i, p in enumerate(plans)}
        with self._probe:
            done = self._side_by_side(plans, start)
            self._settle(done)
            bundle = self.collect(done, order=places)
            results = judge(specs, bundle)
            for attempt in range(2, MAX_ATTEMPTS + 1):
                again = self._to_run_again(results, bundle)
                if not again:
                    break
                for lane, plan, rate in again:
                    self.notes.append(
                        f"{plan.name} ran again at {rate:g}× (attempt {attempt}): a timing verdict lay inside the "
                        "machine's timing resolution"
                    )
                    done.append(self._go(self._placed(lane, plan, rate, attempt)))
                self._settle(done)
                bundle = self.collect(done, order=places)
                results = judge(specs, bundle)
        self._mark_clock("scenarios done")
        bundle = replace(bundle, clock=tuple(self._clock))
        for result in results:
            self.emit(CaseFinished(result))
        witness = PortalWitness(self.admin, bundle, tuple(results))
        finished = RunFinished(tuple(results), bundle, time.monotonic() - started, witness=witness)
        self.emit(finished)
        return finished

    def _side_by_side(self, plans: list[Scenario], start: datetime) -> list[tuple[ScenarioRecord, list[Order]]]:
        """Each lane runs its share of the scenarios; lanes run at once, on the one sandbox clock. Every
        lane's first scenario is prepared before the clock is set to the run's `start`, so all start there."""
        done: list[tuple[ScenarioRecord, list[Order]]] = []
        errors: list[BaseException] = []
        count = len(self.lanes)
        shares = [(lane, plans[i::count]) for i, lane in enumerate(self.lanes)]
        first = {lane.facility: self._prepare(lane, mine[0], start, self.rate) for lane, mine in shares if mine}
        self._set_clock(start, self.rate, "clock set")

        def drive(lane: Lane, mine: list[Scenario]) -> None:
            try:
                for index, plan in enumerate(mine):
                    if not index:
                        ready = first[lane.facility]
                    elif count == 1:  # one facility, one clock: each scenario at its own slot
                        ready = self._placed(lane, plan, self.rate)
                    else:  # the others' scenarios run on this clock: start from now
                        ready = self._prepare(lane, plan, self._view.now().replace(second=0, microsecond=0), self.rate)
                    record, orders = self._go(ready)
                    with self._lock:
                        done.append((record, orders))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=drive, args=share, daemon=True) for share in shares if share[1]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return done

    def _to_run_again(self, results: list[CaseResult], bundle: Bundle) -> list[tuple[Lane, Scenario, float]]:
        """The scenarios behind each INCONCLUSIVE case (the latest attempt of each), with the lane they ran
        on and the rate to run them at again (half the last, not below the scenario's `min_rate`); none
        once a scenario has run `MAX_ATTEMPTS` times."""
        lanes = {lane.facility: lane for lane in self.lanes}
        plans = {plan.name: plan for plan in SCENARIOS}
        wanted: dict[tuple[str, str], tuple[Lane, Scenario, float]] = {}
        for result in results:
            if result.verdict is not CaseVerdict.INCONCLUSIVE:
                continue
            for order in bundle.orders:
                record = bundle.record_of(order)
                if order.request_id not in result.evidence.request_ids or record is None:
                    continue
                if bundle.superseded(record) or record.attempt >= MAX_ATTEMPTS or record.facility not in lanes:
                    continue
                plan, last = plans[record.scenario], record.rate or self.rate
                rate = min(last, max(plan.min_rate, last / 2))
                wanted[(record.facility, plan.name)] = (lanes[record.facility], plan, rate)
        return list(wanted.values())

    def _read_calendar(self) -> None:
        """The portal's working calendar from its clock reply, so scenarios land on its working hours; an
        older portal that does not say keeps the default, with a note in the run's output and report."""
        published = self.admin.clock().get("calendar")
        if published is None:
            self.calendar, self.calendar_notes = WorkingCalendar.default(), (OLD_PORTAL_CALENDAR,)
            return
        try:
            self.calendar = WorkingCalendar.from_mapping(published, source="the portal's working calendar")
        except ValueError as exc:  # placing scenarios on a guess would make verdicts wrong: stop, and say why
            raise PortalCallError(f"GET /sandbox/clock: {exc}") from exc
        self.calendar_notes = ()

    def _placed(self, lane: Lane, plan: Scenario, rate: float, attempt: int = 1) -> _Ready:
        """`plan` prepared for the next slot (`next_slot`), then the clock moved there, running at `rate`: the
        scenario sees the same working time ahead of it whichever scenarios ran before it (`--only` changes
        nothing). Lanes side by side start every scenario at the run's start instead: moving the shared
        clock would move theirs (a scenario run again runs alone, after them)."""
        slot = next_slot(self._view.now(), self.calendar)
        ready = self._prepare(lane, plan, slot, rate, attempt)
        self._set_clock(slot, rate, f"placed at the next slot, {rate:g}×")
        return ready

    def _set_clock(self, now: datetime, rate: float, event: str) -> None:
        state = self.admin.set_clock(now=now.isoformat(), rate=rate)
        self._view = _ClockView(datetime.fromisoformat(state["now"]), time.monotonic(), float(state["rate"]))
        self._mark_clock(event)

    def _prepare(self, lane: Lane, plan: Scenario, start: datetime, rate: float, attempt: int = 1) -> _Ready:
        """Everything a scenario needs before its clock starts — its orders, their expectations, its fault
        plan — so that the harness's own requests to the portal are not on the way of any order."""
        name = plan.name if attempt == 1 else f"{plan.name}@{attempt}"
        fault_plan = plan.fault_plan(start, self.seed, rate, self.calendar)
        self.admin.set_faults(lane.facility, fault_plan)
        built = build_orders(
            plan,
            facility=lane.facility,
            start=start,
            run_id=self.run_id if attempt == 1 else f"{self.run_id}@{attempt}",
            serials=itertools.count(serial_base(self.seed, plan, attempt)),
            seed=self.seed,
            calendar=self.calendar,
            record=name,
        )
        orders = [(item, self._expected(order) if item.deadline_in is None else order) for item, order in built]
        return _Ready(lane, plan, name, start, rate, attempt, fault_plan, self.admin.last_journal_id(), orders)

    def _go(self, ready: _Ready) -> tuple[ScenarioRecord, list[Order]]:
        """Run a prepared scenario from its start (a moment ago on the sandbox clock) on its clock's rate."""
        lane, plan, name, start, rate = ready.lane, ready.plan, ready.name, ready.start, ready.rate
        self.emit(ScenarioStarted(name, plan.description, lane.facility))
        began = self._view.real_at(start)
        timeout = self.scenario_timeout * max(1.0, self.rate / rate)  # a slower clock takes longer in real time
        self._mark_clock(f"{name}: start")
        orders, lags, handovers = [], [0.0], [0.0]
        for item, order in sorted(ready.orders, key=lambda pair: pair[0].delay):
            # never before its issue instant: a paper issued in the sandbox's future would make a hospital that
            # signs "issued_at + time since the order" sign after the portal's receipt (SigningTime refused)
            issued_in = (datetime.fromisoformat(order.issued_at) - start).total_seconds() / rate
            planned = began + max(item.delay, issued_in)
            time.sleep(max(0.0, planned - time.monotonic()))
            if item.deadline_in is not None:
                order = self._expected(self._due_in(order, item.deadline_in))
            body = self._trigger_body(order, rate)
            lags.append(max(0.0, time.monotonic() - planned))  # the harness's own delay
            sent, handed = datetime.now(UTC), time.monotonic()
            taken = lane.trigger.send(body)
            taken_at = datetime.now(UTC)
            for _ in range(order.sends - 1):  # the same request_id again: the hospital must take it once
                lane.trigger.send(body)
            handovers.append(time.monotonic() - handed)
            orders.append(
                replace(
                    order,
                    taken=taken.taken,
                    trigger_note=taken.note,
                    sent_real_at=sent.isoformat(),
                    taken_real_at=taken_at.isoformat(),
                )
            )
        decided = began + plan.decided_after * 60 / rate if plan.decided_after else None
        after = ready.journal_after
        grace = SAFETY * (self._probe.measure(began)["scheduling"] + max(lags) + max(handovers))
        self._wait(
            orders,
            began,
            decided,
            facility=lane.facility,
            after=after,
            plan=plan,
            rate=rate,
            timeout=timeout,
            grace=grace,
        )
        time.sleep(max(plan.settle, began + plan.lasts_at_least - time.monotonic()))
        self._await_held(ready.fault_plan, lane.facility, after, began, timeout)
        record = ScenarioRecord(
            name=name,
            description=plan.description,
            facility=lane.facility,
            tags=plan.tags,
            fault_plan=ready.fault_plan,
            journal_after=after,
            journal_until=self.admin.last_journal_id(),
            started_at=start.isoformat(),
            finished_at=self._mark_clock(f"{name}: end")["now_vn"],
            token_ttl_minutes=plan.token_ttl_minutes or 60,
            rate=rate,
            plan=plan.name,
            attempt=ready.attempt,
            timing={**self._probe.measure(began), "harness": max(lags), "trigger": max(handovers)},
        )
        self.admin.set_faults(lane.facility, {"faults": []})
        self.emit(ScenarioFinished(record, tuple(orders), time.monotonic() - began))
        return record, orders

    def _trigger_body(self, order: Order, rate: float) -> Json:
        """The order as the trigger contract sends it, with the optional `portal` object when asked for."""
        body = order.to_trigger()
        if self.order_portal:
            now = self._view.now().astimezone(VN_TZ).isoformat()
            body["portal"] = {"base_url": self.admin.base_url, "clock_rate": rate, "sandbox_time": now}
        return body

    def _due_in(self, order: Order, minutes: float) -> Order:
        """The order re-timed so its deadline falls `minutes` after now, the moment it is sent: the
        backlog's arithmetic counts from there, not from a start the hospital may have reached late."""
        now = self._view.now().astimezone(VN_TZ)
        issued = issued_for_deadline(now + timedelta(minutes=minutes), self.calendar).astimezone(VN_TZ)
        return replace(order, issued_at=issued.isoformat())

    def _expected(self, order: Order) -> Order:
        """The order with the expectation registered for it at the portal (none for one not to deliver)."""
        if not order.deliver:
            return order
        match = {("MA_GCS" if order.type == "GCS" else "MA_GBT"): order.code}
        if order.type == "GCS":
            match["CAP_LAN_DAU"] = order.data.get("CAP_LAN_DAU", "1")
        expectation = self.admin.expect(order.type, order.facility, order.issued_at, match)
        return replace(order, expectation_id=int(expectation["id"]))

    def _await_held(self, fault_plan: dict[str, Any], facility: str, after: int, began: float, timeout: float) -> None:
        """A held request (the late-reply and hung-reply holds) lands in the journal only when its hold ends,
        counted from when it arrived, not from when the scenario began: on a slow machine it can come after
        `lasts_at_least`, and must not fall into the next scenario's slice. A request held now lands within
        one hold; none may have come at all (a hospital that never sent)."""
        holds = [float(f["latency"]["ms"]) / 1000 for f in fault_plan.get("faults", []) if f.get("name") == LATE]
        if not holds:
            return
        until = min(time.monotonic() + max(holds), began + timeout)
        while time.monotonic() < until:
            if any(LATE in (entry.get("faults") or ()) for entry in self.admin.journal(facility, after)):
                return
            time.sleep(0.5)

    def _wait(
        self,
        orders: list[Order],
        began: float,
        decided: float | None = None,
        *,
        facility: str = "",
        after: int = 0,
        plan: Scenario | None = None,
        rate: float = DEFAULT_RATE,
        timeout: float | None = None,
        grace: float = 0.0,
    ) -> None:
        """Until every expected document arrived, is overdue (for a scenario whose orders are overdue when
        sent, `Scenario.awaits_arrival`: arrived) or was refused for good, the outcome is decided, or time is
        up (fail fast: a scenario does not wait out a deadline already lost).

        An overdue one is waited for `grace` real seconds more, the part of the timing resolution the harness
        measured so far: a certificate the test bed itself made late (a starved machine took 24.8 s to hand
        8 orders over at 600×, CI) then arrives late inside the resolution, INCONCLUSIVE and run again at a
        slower clock, instead of being judged never sent."""
        expected = {o.expectation_id: o for o in orders if o.expectation_id is not None and o.taken}
        pending = set(expected)
        waiting = ("PENDING", "OVERDUE") if plan is not None and plan.awaits_arrival else ("PENDING",)
        limit = min(began + (timeout or self.scenario_timeout), decided or float("inf"))
        polls, overdue_since = 0, dict[int, float]()
        while pending and time.monotonic() < limit:
            statuses = {i: self.admin.expectation(i)["status"] for i in pending}
            now = time.monotonic()
            for i in pending:
                if statuses[i] == "OVERDUE":
                    overdue_since.setdefault(i, now)
            pending = {
                i
                for i in pending
                if statuses[i] in waiting or (statuses[i] == "OVERDUE" and now < overdue_since[i] + grace)
            }
            polls += 1
            if pending and facility and polls % REFUSAL_POLLS == 0:
                entries = self.admin.journal(facility, after)
                if plan is not None and plan.decided_when is not None and plan.decided_when(entries, rate):
                    return
                pending -= self._refused(entries, {i: expected[i] for i in pending})
            if pending:
                time.sleep(POLL)

    def _settle(self, done: list[tuple[ScenarioRecord, list[Order]]]) -> None:
        """Before the run collects its evidence (and later gives the clock back), wait until the hospital
        has no order of the run in flight: each order it took is accepted or refused for good, or it has
        made no request for `QUIET_SECONDS` (it stopped sending them), at most `SETTLE_SECONDS`. An
        order sent after the clock went back would be judged by another clock and stay in the facility's
        history; what is still unsettled at the end is said in the run's notes."""
        if not self.settle:
            return
        orders = [o for _, os in done for o in os if o.taken]
        facilities = sorted({record.facility for record, _ in done})
        after = min((record.journal_after for record, _ in done), default=0)
        limit, quiet_since, last = time.monotonic() + min(self.scenario_timeout, SETTLE_SECONDS), time.monotonic(), 0
        while True:
            entries = [e for f in facilities for e in self.admin.journal(f, after)]
            answers = _answers(entries)
            open_orders = [o for o in orders if not answers.get(o.code, set()) & (FINAL | {"200"})]
            newest = max((e["id"] for e in entries), default=0)
            if newest != last:
                last, quiet_since = newest, time.monotonic()
            if not open_orders or time.monotonic() >= limit or time.monotonic() - quiet_since >= QUIET_SECONDS:
                break
            time.sleep(POLL * 4)
        if open_orders:
            codes = ", ".join(o.code for o in open_orders[:5]) + (" …" if len(open_orders) > 5 else "")
            self.notes.append(
                f"{len(open_orders)} order(s) of the run neither accepted nor refused when it ended ({codes}): the "
                "hospital may still send them, and they would land in the facility's history"
            )

    @staticmethod
    def _refused(entries: list[Json], pending: dict[int, Order]) -> set[int]:
        """Expectations whose certificate the portal refused for good (205, 1001) and never accepted since
        this scenario began (`entries`: its journal): a correct hospital gets no such answer for a valid
        order, so the verdict is decided (a document or signature case fails, and so does the deadline)."""
        answers = _answers(entries)
        return {
            i
            for i, order in pending.items()
            if answers.get(order.code, set()) & FINAL and "200" not in answers[order.code]
        }

    def collect(self, done: list[tuple[ScenarioRecord, list[Order]]], *, order: dict[str, int]) -> Bundle:
        """Evidence from the portal: each facility's journal, the submissions in it, every expectation;
        scenarios in the catalogue's order (`order`: plan name → place), each attempt after the one before."""
        done = sorted(done, key=lambda item: (order.get(item[0].scenario, len(order)), item[0].attempt))
        records, orders = [r for r, _ in done], [o for _, os in done for o in os]
        journal: dict[int, Json] = {}
        unauthenticated: list[Json] = []
        for facility in sorted({r.facility for r in records}):
            after = min(r.journal_after for r in records if r.facility == facility)
            journal.update((e["id"], e) for e in self.admin.journal(facility, after))
            unauthenticated += self.admin.journal(facility, after, "unauthenticated")[-UNAUTHENTICATED_KEPT:]
        submission_ids = sorted({e["submission_id"] for e in journal.values() if e.get("submission_id")})
        expectations = [self.admin.expectation(o.expectation_id) for o in orders if o.expectation_id is not None]
        meta = {
            "mode": "run",
            "suite_version": SUITE_VERSION,
            "tool_version": sandbox_version(),
            "seed": self.seed,
            "run_id": self.run_id,
            "portal": self.admin.base_url,
            "trigger": self.trigger_description,
            "clock_rate": self.rate,
            "clock_start": self.start.isoformat() if self.start else None,
            "calendar": self.calendar.to_mapping(),
            "notes": [*self.calendar_notes, *self.notes],
        }
        return Bundle(
            meta=meta,
            clock=tuple(self._clock),
            scenarios=tuple(records),
            orders=tuple(orders),
            journal=tuple(sorted(journal.values(), key=lambda e: e["id"])),
            submissions=tuple(self.admin.submission(i) for i in submission_ids),
            expectations=tuple(expectations),
            unauthenticated=tuple(unauthenticated),
        )


@dataclass(frozen=True)
class _Ready:
    """A scenario prepared on a lane (`Runner._prepare`), to run from `start` on a clock running `rate`×."""

    lane: Lane
    plan: Scenario
    name: str
    start: datetime
    rate: float
    attempt: int
    fault_plan: Json
    journal_after: int
    orders: list[tuple[OrderPlan, Order]]


def _answers(entries: list[Json]) -> dict[str, set[str]]:
    """The outcomes the portal gave each certificate (by document code) in `entries`."""
    answers: dict[str, set[str]] = {}
    for entry in entries:
        if entry["operation"] == "submit" and entry.get("document_code"):
            answers.setdefault(entry["document_code"], set()).add(entry["outcome"])
    return answers


def serial_base(seed: int, plan: Scenario, attempt: int = 1) -> int:
    """The first serial of a scenario's certificate codes: fixed by the seed and the scenario (not by what
    ran before it), so a scenario issues the same certificates in any subset of a run; an attempt run again
    issues new ones (a certificate must not arrive twice on one facility)."""
    return 1 + seed % 50_000 + SCENARIOS.index(plan) * 200 + (attempt - 1) * 2_000
