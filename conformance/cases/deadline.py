"""Deadline cases (DL-*): Decree 63/2024 Art. 25.1, data at the portal within 4 working hours of issue.

The harness registers an expectation per order with the instant it asked the hospital to issue;
the portal accounts each matching accepted document ON_TIME or LATE on its working-time calendar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from conformance.evidence import Bundle, Json, Order
from conformance.model import CaseFinding, Level
from conformance.registry import CaseOutcome, SkipCase, case, verdict_of
from conformance.timing import resolution
from mock_portal.results.grades import Grade

DECREE = "Decree 63/2024/NĐ-CP Art. 25.1"
ON_TIME, LATE, UNDECIDED = "on time", "late", "undecided"


def _status(bundle: Bundle, order: Order) -> tuple[str, str]:
    """Whether the order's document arrived on time, late, or late by no more than its scenario's timing
    resolution (UNDECIDED: the machine may have made it late), and why."""
    if not order.taken:
        return LATE, f"the trigger did not take the order ({order.trigger_note or 'refused'})"
    expectation = bundle.expectation(order.expectation_id)
    if expectation is None:
        return LATE, "no expectation was registered for it"
    if expectation["status"] == "PENDING":  # the run stopped waiting: refused for good, or timed out
        return LATE, f"not accepted when the run ended (deadline {expectation['deadline']})"
    if expectation["status"] != "ARRIVED":
        return LATE, f"{expectation['status']}: not accepted by {expectation['deadline']} (deadline)"
    deadline = (expectation.get("document") or {}).get("deadline") or {}
    if deadline.get("status") == "ON_TIME":
        return ON_TIME, "on time"
    late = float(deadline.get("working_minutes_late") or 0)
    why = f"accepted LATE by {deadline.get('working_minutes_late')} working minute(s)"
    record = bundle.record_of(order)
    if record is not None:
        timing = resolution(bundle, record)
        if late <= timing.minutes:
            return UNDECIDED, f"{why}, inside the timing resolution of {timing.describe()}"
    return LATE, why


def _verdict(
    bundle: Bundle, orders: list[Order], *, ok: str, because: Callable[[Order], str] = lambda _order: ""
) -> CaseOutcome:
    """FAIL on any order late beyond its resolution; INCONCLUSIVE when the only late ones lie inside it
    (those of a scenario that ran again are settled by the later run); else PASS with `ok`."""
    problems, undecided = [], []
    for order in orders:
        state, why = _status(bundle, order)
        record = bundle.record_of(order)
        finding = CaseFinding(
            f"{order.code} ({order.story}, issued {order.issued_at}): {why}{because(order)}",
            request_ids=(order.request_id,),
        )
        if state == LATE:
            problems.append(finding)
        elif state == UNDECIDED and not (record is not None and bundle.superseded(record)):
            undecided.append(finding)
    requests = [o.request_id for o in orders]
    return verdict_of(problems, ok, undecided=undecided, requests=requests)


def _judge(bundle: Bundle, orders: list[Order], where: str) -> CaseOutcome:
    if not orders:
        raise SkipCase(f"no order {where} was meant to be delivered")
    return _verdict(bundle, orders, ok=f"{len(orders)} certificate(s) accepted within 4 working hours {where}")


SPECIAL = ("outage", "backlog", "overload", "late-reply", "overdue", "night")
"""Scenarios whose deadlines their own cases judge (DL-002/003, DL-004, DL-005: late by design, DL-006), that
end before delivery
(overload, judged by its request budget), or whose delay is real time (late-reply: a reply held 20 real
seconds is 200 sandbox minutes at 600×, 400 at 1200×, so a hospital that rightly waits for it would be
late by the clock rate, not by a defect; API-015 judges that its certificate arrives): DL-001 leaves
them out, so one defect fails the case that names it."""


def _delivered(bundle: Bundle, *, outage: bool = False, tag: str | None = None) -> list[Order]:
    if tag is not None:
        names = {s.name for s in bundle.scenarios_tagged(tag)}
    elif outage:
        names = {s.name for s in bundle.scenarios_tagged("outage")}
    else:
        names = {s.name for s in bundle.scenarios if not set(SPECIAL) & set(s.tags)}
    return [o for o in bundle.orders if o.deliver and o.scenario in names]


@case(
    id="DL-001",
    grade=Grade.ADVISORY,
    title="Each certificate asked for is accepted within 4 working hours of its issue",
    basis=DECREE,
    area="deadline",
    needs=("orders", "expectations"),
)
def on_time(bundle: Bundle) -> CaseOutcome:
    return _judge(bundle, _delivered(bundle, outage=False), "under normal conditions")


@case(
    id="DL-002",
    grade=Grade.ADVISORY,
    title="Still within 4 working hours with a 1-working-hour portal outage",
    basis=DECREE,
    area="deadline",
    needs=("orders", "expectations", "scenario:outage"),
)
def on_time_despite_outage(bundle: Bundle) -> CaseOutcome:
    return _judge(bundle, _delivered(bundle, outage=True), "despite the outage")


def _first_send(bundle: Bundle, order: Order) -> datetime | None:
    """When the hospital started sending the order's certificate: its first attempt at the portal."""
    attempts = bundle.attempts(order)
    return datetime.fromisoformat(attempts[0]["real_at"]) if attempts else None


def _taken(order: Order) -> datetime | None:
    return datetime.fromisoformat(order.taken_real_at) if order.taken_real_at else None


def _deadline(bundle: Bundle, order: Order) -> str:
    return str((bundle.expectation(order.expectation_id) or {}).get("deadline", ""))


@case(
    id="DL-003",
    grade=Grade.ADVISORY,
    title="The backlog after an outage is drained earliest-deadline-first",
    basis=DECREE + " (risk-based ordering)",
    level=Level.SHOULD,
    area="deadline",
    needs=("orders", "expectations", "scenario:outage"),
)
def earliest_deadline_first(bundle: Bundle) -> CaseOutcome:
    """Judged by when the hospital *started* sending each certificate (its first attempt), not by when the
    portal stored it, and only against orders it already held then: the first one it started may be the
    one in flight when the others came; after it, a certificate started while one with an earlier
    deadline had been in the hospital's hands (taken by its trigger) is an inversion. One that had been
    there for less than the scenario's timing resolution is undecided. A FIFO queue fails this because
    the harness sends the backlog latest-deadline first."""
    problems, undecided, ids = [], [], []
    for record in bundle.scenarios_tagged("outage"):
        started = []
        for order in bundle.orders_of(record):
            first, document = _first_send(bundle, order), _document(bundle, order)
            if order.deliver and first is not None and document is not None:
                started.append((first, _deadline(bundle, order), order, document["submission_id"]))
        ids += [item[3] for item in started]
        if len(started) < 3:
            continue
        started.sort(key=lambda item: item[0])
        tolerance = resolution(bundle, record)
        for (began, deadline, order, earlier_id), (_, other_deadline, other, later_id) in zip(
            started[1:], started[2:], strict=False
        ):
            held = _taken(other)
            margin = (began - held).total_seconds() if held else float("inf")
            if other_deadline >= deadline or margin <= 0:
                continue
            finding = CaseFinding(
                f"{order.code} (deadline {deadline}) was sent before {other.code} (deadline {other_deadline}), "
                f"which the hospital had held {margin:.1f} s by then",
                submission_ids=(earlier_id, later_id),
                request_ids=(order.request_id, other.request_id),
            )
            if margin > tolerance.seconds:
                problems.append(finding)
            elif not bundle.superseded(record):
                undecided.append(replace(finding, message=f"{finding.message}: inside {tolerance.describe()}"))
    if len(ids) < 3:
        raise SkipCase("fewer than three backlog documents arrived: no order to judge")
    return verdict_of(
        problems, "the backlog was sent in deadline order after the one in flight", undecided=undecided, submissions=ids
    )


@case(
    id="DL-004",
    grade=Grade.ADVISORY,
    title="A backlog is sent earliest-deadline-first: no certificate late that EDF would deliver on time",
    basis=DECREE + " (risk-based ordering)",
    area="deadline",
    needs=("orders", "expectations", "scenario:backlog"),
)
def backlog_on_time(bundle: Bundle) -> CaseOutcome:
    """MUST because the consequence is legal: the backlog scenario is built from the deadline arithmetic
    so that EDF delivers every certificate on time and FIFO delivers the urgent one late (a missed
    Art. 25.1 deadline), so a late one here is a scheduling defect, not bad luck. Lateness inside the
    scenario's timing resolution is undecided (the scenario runs again at a slower clock)."""
    orders = _delivered(bundle, tag="backlog")
    if not orders:
        raise SkipCase("no order of the backlog scenario was meant to be delivered")

    def because(order: Order) -> str:
        mine, deadline = _first_send(bundle, order), _deadline(bundle, order)
        ahead = [
            o
            for o in orders
            if o is not order
            and o.scenario == order.scenario
            and _deadline(bundle, o) > deadline
            and (first := _first_send(bundle, o)) is not None
            and (mine is None or first < mine)
        ]
        if not ahead:
            return ""
        return f"; sent after {len(ahead)} certificate(s) with later deadlines: not earliest-deadline-first"

    return _verdict(
        bundle,
        orders,
        ok=f"{len(orders)} backlog certificate(s) on time: sent earliest-deadline-first",
        because=because,
    )


def _document(bundle: Bundle, order: Order) -> Json | None:
    expectation = bundle.expectation(order.expectation_id)
    return (expectation or {}).get("document")


@case(
    id="DL-005",
    grade=Grade.ADVISORY,
    title="A certificate past its deadline is still sent: late, never dropped",
    basis=DECREE,
    area="deadline",
    needs=("orders", "expectations", "scenario:overdue"),
)
def sent_when_overdue(bundle: Bundle) -> CaseOutcome:
    """MUST: Art. 25.1 says when the data must be at the portal, not that it may be dropped afterwards. A
    system that drops what it can no longer send on time loses a birth or death from the national record,
    silently, which is worse than a late record. Judged on the overdue scenario's orders: each must arrive
    (its lateness is the point of the scenario, not a failure)."""
    orders = _delivered(bundle, tag="overdue")
    if not orders:
        raise SkipCase("no order of the overdue scenario was meant to be delivered")
    problems = []
    for order in orders:
        expectation = bundle.expectation(order.expectation_id) or {}
        if order.taken and expectation.get("status") == "ARRIVED":
            continue
        why = (
            "the trigger did not take it"
            if not order.taken
            else "never accepted: a certificate past its deadline must still be sent"
        )
        problems.append(
            CaseFinding(
                f"{order.code} ({order.story}, issued {order.issued_at}, due {_deadline(bundle, order)}): {why}",
                request_ids=(order.request_id,),
            )
        )
    requests = [o.request_id for o in orders]
    return verdict_of(problems, f"{len(orders)} overdue certificate(s) still sent and accepted", requests=requests)


@case(
    id="DL-006",
    grade=Grade.ADVISORY,
    title="A certificate issued outside working hours is accepted within 4 working hours of the next working time",
    basis=DECREE + " (working hours)",
    area="deadline",
    needs=("orders", "expectations", "scenario:night"),
)
def on_time_after_night(bundle: Bundle) -> CaseOutcome:
    """The 4 working hours of a certificate issued in the evening, at night or on a day off start with the next
    working time: a system may hold it until then, not later."""
    return _judge(bundle, _delivered(bundle, tag="night"), "when issued outside working hours")
