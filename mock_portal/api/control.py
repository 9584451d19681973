"""[sandbox] handlers for time, faults, the journal and expectations. Thin: parse, call the domain, render."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mock_portal.api.context import request_portal
from mock_portal.api.render import Reply, empty, reply
from mock_portal.control.clock import MAX_ADVANCE_MINUTES, MAX_ADVANCE_WORKING_MINUTES, ClockState, check_span, vn_local
from mock_portal.faults.plan import FaultPlanError, parse_plan, plan_key
from mock_portal.portal import expectations as expect
from mock_portal.portal import facilities as ops
from mock_portal.portal.records import document_view, iso, journal_view
from mock_portal.portal.service import Portal
from mock_portal.results.errors import Conflict, InvalidInput, NotFound
from mock_portal.store.repository import Identity, JournalFilter

Json = dict[str, Any]


def _portal() -> Portal:
    portal = request_portal()
    portal.clock.refresh()
    return portal


def _instant(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            "TIME_INVALID",
            f"{field} không phải thời điểm ISO 8601 (ví dụ 2026-03-09T08:00:00+07:00): {text[:64]!r}",
            f"{field} is not an ISO 8601 instant (for example 2026-03-09T08:00:00+07:00): {text[:64]!r}",
        ) from exc
    if value.tzinfo is None:
        raise InvalidInput("TIME_INVALID", f"{field} phải có múi giờ", f"{field} must carry a time zone offset")
    return value


# clock
def _clock(portal: Portal, state: ClockState | None = None) -> Reply:
    state = state or portal.clock.state()
    now = portal.clock.now()
    return reply(
        {
            "now": now.isoformat(),
            "now_vn": vn_local(now).isoformat(),
            "rate": state.rate,
            "mode": state.mode,
            "calendar": portal.calendar.to_mapping(),
        }
    )


def get_clock() -> Reply:
    return _clock(_portal())


def set_clock(body: Json) -> Reply:
    portal = _portal()
    now = _instant(body["now"], "now") if body.get("now") else None
    try:
        state = portal.clock.set(now=now, rate=body.get("rate"))
    except ValueError as exc:
        raise InvalidInput("CLOCK_INVALID", "Giá trị đồng hồ không hợp lệ", str(exc)) from exc
    return _clock(portal, state)


def advance_clock(body: Json) -> Reply:
    portal = _portal()
    minutes, working = body.get("minutes"), body.get("working_minutes")
    if (minutes is None) == (working is None):
        raise InvalidInput(
            "ADVANCE_INVALID",
            "Cần đúng một trong minutes hoặc working_minutes",
            "Give exactly one of minutes or working_minutes",
        )
    now = portal.clock.now()
    try:
        if minutes is not None:
            target = now + timedelta(minutes=check_span(minutes, MAX_ADVANCE_MINUTES, "minutes"))
        else:
            span = check_span(working, MAX_ADVANCE_WORKING_MINUTES, "working_minutes")
            target = portal.calendar.add_working_minutes(now, span)
        state = portal.clock.set(now=target)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            "ADVANCE_INVALID",
            "Không tua được đồng hồ: số phút phải hữu hạn, trong giới hạn, và giờ sandbox phải nằm trong "
            "[2000-01-01, 2100-01-01)",
            str(exc),
        ) from exc
    return _clock(portal, state)


def reset_clock() -> Reply:
    portal = _portal()
    return _clock(portal, portal.clock.reset())


# faults
NO_PLAN: Json = {"deleted": True}
"""What deleting a facility's plan stores: a new version (fault counters restart) that holds no plan. Not
`{}`: a reset empties every shared setting to `{}`, and a plan reset is empty, not deleted."""


def _plan_reply(portal: Portal, facility: str | None) -> Reply:
    """The stored plan. Every plan exists, empty, from the start (the global one, a facility's from its
    creation); a facility's plan DELETEd is gone (404) until PUT again."""
    found = portal.repo.get_settings([plan_key(facility)]).get(plan_key(facility))
    if found is not None and found[1] == NO_PLAN:
        raise NotFound(
            "FAULT_PLAN_NOT_SET",
            f"Kế hoạch lỗi riêng của cơ sở {facility} đã bị xoá; đặt lại bằng PUT",
            f"The fault plan of facility {facility} was deleted; PUT one to set it again",
        )
    plan = {"faults": [], **found[1]} if found else {"faults": []}
    return reply({"scope": facility or "all", "version": found[0] if found else 0, "plan": plan})


def _put_plan(facility: str | None, body: Json) -> Reply:
    portal = _portal()
    try:
        parse_plan(body)
    except FaultPlanError as exc:
        raise InvalidInput(
            "FAULT_PLAN_INVALID", f"Kế hoạch lỗi không hợp lệ: {exc}", f"Invalid fault plan: {exc}"
        ) from exc
    portal.repo.put_setting(plan_key(facility), {"faults": [], **body})
    return _plan_reply(portal, facility)


def get_faults() -> Reply:
    return _plan_reply(_portal(), None)


def set_faults(body: Json) -> Reply:
    return _put_plan(None, body)


def clear_faults() -> tuple[str, int]:
    _portal().repo.put_setting(plan_key(None), {"faults": []})  # a new version: counters and caches restart
    return empty()


def get_facility_faults(code: str) -> Reply:
    portal = _portal()
    ops.require_facility(portal, code)
    return _plan_reply(portal, code)


def set_facility_faults(code: str, body: Json) -> Reply:
    ops.require_facility(_portal(), code)
    return _put_plan(code, body)


def clear_facility_faults(code: str) -> tuple[str, int]:
    portal = _portal()
    ops.require_facility(portal, code)
    portal.repo.put_setting(plan_key(code), NO_PLAN)
    return empty()


# journal
def _journal_filter(
    facility: str | None,
    operation: str | None,
    outcome: str | None,
    since: str | None,
    after: int | None,
    identity: str,
) -> JournalFilter:
    portal = _portal()
    if portal.settings.journal_max_entries <= 0:
        raise Conflict(
            "JOURNAL_DISABLED",
            "Nhật ký đang tắt (PORTAL_JOURNAL_MAX_ENTRIES=0)",
            "The journal is switched off (PORTAL_JOURNAL_MAX_ENTRIES=0): it cannot answer",
        )
    when = _instant(since, "since") if since else None
    return JournalFilter(facility, operation, outcome, when, after, Identity(identity))


def list_journal(
    facility: str | None = None,
    operation: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    after: int | None = None,
    limit: int = 100,
    identity: str = Identity.AUTHENTICATED,
) -> Reply:
    """`identity`: the rows of requests that proved to be their account (the default), the others, or all."""
    filters = _journal_filter(facility, operation, outcome, since, after, identity)
    # polling with `after` pages forward (oldest first), so a burst larger than `limit` is not skipped
    entries = _portal().repo.journal(filters, limit=limit, oldest_first=after is not None)
    return reply([journal_view(e) for e in entries])


def count_journal(
    facility: str | None = None,
    operation: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    after: int | None = None,
    identity: str = Identity.AUTHENTICATED,
) -> Reply:
    filters = _journal_filter(facility, operation, outcome, since, after, identity)
    return reply({"count": _portal().repo.count_journal(filters)})


# expectations
def create_expectation(body: Json) -> Reply:
    portal = _portal()
    ops.require_facility(portal, body["facility"])
    new = expect.NewExpectation(
        doc_type=body["type"],
        facility_code=body["facility"],
        issued_at=_instant(body["issued_at"], "issued_at"),
        match=body.get("match") or {},
    )
    return reply(_expectation(portal, expect.register(portal, new)), 201)


def get_expectation(id: int) -> Reply:  # noqa: A002 - the spec's parameter name
    portal = _portal()
    return reply(_expectation(portal, expect.require(portal, id)))


def _expectation(portal: Portal, row: Any) -> Json:
    state = expect.status(portal, row)
    document = state["document"]
    return {
        "id": row.id,
        "type": row.doc_type,
        "facility": row.facility_code,
        "issued_at": iso(row.issued_at),
        "deadline": iso(row.deadline),
        "match": row.match,
        "created_at": iso(row.created_at),
        "status": state["status"],
        "document": document_view(document) if document else None,
    }
