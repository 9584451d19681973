"""Baseline: the tables as the portal made them before migrations existed.

Idempotent on purpose: a database made before Alembic (no `alembic_version`) may hold any subset of
these tables, so only the missing ones are created; later revisions are ordinary migrations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASELINE = sa.MetaData()

sa.Table(
    "certificate_authorities",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("fingerprint", sa.String(length=64), nullable=False),
    sa.Column("subject", sa.String(length=1024), nullable=False),
    sa.Column("pem", sa.String(), nullable=False),
    sa.Column("added_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("fingerprint"),
)
sa.Table(
    "expectations",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("doc_type", sa.String(length=3), nullable=False),
    sa.Column("facility_code", sa.String(length=5), nullable=False),
    sa.Column("issued_at", sa.DateTime(), nullable=False),
    sa.Column("deadline", sa.DateTime(), nullable=False),
    sa.Column("match", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("document_id", sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "facilities",
    BASELINE,
    sa.Column("code", sa.String(length=5), nullable=False),
    sa.Column("name", sa.String(length=255), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("code"),
)
sa.Table(
    "journal",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("real_at", sa.DateTime(), nullable=False),
    sa.Column("facility_code", sa.String(length=64), nullable=False),
    sa.Column("username", sa.String(length=64), nullable=False),
    sa.Column("operation", sa.String(length=16), nullable=False),
    sa.Column("outcome", sa.String(length=16), nullable=False),
    sa.Column("http_status", sa.Integer(), nullable=True),
    sa.Column("ma_gd", sa.String(length=80), nullable=True),
    sa.Column("submission_id", sa.Integer(), nullable=True),
    sa.Column("document_code", sa.String(length=64), nullable=True),
    sa.Column("loai_hs", sa.String(length=16), nullable=True),
    sa.Column("faults", sa.JSON(), nullable=False),
    sa.Column("findings", sa.JSON(), nullable=False),
    sa.Column("duration_ms", sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_journal_at", "at"),
    sa.Index("ix_journal_facility", "facility_code"),
)
sa.Table(
    "meta",
    BASELINE,
    sa.Column("key", sa.String(length=64), nullable=False),
    sa.Column("value", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("key"),
)
sa.Table(
    "revocation_lists",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("issuer", sa.String(length=1024), nullable=False),
    sa.Column("der", sa.LargeBinary(), nullable=False),
    sa.Column("revoked_count", sa.Integer(), nullable=False),
    sa.Column("this_update", sa.DateTime(), nullable=False),
    sa.Column("next_update", sa.DateTime(), nullable=True),
    sa.Column("added_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "shared_settings",
    BASELINE,
    sa.Column("key", sa.String(length=64), nullable=False),
    sa.Column("value", sa.JSON(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("key"),
)
sa.Table(
    "submissions",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.Column("facility_code", sa.String(length=64), nullable=False),
    sa.Column("username", sa.String(length=64), nullable=False),
    sa.Column("loai_hs", sa.String(length=16), nullable=False),
    sa.Column("result", sa.String(length=8), nullable=False),
    sa.Column("ma_gd", sa.String(length=80), nullable=True),
    sa.Column("file", sa.LargeBinary(), nullable=True),
    sa.Column("file_sha256", sa.String(length=64), nullable=True),
    sa.Column("file_size", sa.Integer(), nullable=False),
    sa.Column("document_code", sa.String(length=64), nullable=True),
    sa.Column("explain", sa.String(length=512), nullable=False),
    sa.Column("findings", sa.JSON(), nullable=False),
    sa.Column("signature_report", sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_submissions_facility", "facility_code"),
    sa.Index("ix_submissions_result", "result"),
)
sa.Table(
    "accounts",
    BASELINE,
    sa.Column("username", sa.String(length=64), nullable=False),
    sa.Column("facility_code", sa.String(length=5), nullable=False),
    sa.Column("password_md5", sa.String(length=32), nullable=False),
    sa.Column("locked", sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(["facility_code"], ["facilities.code"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("username"),
)
sa.Table(
    "documents",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("submission_id", sa.Integer(), nullable=False),
    sa.Column("doc_type", sa.String(length=3), nullable=False),
    sa.Column("code", sa.String(length=64), nullable=False),
    sa.Column("facility_code", sa.String(length=5), nullable=False),
    sa.Column("ma_gd", sa.String(length=80), nullable=False),
    sa.Column("first_issue", sa.Boolean(), nullable=False),
    sa.Column("issue_date", sa.String(length=8), nullable=False),
    sa.Column("signing_time", sa.DateTime(), nullable=True),
    sa.Column("accepted_at", sa.DateTime(), nullable=False),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("issue_instant", sa.DateTime(), nullable=True),
    sa.Column("issue_source", sa.String(length=16), nullable=True),
    sa.Column("deadline", sa.DateTime(), nullable=True),
    sa.Column("deadline_status", sa.String(length=8), nullable=True),
    sa.Column("working_minutes_late", sa.Integer(), nullable=False),
    sa.Column("expectation_id", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_documents_code", "code"),
)
sa.Table(
    "registered_certificates",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("facility_code", sa.String(length=5), nullable=False),
    sa.Column("fingerprint", sa.String(length=64), nullable=False),
    sa.Column("subject", sa.String(length=1024), nullable=False),
    sa.Column("serial", sa.String(length=64), nullable=False),
    sa.Column("not_before", sa.DateTime(), nullable=False),
    sa.Column("not_after", sa.DateTime(), nullable=False),
    sa.Column("pem", sa.String(), nullable=False),
    sa.Column("registered_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["facility_code"], ["facilities.code"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("facility_code", "fingerprint"),
)
sa.Table(
    "ipss_documents",
    BASELINE,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("document_id", sa.Integer(), nullable=False),
    sa.Column("doc_type", sa.String(length=3), nullable=False),
    sa.Column("code", sa.String(length=64), nullable=False),
    sa.Column("facility_code", sa.String(length=5), nullable=False),
    sa.Column("ma_gd", sa.String(length=80), nullable=False),
    sa.Column("first_issue", sa.Boolean(), nullable=False),
    sa.Column("issue_date", sa.String(length=8), nullable=False),
    sa.Column("signing_time", sa.DateTime(), nullable=True),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("accepted_at", sa.DateTime(), nullable=False),
    sa.Column("shared_at", sa.DateTime(), nullable=False),
    sa.Column("lag_ms", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("document_id"),
    sa.Index("ix_ipss_documents_code", "doc_type", "code"),
    sqlite_autoincrement=True,
)
sa.Table(
    "outbox",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("document_id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("shared_at", sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("document_id"),
    sa.Index("ix_outbox_pending", "shared_at"),
)
sa.Table(
    "tokens",
    BASELINE,
    sa.Column("access_token", sa.String(length=128), nullable=False),
    sa.Column("id_token", sa.String(length=128), nullable=False),
    sa.Column("username", sa.String(length=64), nullable=False),
    sa.Column("issued_at", sa.DateTime(), nullable=False),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["username"], ["accounts.username"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("access_token"),
)
sa.Table(
    "ipss_applications",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(length=8), nullable=False),
    sa.Column("certificate_code", sa.String(length=64), nullable=False),
    sa.Column("shared_document_id", sa.Integer(), nullable=True),
    sa.Column("request", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(length=8), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["shared_document_id"], ["ipss_documents.id"]),
    sa.PrimaryKeyConstraint("id"),
)


def upgrade() -> None:
    BASELINE.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    BASELINE.drop_all(op.get_bind(), checkfirst=True)
