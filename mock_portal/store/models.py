"""Tables of the portal, the simulated IPSS's included. Every time column is a `UtcDateTime`: aware UTC
in Python, naive UTC in the database (SQLite keeps no zone)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: written as naive UTC into the `DATETIME` / `timestamp without time zone` column every
    migration made, read back aware in UTC — the one place the store converts. A naive datetime names no
    instant, so writing one (or comparing a column with one) is a programming error: ValueError."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"a naive datetime names no instant; give it a time zone: {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime}


ROW_ID = BigInteger().with_variant(Integer, "sqlite")
"""Row ids, and the columns that hold one: signed 64-bit (`repository.MAX_ROW_ID`). BIGINT / BIGSERIAL on
PostgreSQL (migration 0004); on SQLite only `INTEGER PRIMARY KEY` is the 64-bit rowid (a `BIGINT`
key would not autoincrement), and every SQLite integer is 64-bit already."""


DEFAULT_WORKSPACE = "default"
"""The zero-configuration workspace: everything that names no workspace lives here."""


def workspace_column() -> Mapped[str]:
    """The workspace a row belongs to (docs/ARCHITECTURE.md, Workspaces)."""
    return mapped_column(String(32), default=DEFAULT_WORKSPACE, server_default=DEFAULT_WORKSPACE, index=True)


class Workspace(Base):
    """A tenant of a hosted sandbox: its key (as SHA-256) and its quotas (None: no limit)."""

    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    key_sha256: Mapped[str] = mapped_column(String(64), default="")
    """SHA-256 of the workspace key (empty for `default`: the operator key acts on it)."""
    created_at: Mapped[datetime]
    max_facilities: Mapped[int | None]
    max_submissions_per_minute: Mapped[int | None]
    max_documents: Mapped[int | None]


class Facility(Base):
    __tablename__ = "facilities"
    workspace_id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=DEFAULT_WORKSPACE, server_default=DEFAULT_WORKSPACE
    )
    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    strictness: Mapped[str | None] = mapped_column(String(8), default=None)
    """`portal` | `strict` for this facility; None follows PORTAL_STRICTNESS."""


class Account(Base):
    """A wire account; its name is unique across workspaces (the wire names no workspace)."""

    __tablename__ = "accounts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "facility_code"],
            ["facilities.workspace_id", "facilities.code"],
            ondelete="CASCADE",
            name="fk_accounts_facility",
        ),
    )
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    facility_code: Mapped[str] = mapped_column(String(5))
    password_md5: Mapped[str] = mapped_column(String(32), default="")
    """Legacy: the unsalted MD5 older versions stored; emptied by `mock_portal.portal.auth.upgrade_legacy_passwords`."""
    locked: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """Salted scrypt of the uppercase MD5 the wire sends (`mock_portal.portal.auth.hash_password_md5`)."""


class RegisteredCertificate(Base):
    __tablename__ = "registered_certificates"
    __table_args__ = (
        UniqueConstraint("workspace_id", "facility_code", "fingerprint", name="uq_registered_certificates"),
        ForeignKeyConstraint(
            ["workspace_id", "facility_code"],
            ["facilities.workspace_id", "facilities.code"],
            ondelete="CASCADE",
            name="fk_registered_certificates_facility",
        ),
    )
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    facility_code: Mapped[str] = mapped_column(String(5))
    fingerprint: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(1024))
    serial: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    pem: Mapped[str]
    registered_at: Mapped[datetime]


class CertificateAuthority(Base):
    __tablename__ = "certificate_authorities"
    __table_args__ = (UniqueConstraint("workspace_id", "fingerprint", name="uq_certificate_authorities"),)
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    fingerprint: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(1024))
    pem: Mapped[str]
    added_at: Mapped[datetime]


class RevocationList(Base):
    __tablename__ = "revocation_lists"
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    issuer: Mapped[str] = mapped_column(String(1024))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    revoked_count: Mapped[int]
    this_update: Mapped[datetime]
    next_update: Mapped[datetime | None]
    added_at: Mapped[datetime]


class Token(Base):
    __tablename__ = "tokens"
    access_token: Mapped[str] = mapped_column(String(128), primary_key=True)
    id_token: Mapped[str] = mapped_column(String(128))
    username: Mapped[str] = mapped_column(ForeignKey("accounts.username", ondelete="CASCADE"))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Submission(Base):
    """Every submission to the wire API, accepted or not, with its raw file and its verdict."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_facility", "facility_code"),
        Index("ix_submissions_result", "result"),
    )
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    received_at: Mapped[datetime]
    facility_code: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    loai_hs: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(String(8))
    ma_gd: Mapped[str | None] = mapped_column(String(80))
    file: Mapped[bytes | None] = mapped_column(LargeBinary)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int]
    document_code: Mapped[str | None] = mapped_column(String(64))
    explain: Mapped[str] = mapped_column(String(512))  # results.findings.EXPLAIN_CHARS (the store imports no domain)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    signature_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Document(Base):
    """An accepted certificate (GCS or GBT), keyed by its MA_GCS / MA_GBT; reissues are new rows."""

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_code", "code"), Index("ix_documents_submission", "submission_id"))
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    submission_id: Mapped[int] = mapped_column(ROW_ID, ForeignKey("submissions.id"))
    doc_type: Mapped[str] = mapped_column(String(3))
    code: Mapped[str] = mapped_column(String(64))
    facility_code: Mapped[str] = mapped_column(String(5))
    ma_gd: Mapped[str] = mapped_column(String(80))
    first_issue: Mapped[bool]
    issue_date: Mapped[str] = mapped_column(String(8))
    signing_time: Mapped[datetime | None]
    accepted_at: Mapped[datetime]
    fields: Mapped[dict[str, str]] = mapped_column(JSON)
    issue_instant: Mapped[datetime | None]
    issue_source: Mapped[str | None] = mapped_column(String(16))
    """Where the issue instant came from: expectation, signing_time or issue_date."""
    deadline: Mapped[datetime | None]
    deadline_status: Mapped[str | None] = mapped_column(String(8))
    """ON_TIME or LATE (Decree 63/2024 Art. 25.1: 4 working hours after issue)."""
    working_minutes_late: Mapped[int] = mapped_column(default=0)
    expectation_id: Mapped[int | None] = mapped_column(ROW_ID)


class OutboxEntry(Base):
    """A document to share with IPSS, written in the transaction that accepts it (exactly-once sharing)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "shared_at"),)
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    document_id: Mapped[int] = mapped_column(ROW_ID, ForeignKey("documents.id"), unique=True)
    created_at: Mapped[datetime]
    shared_at: Mapped[datetime | None]


class JournalEntry(Base):
    """One request to the wire API as the portal saw it: for the harness, the dashboard and load tests."""

    __tablename__ = "journal"
    __table_args__ = (
        Index("ix_journal_facility", "facility_code"),
        Index("ix_journal_at", "at"),
        Index("ix_journal_identity", "workspace_id", "authenticated", "id"),
    )
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    at: Mapped[datetime]
    """Sandbox time of the request."""
    real_at: Mapped[datetime]
    facility_code: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    """The wire code (maKetQua / MaKetQua), HTTP-<status> for a fault reply, or DROPPED / RESET."""
    http_status: Mapped[int | None]
    ma_gd: Mapped[str | None] = mapped_column(String(80))
    submission_id: Mapped[int | None] = mapped_column(ROW_ID)
    document_code: Mapped[str | None] = mapped_column(String(64))
    loai_hs: Mapped[str | None] = mapped_column(String(16))
    faults: Mapped[list[str]] = mapped_column(JSON)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    duration_ms: Mapped[float]
    authenticated: Mapped[bool] = mapped_column(default=True, server_default=true())
    """Whether the request proved to be its account (a right password, a token the portal issued to the
    workspace): only those meet the workspace's faults and quotas; the others are journalled apart
    (their own retention, not listed by default) so that nobody naming an account can flood its evidence."""
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 (hex) of the decoded file of a submission, when it decodes: ties every attempt to its file."""


class Expectation(Base):
    """A certificate the conformance harness asked a hospital to issue, and whether it arrived in time."""

    __tablename__ = "expectations"
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    doc_type: Mapped[str] = mapped_column(String(3))
    facility_code: Mapped[str] = mapped_column(String(5))
    issued_at: Mapped[datetime]
    deadline: Mapped[datetime]
    match: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    document_id: Mapped[int | None] = mapped_column(ROW_ID)


class SharedSetting(Base):
    """Settings every server process must agree on (the sandbox clock, the fault plans), as JSON."""

    __tablename__ = "shared_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(default=1)


class AttestationKey(Base):
    """The portal's own Ed25519 key that signs run attestations: one per deployment, not per workspace.

    Kept in the database so every worker and host agrees and a backup carries it. At most one key is
    `active` (the unique column holds True for it and NULL for every retired key); a retired key keeps
    its public half, published with its validity period so older bundles still verify, and loses its
    private half, so it can sign nothing more."""

    __tablename__ = "attestation_keys"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The key id: the first 16 hex digits of the SHA-256 of the public key's DER SubjectPublicKeyInfo."""
    public_pem: Mapped[str]
    private_pem: Mapped[str | None]
    """PKCS#8 PEM, unencrypted (whoever reads the database can sign); None once retired."""
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    active: Mapped[bool | None] = mapped_column(unique=True)


# the simulated IPSS ---------------------------------------------------------------------------------
class SharedDocument(Base):
    """IPSS's copy of an accepted GCS / GBT: the signed fields as HIAP verified them, and the sharing lag."""

    __tablename__ = "ipss_documents"
    __table_args__ = (Index("ix_ipss_documents_code", "doc_type", "code"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    """The feed cursor: increases with every share and is never reused."""
    workspace_id: Mapped[str] = workspace_column()
    document_id: Mapped[int] = mapped_column(ROW_ID, ForeignKey("documents.id"), unique=True)
    doc_type: Mapped[str] = mapped_column(String(3))
    code: Mapped[str] = mapped_column(String(64))
    facility_code: Mapped[str] = mapped_column(String(5))
    ma_gd: Mapped[str] = mapped_column(String(80))
    first_issue: Mapped[bool]
    issue_date: Mapped[str] = mapped_column(String(8))
    signing_time: Mapped[datetime | None]
    fields: Mapped[dict[str, str]] = mapped_column(JSON)
    accepted_at: Mapped[datetime]
    shared_at: Mapped[datetime]
    lag_ms: Mapped[int]
    """shared_at - accepted_at, in portal-clock milliseconds."""


class Application(Base):
    """A birth- or death-registration application filed with IPSS, accepted or refused."""

    __tablename__ = "ipss_applications"
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True)
    workspace_id: Mapped[str] = workspace_column()
    kind: Mapped[str] = mapped_column(String(8))
    """BIRTH or DEATH."""
    certificate_code: Mapped[str] = mapped_column(String(64))
    shared_document_id: Mapped[int | None] = mapped_column(ROW_ID, ForeignKey("ipss_documents.id"))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8))
    """ACCEPTED or REFUSED."""
    reasons: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    created_at: Mapped[datetime]
