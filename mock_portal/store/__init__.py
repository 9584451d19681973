"""Persistence of the portal: SQLAlchemy 2 models, Alembic migrations and a repository (SQLite file by
default, PostgreSQL for several hosts). At the bottom of the house: imports no other mock_portal package."""

from mock_portal.store.models import (
    DEFAULT_WORKSPACE,
    Account,
    Application,
    AttestationKey,
    Base,
    CertificateAuthority,
    Document,
    Expectation,
    Facility,
    JournalEntry,
    OutboxEntry,
    RegisteredCertificate,
    RevocationList,
    SharedDocument,
    SharedSetting,
    Submission,
    Token,
    Workspace,
)
from mock_portal.store.repository import Repository, create_engine_for

__all__ = [
    "DEFAULT_WORKSPACE",
    "Account",
    "Application",
    "AttestationKey",
    "Base",
    "CertificateAuthority",
    "Document",
    "Expectation",
    "Facility",
    "JournalEntry",
    "OutboxEntry",
    "RegisteredCertificate",
    "Repository",
    "RevocationList",
    "SharedDocument",
    "SharedSetting",
    "Submission",
    "Token",
    "Workspace",
    "create_engine_for",
]
