"""verify_signature: the good profiles pass, every tampering and trust failure is named precisely."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from lxml import etree

from fixtures.pki import CertVariant, Credential, TestPKI
from fixtures.signer import (
    add_unsigned_twin,
    move_signed_element,
    sign_document,
    tamper_field,
    transplant_signature,
    unsigned_sample,
)
from mock_portal.results.findings import Severity
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import (
    CheckName,
    CheckOutcome,
    Indication,
    SignaturePolicy,
    SignatureReport,
    SubIndication,
    verify_signature,
)
from mock_portal.signature.xmldsig import C14nVariant, DigestMethod, SignatureMethod

FACILITY = "79001"
OTHER = "79002"
DATA_ID = "Id-8d7c6b5a-0000-4000-8000-000000000001"


@dataclasses.dataclass(frozen=True)
class Env:
    pki: TestPKI
    creds: dict[CertVariant, Credential]
    other: Credential
    trust: TrustStore

    def sign(self, variant: CertVariant = CertVariant.VALID, **kwargs: object) -> bytes:
        cred = self.creds[variant]
        kwargs.setdefault("signing_time", self.pki.now - timedelta(minutes=10))
        return sign_document(unsigned_sample(data_id=DATA_ID), cred.key, cred.cert, chain=cred.chain, **kwargs)  # type: ignore[arg-type]

    def verify(self, xml: bytes, facility: str = FACILITY, **kwargs: object) -> SignatureReport:
        return verify_signature(
            etree.fromstring(xml),
            data_tag="GIAYCHUNGSINH",
            trust=self.trust,
            facility_code=facility,
            received_at=self.pki.now,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def env() -> Env:
    pki = TestPKI.create({FACILITY: "Bệnh viện Từ Dũ", OTHER: "Bệnh viện Hùng Vương"}, intermediate=True)
    creds = {v: pki.issue_facility_cert(FACILITY, v) for v in CertVariant}
    other = pki.issue_facility_cert(OTHER)
    registered = frozenset(c.fingerprint for v, c in creds.items())
    trust = TrustStore(
        cas=pki.ca_certs,
        crls=(pki.crl(),),
        registrations={FACILITY: registered, OTHER: frozenset({other.fingerprint})},
    )
    return Env(pki, creds, other, trust)


@pytest.mark.parametrize("profile", ["two-reference", "enveloped"])
@pytest.mark.parametrize("variant", [CertVariant.VALID, CertVariant.ECDSA])
def test_reference_signer_passes(env: Env, profile: str, variant: CertVariant) -> None:
    report = env.verify(env.sign(variant, profile=profile))
    assert report.indication is Indication.TOTAL_PASSED, report.failed_checks()
    assert report.sub_indication is None
    assert report.profile == profile
    assert report.findings() == []
    assert report.signed_data is not None and report.signed_data.tag == "GIAYCHUNGSINH"
    assert report.signed_data.findtext("HOTEN_NND") == "Nguyễn Thị An"
    assert report.certificate is not None and report.certificate.sha256 == env.creds[variant].fingerprint
    if profile == "two-reference":
        assert report.signing_time == env.pki.now - timedelta(minutes=10)
    else:
        assert report.signing_time is None
        assert report.check(CheckName.SIGNING_TIME_VALID).outcome is CheckOutcome.SKIPPED


def test_report_to_dict_is_json_ready(env: Env) -> None:
    data = env.verify(env.sign()).to_dict()
    assert data["indication"] == "TOTAL_PASSED"
    assert "signed_data" not in data
    assert [c["name"] for c in data["checks"]] == [n.value for n in CheckName]


def _other_content(env: Env) -> bytes:
    cred = env.creds[CertVariant.VALID]
    other = sign_document(
        unsigned_sample(data_id=DATA_ID, name="Trần Thị Bình"), cred.key, cred.cert, signing_time=env.pki.now
    )
    return transplant_signature(other, unsigned_sample(data_id=DATA_ID))


Case = Callable[[Env], bytes]
BAD_CASES: list[tuple[str, Case, Indication, SubIndication, CheckName]] = [
    (
        "unsigned",
        lambda e: unsigned_sample(data_id=DATA_ID),
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
        CheckName.SIGNATURE_PRESENT,
    ),
    (
        "changed-after-signing",
        lambda e: tamper_field(e.sign(), "HOTEN_NND", "Lê Văn C"),
        Indication.TOTAL_FAILED,
        SubIndication.HASH_FAILURE,
        CheckName.DIGESTS_MATCH,
    ),
    (
        "signature-over-other-content",
        _other_content,
        Indication.TOTAL_FAILED,
        SubIndication.HASH_FAILURE,
        CheckName.DIGESTS_MATCH,
    ),
    (
        "wrapping-unsigned-twin",
        lambda e: add_unsigned_twin(e.sign(), "HOTEN_NND", "Lê Văn C"),
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
        CheckName.NO_UNSIGNED_DATA,
    ),
    (
        "wrapping-moved-signed-element",
        lambda e: move_signed_element(e.sign(), "HOTEN_NND", "Lê Văn C"),
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
        CheckName.NO_UNSIGNED_DATA,
    ),
    (
        "sha1",
        lambda e: e.sign(signature_method=SignatureMethod.RSA_SHA1, digest=DigestMethod.SHA1),
        Indication.INDETERMINATE,
        SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
        CheckName.ALGORITHMS_ALLOWED,
    ),
    (
        "sha1-digest-only",
        lambda e: e.sign(digest=DigestMethod.SHA1),
        Indication.INDETERMINATE,
        SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
        CheckName.ALGORITHMS_ALLOWED,
    ),
    (
        "hmac",
        lambda e: e.sign(signature_method=SignatureMethod.HMAC_SHA256, hmac_key=b"shared-secret"),
        Indication.INDETERMINATE,
        SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
        CheckName.ALGORITHMS_ALLOWED,
    ),
    (
        "untrusted-ca",
        lambda e: e.sign(CertVariant.UNTRUSTED_CA),
        Indication.INDETERMINATE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
        CheckName.CHAIN_TRUSTED,
    ),
    (
        "expired",
        lambda e: e.sign(CertVariant.EXPIRED),
        Indication.TOTAL_FAILED,
        SubIndication.EXPIRED,
        CheckName.VALID_AT_SIGNING_TIME,
    ),
    (
        "not-yet-valid",
        lambda e: e.sign(CertVariant.NOT_YET_VALID),
        Indication.TOTAL_FAILED,
        SubIndication.NOT_YET_VALID,
        CheckName.VALID_AT_SIGNING_TIME,
    ),
    (
        "revoked",
        lambda e: e.sign(CertVariant.REVOKED),
        Indication.TOTAL_FAILED,
        SubIndication.REVOKED,
        CheckName.NOT_REVOKED,
    ),
    (
        "wrong-key-usage",
        lambda e: e.sign(CertVariant.WRONG_KEY_USAGE),
        Indication.INDETERMINATE,
        SubIndication.CHAIN_CONSTRAINTS_FAILURE,
        CheckName.KEY_USAGE,
    ),
    (
        "signing-time-in-future",
        lambda e: e.sign(signing_time=e.pki.now + timedelta(hours=1)),
        Indication.INDETERMINATE,
        SubIndication.SIG_CONSTRAINTS_FAILURE,
        CheckName.SIGNING_TIME_VALID,
    ),
]


@pytest.mark.parametrize(
    ("make", "indication", "sub", "failed"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_signature_is_rejected(
    env: Env, make: Case, indication: Indication, sub: SubIndication, failed: CheckName
) -> None:
    report = env.verify(make(env))
    assert report.indication is indication
    assert report.sub_indication is sub
    assert report.check(failed).outcome in (CheckOutcome.FAILED, CheckOutcome.INDETERMINATE)
    assert report.signed_data is None
    codes = [f.code for f in report.findings()]
    assert failed.finding_code in codes
    assert all(code.startswith("SIG_") for code in codes)
    assert all(f.severity is Severity.ERROR for f in report.findings())


def test_signing_time_too_old(env: Env) -> None:
    report = env.verify(
        env.sign(signing_time=env.pki.now - timedelta(days=20)),
        policy=SignaturePolicy(max_signing_age=timedelta(days=7)),
    )
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.SIG_CONSTRAINTS_FAILURE,
    )
    too_old = report.check(CheckName.SIGNING_TIME_VALID)
    assert too_old.outcome is CheckOutcome.FAILED
    assert "more than 7 days before receipt" in too_old.message_en and "hơn 7 ngày" in too_old.message_vi
    at_signing = report.check(CheckName.VALID_AT_SIGNING_TIME)  # not judged at a SigningTime refused
    assert (at_signing.outcome, at_signing.detail) == (CheckOutcome.SKIPPED, "SIG_SIGNING_TIME_INVALID")
    assert at_signing.message_en.startswith("Not checked: SIG_SIGNING_TIME_INVALID left no SigningTime")


@pytest.mark.parametrize(
    ("broken", "stopper"),
    [("tampered", "SIG_DIGEST_MISMATCH"), ("wrong-c14n", "SIG_VALUE_INVALID"), ("structure", "SIG_PROFILE_UNKNOWN")],
)
def test_a_check_that_could_not_run_names_the_finding_that_stopped_it(env: Env, broken: str, stopper: str) -> None:
    xml = {
        "tampered": lambda: tamper_field(env.sign(), "HOTEN_NND", "Lê Văn C"),
        "wrong-c14n": lambda: env.sign(c14n_variant=C14nVariant.WITHOUT_INHERITED_NAMESPACES),
        "structure": lambda: env.sign(profile="enveloped"),
    }[broken]()
    policy = dataclasses.replace(SignaturePolicy(), accept_enveloped=broken != "structure")
    report = env.verify(xml, policy=policy)
    assert report.findings()[0].code == stopper
    stopped = report.check(CheckName.SIGNING_TIME_VALID)
    assert (stopped.outcome, stopped.detail) == (CheckOutcome.SKIPPED, stopper)
    assert stopped.message_en.startswith(f"Not checked: {stopper} ")


def test_unregistered_certificate(env: Env) -> None:
    cred = env.pki.issue_facility_cert(FACILITY)  # valid, but never registered
    xml = sign_document(unsigned_sample(), cred.key, cred.cert, chain=cred.chain, signing_time=env.pki.now)
    report = env.verify(xml)
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.SIG_CONSTRAINTS_FAILURE,
    )
    assert report.check(CheckName.REGISTERED).outcome is CheckOutcome.FAILED
    assert [f.code for f in report.findings()] == ["SIG_CERT_NOT_REGISTERED"]


def test_other_facilitys_certificate(env: Env) -> None:
    xml = sign_document(
        unsigned_sample(), env.other.key, env.other.cert, chain=env.other.chain, signing_time=env.pki.now
    )
    report = env.verify(xml)
    assert report.sub_indication is SubIndication.SIG_CONSTRAINTS_FAILURE
    check = report.check(CheckName.REGISTERED)
    assert check.outcome is CheckOutcome.FAILED and check.detail == f"registered for {OTHER}"
    assert env.verify(xml, facility=OTHER).indication is Indication.TOTAL_PASSED


@pytest.mark.parametrize(
    ("variant", "words"),
    [
        (C14nVariant.WITHOUT_INHERITED_NAMESPACES, "without the namespaces in scope"),
        (C14nVariant.SPURIOUS_EMPTY_XMLNS, 'spurious xmlns=""'),
    ],
)
def test_wrong_c14n_signer_is_explained_by_name(env: Env, variant: C14nVariant, words: str) -> None:
    report = env.verify(env.sign(c14n_variant=variant))
    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.SIG_CRYPTO_FAILURE,
    )
    check = report.check(CheckName.SIGNATURE_VALUE_VALID)
    assert check.outcome is CheckOutcome.FAILED and words in check.message_en and check.detail == variant.value
    assert report.signed_data is None


def test_enveloped_refused_when_policy_says_so(env: Env) -> None:
    policy = dataclasses.replace(SignaturePolicy(), accept_enveloped=False)
    report = env.verify(env.sign(profile="enveloped"), policy=policy)
    assert report.sub_indication is SubIndication.FORMAT_FAILURE
    assert report.check(CheckName.PROFILE_RECOGNISED).outcome is CheckOutcome.FAILED


def test_missing_crl_is_try_later_only_when_required(env: Env) -> None:
    no_crl = dataclasses.replace(env.trust, crls=())
    xml = env.sign()
    kwargs = {
        "data_tag": "GIAYCHUNGSINH",
        "trust": no_crl,
        "facility_code": FACILITY,
        "received_at": env.pki.now,
    }
    lenient = verify_signature(etree.fromstring(xml), **kwargs)  # type: ignore[arg-type]
    assert lenient.indication is Indication.TOTAL_PASSED
    assert lenient.check(CheckName.NOT_REVOKED).outcome is CheckOutcome.SKIPPED
    strict = verify_signature(etree.fromstring(xml), policy=SignaturePolicy(require_crl=True), **kwargs)  # type: ignore[arg-type]
    assert (strict.indication, strict.sub_indication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)


def test_expired_at_receipt_only(env: Env) -> None:
    """Signed while valid, received after expiry: the report says which of the two instants failed."""
    cred = env.creds[CertVariant.VALID]
    xml = env.sign(signing_time=cred.cert.not_valid_after_utc - timedelta(hours=1))
    report = verify_signature(
        etree.fromstring(xml),
        data_tag="GIAYCHUNGSINH",
        trust=env.trust,
        facility_code=FACILITY,
        received_at=cred.cert.not_valid_after_utc + timedelta(hours=1),
        policy=SignaturePolicy(max_signing_age=timedelta(days=1000)),
    )
    assert report.check(CheckName.VALID_AT_SIGNING_TIME).outcome is CheckOutcome.PASSED
    assert report.check(CheckName.VALID_AT_RECEIPT).outcome is CheckOutcome.FAILED
    # the SigningTime the signer claims is no proof it signed in time: ETSI's OUT_OF_BOUNDS_NO_POE
    assert (report.indication, report.sub_indication) == (Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE)


def test_signed_data_comes_from_signed_bytes_not_input_tree(env: Env) -> None:
    root = etree.fromstring(env.sign())
    report = verify_signature(
        root, data_tag="GIAYCHUNGSINH", trust=env.trust, facility_code=FACILITY, received_at=env.pki.now
    )
    assert report.signed_data is not None
    assert report.signed_data is not root[0]
    assert report.signed_data.getparent() is None


def test_gbt_document(env: Env) -> None:
    cred = env.creds[CertVariant.VALID]
    xml = sign_document(unsigned_sample("GIAYBAOTU"), cred.key, cred.cert, chain=cred.chain, signing_time=env.pki.now)
    report = verify_signature(
        etree.fromstring(xml),
        data_tag="GIAYBAOTU",
        trust=env.trust,
        facility_code=FACILITY,
        received_at=env.pki.now,
    )
    assert report.indication is Indication.TOTAL_PASSED
    wrong_tag = env.verify(xml)
    # the cause first: the references do not cover the expected data element (the twin checks follow)
    assert (wrong_tag.indication, wrong_tag.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.SIGNED_DATA_NOT_FOUND,
    )
    assert wrong_tag.check(CheckName.REFERENCES_COVER_DATA).outcome is CheckOutcome.FAILED


def test_verify_is_thread_safe(env: Env) -> None:
    """The server calls verify_signature from 10 threads: results must not bleed between calls."""
    good, bad = env.sign(), tamper_field(env.sign(), "HOTEN_NND", "Lê Văn C")
    jobs = [good, bad] * 20
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda xml: env.verify(xml).indication, jobs))
    assert results == [Indication.TOTAL_PASSED, Indication.TOTAL_FAILED] * 20


def test_public_api_is_pinned() -> None:
    import mock_portal.signature.trust as trust
    import mock_portal.signature.verify as signature

    assert set(signature.__all__) == {
        "CertificateSummary", "CheckName", "CheckResult", "Indication", "CheckOutcome", "SignaturePolicy",
        "SignatureReport", "SubIndication", "verify_signature",
    }  # fmt: skip
    assert {"TrustStore", "TrustError", "load_certificates", "load_crl", "fingerprint"} <= set(trust.__all__)
    assert [n.finding_code for n in CheckName] == [
        "SIG_MISSING", "SIG_PROFILE_UNKNOWN", "SIG_ALGORITHM_REFUSED", "SIG_REFERENCES_INCOMPLETE",
        "SIG_UNSIGNED_DATA", "SIG_DIGEST_MISMATCH", "SIG_VALUE_INVALID", "SIG_SIGNING_TIME_INVALID",
        "SIG_CERT_UNTRUSTED", "SIG_CERT_INVALID_AT_SIGNING_TIME", "SIG_CERT_INVALID_AT_RECEIPT",
        "SIG_CERT_REVOKED", "SIG_CERT_KEY_USAGE", "SIG_CERT_NOT_REGISTERED",
    ]  # fmt: skip


def test_plain_signxml_still_has_the_c14n_trap(env: Env) -> None:
    """Canary: stock signxml rejects this valid profile (docs/signature-profile.md). If this starts failing, signxml
    fixed the trap and the cross-check's `_CorrectC14nVerifier._c14n` (test_signature_crosscheck.py) may be dropped."""
    import signxml
    from signxml.exceptions import InvalidSignature

    cred = env.creds[CertVariant.VALID]
    with pytest.raises(InvalidSignature, match="Signature verification failed"):
        signxml.XMLVerifier().verify(
            env.sign(), x509_cert=cred.cert, expect_config=signxml.SignatureConfiguration(expect_references=2)
        )
