"""Schema migrations (Alembic, scripts in `migrations/`): every process upgrades its database to the
newest revision on start, one process at a time.

A new column or table is a new revision in `migrations/versions/` (`python -m mock_portal.store.migrate
revision "message"` autogenerates one from the models against a scratch database).
"""

from __future__ import annotations

import functools
import sys
from contextlib import nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, text

from mock_portal.store.write_gate import WriteGate

SCRIPTS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x1955_0A1E
"""PostgreSQL advisory lock held while one process upgrades, so hosts starting together take turns."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision the code knows."""
    return str(ScriptDirectory.from_config(_config()).get_current_head())


@functools.cache
def known() -> frozenset[str]:
    """Every revision the code knows: one it does not know was made by a newer version."""
    return frozenset(script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions())


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: made before migrations existed, or empty)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision. Behind the SQLite write gate (its `flock` spans
    processes) or a PostgreSQL advisory lock, so workers and hosts starting together take turns; the
    later ones find the database at head and do nothing."""
    gate = WriteGate.for_engine(engine)
    with gate.hold() if gate is not None else nullcontext(), engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # SQLite rebuilds a table to change its key: no cascade may fire meanwhile (before BEGIN)
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                if MigrationContext.configure(connection).get_current_revision() != head():
                    command.upgrade(_config(connection), "head")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _revision(message: str) -> None:
    """Autogenerate a revision from the models against a scratch SQLite database at head."""
    engine = create_engine("sqlite://")
    upgrade(engine)
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "revision":
    _revision(sys.argv[2])
