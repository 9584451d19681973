"""The canonical form of an attestation and of the records it digests, and its signature check.

Canonical JSON: `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` encoded
as UTF-8 — object keys sorted by code point, no insignificant whitespace, non-ASCII characters as
themselves, integers as digits, floats as the shortest text that reads back the same. A record's
digest is the SHA-256 (hex) of its canonical JSON in the exact shape the sandbox API serves it
(`mock_portal.portal.records`), so a verifier recomputes it from evidence.jsonl: a journal line less
its `kind`; a submission line less `kind` and `file_b64` (the file is digested on its own, as bytes).

The statement is signed as its canonical JSON with Ed25519 (RFC 8032), the signature detached
(attestation.sig: base64). Ed25519 because a signature needs no random nonce (an ECDSA nonce
reused or biased gives the key away), keys and signatures are short, and there is no hash or curve
parameter for a verifier to get wrong.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "FORMAT",
    "canonical",
    "digest",
    "file_digest",
    "journal_digest",
    "key_id",
    "signature_valid",
    "submission_digest",
]

FORMAT = "vn-civil-cert-sandbox/run-attestation/1"
"""The statement's `format`: a verifier refuses a statement of a format it does not know."""

Json = dict[str, Any]
NOT_RECORD = ("kind", "file_b64")
"""Keys of an evidence line that the sandbox API does not serve: the line's kind, the file fetched apart."""


def canonical(value: Any) -> bytes:
    """The canonical JSON of `value` (JSON types only: anything else is a bug, raised as TypeError)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def journal_digest(entry: Json) -> str:
    """A journal entry as `GET /sandbox/journal` serves it (or as an evidence line holds it)."""
    return digest({k: v for k, v in entry.items() if k not in NOT_RECORD})


def submission_digest(submission: Json) -> str:
    """A submission as `GET /sandbox/submissions/{id}` serves it (or as an evidence line holds it)."""
    return digest({k: v for k, v in submission.items() if k not in NOT_RECORD})


def file_digest(data: bytes | None) -> str | None:
    """The stored file's SHA-256 (None: the portal stored no decodable file)."""
    return hashlib.sha256(data).hexdigest() if data is not None else None


def key_id(public_pem: bytes) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its DER SubjectPublicKeyInfo."""
    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def signature_valid(public_pem: bytes, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is an Ed25519 signature of `data` by the key in `public_pem` (False for a PEM
    that holds no Ed25519 public key)."""
    try:
        key = serialization.load_pem_public_key(public_pem)
    except ValueError:
        return False
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
