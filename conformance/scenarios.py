"""Live scenarios: a fault plan, orders to issue (with their issue instants) and what to wait for.

Each scenario runs on its own facility when the harness has several (faults are per facility, so
scenarios run side by side in one clock timeline), or one after the other on a single facility.
Times are relative to the sandbox instant the scenario starts at; the default clock starts at a
working Monday 08:00 (Vietnam time) and runs 600× faster than real time, so 4 working hours pass
in 24 real seconds.

Placement: every scenario starts at a *slot* (`next_slot`): the first working minute of a working day
(08:00 on the default calendar, 07:30 on hcmc-0730). Side by side, all start at the run's Monday slot; one
after the other, the runner moves the clock forward to the next working day's slot before each (a run of N
scenarios on one facility spans N working days of sandbox time). Outages are measured in working
time (`working_window`). All of it is counted on the portal's own working calendar, which the runner
reads from the clock reply (the default calendar when none is given: offline, or an older portal). So no
scenario's verdict depends on lunch, night, a holiday, or on which scenarios ran before it (`--only`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from conformance.cases.api import BUSY
from conformance.cases.common import LATE_FAULT
from conformance.cases.pressure import BUDGET_BURST, BUDGET_PER_SECOND
from conformance.evidence import Order
from fixtures.certificates import mutate, scenario
from mock_portal.deadline.working_time import WorkingCalendar, deadline_for

__all__ = [
    "DEFAULT_RATE",
    "OrderPlan",
    "Scenario",
    "SCENARIOS",
    "build_orders",
    "next_slot",
    "scenarios_for",
    "start_instant",
    "working_window",
]

MAX_SLOT_DAYS = 60
"""How far ahead `next_slot` looks (Tết is the longest break)."""
DEFAULT_RATE = 600.0
MIN_RATE = 150.0
"""The slowest clock a scenario runs again at when a timing verdict lay inside the machine's timing
resolution (`conformance.timing`): there one real second is 2.5 sandbox minutes."""
Json = dict[str, Any]


@dataclass(frozen=True)
class OrderPlan:
    """One story to order: `issued_offset` minutes after the scenario start, sent `delay` real seconds in
    and never before the sandbox clock reaches its issue instant (orders sent together keep their order)."""

    story: str
    issued_offset: float = 0.0
    delay: float = 0.0
    invalid: str | None = None
    """A `fixtures.certificates.INVALID_KINDS` name: data the portal must refuse with 205."""
    deliver: bool = True
    deadline_in: float | None = None
    """When set, issued so that its deadline falls this many clock minutes after it is sent (overrides
    `issued_offset`; the runner re-times it): the backlog scenario builds its urgent order from the
    deadline arithmetic."""
    twice: bool = False
    """Send the order a second time with the same request_id (the hospital must take it once: API-012)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    tags: tuple[str, ...]
    orders: tuple[OrderPlan, ...]
    faults: Callable[[datetime, float, WorkingCalendar], list[Json]] = lambda start, rate, calendar: []
    """The fault plan for a scenario starting at `start` on a clock running `rate`× real time, on the portal's
    working `calendar`."""
    token_ttl_minutes: int | None = None
    settle: float = 0.5
    """Real seconds to keep watching after the expected documents arrived (to see a resend that must not come)."""
    notes: tuple[str, ...] = field(default=())
    lasts_at_least: float = 0.0
    """Real seconds the scenario runs at least (late-reply: until its held request has been stored, so the
    evidence shows it whether or not the hospital resent)."""
    decided_when: Callable[[list[Json], float], bool] | None = None
    """Given the scenario's journal so far and the clock rate, whether a MUST case fails whatever comes
    next: the scenario ends then (fail fast: a request budget already blown needs no more waiting)."""
    decided_after: float | None = None
    """Sandbox minutes after which the outcome is decided: the scenario ends then even if documents are
    still due (fail fast: the overload scenario's verdict is its request budget, not the delivery)."""
    awaits_arrival: bool = False
    """Its orders are overdue when sent: wait until they arrive (or `decided_after`), not until their deadline."""
    min_rate: float = MIN_RATE
    """The slowest clock rate the runner runs it again at (see `MIN_RATE`)."""

    def fault_plan(
        self, start: datetime, seed: int, rate: float = DEFAULT_RATE, calendar: WorkingCalendar | None = None
    ) -> Json:
        plan: Json = {"seed": seed, "faults": self.faults(start, rate, calendar or WorkingCalendar.default())}
        if self.token_ttl_minutes is not None:
            plan["token_ttl_minutes"] = self.token_ttl_minutes
        return plan


OUTAGE_WORKING_MINUTES = 60
"""The outage scenario's portal is down for this many *working* minutes (not clock minutes): placed over
a lunch break or a night, its window stretches so that the hospital always loses the same working time."""


DROPPED = "lost"
"""The dropped scenario's drop_after_commit fault: the file is stored, the reply never leaves."""
LATE = LATE_FAULT
"""The late-reply scenario's latency fault (the once-only cases excuse a resend after it)."""
TOKEN_MINUTES = 60
"""The token scenario's token lifetime: its injected 401 comes long before the token expires by any clock (so
a hospital that renews only by its own clock must still log in again), its last order long after."""
OVERDUE_MINUTES = 60
"""The overdue scenario's orders are due this many clock minutes before the harness sends them."""
NIGHT_OFFSETS = (-600, -840)
"""Minutes before the night scenario's start (the first working minute of a day) its orders are issued: 22:00
and 18:00 the day before on the default calendar, outside working hours on every usual calendar."""
HUNG_SECONDS = 35.0
"""How long (real seconds) the hung-reply scenario holds its first submission: beyond any sane client timeout
(10–30 s are usual), so a hospital still waiting when it ends has none."""
LATE_REPLY_SECONDS = 20.0
"""How long (real seconds) the late-reply scenario holds its first submission: longer than a client
timeout of 15 s (the reference hospital's), shorter than 30 s; both behaviours are correct."""


def working_window(start: datetime, working_minutes: float, calendar: WorkingCalendar | None = None) -> Json:
    """A fault window from `start` that holds exactly `working_minutes` of working time: it ends at the
    instant that much working time has elapsed (`WorkingCalendar.add_working_minutes`)."""
    calendar = calendar or WorkingCalendar.default()
    end = calendar.add_working_minutes(start, working_minutes)
    return {"start": start.isoformat(), "minutes": round((end - start) / timedelta(minutes=1), 3)}


def _submit(effect: str, first_n: int, **extra: Any) -> Json:
    return {
        "name": f"{effect}-{extra.get('code') or extra.get('status') or 'x'}",
        "effect": effect,
        "first_n": first_n,
        "operations": ["submit"],
        **extra,
    }


def _held(seconds: float) -> Json:
    """The first submission held `seconds` real seconds, then stored and answered (`LATE`)."""
    return {
        "name": LATE,
        "effect": "latency",
        "latency": {"ms": seconds * 1000},
        "first_n": 1,
        "operations": ["submit"],
    }


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "issue",
        "Births (single, twins, surrogacy, reissue) and deaths (on the way, inpatient), no faults",
        ("base", "token-reuse"),
        tuple(
            OrderPlan(story, twice=story in ("gcs_normal", "gbt_normal"))
            for story in ("gcs_normal", "gcs_twins", "gcs_surrogacy", "gcs_reissue", "gbt_normal", "gbt_inpatient")
        ),
    ),
    Scenario(
        "refused",
        "An order with a malformed date (refused in every mode): the portal answers 205, the file must not be resent",
        ("refusal",),
        (OrderPlan("gcs_normal", invalid="bad_pattern", deliver=False),),
        settle=4.0,
    ),
    Scenario(
        "retry",
        "The portal answers MaKetQua 500, then HTTP 503 twice, then resets the connection twice",
        ("retry",),
        (OrderPlan("gbt_normal"),),
        faults=lambda start, _rate, _calendar: [
            _submit("portal_error", 1, code="500"),
            _submit("http_error", 3, status=503),
            _submit("reset", 5),
        ],
    ),
    Scenario(
        "token",
        f"Tokens live {TOKEN_MINUTES} minutes; the first submission is answered MaKetQua 401 although its token is "
        "valid by any clock (revoked early); a later order reuses the token, the last comes after it expired",
        ("relogin",),
        (
            OrderPlan("gcs_normal"),
            OrderPlan("gbt_normal", issued_offset=20),
            OrderPlan("gbt_inpatient", issued_offset=TOKEN_MINUTES + 90),
        ),
        faults=lambda start, _rate, _calendar: [_submit("portal_error", 1, code="401")],
        token_ttl_minutes=TOKEN_MINUTES,
    ),
    Scenario(
        "outage",
        f"The portal is down (HTTP 503) for {OUTAGE_WORKING_MINUTES // 60} working hour while three orders come "
        "in, latest deadline first",
        ("outage",),
        (OrderPlan("gcs_normal", issued_offset=10), OrderPlan("gbt_normal", issued_offset=5), OrderPlan("gcs_twins")),
        faults=lambda start, _rate, calendar: [
            {
                "name": "outage",
                "effect": "http_error",
                "status": 503,
                "window": working_window(start, OUTAGE_WORKING_MINUTES, calendar),
            }
        ],
    ),
    Scenario(
        "too-large",
        "The first submission is answered MaKetQua 1001 (file too large): no retry expected",
        ("too-large",),
        (OrderPlan("gcs_normal", deliver=False),),
        faults=lambda start, _rate, _calendar: [_submit("portal_error", 1, code="1001")],
        settle=4.0,
    ),
    Scenario(
        "dropped",
        "The portal closes the connection without a reply twice: first after storing the file "
        "(drop_after_commit), then before storing anything (reset). The hospital cannot tell the two apart, so "
        "it must resend both; the certificate stored twice is still one certificate",
        ("lost-reply",),
        (OrderPlan("gcs_normal"), OrderPlan("gbt_normal")),
        faults=lambda start, _rate, _calendar: [
            {"name": DROPPED, "effect": "drop_after_commit", "first_n": 1, "operations": ["submit"]},
            {"name": "cut", "effect": "reset", "every_nth": 2, "operations": ["submit"]},
        ],
    ),
    Scenario(
        "late-reply",
        f"The portal holds the first submission {LATE_REPLY_SECONDS:.0f} real seconds, then stores it and replies "
        "(into a closed connection, for a hospital that gave up waiting). A hospital that times out must resend; "
        "one that waits gets the reply and must not",
        ("lost-reply", "late-reply"),
        (OrderPlan("gbt_normal"), OrderPlan("gcs_normal", delay=1.0)),
        faults=lambda start, _rate, _calendar: [_held(LATE_REPLY_SECONDS)],
        token_ttl_minutes=480,  # the held request is checked when it is processed: a token must outlive the hold
        lasts_at_least=LATE_REPLY_SECONDS + 2.0,
    ),
    Scenario(
        "hung-reply",
        f"The portal holds the first submission {HUNG_SECONDS:.0f} real seconds before it stores it and replies: a "
        "hospital with a client timeout has given up by then and resent",
        ("late-reply", "hung-reply"),
        (OrderPlan("gcs_normal"),),
        faults=lambda start, _rate, _calendar: [_held(HUNG_SECONDS)],
        token_ttl_minutes=480,
        lasts_at_least=HUNG_SECONDS + 2.0,
    ),
)


BUSY_MINUTES = 240
"""Working minutes the overload scenario's portal answers busy (HTTP 503), from 08:xx on a Monday."""
SLOW_MINUTES = 35
"""Sandbox minutes each submission takes in the backlog scenario (a slow portal)."""
SLOW_REPLY_SECONDS = 7.0
"""The longest real time the slow portal takes to reply: at a slower clock a slow reply would meet client
timeouts (10-30 s are usual, the reference hospital's is 15 s) and turn into resends: the backlog runs at
no less than SLOW_MINUTES × 60 / SLOW_REPLY_SECONDS (300×)."""
URGENT_MINUTES = 122
"""The backlog's urgent order is sent right after four others and is due this many minutes after it is
sent (3.5 × SLOW_MINUTES). The portal stamps receipt after the delay, so EDF has it accepted within
3 × SLOW_MINUTES even when the order in flight meets an expired token (its 401, then its resend, then
the urgent one); FIFO only after the three others queued before it and itself, 4 × SLOW_MINUTES: late.
Everything takes at most 6 × SLOW_MINUTES, within the others' 240 working minutes."""


def _busy(start: datetime, _rate: float, _calendar: WorkingCalendar) -> list[Json]:
    window = {"start": start.isoformat(), "minutes": BUSY_MINUTES}
    return [{"name": BUSY, "effect": "http_error", "status": 503, "operations": ["submit"], "window": window}]


def _budget_blown(entries: list[Json], rate: float) -> bool:
    """More requests since the first busy answer than API-014's budget could ever allow: its budget grows
    with the busy seconds judged, at most the whole busy window, so the verdict cannot turn any more."""
    first = next((i for i, e in enumerate(entries) if BUSY in (e.get("faults") or ())), None)
    if first is None:
        return False
    last = max(i for i, e in enumerate(entries) if BUSY in (e.get("faults") or ()))
    return last - first + 1 > BUDGET_BURST + BUDGET_PER_SECOND * BUSY_MINUTES * 60 / rate


def _slow(_start: datetime, rate: float, _calendar: WorkingCalendar) -> list[Json]:
    ms = min(SLOW_MINUTES * 60_000 / rate, 60_000.0)
    return [{"name": "slow", "effect": "latency", "latency": {"ms": ms}, "operations": ["submit"]}]


SCENARIOS += (
    Scenario(
        "overdue",
        f"Two orders whose deadline passed {OVERDUE_MINUTES} minutes before they are sent (the system was down, "
        "the paper was found late): each must still be sent, late",
        ("overdue",),
        tuple(OrderPlan(story, deadline_in=-OVERDUE_MINUTES) for story in ("gcs_normal", "gbt_normal")),
        awaits_arrival=True,
        decided_after=120,
    ),
    Scenario(
        "night",
        "Two certificates issued outside working hours (the evening and the night before), ordered at the start "
        "of the working day: their 4 working hours count from then",
        ("night",),
        tuple(
            OrderPlan(story, issued_offset=offset)
            for story, offset in zip(("gcs_normal", "gbt_normal"), NIGHT_OFFSETS, strict=True)
        ),
    ),
)


# overload comes last: it ends once its budget is decided, with its order still due, and on a single
# facility (a vendor run) that order must not land in a later scenario's faults
SCENARIOS += (
    Scenario(
        "backlog",
        f"A slow portal ({SLOW_MINUTES} sandbox minutes per submission); four orders due in 4 working hours, "
        f"then one due in {URGENT_MINUTES} minutes: only earliest-deadline-first delivers the urgent one on time",
        ("backlog",),
        (
            OrderPlan("gcs_normal"),
            OrderPlan("gbt_normal"),
            OrderPlan("gcs_surrogacy"),
            OrderPlan("gcs_normal"),
            OrderPlan("gbt_inpatient", deadline_in=URGENT_MINUTES),
        ),
        faults=_slow,
        token_ttl_minutes=480,
        min_rate=SLOW_MINUTES * 60 / SLOW_REPLY_SECONDS,
    ),
    Scenario(
        "overload",
        f"The portal answers busy (HTTP 503) to every submission for {BUSY_MINUTES} working minutes: the "
        "facility's requests must stay within the request budget (no storm, backoff, bounded retries)",
        ("overload",),
        (OrderPlan("gbt_normal"),),
        faults=_busy,
        decided_when=_budget_blown,
        decided_after=BUSY_MINUTES + 5,
    ),
)


def issued_for_deadline(target: datetime, calendar: WorkingCalendar | None = None) -> datetime:
    """The latest whole minute whose Art. 25.1 deadline is not after `target` (working-time arithmetic)."""
    calendar = calendar or WorkingCalendar.default()
    low, high = target - timedelta(days=21), target
    while high - low > timedelta(minutes=1):
        middle = (low + (high - low) / 2).replace(second=0, microsecond=0)
        if middle <= low:
            break
        if deadline_for(middle, calendar) <= target:
            low = middle
        else:
            high = middle
    return low.replace(second=0, microsecond=0)


def next_slot(after: datetime, calendar: WorkingCalendar | None = None) -> datetime:
    """The start of the first working window of the next working day after `after` (08:00 on the default
    calendar; weekends and holidays skipped): the same working time ahead — morning, lunch, afternoon,
    night — as the run's first scenario, so a scenario placed there meets the same calendar whatever ran
    before it. (An afternoon start would put the night, not the lunch break, inside a deadline.)"""
    calendar = calendar or WorkingCalendar.default()
    day = after.astimezone(calendar.tz).date()
    for _ in range(MAX_SLOT_DAYS):
        windows = calendar.working_windows(day)
        if windows and windows[0][0] > after:
            return windows[0][0]
        day += timedelta(days=1)
    raise ValueError(f"the calendar has no working day in {MAX_SLOT_DAYS} days after {after.isoformat()}")


def scenarios_for(tags: set[str] | None) -> list[Scenario]:
    """The scenarios having any of `tags` (all when None)."""
    return [s for s in SCENARIOS if tags is None or tags & set(s.tags)]


def start_instant(today: date, calendar: WorkingCalendar | None = None) -> datetime:
    """The start of the first working window (08:00 on the default calendar, 07:30 on hcmc-0730) of the next
    working Monday in `today`'s year (the last one before when none is left), in the calendar's zone."""
    calendar = calendar or WorkingCalendar.default()
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    step = timedelta(days=7)
    while monday.year == today.year and not calendar.is_working_day(monday):
        monday += step
    if monday.year != today.year:
        monday = today - timedelta(days=today.weekday() or 7)
        while not calendar.is_working_day(monday):
            monday -= step
    return calendar.working_windows(monday)[0][0]


def build_orders(
    plan: Scenario,
    *,
    facility: str,
    start: datetime,
    run_id: str,
    serials: itertools.count[int],
    seed: int,
    calendar: WorkingCalendar | None = None,
    record: str | None = None,
) -> list[tuple[OrderPlan, Order]]:
    """The orders of `plan` for `facility`, each certificate of a story being one order; deadline-timed
    orders are placed on `calendar` (the portal's; the default one when not given). `record` names the
    scenario run the orders belong to (`retry@2` when the plan runs again; the plan's name by default):
    cases find an order's run, its clock rate and timing, by it."""
    out = []
    for number, item in enumerate(plan.orders):
        issued = (start + timedelta(minutes=item.issued_offset)).replace(second=0, microsecond=0)
        if item.deadline_in is not None:
            target = start + timedelta(minutes=item.deadline_in)
            issued = issued_for_deadline(target, calendar).astimezone(start.tzinfo)
        serial = next(serials)
        certificates = scenario(item.story, facility_code=facility, serial=serial, issued_at=issued, seed=seed + serial)
        for _ in certificates[1:]:
            next(serials)
        for index, (doc_type, fields) in enumerate(certificates):
            data = mutate(fields, item.invalid, doc_type) if item.invalid else fields
            order = Order(
                request_id=f"{run_id}-{plan.name}-{number + 1}{'abcdef'[index]}",
                scenario=record or plan.name,
                story=item.story,
                type=doc_type.name,
                facility=facility,
                issued_at=issued.isoformat(),
                data=dict(data),
                deliver=item.deliver,
                valid=item.invalid is None,
                sends=2 if item.twice else 1,
            )
            out.append((item, order))
    return out
