"""Trust store: configured CAs, their CRLs and the certificates registered per facility.

Why a frozen snapshot: the portal builds it from its database, caches it and reads it from many
threads; nothing here mutates, so a request sees one consistent view. Each question the signature
profile asks (docs/signature-profile.md) is a separate method returning a small verdict, so the verifier can
report EXPIRED vs NOT_YET_VALID vs REVOKED precisely instead of one opaque "invalid chain".

Exceptions::

    TrustError            a certificate or CRL that cannot be loaded (bad PEM/DER)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import verification

__all__ = [
    "ChainResult",
    "RevocationResult",
    "RevocationStatus",
    "TrustError",
    "TrustStore",
    "fingerprint",
    "load_certificates",
    "load_crl",
]


class TrustError(ValueError):
    """A certificate or CRL could not be loaded."""


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, lowercase hex without separators (the registration key)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def load_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    """Load one DER certificate or one or more PEM certificates."""
    try:
        if b"-----BEGIN" in data:
            certs = tuple(x509.load_pem_x509_certificates(data))
        else:
            certs = (x509.load_der_x509_certificate(data),)
    except ValueError as exc:
        raise TrustError(f"not a valid X.509 certificate (PEM or DER): {exc}") from exc
    return certs


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """Load a CRL in PEM or DER."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise TrustError(f"not a valid CRL (PEM or DER): {exc}") from exc


@dataclass(frozen=True)
class ChainResult:
    """Outcome of building a path from a leaf to a configured CA (validity period not judged here)."""

    ok: bool
    chain: tuple[x509.Certificate, ...] = ()
    reason: str = ""


class RevocationStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RevocationResult:
    status: RevocationStatus
    revoked_at: datetime | None = None
    reason: str = ""


@dataclass(frozen=True, eq=False)
class TrustStore:
    """An immutable snapshot of what the portal trusts. Cheap to build; safe to share across threads.

    Compared and hashed by identity (eq=False) so it can key a cache.
    """

    cas: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    registrations: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {code: frozenset(fp.lower() for fp in fps) for code, fps in self.registrations.items()}
        object.__setattr__(self, "cas", tuple(self.cas))
        object.__setattr__(self, "crls", tuple(self.crls))
        object.__setattr__(self, "registrations", MappingProxyType(frozen))

    def build_chain(self, leaf: x509.Certificate, intermediates: tuple[x509.Certificate, ...] = ()) -> ChainResult:
        """Find a path from `leaf` to a configured CA, ignoring validity periods and key usage.

        Validity is judged separately (at SigningTime and at receipt) and key usage too, so the path
        is built at an instant inside the leaf's validity with a policy that does not require the
        end-entity extensions: each failure then has its own check and message.
        """
        if not self.cas:
            return ChainResult(False, reason="no CA configured")
        at = _inside(leaf)
        try:
            builder = (
                verification.PolicyBuilder()
                .store(verification.Store(list(self.cas)))
                .time(at)
                .extension_policies(
                    ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                    ee_policy=verification.ExtensionPolicy.permit_all(),
                )
            )
            verifier = builder.build_client_verifier()
            result = verifier.verify(leaf, list(intermediates))
        except (verification.VerificationError, ValueError) as exc:
            return ChainResult(False, reason=str(exc))
        return ChainResult(True, chain=tuple(result.chain))

    @staticmethod
    def validity_at(cert: x509.Certificate, instant: datetime) -> str | None:
        """None when `cert` is valid at `instant`, else "EXPIRED" or "NOT_YET_VALID"."""
        instant = _utc(instant)
        if instant < cert.not_valid_before_utc:
            return "NOT_YET_VALID"
        if instant > cert.not_valid_after_utc:
            return "EXPIRED"
        return None

    def revocation(self, cert: x509.Certificate, issuer: x509.Certificate) -> RevocationResult:
        """Look `cert` up in a CRL for `issuer` that `issuer` really signed; UNKNOWN when there is none."""
        crls = [c for c in self.crls if c.issuer == issuer.subject and _signed_by(c, issuer)]
        if not crls:
            return RevocationResult(RevocationStatus.UNKNOWN, reason=f"no CRL for {issuer.subject.rfc4514_string()}")
        for crl in crls:
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                return RevocationResult(RevocationStatus.REVOKED, revoked_at=entry.revocation_date_utc)
        return RevocationResult(RevocationStatus.GOOD)

    @staticmethod
    def key_usage_ok(cert: x509.Certificate) -> bool:
        """digitalSignature or nonRepudiation (contentCommitment); a certificate without KeyUsage fails."""
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return False
        return usage.digital_signature or usage.content_commitment

    def is_registered(self, cert: x509.Certificate, facility_code: str) -> bool:
        return fingerprint(cert) in self.registrations.get(facility_code, frozenset())

    def facilities_of(self, cert: x509.Certificate) -> tuple[str, ...]:
        """Facility codes the certificate is registered for (to say "registered, but for 79002")."""
        fp = fingerprint(cert)
        return tuple(sorted(code for code, fps in self.registrations.items() if fp in fps))


def _signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _inside(cert: x509.Certificate) -> datetime:
    """An instant inside the leaf's validity (its midpoint), for path building only."""
    return cert.not_valid_before_utc + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2
