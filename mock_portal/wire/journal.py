"""The journal: one row for every wire exchange, written before its reply leaves.

Pure domain over the repository (no HTTP). An `Exchange` is what the gateway knows of a request when
it takes it (instant, account, faults); `portal/exchange.py` completes it from the reply it derived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mock_portal.fidelity import evidence_of
from mock_portal.store import JournalEntry, Repository
from mock_portal.store.repository import Retention


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


class Journal:
    """A workspace's journal: which exchanges it keeps, and their rows."""

    def __init__(self, repo: Repository, retention: Retention) -> None:
        self.repo = repo
        self.retention = retention

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
            at=exchange.at,
            real_at=exchange.real_at,
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


def _graded(code: str) -> dict[str, str | None]:
    """A journal finding: its code with the evidence grade and source of the behaviour it reports."""
    evidence = evidence_of(code)
    return {
        "code": code,
        "grade": evidence.grade.value if evidence else None,
        "source": evidence.source if evidence else None,
    }
