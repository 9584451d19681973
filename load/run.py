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
from load.deadlines import DeadlineLedger, DeadlineRecord
from load.portal_io import Kit, SandboxTime
from load.summary import FailureSamples
from mock_portal.deadline.working_time import WorkingCalendar

__all__ = [
    "DEADLINE",
    "KIT_MESSAGE",
    "RECORDS_KEY",
    "SAMPLES_KEY",
    "STATE",
    "LateDelivery",
    "RunState",
    "deadline_event",
    "opt",
]

DEADLINE = "DEADLINE"
"""request_type of the deadline pseudo-requests (excluded from HTTP thresholds)."""
KIT_MESSAGE = "load:kit"
RECORDS_KEY = "load_deadline_records"
SAMPLES_KEY = "load_failure_samples"


class LateDelivery(Exception):
    """A certificate accepted after its deadline, or still pending past it at the end of the run."""


@dataclass
class RunState:
    """Per-process state of a run (module-level: Locust gives listeners no other home)."""

    kit: Kit | None = None
    time: SandboxTime | None = None
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.default)
    book: DeadlineLedger = field(default_factory=DeadlineLedger)
    failures: FailureSamples = field(default_factory=FailureSamples)
    """The detail of the failures Locust's error table groups (workers hand theirs to the master)."""
    saved: PortalState | None = None
    """The portal's clock and fault plans before the run changed them (master only), restored at the end."""
    users: itertools.count[int] = field(default_factory=itertools.count)
    workspace: str | None = None
    """The workspace the run opened for itself (master only), deleted at the end unless --keep-workspace."""
    workspace_key: str = ""
    """Its key: the sandbox and IPSS key of the run while it lasts."""


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
        exception=LateDelivery(record.status.value) if record.late else None,  # one error row per status
        context={"facility": record.facility},
    )
