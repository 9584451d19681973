"""Schema migrations (Alembic): a new database, one made before migrations existed and one at the
newest revision all end at head, with their rows kept; the migrations build exactly the models."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import import_module

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text

from mock_portal import cli, store
from mock_portal.store import migrate

NOW = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
STORED_NOW = datetime(2026, 1, 1, 8, 0)
"""NOW as a time column holds it (naive UTC): for raw SQL, which bypasses the column type."""


def _facility(repo: store.Repository, code: str) -> None:
    repo.add_facility(
        store.Facility(code=code, name=f"BV {code}", created_at=NOW),
        store.Account(username=f"{code}_BV", facility_code=code, password_md5="", password_hash="scrypt$x"),
    )


def test_a_new_database_is_built_at_head_exactly_as_the_models_say(database_url: str) -> None:
    engine = store.create_engine_for(database_url)
    store.Repository(engine).create_schema()
    assert migrate.current(engine) == migrate.head()
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), store.Base.metadata)
    assert differences == [], "a model changed without a migration: add a revision in mock_portal/store/migrations"
    engine.dispose()


def test_a_database_made_before_migrations_is_upgraded_in_place(database_url: str) -> None:
    engine = store.create_engine_for(database_url)
    store.Base.metadata.create_all(engine)  # what the previous version did on start (no alembic_version)
    repo = store.Repository(engine)
    _facility(repo, "79001")
    repo.set_facility_strictness("79001", "strict")
    assert migrate.current(engine) is None
    repo.create_schema()
    repo.create_schema()  # a second start, or a second host: nothing to do
    assert migrate.current(engine) == migrate.head()
    assert repo.facility_strictness("79001") == "strict"
    _facility(repo, "79002")
    assert [f.code for f in repo.list_facilities()] == ["79001", "79002"]
    engine.dispose()


def test_a_database_of_the_first_schema_gets_the_later_columns(database_url: str) -> None:
    engine = store.create_engine_for(database_url)
    import_module("mock_portal.store.migrations.versions.0001_baseline").BASELINE.create_all(engine)  # first schema
    assert "strictness" not in {c["name"] for c in inspect(engine).get_columns("facilities")}
    repo = store.Repository(engine)
    repo.create_schema()
    columns = {c["name"] for c in inspect(engine).get_columns("accounts")}
    assert "password_hash" in columns
    _facility(repo, "79003")
    assert repo.facility_strictness("79003") is None
    engine.dispose()


def test_a_database_at_0002_moves_into_the_default_workspace_with_its_rows_and_keys(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    engine = store.create_engine_for(database_url)
    with engine.begin() as connection:
        command.upgrade(migrate._config(connection), "0002")
    with engine.begin() as c:
        c.execute(text("INSERT INTO facilities (code, name, created_at) VALUES ('79001', 'BV', :t)"), {"t": STORED_NOW})
        c.execute(
            text(
                "INSERT INTO accounts (username, facility_code, password_md5, locked, password_hash) "
                "VALUES ('79001_BV', '79001', '', false, 'scrypt$x')"
            )
        )
        c.execute(
            text(
                "INSERT INTO registered_certificates (facility_code, fingerprint, subject, serial, not_before, "
                "not_after, pem, registered_at) VALUES ('79001', 'ab', 'CN=x', '1', :t, :t, 'pem', :t)"
            ),
            {"t": STORED_NOW},
        )
        c.execute(
            text(
                "INSERT INTO certificate_authorities (fingerprint, subject, pem, added_at) "
                "VALUES ('cd', 'CN=r', 'p', :t)"
            ),
            {"t": STORED_NOW},
        )
        c.execute(
            text(
                "INSERT INTO tokens (access_token, id_token, username, issued_at, expires_at) "
                "VALUES ('tok', 'id', '79001_BV', :t, :t)"
            ),
            {"t": STORED_NOW},
        )
    repo = store.Repository(engine)
    repo.create_schema()
    assert migrate.current(engine) == migrate.head()
    assert [(f.workspace_id, f.code) for f in repo.list_facilities()] == [("default", "79001")]
    assert repo.get_account("79001_BV") is not None and repo.get_token("tok") is not None
    assert [c.fingerprint for c in repo.certificates_of("79001")] == ["ab"]
    assert [c.fingerprint for c in repo.list_cas()] == ["cd"]
    other = repo.scoped("vendor-b")
    other.add_facility(
        store.Facility(code="79001", name="BV of B", created_at=NOW),
        store.Account(username="79001_B", facility_code="79001", password_md5="", password_hash="scrypt$y"),
    )
    assert [f.name for f in other.list_facilities()] == ["BV of B"] and repo.get_account("79001_B") is None
    with engine.begin() as c:  # the foreign keys are back on and follow the new key: a facility takes its own
        c.execute(text("DELETE FROM facilities WHERE workspace_id = 'default' AND code = '79001'"))
    assert repo.get_account("79001_BV") is None and repo.certificates_of("79001") == []
    assert other.get_account("79001_B") is not None


def _past_32_bits(connection: Connection, table: str) -> None:
    """Make the next id of `table` exceed 2**31 (the SERIAL ceiling) the way each database counts."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {2**31 + 5})"))
    else:  # SQLite: the next rowid is the largest one + 1
        connection.execute(
            text(
                f"INSERT INTO {table} (id, real_at, at, facility_code, username, operation, outcome, "
                "faults, findings, duration_ms) VALUES (:id, :t, :t, '', '', 'x', 'x', '[]', '[]', 0)"
            ),
            {"id": 2**31 + 5, "t": STORED_NOW},
        )


def test_row_ids_go_past_32_bits_also_in_a_database_of_the_first_schema(database_url: str) -> None:
    engine = store.create_engine_for(database_url)
    import_module("mock_portal.store.migrations.versions.0001_baseline").BASELINE.create_all(engine)  # SERIAL keys
    store.Repository(engine).create_schema()
    table = store.JournalEntry.__table__
    row = {
        "at": NOW,
        "real_at": NOW,
        "facility_code": "79001",
        "username": "79001_BV",
        "operation": "submit",
        "outcome": "200",
        "faults": [],
        "findings": [],
        "duration_ms": 1.0,
        "submission_id": 2**40,
    }
    with engine.begin() as connection:
        _past_32_bits(connection, "journal")
        new_id = connection.execute(table.insert().returning(table.c.id), row).scalar_one()
    assert new_id == 2**31 + 6
    with engine.connect() as connection:
        assert connection.scalar(select(table.c.submission_id).where(table.c.id == new_id)) == 2**40
    engine.dispose()


def test_mock_portal_migrate_brings_an_empty_database_to_head_and_stops(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one-shot step of a deployment (deploy/compose.yaml's `migrate`), before any replica starts."""
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    engine = store.create_engine_for(database_url)
    assert migrate.current(engine) is None
    assert cli.main(["migrate"]) == 0
    assert migrate.current(engine) == migrate.head()
    assert capsys.readouterr().out == f"database at revision {migrate.head()} (head {migrate.head()})\n"
    engine.dispose()
