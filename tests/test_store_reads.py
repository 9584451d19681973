"""What a submission reads first (`Repository.submission_context`): token, account, trust version, the
facility's strictness and the pending expectations, in one statement (a second one only when expectations
are pending), each read confined to the repository's workspace. On SQLite and, with `--db postgresql`,
on PostgreSQL, where the wire path's reads run in autocommit (no BEGIN, no ROLLBACK)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event

from mock_portal import store

NOW = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)


def _facility(repo: store.Repository, code: str, username: str) -> None:
    repo.add_facility(
        store.Facility(code=code, name=f"Bệnh viện {code}", created_at=NOW),
        store.Account(username=username, facility_code=code, password_hash="x"),
    )


def _expectation(repo: store.Repository, doc_type: str = "GCS") -> store.Expectation:
    return repo.add_expectation(
        store.Expectation(
            doc_type=doc_type,
            facility_code="79001",
            issued_at=NOW,
            deadline=NOW + timedelta(hours=4),
            match={},
            created_at=NOW,
        )  # fmt: skip
    )


@contextmanager
def _statements(repo: store.Repository) -> Iterator[list[str]]:
    """The SQL statements the engine sends while inside, as the driver gets them."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(repo.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(repo.engine, "before_cursor_execute", record)


def test_nothing_known_reads_as_nothing_in_one_statement(repo: store.Repository) -> None:
    with _statements(repo) as seen:
        assert repo.submission_context("no-such-token", "79001_BV", ("79001", "GCS")) == (None, None, 0, None, ())
    assert len(seen) == 1


def test_token_account_trust_version_and_strictness_come_back_together(repo: store.Repository) -> None:
    _facility(repo, "79001", "79001_BV")
    repo.add_token(store.Token(access_token="t1", id_token="i1", username="79001_BV", issued_at=NOW, expires_at=NOW))
    repo.set_facility_strictness("79001", "strict")
    with _statements(repo) as seen:
        token, account, version, strictness, pending = repo.submission_context("t1", "79001_BV", ("79001", "GCS"))
    assert len(seen) == 1
    assert token is not None and (token.access_token, token.id_token, token.username) == ("t1", "i1", "79001_BV")
    assert token.expires_at == NOW
    assert account is not None and (account.username, account.facility_code) == ("79001_BV", "79001")
    assert (version, strictness, pending) == (repo.trust_version(), "strict", ())
    assert repo.submission_context("", "79001_BV")[0] is None  # no token named: none read
    assert repo.submission_context("t1", "")[1] is None  # no account named: none read


def test_trust_version_is_the_shared_one(repo: store.Repository) -> None:
    _facility(repo, "79001", "79001_BV")
    before = repo.submission_context("", "79001_BV")[2]
    repo.register_certificate(
        store.RegisteredCertificate(
            facility_code="79001",
            fingerprint="ab" * 32,
            subject="CN=x",
            serial="1",
            not_before=NOW,
            not_after=NOW,
            pem="x",
            registered_at=NOW,
        )  # fmt: skip
    )
    after = repo.submission_context("", "79001_BV")[2]
    assert after == repo.trust_version() and after > before


def test_pending_expectations_take_a_second_statement_only_when_there_are_some(repo: store.Repository) -> None:
    _facility(repo, "79001", "79001_BV")
    repo.add_token(store.Token(access_token="t1", id_token="i1", username="79001_BV", issued_at=NOW, expires_at=NOW))
    gbt = _expectation(repo, "GBT")
    with _statements(repo) as seen:
        assert repo.submission_context("t1", "79001_BV", ("79001", "GCS"))[4] == ()
    assert len(seen) == 1  # a GBT expectation is not a GCS one
    first, second = _expectation(repo), _expectation(repo)
    with _statements(repo) as seen:
        pending = repo.submission_context("t1", "79001_BV", ("79001", "GCS"))[4]
    assert [e.id for e in pending] == [first.id, second.id] and len(seen) == 2
    assert [e.id for e in repo.submission_context("t1", "79001_BV", ("79001", "GBT"))[4]] == [gbt.id]
    assert repo.submission_context("", "79001_BV", ("79001", "GCS"))[4] == ()  # no token: no claim


def test_another_workspaces_account_and_strictness_are_not_read(repo: store.Repository) -> None:
    repo.add_workspace(store.Workspace(id="other", name="Other", created_at=NOW))
    other = repo.scoped("other")
    _facility(other, "79001", "79001_OTHER")
    other.set_facility_strictness("79001", "strict")
    _facility(repo, "79001", "79001_BV")
    assert repo.submission_context("", "79001_OTHER")[1] is None
    account, _version, strictness = other.submission_context("", "79001_OTHER")[1:4]
    assert account is not None and account.workspace_id == "other" and strictness == "strict"
    assert repo.submission_context("", "79001_BV")[3] is None  # the default workspace's facility: no override


def _in_transaction(cursor: Any) -> bool:
    """Whether the driver's connection has a transaction open (psycopg or pysqlite)."""
    connection = cursor.connection
    if hasattr(connection, "info"):  # psycopg
        return bool(connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)
    return bool(connection.in_transaction)


def test_the_wire_paths_reads_leave_no_transaction_open(repo: store.Repository) -> None:
    """psycopg begins a transaction before the first statement unless in autocommit, and the pool rolls it
    back on return: three round trips for a read, and each ROLLBACK drops psycopg's prepared statements.
    pysqlite begins none for a SELECT."""
    _facility(repo, "79001", "79001_BV")
    _expectation(repo)
    repo.add_token(store.Token(access_token="t1", id_token="i1", username="79001_BV", issued_at=NOW, expires_at=NOW))
    open_after: list[bool] = []

    def record(_conn: object, cursor: Any, *_args: object) -> None:
        open_after.append(_in_transaction(cursor))

    event.listen(repo.engine, "after_cursor_execute", record)
    try:
        assert len(repo.submission_context("t1", "79001_BV", ("79001", "GCS"))[4]) == 1
        repo.get_settings(["clock"])
        assert repo.wire_account("79001_BV", "t1") is not None
        with repo.reading() as s:
            s.execute(repo.query(store.Document)).all()
    finally:
        event.remove(repo.engine, "after_cursor_execute", record)
    assert open_after == [False] * 5
