"""Row ids 64-bit on PostgreSQL: every `id` key and every column holding one becomes BIGINT, and the
key sequences go up to 2**63 - 1.

The tables were made with `Integer` keys: SERIAL on PostgreSQL, a 32-bit column whose sequence stops
at 2,147,483,647, while the portal takes ids up to `MAX_ROW_ID` (2**63 - 1) and a busy journal or
submission table passes 2**31 inserts in the sandbox's lifetime. SQLite needs nothing: its
`INTEGER PRIMARY KEY` is the 64-bit rowid and all its integers are 64-bit.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROW_ID_COLUMNS = {
    "certificate_authorities": ("id",),
    "revocation_lists": ("id",),
    "registered_certificates": ("id",),
    "submissions": ("id",),
    "expectations": ("id", "document_id"),
    "documents": ("id", "submission_id", "expectation_id"),
    "outbox": ("id", "document_id"),
    "journal": ("id", "submission_id"),
    "ipss_documents": ("id", "document_id"),
    "ipss_applications": ("id", "shared_document_id"),
}


def _alter(to: sa.types.TypeEngine[int], sequence_type: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, columns in ROW_ID_COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=to)
        sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table})
        if sequence:  # its MAXVALUE follows the type when it was the old type's maximum (the default)
            op.execute(f"ALTER SEQUENCE {sequence} AS {sequence_type}")


def upgrade() -> None:
    _alter(sa.BigInteger(), "bigint")


def downgrade() -> None:
    _alter(sa.Integer(), "integer")
