"""The portal's attestation keys (issue 23): the Ed25519 key that signs what a conformance run observed.

One table for the deployment (no workspace): key id, public and private PEM, created and retired
instants. `active` is unique and True for the one key that signs, NULL for retired keys, so two workers
making the first key at once cannot both succeed.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "attestation_keys"


def upgrade() -> None:
    """Idempotent like the revisions before it: a database built from the models has the table already."""
    if TABLE in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("public_pem", sa.String(), nullable=False),
        sa.Column("private_pem", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("active"),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
