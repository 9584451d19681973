"""Alembic environment of the portal: runs on the connection `mock_portal.store.migrate` hands over
(no alembic.ini, no URL of its own)."""

from __future__ import annotations

from alembic import context

from mock_portal.store import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
