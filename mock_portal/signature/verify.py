"""Verify the XMLDSig of a GCS/GBT document against the portal's profile (docs/signature-profile.md).

`verify_signature` runs named checks in a fixed order and returns one `SignatureReport`: an
ETSI-style indication, the first failure's sub-indication, every check, and — only when the
cryptography holds — `signed_data`, the data element rebuilt from the bytes the signature covers.
Downstream code must read fields from `signed_data`, never from the received tree.

Modules: `model` (vocabulary, policy), `checks` (structure, digests),
`crypto` (SignatureValue and the signed data; why the portal's own verification and not signxml's),
`chain` (chain, CRL, registration). Stateless and thread-safe: no module state is written.

Exceptions: every problem of the signature becomes a FAILED check; only libxml2's own (`etree.LxmlError`:
a tree it cannot canonicalise or re-read, a Signature invalid against the XMLDSig schema) escape, and the
intake reports them as XML_C14N_FAILED, the file's fault.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree

from mock_portal.results.findings import Finding, Severity
from mock_portal.signature.chain import trust_checks
from mock_portal.signature.checks import (
    ENVELOPED_PROFILE,
    Ids,
    SignatureFormatError,
    check,
    check_algorithms,
    check_digests,
    check_no_unsigned_data,
    check_references,
    check_subject_name,
    locate_signature,
    parse_signature,
    passed,
    recognise_profile,
    skipped,
    stopped_by,
)
from mock_portal.signature.crypto import certificate_of, parse_signing_time, verify_crypto
from mock_portal.signature.model import (
    CertificateSummary,
    CheckName,
    CheckOutcome,
    CheckResult,
    Indication,
    SignaturePolicy,
    SubIndication,
)
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.xmldsig import canonicalisation_memo

__all__ = [
    "CertificateSummary",
    "CheckName",
    "CheckOutcome",
    "CheckResult",
    "Indication",
    "SignaturePolicy",
    "SignatureReport",
    "SubIndication",
    "verify_signature",
]


@dataclass(frozen=True)
class SignatureReport:
    """The verdict on one document's signature. Only `signed_data` may feed business rules."""

    indication: Indication
    sub_indication: SubIndication | None
    profile: str | None
    checks: tuple[CheckResult, ...]
    signing_time: datetime | None = None
    certificate: CertificateSummary | None = None
    signed_data: etree._Element | None = None
    notes: tuple[Finding, ...] = ()
    """Findings on the signature's form that are no check of its validity (SIG_X509_SUBJECT_NAME): they
    never change the indication; `fidelity` grades them."""

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    def check(self, name: CheckName) -> CheckResult:
        return next(c for c in self.checks if c.name is name)

    def failed_checks(self) -> tuple[CheckResult, ...]:
        """The failed (or indeterminate) checks, cause first (`CheckName` order): the first is the
        verdict's sub-indication and the first SIG_* finding every surface headlines."""
        return tuple(c for c in self.checks if c.outcome in (CheckOutcome.FAILED, CheckOutcome.INDETERMINATE))

    def findings(self) -> list[Finding]:
        """One SIG_* finding per failed (or indeterminate) check, in `failed_checks` order, then the notes."""
        return [
            Finding(
                code=c.name.finding_code,
                severity=Severity.ERROR,
                message_vi=c.message_vi,
                message_en=c.message_en,
                path="/*/CHUKYDONVI",
                received=c.detail,
            )
            for c in self.failed_checks()
        ] + list(self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "indication": self.indication.value,
            "sub_indication": self.sub_indication.value if self.sub_indication else None,
            "profile": self.profile,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "certificate": self.certificate.to_dict() if self.certificate else None,
            "checks": [c.to_dict() for c in self.checks],
        }


def verify_signature(
    root: etree._Element,
    *,
    data_tag: str,
    trust: TrustStore,
    facility_code: str,
    received_at: datetime,
    policy: SignaturePolicy | None = None,
) -> SignatureReport:
    """Judge the signature in `root` (already parsed by the hardened parser) for `facility_code`.

    `data_tag` is GIAYCHUNGSINH or GIAYBAOTU; `trust` a `mock_portal.signature.trust.TrustStore`;
    `received_at` (aware; naive means UTC) the portal's receipt instant.
    """
    with canonicalisation_memo():
        return _verify(root, data_tag, trust, facility_code, received_at, policy or SignaturePolicy())


def _verify(
    root: etree._Element,
    data_tag: str,
    trust: TrustStore,
    facility_code: str,
    received_at: datetime,
    policy: SignaturePolicy,
) -> SignatureReport:
    received_at = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    checks: list[CheckResult] = []
    result, sig = locate_signature(root)
    checks.append(result)
    if sig is None:
        return _finish(checks, None)
    try:
        parsed = parse_signature(sig)
    except SignatureFormatError as exc:
        checks.append(
            check(
                CheckName.PROFILE_RECOGNISED,
                CheckOutcome.FAILED,
                "Phần tử Signature không đúng cấu trúc XMLDSig.",
                f"The Signature element is malformed: {exc}",
                str(exc),
                SubIndication.FORMAT_FAILURE,
            )
        )
        return _finish(checks, None)
    result, profile = recognise_profile(parsed, policy)
    checks += [result, check_algorithms(parsed, policy)]
    notes = check_subject_name(parsed)
    if profile is None or any(c.outcome is CheckOutcome.FAILED for c in checks):
        return _finish(checks, profile, cert=parsed.certificates[0], notes=notes)
    ids = Ids.of(root)
    refs, target = check_references(ids, parsed, profile, data_tag)
    checks += [refs, check_no_unsigned_data(root, ids, parsed, data_tag, target)]
    if refs.outcome is CheckOutcome.FAILED:
        return _finish(checks, profile, cert=parsed.certificates[0], notes=notes)
    digests, payloads = check_digests(root, ids, parsed, profile)
    crypto = verify_crypto(parsed, ids, digests, payloads)
    checks += [digests, crypto.signature_check]
    signed_data, signing_time = _signed_parts(crypto.signed, profile, data_tag)
    unverified_by = None
    if not crypto.signed:  # the failed digest or SignatureValue check stops the SigningTime check
        failed = (c.name for c in checks[-2:] if c.outcome is CheckOutcome.FAILED)
        unverified_by = next(failed, CheckName.SIGNATURE_VALUE_VALID)
    signing = _signing_time_check(profile, signing_time, unverified_by, received_at, policy)
    checks.append(signing)
    leaf, intermediates = certificate_of(parsed)
    checks += trust_checks(leaf, intermediates, trust, facility_code, signing, signing_time, received_at, policy)
    ok = all(c.outcome in (CheckOutcome.PASSED, CheckOutcome.SKIPPED) for c in checks)
    signed = signed_data if ok else None
    return _finish(checks, profile, cert=leaf, signing_time=signing_time, signed_data=signed, notes=notes)


def _signed_parts(
    signed: tuple[etree._Element | None, ...], profile: str, data_tag: str
) -> tuple[etree._Element | None, datetime | None]:
    """The data element and SigningTime, read only from what the signature covers."""
    if not signed:
        return None, None
    if profile == ENVELOPED_PROFILE:
        return signed[0].find(data_tag) if signed[0] is not None else None, None
    data = signed[1] if signed[1] is not None and signed[1].tag == data_tag else None
    return data, parse_signing_time(signed[0]) if signed[0] is not None else None


def _signing_time_check(
    profile: str,
    signing_time: datetime | None,
    unverified_by: CheckName | None,
    received_at: datetime,
    policy: SignaturePolicy,
) -> CheckResult:
    name = CheckName.SIGNING_TIME_VALID
    if unverified_by is not None:
        return stopped_by(
            name,
            unverified_by,
            "khiến SigningTime không đáng tin (chữ ký không hợp lệ)",
            "left SigningTime unverified (the signature is not valid)",
        )
    if profile == ENVELOPED_PROFILE:
        return skipped(name, "hồ sơ ký enveloped không có SigningTime", "the enveloped profile carries no SigningTime")
    if signing_time is None:
        return check(
            name,
            CheckOutcome.FAILED,
            "Thiếu SigningTime hợp lệ (yyyy-MM-ddTHH:mm:ss) trong Object đã ký.",
            "No valid SigningTime (yyyy-MM-ddTHH:mm:ss) in the signed Object.",
            None,
            SubIndication.FORMAT_FAILURE,
        )
    shown = signing_time.isoformat()
    if signing_time > received_at + policy.clock_skew:
        return check(
            name,
            CheckOutcome.FAILED,
            f"SigningTime {shown} sau thời điểm tiếp nhận.",
            f"SigningTime {shown} is after receipt ({received_at.isoformat()}).",
            shown,
            SubIndication.SIG_CONSTRAINTS_FAILURE,
        )
    if signing_time < received_at - policy.max_signing_age:
        return check(
            name,
            CheckOutcome.FAILED,
            f"SigningTime {shown} quá cũ: hơn {policy.max_signing_age.days} ngày trước thời điểm tiếp nhận.",
            f"SigningTime {shown} is implausibly old: more than {policy.max_signing_age.days} days before receipt.",
            shown,
            SubIndication.SIG_CONSTRAINTS_FAILURE,
        )
    return passed(name, f"SigningTime {shown} hợp lệ.", f"SigningTime {shown} is plausible.", shown)


@functools.lru_cache(maxsize=256)
def _summary(cert: x509.Certificate) -> CertificateSummary:
    """Made once per certificate (a hospital sends the same one with every document): the names and the
    fingerprint cost more than the rest of a report."""
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


_CAUSE_ORDER = {name: index for index, name in enumerate(CheckName)}


def _finish(
    checks: list[CheckResult],
    profile: str | None,
    *,
    cert: x509.Certificate | None = None,
    signing_time: datetime | None = None,
    signed_data: etree._Element | None = None,
    notes: tuple[Finding, ...] = (),
) -> SignatureReport:
    """Fill the checks that did not run (naming the failure that stopped them), put every check in cause
    order (`CheckName`) and derive the indication from the first failure: the one cause every surface
    headlines. No "a TOTAL_FAILED outranks an INDETERMINATE" re-ranking: the cryptographic failures already
    come before the certificate's, and a sub-indication naming another check than the first finding is the
    mixed message issue 23 measured (EXPIRED beside a headline "untrusted")."""
    ran = {c.name for c in checks}
    missing = [n for n in _CAUSE_ORDER if n not in ran]
    full = tuple(checks)
    if missing:  # the verification stops early only after a failed check
        stopper = next(c.name for c in checks if c.outcome in (CheckOutcome.FAILED, CheckOutcome.INDETERMINATE))
        full += tuple(stopped_by(n, stopper, "đã dừng việc kiểm tra", "stopped the verification") for n in missing)
    full = tuple(sorted(full, key=lambda c: _CAUSE_ORDER[c.name]))
    failures = [c for c in full if c.outcome in (CheckOutcome.FAILED, CheckOutcome.INDETERMINATE)]
    first = failures[0] if failures else None
    sub = first.sub_indication if first else None
    indication = Indication.TOTAL_PASSED if first is None else (sub.indication if sub else Indication.TOTAL_FAILED)
    return SignatureReport(
        indication=indication,
        sub_indication=sub,
        profile=profile,
        checks=full,
        signing_time=signing_time,
        certificate=_summary(cert) if cert is not None else None,
        signed_data=signed_data if first is None else None,
        notes=notes,
    )
