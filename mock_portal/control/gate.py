"""What happens at the portal's gate for every wire request: fault decisions and the journal.

Pure domain over the repository (no HTTP): `api/gateway.py` calls it around each request. Fault
plans are shared settings (`faults` for every facility, `faults:<MA_CSKCB>` for one), parsed once
per version and per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from mock_portal.control.faults import Decision, FaultPlan, RequestInfo, decide, parse_plan
from mock_portal.fidelity import evidence_of
from mock_portal.store import JournalEntry, Repository
from mock_portal.store.repository import Retention

GLOBAL = "faults"


def plan_key(facility_code: str | None) -> str:
    return f"{GLOBAL}:{facility_code}" if facility_code else GLOBAL


@dataclass(frozen=True)
class Exchange:
    """One wire request as the journal keeps it."""

    at: datetime
    """The sandbox instant the request arrived at (the gateway's clock state applied to `real_at`)."""
    real_at: datetime
    facility_code: str
    username: str
    operation: str
    outcome: str
    http_status: int | None
    duration_ms: float
    faults: tuple[str, ...] = ()
    ma_gd: str | None = None
    submission_id: int | None = None
    document_code: str | None = None
    loai_hs: str | None = None
    findings: tuple[str, ...] = ()
    authenticated: bool = True
    """False for a request that did not prove to be the account it names: journalled apart."""
    file_sha256: str | None = None


class Gate:
    def __init__(self, repo: Repository, retention: Retention) -> None:
        self.repo = repo
        self.retention = retention
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[int, FaultPlan]] = {}

    @staticmethod
    def keys(facility_code: str) -> list[str]:
        """The shared settings that hold the plans for a facility."""
        return [GLOBAL, plan_key(facility_code)] if facility_code else [GLOBAL]

    def plans(
        self, facility_code: str, found: dict[str, tuple[int, dict[str, Any]]] | None = None
    ) -> list[tuple[str, FaultPlan]]:
        """The global plan and the facility's, read in one query (or taken from `found`, settings the
        caller read with others), parsed once per version.

        Each comes with its scope `<key>@<version>`, so counters start afresh when a plan is replaced."""
        keys = self.keys(facility_code)
        if found is None:
            found = self.repo.get_settings(keys)
        plans = []
        with self._lock:
            for key in keys:
                if key not in found:
                    continue
                version, value = found[key]
                cached = self._parsed.get(key)
                if cached is None or cached[0] != version:
                    cached = (version, parse_plan(value))
                    self._parsed[key] = cached
                plans.append((f"{key}@{version}", cached[1]))
        return plans

    def decide(
        self,
        operation: str,
        facility_code: str,
        at: datetime,
        found: dict[str, tuple[int, dict[str, Any]]] | None = None,
    ) -> Decision:
        plans = self.plans(facility_code, found)
        if not any(plan.faults for _, plan in plans):
            return Decision()
        return decide(plans, RequestInfo(operation, facility_code, at), self.repo.increment)

    def token_ttl_minutes(self, facility_code: str, default: int) -> int:
        """A plan may shorten token lifetimes (the facility's plan wins over the global one)."""
        ttl = default
        for _, plan in self.plans(facility_code):
            if plan.token_ttl_minutes is not None:
                ttl = plan.token_ttl_minutes
        return ttl

    def keeps(self, authenticated: bool) -> bool:
        """Whether exchanges of this kind are journalled at all."""
        keep = self.retention.journal if authenticated else self.retention.unauthenticated_journal
        return self.retention.journal > 0 and keep > 0

    def record(self, exchange: Exchange) -> int | None:
        """Journal one exchange; None when the journal is switched off (for its kind)."""
        entry = self.entry(exchange)
        if entry is None:
            return None
        return self.repo.add_journal(entry, self.retention)

    def entry(self, exchange: Exchange) -> JournalEntry | None:
        """The journal row of an exchange (None when the journal is switched off, or its retention of
        unauthenticated rows is 0 and the exchange is one), for `record` or for a caller that writes it
        in a transaction of its own (`Repository.record_submission`)."""
        if not self.keeps(exchange.authenticated):
            return None
        return JournalEntry(
            at=_naive(exchange.at),
            real_at=_naive(exchange.real_at),
            facility_code=exchange.facility_code[:64],
            username=exchange.username[:64],
            operation=exchange.operation,
            outcome=exchange.outcome[:16],
            http_status=exchange.http_status,
            ma_gd=exchange.ma_gd or None,
            submission_id=exchange.submission_id,
            document_code=(exchange.document_code or "")[:64] or None,
            loai_hs=(exchange.loai_hs or "")[:16] or None,
            faults=list(exchange.faults),
            findings=[_graded(code) for code in exchange.findings],
            duration_ms=round(exchange.duration_ms, 3),
            authenticated=exchange.authenticated,
            file_sha256=exchange.file_sha256,
        )


@dataclass
class JournalSlot:
    """A wire exchange the gateway hands down to the submission handler (through the ASGI scope
    state), so that its journal row is written in the transaction that stores the submission —
    one commit per request instead of two. `entry_id` is set once that transaction committed; the
    gateway journals the exchange itself when it is still None (refusals before the handler,
    errors, rollbacks)."""

    exchange: Exchange
    started: float
    """`time.perf_counter()` when the gateway took the request (for duration_ms)."""
    dropped: bool
    """The reply will be swallowed (drop_after_commit): the outcome is DROPPED."""
    received_at: datetime | None = None
    """The submission's receipt instant: the sandbox instant it arrived at, plus any injected latency on
    the sandbox clock — so the portal's own queueing never counts against the hospital's deadline."""
    entry_id: int | None = None

    SCOPE_KEY: ClassVar[str] = "sandbox_journal_slot"


def _graded(code: str) -> dict[str, str | None]:
    """A journal finding: its code with the evidence grade and source of the behaviour it reports."""
    evidence = evidence_of(code)
    return {
        "code": code,
        "grade": evidence.grade.value if evidence else None,
        "source": evidence.source if evidence else None,
    }


def _naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)
