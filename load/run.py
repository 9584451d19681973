"""Per-process state of a load run and the helpers the personas and the run hooks share.

No Locust import at module level beyond types, so the state is one object per process (Locust
gives listeners no other home).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from locust.env import Environment

from conformance.portal import PortalState
from load.deadlines import DeadlineBook, DeadlineRecord
from load.portal_io import Kit, SandboxTime
from mock_portal.deadline.working_time import WorkingCalendar

__all__ = ["DEADLINE", "KIT_MESSAGE", "RECORDS_KEY", "STATE", "LateDelivery", "RunState", "deadline_event", "opt"]

DEADLINE = "DEADLINE"
"""request_type of the deadline pseudo-requests (excluded from HTTP thresholds)."""
KIT_MESSAGE = "load:kit"
RECORDS_KEY = "load_deadline_records"


class LateDelivery(Exception):
    """A certificate accepted after its deadline, or still pending past it at the end of the run."""


@dataclass
class RunState:
    """Per-process state of a run (module-level: Locust gives listeners no other home)."""

    kit: Kit | None = None
    time: SandboxTime | None = None
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.default)
    book: DeadlineBook = field(default_factory=DeadlineBook)
    saved: PortalState | None = None
    """The portal's clock and fault plans before the run changed them (master only), restored at the end."""
    users: itertools.count[int] = field(default_factory=itertools.count)


STATE = RunState()


def opt(environment: Environment, name: str, default: Any = None) -> Any:
    options = environment.parsed_options
    value = getattr(options, name, None) if options is not None else None
    return default if value is None else value


def deadline_event(environment: Environment, record: DeadlineRecord) -> None:
    if record.working_minutes is None:
        return
    name = f"{record.persona} {record.doc_type} issue→acceptance (working min)"
    if record.status.value in ("PENDING", "OVERDUE"):
        name = f"{record.persona} {record.doc_type} undelivered at end (working min)"
    environment.events.request.fire(
        request_type=DEADLINE,
        name=name,
        response_time=record.working_minutes,
        response_length=0,
        exception=LateDelivery(f"{record.code} {record.status.value}") if record.late else None,
        context={"facility": record.facility},
    )
