"""The journal keeps who proved to be its account, and which file each submission carried (issue 22).

`authenticated` (true for every existing row: before this revision only requests naming an account
were journalled in its workspace, and nothing told them apart) separates requests that proved their
account from those that merely named one, each kept under a retention of its own; the index serves
the listing, the count and the trimming of one workspace's rows of one kind. `file_sha256` is the
SHA-256 of a submission's decoded file, also for attempts answered by an injected fault.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEX = "ix_journal_identity"


COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("authenticated", sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column("file_sha256", sa.String(length=64), nullable=True),
)


def upgrade() -> None:
    """Idempotent like the revisions before it: a database the portal built from its models before
    migrations existed has these already."""
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("journal")}
    for column in COLUMNS:
        if column.name not in present:
            op.add_column("journal", column.copy())
    if INDEX not in {i["name"] for i in inspector.get_indexes("journal")}:
        op.create_index(INDEX, "journal", ["workspace_id", "authenticated", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="journal")
    with op.batch_alter_table("journal") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column.name)
