"""Runs the live scenarios against a hospital system, collects evidence, judges the cases.

The runner sets the clock, applies each scenario's fault plan to its facility, sends the orders
through the trigger, registers an expectation per order, waits (bounded) until each expected
document arrived or is overdue, then collects the journal, submissions and expectations and judges
every selected case on that evidence. It reports only through typed events (`conformance.events`);
it knows no output format.
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

from conformance import SUITE_VERSION, tool_version
from conformance.events import CaseFinished, Listener, RunFinished, RunStarted, ScenarioFinished, ScenarioStarted
from conformance.evidence import Bundle, Json, Order, ScenarioRecord
from conformance.model import CaseResult
from conformance.portal import PortalError, SandboxAdmin
from conformance.registry import CaseSpec
from conformance.scenarios import (
    DEFAULT_RATE,
    LATE,
    LATE_REPLY_SECONDS,
    Scenario,
    build_orders,
    issued_for_deadline,
    next_slot,
    scenarios_for,
    start_instant,
)
from conformance.trigger import Trigger
from mock_portal.deadline.working_time import WorkingCalendar

__all__ = ["Lane", "Runner", "judge", "needed_tags"]

POLL = 0.25
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
    ) -> None:
        if not lanes:
            raise ValueError("at least one lane (facility + trigger) is needed")
        self.admin, self.lanes, self.rate = admin, lanes, rate
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1, 1 << 30)
        self.calendar = WorkingCalendar.default()
        """The portal's working calendar, read at the start of `run` (every placement uses it)."""
        self.calendar_notes: tuple[str, ...] = ()
        self.start: datetime | None = start
        self.scenario_timeout = scenario_timeout
        self.trigger_description = trigger_description or lanes[0].trigger.description
        self.listeners = list(listeners)
        self.order_portal = order_portal
        self.run_id = f"c{self.seed}-{uuid.uuid4().hex[:6]}"
        self._serials = itertools.count(1 + self.seed % 80000)
        self._lock = threading.Lock()
        self._clock: list[Json] = []

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
        self.start = self.start or start_instant(datetime.now(UTC).date(), self.calendar)
        self.emit(
            RunStarted(
                "run",
                SUITE_VERSION,
                tool_version(),
                self.seed,
                self.admin.base_url,
                self.trigger_description,
                tuple(s.id for s in specs),
                tuple(p.name for p in plans),
                self.calendar_notes,
            )
        )
        self.admin.set_clock(now=self.start.isoformat(), rate=self.rate)
        self._mark_clock("clock set")
        done: list[tuple[ScenarioRecord, list[Order]]] = []
        errors: list[BaseException] = []

        def drive(lane: Lane, mine: list[Scenario]) -> None:
            try:
                for index, plan in enumerate(mine):
                    at = None
                    if index and len(self.lanes) == 1:  # one facility, one clock: each scenario at its own slot
                        at = self._place()
                    record, orders = self._run_scenario(lane, plan, at)
                    with self._lock:
                        done.append((record, orders))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)

        count = len(self.lanes)
        threads = [
            threading.Thread(target=drive, args=(lane, plans[i::count]), daemon=True)
            for i, lane in enumerate(self.lanes)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        self._mark_clock("scenarios done")
        order = {p.name: i for i, p in enumerate(plans)}
        done.sort(key=lambda item: order[item[0].name])
        bundle = self.collect([r for r, _ in done], [o for _, os in done for o in os])
        results = judge(specs, bundle, self.emit)
        finished = RunFinished(tuple(results), bundle, time.monotonic() - started)
        self.emit(finished)
        return finished

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
            raise PortalError(f"GET /sandbox/clock: {exc}") from exc
        self.calendar_notes = ()

    def _place(self) -> datetime:
        """Move the clock forward to the next slot (`next_slot`), so that a scenario sees the same working
        time ahead of it whichever scenarios ran before it (`--only` changes nothing). Only with one lane:
        with several, every scenario starts at the run's start, and moving the shared clock would move theirs."""
        now = datetime.fromisoformat(self.admin.clock()["now_vn"])
        slot = next_slot(now, self.calendar)
        self.admin.set_clock(now=slot.isoformat(), rate=self.rate)
        self._mark_clock("placed at the next slot")
        return slot

    def _run_scenario(
        self, lane: Lane, plan: Scenario, at: datetime | None = None
    ) -> tuple[ScenarioRecord, list[Order]]:
        """Run `plan` on `lane` from `at` (its slot, a moment ago on the sandbox clock), else from now."""
        self.emit(ScenarioStarted(plan.name, plan.description, lane.facility))
        began = time.monotonic()
        state = self._mark_clock(f"{plan.name}: start")
        start = at or datetime.fromisoformat(state["now_vn"]).replace(second=0, microsecond=0)
        fault_plan = plan.fault_plan(start, self.seed, self.rate, self.calendar)
        self.admin.set_faults(lane.facility, fault_plan)
        after = self.admin.last_journal_id()
        orders = []
        built = build_orders(
            plan,
            facility=lane.facility,
            start=start,
            run_id=self.run_id,
            serials=self._serials,
            seed=self.seed,
            calendar=self.calendar,
        )
        for item, order in sorted(built, key=lambda pair: pair[0].delay):
            # never before its issue instant: a paper issued in the sandbox's future would make a hospital that
            # signs "issued_at + time since the order" sign after the portal's receipt (SigningTime refused)
            issued_in = (datetime.fromisoformat(order.issued_at) - start).total_seconds() / self.rate
            time.sleep(max(0.0, began + max(item.delay, issued_in) - time.monotonic()))
            if item.deadline_in is not None:
                order = self._due_in(order, item.deadline_in)
            expectation_id = self._expect(order) if order.deliver else None
            body = self._trigger_body(order)
            taken = lane.trigger.send(body)
            for _ in range(order.sends - 1):  # the same request_id again: the hospital must take it once
                lane.trigger.send(body)
            orders.append(replace(order, taken=taken.taken, trigger_note=taken.note, expectation_id=expectation_id))
        decided = began + plan.decided_after * 60 / self.rate if plan.decided_after else None
        self._wait(orders, began, decided, facility=lane.facility, after=after, plan=plan)
        time.sleep(max(plan.settle, began + plan.lasts_at_least - time.monotonic()))
        self._await_held(fault_plan, lane.facility, after, began)
        record = ScenarioRecord(
            name=plan.name,
            description=plan.description,
            facility=lane.facility,
            tags=plan.tags,
            fault_plan=fault_plan,
            journal_after=after,
            journal_until=self.admin.last_journal_id(),
            started_at=start.isoformat(),
            finished_at=self._mark_clock(f"{plan.name}: end")["now_vn"],
            token_ttl_minutes=plan.token_ttl_minutes or 60,
        )
        self.admin.set_faults(lane.facility, {"faults": []})
        self.emit(ScenarioFinished(record, tuple(orders), time.monotonic() - began))
        return record, orders

    def _trigger_body(self, order: Order) -> Json:
        """The order as the trigger contract sends it, with the optional `portal` object when asked for."""
        body = order.to_trigger()
        if self.order_portal:
            now = self.admin.clock()["now_vn"]
            body["portal"] = {"base_url": self.admin.base_url, "clock_rate": self.rate, "sandbox_time": now}
        return body

    def _due_in(self, order: Order, minutes: float) -> Order:
        """The order re-timed so its deadline falls `minutes` after now, the moment it is sent: the
        backlog's arithmetic counts from there, not from a start the hospital may have reached late."""
        now = datetime.fromisoformat(self.admin.clock()["now_vn"])
        issued = issued_for_deadline(now + timedelta(minutes=minutes), self.calendar).astimezone(now.tzinfo)
        return replace(order, issued_at=issued.isoformat())

    def _expect(self, order: Order) -> int:
        match = {("MA_GCS" if order.type == "GCS" else "MA_GBT"): order.code}
        if order.type == "GCS":
            match["CAP_LAN_DAU"] = order.data.get("CAP_LAN_DAU", "1")
        return int(self.admin.expect(order.type, order.facility, order.issued_at, match)["id"])

    def _await_held(self, fault_plan: dict[str, Any], facility: str, after: int, began: float) -> None:
        """A held request (the late-reply hold) lands in the journal only when its hold ends, counted from
        when it arrived, not from when the scenario began: on a slow machine it can come after
        `lasts_at_least`, and must not fall into the next scenario's slice. A request held now lands within
        one hold; none may have come at all (a hospital that never sent)."""
        if not any(fault.get("name") == LATE for fault in fault_plan.get("faults", [])):
            return
        until = min(time.monotonic() + LATE_REPLY_SECONDS, began + self.scenario_timeout)
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
    ) -> None:
        """Until every expected document arrived, is overdue or was refused for good, the outcome is
        decided, or time is up (fail fast: a scenario does not wait out a deadline already lost)."""
        expected = {o.expectation_id: o for o in orders if o.expectation_id is not None and o.taken}
        pending = set(expected)
        limit = min(began + self.scenario_timeout, decided or float("inf"))
        polls = 0
        while pending and time.monotonic() < limit:
            pending = {i for i in pending if self.admin.expectation(i)["status"] == "PENDING"}  # type: ignore[arg-type]
            polls += 1
            if pending and facility and polls % REFUSAL_POLLS == 0:
                entries = self.admin.journal(facility, after)
                if plan is not None and plan.decided_when is not None and plan.decided_when(entries, self.rate):
                    return
                pending -= self._refused(entries, {i: expected[i] for i in pending})  # type: ignore[index]
            if pending:
                time.sleep(POLL)

    @staticmethod
    def _refused(entries: list[Json], pending: dict[int, Order]) -> set[int]:
        """Expectations whose certificate the portal refused for good (205, 1001) and never accepted since
        this scenario began (`entries`: its journal): a correct hospital gets no such answer for a valid
        order, so the verdict is decided (a document or signature case fails, and so does the deadline)."""
        answers: dict[str, set[str]] = {}
        for entry in entries:
            if entry["operation"] == "submit" and entry.get("document_code"):
                answers.setdefault(entry["document_code"], set()).add(entry["outcome"])
        return {
            i
            for i, order in pending.items()
            if answers.get(order.code, set()) & FINAL and "200" not in answers[order.code]
        }

    def collect(self, records: list[ScenarioRecord], orders: list[Order]) -> Bundle:
        """Evidence from the portal: each facility's journal, the submissions in it, every expectation."""
        journal: dict[int, Json] = {}
        for facility in sorted({r.facility for r in records}):
            after = min(r.journal_after for r in records if r.facility == facility)
            journal.update((e["id"], e) for e in self.admin.journal(facility, after))
        submission_ids = sorted({e["submission_id"] for e in journal.values() if e.get("submission_id")})
        expectations = [self.admin.expectation(o.expectation_id) for o in orders if o.expectation_id is not None]
        meta = {
            "mode": "run",
            "suite_version": SUITE_VERSION,
            "tool_version": tool_version(),
            "seed": self.seed,
            "run_id": self.run_id,
            "portal": self.admin.base_url,
            "trigger": self.trigger_description,
            "clock_rate": self.rate,
            "clock_start": self.start.isoformat() if self.start else None,
            "calendar": self.calendar.to_mapping(),
            "notes": list(self.calendar_notes),
        }
        return Bundle(
            meta=meta,
            clock=tuple(self._clock),
            scenarios=tuple(records),
            orders=tuple(orders),
            journal=tuple(sorted(journal.values(), key=lambda e: e["id"])),
            submissions=tuple(self.admin.submission(i) for i in submission_ids),
            expectations=tuple(expectations),
        )
