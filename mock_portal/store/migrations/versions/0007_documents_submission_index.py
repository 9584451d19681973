"""An index on `documents.submission_id` (issue 24).

The foreign key from a document to its submission: SQLite checks it on every deleted submission by
looking for documents that point at it, and without an index that was a scan of the whole documents
table per submission — a sandbox reset or workspace deletion of 10,700 submissions deleted in chunks
spent 8.2 s in those scans (bench/maintenance.py). It also serves `Repository.document_of_submission`.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ix_documents_submission"


def upgrade() -> None:
    """Idempotent like the revisions before it: a database built from the models has the index already."""
    if INDEX not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("documents")}:
        op.create_index(INDEX, "documents", ["submission_id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="documents")
