"""Regression tests from the review of "the portal's own verification is the authority" (rev-sig).

Two defects the review found, fixed (an EC KeyValue naming another curve was taken for the certificate's key;
finding the Ids was quadratic in the elements carrying one), and behaviour the review checked and found
right, beyond what tests/test_signature_crosscheck.py's corpus covers.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree

from fixtures.pki import CertVariant, Credential, TestPKI
from fixtures.signer import sign_document, unsigned_sample
from mock_portal.documents.parsing import parse_xml
from mock_portal.signature.checks import Ids
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import CheckName, CheckOutcome, SignatureReport, SubIndication, verify_signature
from mock_portal.signature.xmldsig import DS_NS

FACILITY = "79001"
DATA_ID = "Id-8d7c6b5a-0000-4000-8000-000000000002"
DSIG11 = "http://www.w3.org/2009/xmldsig11#"


def _sign(dsig_pki: TestPKI, cred: Credential, unsigned: bytes | None = None, **kwargs: object) -> bytes:
    when = dsig_pki.now - timedelta(minutes=10)
    xml = unsigned or unsigned_sample(data_id=DATA_ID)
    return sign_document(xml, cred.key, cred.cert, chain=cred.chain, signing_time=when, **kwargs)  # type: ignore[arg-type]


def _verify(dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential], xml: bytes) -> SignatureReport:
    trust = TrustStore(
        cas=dsig_pki.ca_certs, crls=(), registrations={FACILITY: frozenset(c.fingerprint for c in dsig_creds.values())}
    )
    return verify_signature(
        parse_xml(xml), data_tag="GIAYCHUNGSINH", trust=trust, facility_code=FACILITY, received_at=dsig_pki.now
    )


def _ds(tag: str) -> str:
    return f"{{{DS_NS}}}{tag}"


def _with_ec_key_value(xml: bytes, cred: Credential, curve_uri: str) -> bytes:
    root = etree.fromstring(xml)
    key_value = etree.SubElement(next(root.iter(_ds("KeyInfo"))), _ds("KeyValue"))
    ec_value = etree.SubElement(key_value, f"{{{DSIG11}}}ECKeyValue")
    etree.SubElement(ec_value, f"{{{DSIG11}}}NamedCurve").set("URI", curve_uri)
    point = cred.cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    etree.SubElement(ec_value, f"{{{DSIG11}}}PublicKey").text = base64.b64encode(point).decode()
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def test_an_ec_key_value_of_the_certificate_is_accepted(
    dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential]
) -> None:
    ec = dsig_creds[CertVariant.ECDSA]
    xml = _with_ec_key_value(_sign(dsig_pki, ec), ec, "urn:oid:1.2.840.10045.3.1.7")  # P-256: the certificate's curve
    assert _verify(dsig_pki, dsig_creds, xml).passed


@pytest.mark.parametrize(
    "curve", ["urn:oid:1.3.132.0.34", "urn:oid:1.2.3.4", "1.2.840.10045.3.1.7"], ids=["p384", "unknown", "no-urn"]
)
def test_an_ec_key_value_naming_another_curve_is_refused(
    curve: str, dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential]
) -> None:
    """The certificate's P-256 point under another curve's name (or none the portal reads) is another key."""
    ec = dsig_creds[CertVariant.ECDSA]
    xml = _with_ec_key_value(_sign(dsig_pki, ec), ec, curve)
    check = _verify(dsig_pki, dsig_creds, xml).check(CheckName.SIGNATURE_VALUE_VALID)
    assert (check.outcome, check.sub_indication) == (CheckOutcome.FAILED, SubIndication.FORMAT_FAILURE)


def test_enveloped_whitespace_after_the_signature_stays_signed(
    dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential]
) -> None:
    """A pretty-printed CHUKYDONVI (xmlsec1's template style): the enveloped-signature transform removes the
    Signature element only, the whitespace after it stays in what was signed."""
    unsigned = unsigned_sample(data_id=DATA_ID).replace(b"<CHUKYDONVI/>", b"<CHUKYDONVI>\n  \n</CHUKYDONVI>")
    root = etree.fromstring(_sign(dsig_pki, dsig_creds[CertVariant.VALID], unsigned, profile="enveloped"))
    container = root.find("CHUKYDONVI")
    assert container is not None
    container.text, container[0].tail = "\n  ", "\n"
    assert _verify(dsig_pki, dsig_creds, etree.tostring(root, xml_declaration=True, encoding="utf-8")).passed


def test_a_comment_splitting_a_signed_field_is_not_in_the_signed_data(
    dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential]
) -> None:
    root = etree.fromstring(_sign(dsig_pki, dsig_creds[CertVariant.VALID]))
    field = root.find("GIAYCHUNGSINH/HOTEN_NND")
    assert field is not None and field.text
    text = field.text
    field.text, comment = text[:3], etree.Comment(" not signed ")
    comment.tail = text[3:]
    field.append(comment)
    report = _verify(dsig_pki, dsig_creds, etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    assert report.signed_data is not None
    assert report.signed_data.findtext("HOTEN_NND") == text  # one text node, as signed


def _ids_after_signature(signed: bytes, n: int) -> etree._Element:
    extra = b"".join(b'<Z Id="z%d"/>' % i for i in range(n))
    return parse_xml(signed.replace(b"</Signature></CHUKYDONVI>", b"</Signature>" + extra + b"</CHUKYDONVI>"))


def _best_cpu(root: etree._Element) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        Ids.of(root)
        best = min(best, time.process_time() - start)
    return best


def test_finding_the_ids_is_linear(dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential]) -> None:
    signed = _sign(dsig_pki, dsig_creds[CertVariant.VALID])
    small, large = _ids_after_signature(signed, 1200), _ids_after_signature(signed, 4800)  # 4800: within the limits
    assert _best_cpu(large) < 8 * _best_cpu(small)  # linear: ~4x; quadratic: ~16x
