"""The test PKI: each variant differs from a valid certificate in exactly the property it names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fixtures.pki import CertVariant, TestPKI, crl_der, crl_pem, facility_code_of, write_pki
from mock_portal.signature.trust import load_certificates, load_crl


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create({"79001": "Bệnh viện Từ Dũ", "01001": "Bệnh viện Bạch Mai"}, intermediate=True)


def test_root_is_a_proper_ca(pki: TestPKI) -> None:
    cert = pki.root.cert
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert bc.critical and bc.value.ca
    assert ku.key_cert_sign and ku.crl_sign
    assert cert.issuer == cert.subject


def test_facility_certificate_names_the_facility(pki: TestPKI) -> None:
    cred = pki.issue_facility_cert("79001")
    cn = cred.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "Bệnh viện Từ Dũ"
    assert facility_code_of(cred.cert) == "79001"
    assert isinstance(cred.key, rsa.RSAPrivateKey) and cred.key.key_size == 2048
    assert cred.chain == (pki.intermediate.cert,)  # type: ignore[union-attr]
    assert cred.cert.issuer == pki.intermediate.cert.subject  # type: ignore[union-attr]
    ku = cred.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_encipherment


@pytest.mark.parametrize(
    ("variant", "valid_now"),
    [(CertVariant.EXPIRED, False), (CertVariant.NOT_YET_VALID, False), (CertVariant.VALID, True)],
)
def test_validity_variants(pki: TestPKI, variant: CertVariant, valid_now: bool) -> None:
    cert = pki.issue_facility_cert("79001", variant).cert
    assert (cert.not_valid_before_utc <= pki.now <= cert.not_valid_after_utc) is valid_now


def test_other_variants(pki: TestPKI) -> None:
    wrong = pki.issue_facility_cert("79001", CertVariant.WRONG_KEY_USAGE).cert
    ku = wrong.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_encipherment and not ku.digital_signature and not ku.content_commitment
    untrusted = pki.issue_facility_cert("79001", CertVariant.UNTRUSTED_CA)
    assert untrusted.cert.issuer == pki.untrusted_root.cert.subject and untrusted.chain == ()
    ecdsa = pki.issue_facility_cert("79001", CertVariant.ECDSA)
    assert isinstance(ecdsa.key, ec.EllipticCurvePrivateKey) and ecdsa.key.curve.name == "secp256r1"


def test_revoked_certificate_is_listed_in_a_crl_signed_by_its_issuer(pki: TestPKI) -> None:
    revoked = pki.issue_facility_cert("79001", CertVariant.REVOKED).cert
    crl = pki.crl()
    entry = crl.get_revoked_certificate_by_serial_number(revoked.serial_number)
    assert entry is not None and entry.revocation_date_utc == pki.now - timedelta(days=1)
    assert crl.is_signature_valid(pki.intermediate.cert.public_key())  # type: ignore[union-attr,arg-type]
    assert load_crl(crl_pem(crl)).fingerprint(crl.signature_hash_algorithm) == load_crl(crl_der(crl)).fingerprint(  # type: ignore[arg-type]
        crl.signature_hash_algorithm  # type: ignore[arg-type]
    )


def test_keys_are_cached_and_serials_unique(pki: TestPKI) -> None:
    first, second = pki.issue_facility_cert("79001"), pki.issue_facility_cert("79001")
    assert first.key is second.key
    assert first.cert.serial_number != second.cert.serial_number


def test_write_pki(pki: TestPKI, tmp_path: Path) -> None:
    paths = write_pki(pki, tmp_path / "pki")
    assert set(paths) == {
        "ca.pem",
        "crl.pem",
        "crl.der",
        "79001.key.pem",
        "79001.cert.pem",
        "01001.key.pem",
        "01001.cert.pem",
    }
    assert load_certificates(paths["ca.pem"].read_bytes()) == (pki.root.cert,)
    leaf, inter = load_certificates(paths["79001.cert.pem"].read_bytes())
    assert facility_code_of(leaf) == "79001" and inter == pki.intermediate.cert  # type: ignore[union-attr]
    assert b"PRIVATE KEY" in paths["79001.key.pem"].read_bytes()
    load_crl(paths["crl.der"].read_bytes())
