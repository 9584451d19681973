"""The store's one time type (issue 26, `store.models.UtcDateTime`): an instant goes in aware, in any zone,
is kept as naive UTC in the columns the migrations made (no schema change), and comes back aware in UTC;
a naive datetime names no instant and is refused, written or used as a query bound. On SQLite and, with
`--db postgresql`, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, text
from sqlalchemy.exc import StatementError

from mock_portal import store
from mock_portal.store.models import UtcDateTime
from mock_portal.store.repository import JournalFilter, Retention

INSTANT = datetime(2026, 3, 9, 15, 30, 0, 123456, tzinfo=timezone(timedelta(hours=7)))
"""08:30:00.123456 UTC, given in Vietnam's offset."""


def _entry(at: datetime) -> store.JournalEntry:
    return store.JournalEntry(
        at=at, real_at=at, facility_code="79001", username="79001_BV", operation="submit", outcome="200",
        faults=[], findings=[], duration_ms=1.0,
    )  # fmt: skip


def test_every_time_column_is_a_utc_datetime() -> None:
    columns = [c for table in store.Base.metadata.tables.values() for c in table.columns]
    assert not [f"{c.table.name}.{c.name}" for c in columns if isinstance(c.type, DateTime)]
    instants = {f"{c.table.name}.{c.name}" for c in columns if isinstance(c.type, UtcDateTime)}
    assert {"journal.at", "tokens.expires_at", "outbox.shared_at", "ipss_documents.shared_at"} <= instants


def test_an_instant_in_any_zone_is_kept_as_naive_utc_and_read_back_aware_in_utc(repo: store.Repository) -> None:
    repo.add_journal(_entry(INSTANT), Retention())
    (entry,) = repo.journal(JournalFilter())
    assert entry.at == INSTANT and entry.at.tzinfo is UTC and (entry.at.hour, entry.at.microsecond) == (8, 123456)
    with repo.engine.connect() as connection:  # the column holds what it always held
        assert str(connection.scalar(text("SELECT at FROM journal"))) == "2026-03-09 08:30:00.123456"
    assert [e.id for e in repo.journal(JournalFilter(since=INSTANT))] == [entry.id]  # a bound in any zone
    assert repo.journal(JournalFilter(since=INSTANT.astimezone(UTC) + timedelta(microseconds=1))) == []


def test_a_naive_datetime_is_refused_written_or_as_a_query_bound(repo: store.Repository) -> None:
    naive = datetime(2026, 3, 9, 8, 30)
    with pytest.raises(StatementError, match="a naive datetime names no instant"):
        repo.add_journal(_entry(naive), Retention())
    with pytest.raises(StatementError, match="a naive datetime names no instant"):
        repo.journal(JournalFilter(since=naive))
    assert repo.count_journal(JournalFilter()) == 0
