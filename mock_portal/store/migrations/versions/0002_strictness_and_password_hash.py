"""Per-facility strictness and salted password hashes.

Databases made before migrations existed may already have either column (the portal used to add
missing columns itself), so each is added only when missing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = {
    "facilities": sa.Column("strictness", sa.String(length=8), nullable=True),
    "accounts": sa.Column("password_hash", sa.String(length=200), server_default="", nullable=False),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, column in COLUMNS.items():
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, column.copy())


def downgrade() -> None:
    for table, column in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column.name)
