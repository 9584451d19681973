"""The deployment's attestation key: made on first need, rotated by the operator, published for ever.

One key signs at a time (the `active` row, `store.AttestationKey`); it lives in the database, so every
worker process and host of a deployment signs with the same key and a backup carries it. Rotating
makes a new key and retires the old one in one transaction: the old public half stays published with
its validity period (`created_at` to `retired_at`) so bundles it signed still verify; its private half
is erased, so it can sign nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mock_portal import store
from mock_portal.attestation.canonical import key_id
from mock_portal.portal.records import iso

__all__ = ["PublishedKey", "SigningKey", "published", "rotate", "signing_key"]

ALGORITHM = "Ed25519"


@dataclass(frozen=True)
class PublishedKey:
    """A key as the portal publishes it (`GET /sandbox/attestation-keys`)."""

    id: str
    public_pem: str
    created_at: datetime
    retired_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "algorithm": ALGORITHM,
            "public_pem": self.public_pem,
            "valid_from": iso(self.created_at),
            "valid_until": iso(self.retired_at),
            "status": "retired" if self.retired_at else "active",
        }


@dataclass(frozen=True)
class SigningKey:
    """The active key with its private half: sign with it, never store it elsewhere."""

    id: str
    private: Ed25519PrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def _now() -> datetime:
    """Keys live on real time (the sandbox clock is a rehearsal's)."""
    return datetime.now(UTC)


def _new_key(now: datetime) -> store.AttestationKey:
    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return store.AttestationKey(
        id=key_id(public_pem),
        public_pem=public_pem.decode(),
        private_pem=private_pem.decode(),
        created_at=now,
        retired_at=None,
        active=True,
    )


def _signing(row: store.AttestationKey) -> SigningKey:
    private = serialization.load_pem_private_key((row.private_pem or "").encode(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise TypeError(f"attestation key {row.id} is not an Ed25519 key")
    return SigningKey(row.id, private)


def signing_key(repo: store.Repository) -> SigningKey:
    """The active key, made now if the deployment has none (a worker that loses the race reads the winner's)."""
    row = repo.active_attestation_key()
    while row is None:
        repo.add_attestation_key(_new_key(_now()))
        row = repo.active_attestation_key()
    return _signing(row)


def rotate(repo: store.Repository) -> tuple[PublishedKey, PublishedKey | None]:
    """A new active key, and the one it replaced (None: the deployment had none), retired now with its
    private half erased."""
    before = repo.active_attestation_key()
    new = _new_key(_now())
    while not repo.add_attestation_key(new, retire_at=new.created_at):  # a concurrent first key: go again
        before, new = repo.active_attestation_key(), _new_key(_now())
    keys = {r.id: PublishedKey(r.id, r.public_pem, r.created_at, r.retired_at) for r in repo.attestation_keys()}
    return keys[new.id], keys[before.id] if before is not None else None


def published(repo: store.Repository) -> list[PublishedKey]:
    """Every key the deployment signs or signed with, the oldest first: public halves and validity only.
    Asking is a first need too: a verifier may pin the key before the first run is attested."""
    signing_key(repo)
    return [PublishedKey(r.id, r.public_pem, r.created_at, r.retired_at) for r in repo.attestation_keys()]
