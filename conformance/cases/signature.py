"""Signature cases (SIG-*): the XMLDSig in CHUKYDONVI, judged from the portal's signature report.

The portal runs named checks in order and stops early when the signature cannot be read; a check
absent from every report was not evaluated, so its case is skipped rather than passed.
"""

from __future__ import annotations

from conformance.cases.common import files, judge_checks, label
from conformance.evidence import Bundle
from conformance.model import CaseFinding, Level
from conformance.registry import CaseOutcome, SkipCase, case, verdict_of
from mock_portal.results.grades import Grade

PROFILE = "Signature profile (docs/signature-profile.md; CV 4410/BYT-KCB PL02)"
TRUST = "Signature profile §3.3 trust rules (Decree 23/2025 on digital signatures)"
NEEDS = ("submissions",)


@case(
    id="SIG-001",
    grade=Grade.CONFIRMED,
    title="Signature present in CHUKYDONVI, recognised profile, covering the data element",
    basis=PROFILE,
    area="signature",
    needs=NEEDS,
)
def signature_placed(bundle: Bundle) -> CaseOutcome:
    names = ("signature_present", "profile_recognised", "references_cover_data", "no_unsigned_data")
    return judge_checks(bundle, names, "signature in CHUKYDONVI covering the data element")


@case(
    id="SIG-002",
    grade=Grade.OBSERVED,
    title="Uses the current two-reference profile (SigningTime object + data element)",
    basis=PROFILE,
    level=Level.SHOULD,
    area="signature",
    needs=NEEDS,
)
def two_reference_profile(bundle: Bundle) -> CaseOutcome:
    signed = [s for s in files(bundle, None) if (s.get("signature") or {}).get("profile")]
    if not signed:
        raise SkipCase("no file carried a recognised signature profile")
    other = [
        CaseFinding(
            f"{label(s)}: profile {s['signature']['profile']!r}, expected 'two-reference'", submission_ids=(s["id"],)
        )
        for s in signed
        if s["signature"]["profile"] != "two-reference"
    ]
    ids = [s["id"] for s in signed]
    return verdict_of(other, f"{len(signed)} file(s) use the two-reference profile", submissions=ids)


@case(
    id="SIG-003",
    grade=Grade.OBSERVED,
    title="Signature and digest algorithms of the SHA-2 family (no SHA-1, MD5, HMAC)",
    basis=PROFILE,
    area="signature",
    needs=NEEDS,
)
def algorithms(bundle: Bundle) -> CaseOutcome:
    return judge_checks(bundle, ("algorithms_allowed",), "SHA-2 signature and digest algorithms")


@case(
    id="SIG-004",
    grade=Grade.CONFIRMED,
    title="Digests and signature value are valid",
    basis=PROFILE,
    area="signature",
    needs=NEEDS,
)
def digests_and_value(bundle: Bundle) -> CaseOutcome:
    return judge_checks(bundle, ("digests_match", "signature_value_valid"), "digests and signature value valid")


@case(
    id="SIG-005",
    grade=Grade.CONFIRMED,
    title="Certificate chains to a trusted CA",
    basis=TRUST,
    area="signature",
    needs=NEEDS,
)
def chain(bundle: Bundle) -> CaseOutcome:
    return judge_checks(bundle, ("certificate_chain_trusted",), "certificate chains to a trusted CA")


@case(
    id="SIG-006",
    grade=Grade.CONFIRMED,
    title="Certificate valid at SigningTime and at receipt",
    basis=TRUST,
    area="signature",
    needs=NEEDS,
)
def validity(bundle: Bundle) -> CaseOutcome:
    names = ("certificate_valid_at_signing_time", "certificate_valid_at_receipt")
    return judge_checks(bundle, names, "certificate valid at SigningTime and at receipt")


@case(
    id="SIG-007",
    grade=Grade.CONFIRMED,
    title="Certificate not revoked (CRL)",
    basis=TRUST,
    area="signature",
    needs=NEEDS,
)
def not_revoked(bundle: Bundle) -> CaseOutcome:
    return judge_checks(bundle, ("certificate_not_revoked",), "certificate not revoked")


@case(
    id="SIG-008",
    grade=Grade.CONFIRMED,
    title="Certificate key usage allows digitalSignature or nonRepudiation",
    basis=TRUST,
    area="signature",
    needs=NEEDS,
)
def key_usage(bundle: Bundle) -> CaseOutcome:
    return judge_checks(bundle, ("certificate_key_usage",), "key usage allows signing")


@case(
    id="SIG-009",
    grade=Grade.RECONSTRUCTED,
    title="Certificate registered for the submitting facility (Danh mục chứng thư số)",
    basis=TRUST,
    area="signature",
    needs=NEEDS,
)
def registered(bundle: Bundle) -> CaseOutcome:
    return judge_checks(bundle, ("certificate_registered_for_facility",), "certificate registered for the facility")


@case(
    id="SIG-010",
    grade=Grade.RECONSTRUCTED,
    title="SigningTime present and plausible (not after receipt, not stale)",
    basis=PROFILE,
    area="signature",
    needs=NEEDS,
)
def signing_time(bundle: Bundle) -> CaseOutcome:
    return judge_checks(bundle, ("signing_time_valid",), "SigningTime present and plausible")
