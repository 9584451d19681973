"""Workspaces: one hosted sandbox, many vendors (docs/ARCHITECTURE.md, Workspaces).

Adds the `workspaces` table (with the `default` workspace every existing row moves into) and a
`workspace_id` column to every table a workspace owns. Facility codes become unique per workspace
(primary key `(workspace_id, code)`, the account and certificate foreign keys follow), and so do
CA fingerprints and certificate registrations. PostgreSQL changes the keys in place; SQLite, which
cannot alter a key, rebuilds those four tables (new table, copy, drop, rename) with foreign keys off
(`mock_portal.store.migrate.upgrade`), so no cascade fires while the old tables go.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DEFAULT = "default"
OWNED = (
    "facilities",
    "accounts",
    "registered_certificates",
    "certificate_authorities",
    "revocation_lists",
    "submissions",
    "documents",
    "journal",
    "expectations",
    "ipss_documents",
    "ipss_applications",
)
INDEXED = tuple(t for t in OWNED if t != "facilities")
REBUILT = ("facilities", "accounts", "registered_certificates", "certificate_authorities")


def _workspace() -> sa.Column[str]:
    return sa.Column("workspace_id", sa.String(length=32), server_default=DEFAULT, nullable=False)


def _new_tables(metadata: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
    """The four re-keyed tables as this revision defines them (frozen here, not read from the models)."""
    facilities = sa.Table(
        f"facilities{suffix}",
        metadata,
        sa.Column("workspace_id", sa.String(length=32), server_default=DEFAULT, nullable=False),
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("strictness", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "code"),
    )
    accounts = sa.Table(
        f"accounts{suffix}",
        metadata,
        sa.Column("username", sa.String(length=64), nullable=False),
        _workspace(),
        sa.Column("facility_code", sa.String(length=5), nullable=False),
        sa.Column("password_md5", sa.String(length=32), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("username"),
        sa.ForeignKeyConstraint(
            ["workspace_id", "facility_code"],
            [f"facilities{suffix}.workspace_id", f"facilities{suffix}.code"],
            ondelete="CASCADE",
            name="fk_accounts_facility",
        ),
    )
    registered = sa.Table(
        f"registered_certificates{suffix}",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("facility_code", sa.String(length=5), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("not_after", sa.DateTime(), nullable=False),
        sa.Column("pem", sa.String(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "facility_code", "fingerprint", name="uq_registered_certificates"),
        sa.ForeignKeyConstraint(
            ["workspace_id", "facility_code"],
            [f"facilities{suffix}.workspace_id", f"facilities{suffix}.code"],
            ondelete="CASCADE",
            name="fk_registered_certificates_facility",
        ),
    )
    authorities = sa.Table(
        f"certificate_authorities{suffix}",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("pem", sa.String(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "fingerprint", name="uq_certificate_authorities"),
    )
    return {
        "facilities": facilities,
        "accounts": accounts,
        "registered_certificates": registered,
        "certificate_authorities": authorities,
    }


def upgrade() -> None:
    """Idempotent like 0001 and 0002: a database the portal built from its models before migrations
    existed may have any of these already, so each step is taken only when missing."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if not inspector.has_table("workspaces"):
        _create_workspaces()
    for table in OWNED:
        if "workspace_id" not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, _workspace())
    if "workspace_id" not in inspector.get_pk_constraint("facilities")["constrained_columns"]:
        if bind.dialect.name == "sqlite":
            _rebuild_sqlite(bind)
        else:
            _rekey_in_place(bind)
    for table in INDEXED:
        if f"ix_{table}_workspace_id" not in {i["name"] for i in sa.inspect(bind).get_indexes(table)}:
            op.create_index(f"ix_{table}_workspace_id", table, ["workspace_id"])


def _create_workspaces() -> None:
    workspaces = op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("max_facilities", sa.Integer(), nullable=True),
        sa.Column("max_submissions_per_minute", sa.Integer(), nullable=True),
        sa.Column("max_documents", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(workspaces, [{"id": DEFAULT, "name": DEFAULT, "key_sha256": "", "created_at": now}])


def _rebuild_sqlite(bind: sa.Connection) -> None:
    """New table, copy, drop, rename — the way SQLite changes a key (its 12-step ALTER recipe)."""
    tables = _new_tables(sa.MetaData(), "__new")
    for name in REBUILT:
        tables[name].create(bind)
        columns = ", ".join(c.name for c in tables[name].columns)
        bind.execute(sa.text(f"INSERT INTO {name}__new ({columns}) SELECT {columns} FROM {name}"))
    for name in reversed(REBUILT[:3]):  # children first (foreign keys are off, nothing cascades)
        op.drop_table(name)
    op.drop_table("certificate_authorities")
    for name in REBUILT:
        op.rename_table(f"{name}__new", name)
    # the rename rewrote the references to `facilities__new` inside the two child tables
    problems = bind.execute(sa.text("PRAGMA foreign_key_check")).fetchall()
    if problems:
        raise RuntimeError(f"foreign keys broken by the workspace migration: {problems[:5]}")


def _rekey_in_place(bind: sa.Connection) -> None:
    """PostgreSQL: swap the keys with ALTER (names of the old constraints read from the catalogue)."""
    inspector = sa.inspect(bind)
    for child in ("accounts", "registered_certificates"):
        for fk in inspector.get_foreign_keys(child):
            if fk["referred_table"] == "facilities" and (name := fk.get("name")):
                op.drop_constraint(name, child, type_="foreignkey")
    pk = inspector.get_pk_constraint("facilities").get("name") or "facilities_pkey"
    op.drop_constraint(pk, "facilities", type_="primary")
    op.create_primary_key("facilities_pkey", "facilities", ["workspace_id", "code"])
    for table, old_columns in (
        ("registered_certificates", ["facility_code", "fingerprint"]),
        ("certificate_authorities", ["fingerprint"]),
    ):
        for unique in inspector.get_unique_constraints(table):
            if unique["column_names"] == old_columns and (name := unique.get("name")):
                op.drop_constraint(name, table, type_="unique")
    op.create_unique_constraint(
        "uq_registered_certificates", "registered_certificates", ["workspace_id", "facility_code", "fingerprint"]
    )
    op.create_unique_constraint(
        "uq_certificate_authorities", "certificate_authorities", ["workspace_id", "fingerprint"]
    )
    for child in ("accounts", "registered_certificates"):
        op.create_foreign_key(
            f"fk_{child}_facility",
            child,
            "facilities",
            ["workspace_id", "facility_code"],
            ["workspace_id", "code"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    raise NotImplementedError("workspaces cannot be merged back into one portal; restore a backup instead")
