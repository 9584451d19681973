"""Trust store: configured CAs, their CRLs and the certificates registered per facility.

Why a frozen snapshot: the portal builds it from its database, caches it and reads it from many
threads; nothing here mutates, so a request sees one consistent view. Each question the signature
profile asks (docs/signature-profile.md) is a separate method returning a small verdict, so the verifier can
report EXPIRED vs NOT_YET_VALID vs REVOKED precisely instead of one opaque "invalid chain".

Exceptions::

    TrustError            a certificate or CRL that cannot be loaded (bad PEM/DER)
    └── TrustFileError    a file the user named for the trust store: unreadable or not what it should be
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

__all__ = [
    "ChainResult",
    "RevocationResult",
    "RevocationStatus",
    "TrustError",
    "TrustFileError",
    "TrustStore",
    "certificates_from",
    "fingerprint",
    "load_certificates",
    "load_crl",
    "trust_from_files",
]


_Result = TypeVar("_Result")
_Loaded = TypeVar("_Loaded")
MEMO_ENTRIES = 1024
"""Most remembered chain and revocation results per trust store (then it starts over)."""
MAX_PATH = 8
"""Most certificates in a path (leaf and intermediates) before the search gives up."""


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


class TrustFileError(TrustError):
    """A file the user named (`--trust`, `--crl`, `--cert`) that cannot be read or loaded; the message
    names the option and the file, so a command line prints it as it is."""


def _load(path: Path, option: str, loader: Callable[[bytes], _Loaded]) -> _Loaded:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustFileError(f"{option} {path}: {exc.strerror or exc}") from exc
    try:
        return loader(data)
    except TrustError as exc:
        raise TrustFileError(f"{option} {path}: {exc}") from exc


def certificates_from(path: Path, option: str) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM/DER file the user named with `option`."""
    return _load(path, option, load_certificates)


def trust_from_files(cas: list[Path], crls: list[Path]) -> TrustStore:
    """The trust store of the CA certificates (`--trust`) and CRLs (`--crl`) the user named: what the
    offline commands (`conformance check`, `mock-portal rejudge`) judge with."""
    return TrustStore(
        cas=tuple(cert for path in cas for cert in certificates_from(path, "--trust")),
        crls=tuple(_load(path, "--crl", load_crl) for path in crls),
    )


def _unpickled(
    cas: tuple[bytes, ...], crls: tuple[bytes, ...], registrations: dict[str, tuple[str, ...]]
) -> TrustStore:
    return TrustStore(
        cas=tuple(x509.load_der_x509_certificate(data) for data in cas),
        crls=tuple(x509.load_der_x509_crl(data) for data in crls),
        registrations={code: frozenset(fps) for code, fps in registrations.items()},
    )


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
    _memo: dict[tuple[object, ...], object] = field(default_factory=dict, init=False, repr=False)
    """Results of `build_chain` and `revocation`, which depend only on their arguments and this store's
    fixed CAs and CRLs (a trust change builds a new store): a hospital's certificate is checked once per
    process, not on every submission. Bounded: cleared when full (any number of distinct certificates
    may arrive)."""

    def __post_init__(self) -> None:
        frozen = {code: frozenset(fp.lower() for fp in fps) for code, fps in self.registrations.items()}
        object.__setattr__(self, "cas", tuple(self.cas))
        object.__setattr__(self, "crls", tuple(self.crls))
        object.__setattr__(self, "registrations", MappingProxyType(frozen))

    def __reduce__(self) -> tuple[Callable[..., TrustStore], tuple[object, ...]]:
        """Pickled as DER (cryptography's objects do not pickle), for a process that judges on the side
        (`evidence/shadow.py`); the memo starts empty there."""
        der = serialization.Encoding.DER
        cas = tuple(cert.public_bytes(der) for cert in self.cas)
        crls = tuple(crl.public_bytes(der) for crl in self.crls)
        return _unpickled, (cas, crls, {code: tuple(fps) for code, fps in self.registrations.items()})

    def build_chain(self, leaf: x509.Certificate, intermediates: tuple[x509.Certificate, ...] = ()) -> ChainResult:
        """Find a path from `leaf` to a configured CA by names and signatures, at no instant.

        Why not `cryptography.x509.verification`: it judges every certificate at one instant, so a
        leaf that expired (or a CA certificate renewed since) leaves no instant where the whole path
        is valid and the answer is "no chain" instead of "expired". Validity (at SigningTime and at
        receipt), revocation and key usage are judged afterwards on the path found, each its own check.
        """
        key = ("chain", leaf, tuple(intermediates))
        return self._remember(key, lambda: self._build_chain(leaf, intermediates))

    def _remember(self, key: tuple[object, ...], compute: Callable[[], _Result]) -> _Result:
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_ENTRIES:
                self._memo.clear()
            found = self._memo[key] = compute()
        return cast(_Result, found)  # a key's entry is what its `compute` returned (keys name their kind)

    def _build_chain(self, leaf: x509.Certificate, intermediates: tuple[x509.Certificate, ...]) -> ChainResult:
        if not self.cas:
            return ChainResult(False, reason="no CA configured")
        path = [leaf]
        while len(path) <= MAX_PATH:
            below = len(path) - 1  # CA certificates between the next issuer and the leaf
            anchor = next((ca for ca in self.cas if _issued_by(path[-1], ca, below)), None)
            if anchor is not None:
                return ChainResult(True, chain=(*path, anchor))
            step = next((c for c in intermediates if c not in path and _issued_by(path[-1], c, below)), None)
            if step is None:
                stuck = path[-1]
                return ChainResult(
                    False,
                    reason=f"no configured CA (nor a CA certificate sent with it) issued "
                    f"{stuck.subject.rfc4514_string()}; its issuer is {stuck.issuer.rfc4514_string()}",
                )
            path.append(step)
        return ChainResult(False, reason=f"no path to a configured CA within {MAX_PATH} certificates")

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
        return self._remember(("revocation", cert, issuer), lambda: self._revocation(cert, issuer))

    def _revocation(self, cert: x509.Certificate, issuer: x509.Certificate) -> RevocationResult:
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
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]  # a key that cannot sign: TypeError below
    except (TypeError, ValueError):
        return False


def _utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _issued_by(child: x509.Certificate, issuer: x509.Certificate, below: int) -> bool:
    """`issuer` is a CA certificate allowed to sign certificates (BasicConstraints cA, KeyUsage keyCertSign
    when present, a path length that admits the `below` CA certificates under it) whose name is the
    child's issuer and whose key signed it. No instant is judged here."""
    try:
        basic = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not basic.ca or (basic.path_length is not None and below > basic.path_length):
        return False
    try:
        if not issuer.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
