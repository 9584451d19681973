"""Interop with xmlsec1, the XMLDSig reference implementation, both ways.

Why: signxml 5.2 alone rejects valid signatures of this profile (the C14N trap in docs/signature-profile.md).
The portal must accept what a standard signer makes, and standard verifiers must accept what the
reference signer makes — otherwise the sandbox teaches vendors a private dialect.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from fixtures.pki import CertVariant, TestPKI, cert_pem, key_pem
from fixtures.signer import sign_document, tamper_field, unsigned_sample
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import CheckName, CheckOutcome, Indication, SubIndication, verify_signature
from mock_portal.signature.xmldsig import C14N_10, DS_NS, C14nVariant, SignatureMethod

XMLSEC = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(XMLSEC is None, reason="xmlsec1 is not installed")
FACILITY = "79001"
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DATA_ID = "Id-3f0c1e2a-1111-4222-8333-444455556666"


@pytest.fixture(scope="module", params=[False, True], ids=["root-only", "with-intermediate"])
def pki(request: pytest.FixtureRequest) -> TestPKI:
    return TestPKI.create(intermediate=request.param)


def _template(signing_time: str, method: SignatureMethod = SignatureMethod.RSA_SHA256) -> bytes:
    """An unsigned document plus an empty Signature in the portal's profile, for `xmlsec1 --sign`."""
    sig_id = f"CHUKYDONVI-{DATA_ID}"
    digest = '<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue></DigestValue>'
    signature = (
        f'<Signature xmlns="{DS_NS}" Id="{sig_id}"><SignedInfo>'
        f'<CanonicalizationMethod Algorithm="{C14N_10}"/>'
        f'<SignatureMethod Algorithm="{method.value}"/>'
        f'<Reference URI="#Object-{sig_id}">{digest}</Reference>'
        f'<Reference URI="#{DATA_ID}">{digest}</Reference>'
        "</SignedInfo><SignatureValue/><KeyInfo><X509Data><X509SubjectName/><X509Certificate/></X509Data></KeyInfo>"
        f'<Object Id="Object-{sig_id}"><SignatureProperties xmlns=""><SignatureProperty Target="#{sig_id}" '
        f'Id="SignatureProperty-{sig_id}"><SigningTime>{signing_time}</SigningTime></SignatureProperty>'
        "</SignatureProperties></Object></Signature>"
    )
    return unsigned_sample(data_id=DATA_ID).replace(b"<CHUKYDONVI/>", f"<CHUKYDONVI>{signature}</CHUKYDONVI>".encode())


def _xmlsec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XMLSEC or "xmlsec1", *args], capture_output=True, text=True, timeout=30, check=False)


def _trust(pki: TestPKI, *fingerprints: str) -> TrustStore:
    return TrustStore(cas=pki.ca_certs, crls=(pki.crl(),), registrations={FACILITY: frozenset(fingerprints)})


@pytest.mark.parametrize("variant", [CertVariant.VALID, CertVariant.ECDSA])
def test_portal_accepts_what_xmlsec1_signs(pki: TestPKI, tmp_path: Path, variant: CertVariant) -> None:
    cred = pki.issue_facility_cert(FACILITY, variant)
    method = SignatureMethod.ECDSA_SHA256 if variant is CertVariant.ECDSA else SignatureMethod.RSA_SHA256
    (tmp_path / "key.pem").write_bytes(key_pem(cred.key))
    pems = [tmp_path / "cert.pem"]
    pems[0].write_bytes(cert_pem(cred.cert))
    for index, inter in enumerate(cred.chain):  # xmlsec1 puts every listed certificate into X509Data
        pems.append(tmp_path / f"inter{index}.pem")
        pems[-1].write_bytes(cert_pem(inter))
    signing_time = (pki.now - timedelta(hours=1)).astimezone(VN_TZ).replace(tzinfo=None)
    (tmp_path / "tmpl.xml").write_bytes(_template(signing_time.isoformat(), method))
    run = _xmlsec(
        "--sign",
        "--privkey-pem",
        ",".join(str(p) for p in [tmp_path / "key.pem", *pems]),
        "--id-attr:Id",
        "GIAYCHUNGSINH",
        "--id-attr:Id",
        "Object",
        "--output",
        str(tmp_path / "signed.xml"),
        str(tmp_path / "tmpl.xml"),
    )
    assert run.returncode == 0, run.stderr
    signed = (tmp_path / "signed.xml").read_bytes()
    received = pki.now
    report = verify_signature(
        etree.fromstring(signed),
        data_tag="GIAYCHUNGSINH",
        trust=_trust(pki, cred.fingerprint),
        facility_code=FACILITY,
        received_at=received,
    )
    assert report.indication is Indication.TOTAL_PASSED, report.failed_checks()
    assert report.profile == "two-reference"
    assert report.signing_time == pki.now - timedelta(hours=1)
    tampered = verify_signature(
        etree.fromstring(tamper_field(signed, "HOTEN_NND", "Giả mạo")),
        data_tag="GIAYCHUNGSINH",
        trust=_trust(pki, cred.fingerprint),
        facility_code=FACILITY,
        received_at=received,
    )
    assert tampered.sub_indication is SubIndication.HASH_FAILURE


def _xmlsec_verify(pki: TestPKI, tmp_path: Path, signed: bytes, chain: tuple) -> subprocess.CompletedProcess[str]:
    (tmp_path / "ca.pem").write_bytes(cert_pem(*pki.ca_certs))
    (tmp_path / "doc.xml").write_bytes(signed)
    extra: list[str] = []
    if chain:
        (tmp_path / "inter.pem").write_bytes(cert_pem(*chain))
        extra = ["--untrusted-pem", str(tmp_path / "inter.pem")]
    return _xmlsec(
        "--verify",
        "--trusted-pem",
        str(tmp_path / "ca.pem"),
        *extra,
        "--id-attr:Id",
        "GIAYCHUNGSINH",
        "--id-attr:Id",
        "Object",
        str(tmp_path / "doc.xml"),
    )


@pytest.mark.parametrize("profile", ["two-reference", "enveloped"])
@pytest.mark.parametrize("variant", [CertVariant.VALID, CertVariant.ECDSA])
def test_xmlsec1_accepts_what_the_reference_signer_makes(
    pki: TestPKI, tmp_path: Path, profile: str, variant: CertVariant
) -> None:
    cred = pki.issue_facility_cert(FACILITY, variant)
    signed = sign_document(
        unsigned_sample(),
        cred.key,
        cred.cert,
        signing_time=pki.now - timedelta(minutes=1),
        profile=profile,  # type: ignore[arg-type]
    )
    run = _xmlsec_verify(pki, tmp_path, signed, cred.chain)
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stdout + run.stderr


@pytest.mark.parametrize("variant", list(C14nVariant)[1:])
def test_xmlsec1_also_rejects_the_wrong_c14n_signers(pki: TestPKI, tmp_path: Path, variant: C14nVariant) -> None:
    """The strict rule is the standard's, not ours: xmlsec1 refuses the broken canonicalisations too."""
    cred = pki.issue_facility_cert(FACILITY)
    signed = sign_document(unsigned_sample(), cred.key, cred.cert, signing_time=pki.now, c14n_variant=variant)
    assert _xmlsec_verify(pki, tmp_path, signed, cred.chain).returncode != 0
    report = verify_signature(
        etree.fromstring(signed),
        data_tag="GIAYCHUNGSINH",
        trust=_trust(pki, cred.fingerprint),
        facility_code=FACILITY,
        received_at=pki.now,
    )
    assert report.check(CheckName.SIGNATURE_VALUE_VALID).outcome is CheckOutcome.FAILED
