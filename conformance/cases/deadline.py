"""Deadline cases (DL-*): Decree 63/2024 Art. 25.1, data at the portal within 4 working hours of issue.

The harness registers an expectation per order with the instant it asked the hospital to issue;
the portal accounts each matching accepted document ON_TIME or LATE on its working-time calendar.
"""

from __future__ import annotations

from conformance.evidence import Bundle, Json, Order
from conformance.model import Finding, Level
from conformance.registry import Outcome, SkipCase, case, failed, passed
from mock_portal.results.grades import Grade

DECREE = "Decree 63/2024/NĐ-CP Art. 25.1"


def _status(bundle: Bundle, order: Order) -> tuple[bool, str]:
    """Whether the order's document arrived on time, and if not, why."""
    if not order.taken:
        return False, f"the trigger did not take the order ({order.trigger_note or 'refused'})"
    expectation = bundle.expectation(order.expectation_id)
    if expectation is None:
        return False, "no expectation was registered for it"
    if expectation["status"] == "PENDING":  # the scenario stopped waiting: refused for good, or timed out
        return False, f"not accepted when its scenario ended (deadline {expectation['deadline']})"
    if expectation["status"] != "ARRIVED":
        return False, f"{expectation['status']}: not accepted by {expectation['deadline']} (deadline)"
    deadline = (expectation.get("document") or {}).get("deadline") or {}
    if deadline.get("status") != "ON_TIME":
        return False, f"accepted LATE by {deadline.get('working_minutes_late')} working minute(s)"
    return True, "on time"


def _judge(bundle: Bundle, orders: list[Order], where: str) -> Outcome:
    if not orders:
        raise SkipCase(f"no order {where} was meant to be delivered")
    problems = []
    for order in orders:
        ok, why = _status(bundle, order)
        if not ok:
            problems.append(
                Finding(
                    f"{order.code} ({order.story}, issued {order.issued_at}): {why}", request_ids=(order.request_id,)
                )
            )
    requests = [o.request_id for o in orders]
    if problems:
        return failed(problems, requests=requests)
    return passed(f"{len(orders)} certificate(s) accepted within 4 working hours {where}", requests=requests)


SPECIAL = ("outage", "backlog", "overload", "late-reply")
"""Scenarios whose deadlines their own cases judge (DL-002/003, DL-004), that end before delivery
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
def on_time(bundle: Bundle) -> Outcome:
    return _judge(bundle, _delivered(bundle, outage=False), "under normal conditions")


@case(
    id="DL-002",
    grade=Grade.ADVISORY,
    title="Still within 4 working hours with a 1-working-hour portal outage",
    basis=DECREE,
    area="deadline",
    needs=("orders", "expectations", "scenario:outage"),
)
def on_time_despite_outage(bundle: Bundle) -> Outcome:
    return _judge(bundle, _delivered(bundle, outage=True), "despite the outage")


def _document(bundle: Bundle, order: Order) -> Json | None:
    expectation = bundle.expectation(order.expectation_id)
    return (expectation or {}).get("document")


@case(
    id="DL-003",
    grade=Grade.ADVISORY,
    title="The backlog after an outage is drained earliest-deadline-first",
    basis=DECREE + " (risk-based ordering)",
    level=Level.SHOULD,
    area="deadline",
    needs=("orders", "expectations", "scenario:outage"),
)
def earliest_deadline_first(bundle: Bundle) -> Outcome:
    """The first document accepted after the outage may be the one that was in flight when it ended;
    every later one must come in deadline order (ties in any order). A FIFO queue fails this because
    the harness sends the backlog latest-deadline first."""
    arrived = []
    for order in _delivered(bundle, outage=True):
        expectation, document = bundle.expectation(order.expectation_id), _document(bundle, order)
        if expectation is not None and document is not None:
            arrived.append((document["submission_id"], expectation["deadline"], order))
    if len(arrived) < 3:
        raise SkipCase("fewer than three backlog documents arrived: no order to judge")
    arrived.sort(key=lambda item: item[0])
    drained = arrived[1:]
    inversions = [
        Finding(
            f"{later[2].code} (deadline {later[1]}) was accepted after {earlier[2].code} (deadline {earlier[1]})",
            submission_ids=(earlier[0], later[0]),
            request_ids=(earlier[2].request_id, later[2].request_id),
        )
        for earlier, later in zip(drained, drained[1:], strict=False)
        if later[1] < earlier[1]
    ]
    ids = [item[0] for item in arrived]
    if inversions:
        return failed(inversions, submissions=ids)
    return passed(
        f"{len(drained)} backlog documents accepted in deadline order after the one in flight", submissions=ids
    )


@case(
    id="DL-004",
    grade=Grade.ADVISORY,
    title="A backlog is sent earliest-deadline-first: no certificate late that EDF would deliver on time",
    basis=DECREE + " (risk-based ordering)",
    area="deadline",
    needs=("orders", "expectations", "scenario:backlog"),
)
def backlog_on_time(bundle: Bundle) -> Outcome:
    """MUST because the consequence is legal: the backlog scenario is built from the deadline arithmetic
    so that EDF delivers every certificate on time and FIFO delivers the urgent one late (a missed
    Art. 25.1 deadline), so a late one here is a scheduling defect, not bad luck."""
    orders = _delivered(bundle, tag="backlog")
    if not orders:
        raise SkipCase("no order of the backlog scenario was meant to be delivered")
    problems = []
    for order in orders:
        ok, why = _status(bundle, order)
        if ok:
            continue
        ahead = [
            o.code
            for o in orders
            if o is not order
            and (bundle.expectation(o.expectation_id) or {}).get("deadline", "")
            > (bundle.expectation(order.expectation_id) or {}).get("deadline", "")
            and _accepted_before(bundle, o, order)
        ]
        because = f"; sent after {', '.join(ahead)} with later deadlines: not earliest-deadline-first" if ahead else ""
        problems.append(Finding(f"{order.code} ({order.story}): {why}{because}", request_ids=(order.request_id,)))
    requests = [o.request_id for o in orders]
    if problems:
        return failed(problems, requests=requests)
    return passed(f"{len(orders)} backlog certificate(s) on time: sent earliest-deadline-first", requests=requests)


def _accepted_before(bundle: Bundle, first: Order, second: Order) -> bool:
    a, b = _document(bundle, first), _document(bundle, second)
    return a is not None and (b is None or a["submission_id"] < b["submission_id"])
