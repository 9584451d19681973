"""Vocabulary of signature verification: indications, check names, check results, policy.

Kept apart from the verifier so the checks (`checks`) and the report (`verify`) share
one set of types without importing each other. Names follow ETSI EN 319 102-1 / EU DSS so a vendor
who knows those tools reads the report without a glossary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mock_portal.signature.xmldsig import DigestMethod, SignatureMethod

__all__ = [
    "CertificateSummary",
    "CheckName",
    "CheckOutcome",
    "CheckResult",
    "Indication",
    "SignaturePolicy",
    "SubIndication",
]


class Indication(StrEnum):
    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(StrEnum):
    """ETSI sub-indications; `indication` says under which main indication each one falls."""

    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    """Revoked, and the signer's own SigningTime is at or after the revocation (or there is none)."""
    REVOKED_NO_POE = "REVOKED_NO_POE"
    """Revoked after the SigningTime the signer claims: a claim is no proof of existence (POE) before it."""
    EXPIRED = "EXPIRED"
    """The signer's own SigningTime lies after the certificate's notAfter."""
    NOT_YET_VALID = "NOT_YET_VALID"
    """The signer's own SigningTime lies before the certificate's notBefore."""
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    """Outside its validity at receipt (the portal's own instant), with no proof it was signed inside it."""
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    TRY_LATER = "TRY_LATER"

    @property
    def indication(self) -> Indication:
        if self in _TOTAL_FAILED:
            return Indication.TOTAL_FAILED
        return Indication.INDETERMINATE


_TOTAL_FAILED = frozenset(
    {
        SubIndication.FORMAT_FAILURE,
        SubIndication.HASH_FAILURE,
        SubIndication.SIG_CRYPTO_FAILURE,
        SubIndication.REVOKED,
        SubIndication.EXPIRED,
        SubIndication.NOT_YET_VALID,
    }
)


class CheckOutcome(StrEnum):
    """How one signature check came out (a `CheckResult`'s `outcome`)."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    INDETERMINATE = "INDETERMINATE"
    SKIPPED = "SKIPPED"


class CheckName(StrEnum):
    """The checks, in the order they run; the value is the stable name used in reports and findings.

    This order is also the order of causes, the one every surface shows (`SignatureReport.failed_checks`):
    each check judges only what the checks before it established (the certificate checks run on the
    chain found), so the first that fails is the cause and a later one cannot run without its
    predecessors or fails because of them.
    """

    SIGNATURE_PRESENT = "signature_present"
    PROFILE_RECOGNISED = "profile_recognised"
    ALGORITHMS_ALLOWED = "algorithms_allowed"
    REFERENCES_COVER_DATA = "references_cover_data"
    NO_UNSIGNED_DATA = "no_unsigned_data"
    DIGESTS_MATCH = "digests_match"
    SIGNATURE_VALUE_VALID = "signature_value_valid"
    SIGNING_TIME_VALID = "signing_time_valid"
    CHAIN_TRUSTED = "certificate_chain_trusted"
    VALID_AT_SIGNING_TIME = "certificate_valid_at_signing_time"
    VALID_AT_RECEIPT = "certificate_valid_at_receipt"
    NOT_REVOKED = "certificate_not_revoked"
    KEY_USAGE = "certificate_key_usage"
    REGISTERED = "certificate_registered_for_facility"

    @property
    def finding_code(self) -> str:
        return _FINDING_CODES[self]


_FINDING_CODES = {
    CheckName.SIGNATURE_PRESENT: "SIG_MISSING",
    CheckName.PROFILE_RECOGNISED: "SIG_PROFILE_UNKNOWN",
    CheckName.ALGORITHMS_ALLOWED: "SIG_ALGORITHM_REFUSED",
    CheckName.REFERENCES_COVER_DATA: "SIG_REFERENCES_INCOMPLETE",
    CheckName.NO_UNSIGNED_DATA: "SIG_UNSIGNED_DATA",
    CheckName.DIGESTS_MATCH: "SIG_DIGEST_MISMATCH",
    CheckName.SIGNATURE_VALUE_VALID: "SIG_VALUE_INVALID",
    CheckName.SIGNING_TIME_VALID: "SIG_SIGNING_TIME_INVALID",
    CheckName.CHAIN_TRUSTED: "SIG_CERT_UNTRUSTED",
    CheckName.VALID_AT_SIGNING_TIME: "SIG_CERT_INVALID_AT_SIGNING_TIME",
    CheckName.VALID_AT_RECEIPT: "SIG_CERT_INVALID_AT_RECEIPT",
    CheckName.NOT_REVOKED: "SIG_CERT_REVOKED",
    CheckName.KEY_USAGE: "SIG_CERT_KEY_USAGE",
    CheckName.REGISTERED: "SIG_CERT_NOT_REGISTERED",
}


@dataclass(frozen=True)
class CheckResult:
    """One named check. `sub_indication` is what a FAILED/INDETERMINATE outcome means in ETSI terms."""

    name: CheckName
    outcome: CheckOutcome
    message_vi: str
    message_en: str
    detail: str | None = None
    sub_indication: SubIndication | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name.value,
            "outcome": self.outcome.value,
            "message_vi": self.message_vi,
            "message_en": self.message_en,
            "detail": self.detail,
            "sub_indication": self.sub_indication.value if self.sub_indication else None,
        }


@dataclass(frozen=True)
class CertificateSummary:
    subject: str
    issuer: str
    serial: str
    sha256: str
    not_before: datetime
    not_after: datetime

    def to_dict(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


_SAFE_SIGNATURES = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
    }
)
_SAFE_DIGESTS = frozenset({DigestMethod.SHA256, DigestMethod.SHA384, DigestMethod.SHA512})


@dataclass(frozen=True)
class SignaturePolicy:
    """What the portal accepts. Make variants with `dataclasses.replace`."""

    signature_methods: frozenset[SignatureMethod] = field(default=_SAFE_SIGNATURES)
    """SignatureMethod URIs accepted (§3.3: RSA-SHA256/384/512, ECDSA-SHA256; never SHA-1, MD5, HMAC)."""

    digest_methods: frozenset[DigestMethod] = field(default=_SAFE_DIGESTS)
    """DigestMethod URIs accepted in References (SHA-1 and MD5 are collision-broken)."""

    clock_skew: timedelta = timedelta(minutes=5)
    """How far SigningTime may lie after receipt: hospital clocks drift and are not NTP-synchronised."""

    max_signing_age: timedelta = timedelta(days=90)
    """SigningTime older than receipt minus this is implausible (a replayed or mis-set clock)."""

    require_crl: bool = False
    """True: no CRL for the issuer gives INDETERMINATE/TRY_LATER; False: the revocation check is skipped."""

    accept_enveloped: bool = True
    """Accept the older single enveloped Reference (URI="") used by claim-file signers."""
