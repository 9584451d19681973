"""Schema migrations (Alembic): a new database, one made before migrations existed and one at the
newest revision all end at head, with their rows kept; the migrations build exactly the models."""

from __future__ import annotations

from datetime import datetime
from importlib import import_module

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from mock_portal import store
from mock_portal.store import migrate

NOW = datetime(2026, 1, 1, 8, 0)


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
