"""signxml as the independent cross-check of the portal's own verification (mock_portal/signature/crypto.py).

The portal verifies digests and SignatureValue itself (one canonicalisation per reference, no re-parse).
Here signxml's `XMLVerifier` — with only its C14N routed through `xmldsig.canonicalize`, since stock
signxml 5.2 mis-canonicalises this profile (test_signature.py's canary) — judges the same documents, valid
and broken: both must accept the same ones, refuse the same ones for the same reason, and agree on
what the signature covers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

import signxml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree
from signxml.algorithms import CanonicalizationMethod
from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature

from fixtures.pki import CertVariant, Credential, TestPKI
from fixtures.signer import (
    add_unsigned_twin,
    move_signed_element,
    sign_document,
    tamper_field,
    transplant_signature,
    unsigned_sample,
)
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import CheckName, CheckOutcome, SignatureReport, SubIndication, verify_signature
from mock_portal.signature.xmldsig import C14N_10, DS_NS, C14nVariant, canonicalize

FACILITY = "79001"
DATA_ID = "Id-8d7c6b5a-0000-4000-8000-000000000002"
DSIG11_NS = "http://www.w3.org/2009/xmldsig11#"


class _CorrectC14nVerifier(signxml.XMLVerifier):
    """signxml with correct inclusive C14N 1.0; certificate validity is the trust checks' business."""

    def _c14n(
        self,
        nodes: etree._Element | list[etree._Element],
        algorithm: CanonicalizationMethod,
        inclusive_ns_prefixes: list[str] | None = None,
    ) -> bytes:
        if algorithm.value != C14N_10:
            theirs: bytes = super()._c14n(nodes, algorithm, inclusive_ns_prefixes=inclusive_ns_prefixes)
            return theirs
        return b"".join(canonicalize(node) for node in (nodes if isinstance(nodes, list) else [nodes]))

    def _check_cert_validity(self, cert: x509.Certificate, cert_source: str) -> None:
        return None


def _signxml(xml: bytes, cert: x509.Certificate, references: int) -> list[signxml.VerifyResult] | str:
    """signxml's verdict: what the signature covers, or the kind of refusal."""
    config = signxml.SignatureConfiguration(
        location="./CHUKYDONVI/",
        expect_references=references,
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    try:
        results = _CorrectC14nVerifier().verify(xml, x509_cert=cert, expect_config=config, id_attribute="Id")
    except InvalidDigest:
        return "digest"
    except InvalidSignature:
        return "value"
    except InvalidInput:
        return "malformed"
    return results if isinstance(results, list) else [results]


def _portal(report: SignatureReport) -> str | None:
    """The portal's verdict in the same terms: None (valid), or the first of its two checks that failed."""
    value = report.check(CheckName.SIGNATURE_VALUE_VALID)
    if value.outcome is CheckOutcome.FAILED:
        return "malformed" if value.sub_indication is SubIndication.FORMAT_FAILURE else "value"
    if report.check(CheckName.DIGESTS_MATCH).outcome is CheckOutcome.FAILED:
        return "digest"
    assert value.outcome is CheckOutcome.PASSED
    return None


def _edit(xml: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(xml)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _ds(tag: str) -> str:
    return f"{{{DS_NS}}}{tag}"


def _key_value(cert: x509.Certificate) -> Callable[[etree._Element], None]:
    def add(root: etree._Element) -> None:
        numbers = cert.public_key().public_numbers()  # type: ignore[union-attr]  # an RSA key here
        key_value = etree.Element(_ds("KeyValue"))
        rsa_value = etree.SubElement(key_value, _ds("RSAKeyValue"))
        for tag, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):  # type: ignore[union-attr]
            etree.SubElement(rsa_value, _ds(tag)).text = base64.b64encode(
                number.to_bytes((number.bit_length() + 7) // 8, "big")
            ).decode()
        next(root.iter(_ds("KeyInfo"))).insert(0, key_value)

    return add


def _der_key(cert: x509.Certificate) -> Callable[[etree._Element], None]:
    def add(root: etree._Element) -> None:
        der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        etree.SubElement(next(root.iter(_ds("KeyInfo"))), f"{{{DSIG11_NS}}}DEREncodedKeyValue").text = base64.b64encode(
            der
        ).decode()

    return add


def _namespaced_id_twin(uri_of: Callable[[etree._Element], str]) -> Callable[[etree._Element], None]:
    """Another element carrying the referenced Id in an attribute of another namespace: ambiguous to signxml."""

    def add(root: etree._Element) -> None:
        container = root.find("CHUKYDONVI")
        assert container is not None
        twin = etree.SubElement(container, "{urn:x}twin")
        twin.set("{urn:x}Id", uri_of(root))

    return add


def _flip_signature_bit(root: etree._Element) -> None:
    value = next(root.iter(_ds("SignatureValue")))
    raw = bytearray(base64.b64decode(value.text or ""))
    raw[7] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()


def _shorten_signature(root: etree._Element) -> None:
    value = next(root.iter(_ds("SignatureValue")))
    value.text = base64.b64encode(base64.b64decode(value.text or "")[:-2]).decode()


def _sign(dsig_pki: TestPKI, cred: Credential, name: str = "Nguyễn Thị An", **kwargs: object) -> bytes:
    unsigned = unsigned_sample(data_id=DATA_ID, name=name)
    when = dsig_pki.now - timedelta(minutes=10)
    return sign_document(unsigned, cred.key, cred.cert, chain=cred.chain, signing_time=when, **kwargs)  # type: ignore[arg-type]


def _cases(dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential]) -> dict[str, tuple[bytes, Credential]]:
    rsa, ec = dsig_creds[CertVariant.VALID], dsig_creds[CertVariant.ECDSA]
    signed, enveloped, ec_signed = _sign(dsig_pki, rsa), _sign(dsig_pki, rsa, profile="enveloped"), _sign(dsig_pki, ec)
    data_id: Callable[[etree._Element], str] = lambda _root: DATA_ID  # noqa: E731
    object_id: Callable[[etree._Element], str] = lambda root: next(root.iter(_ds("Object"))).get("Id", "")  # noqa: E731
    xml = {
        "valid": signed,
        "valid enveloped": enveloped,
        "valid ECDSA": ec_signed,
        "valid ECDSA enveloped": _sign(dsig_pki, ec, profile="enveloped"),
        "a comment in the signed data": _edit(signed, lambda r: r.find("GIAYCHUNGSINH")[0].append(etree.Comment("x"))),  # type: ignore[index]
        "tampered": tamper_field(signed, "HOTEN_NND", "Trần Văn Sửa"),
        "tampered enveloped": tamper_field(enveloped, "HOTEN_NND", "Trần Văn Sửa"),
        "tampered SigningTime": _edit(
            signed, lambda r: setattr(next(r.iter("SigningTime")), "text", "2020-01-01T00:00:00")
        ),
        "another document's signature": transplant_signature(
            _sign(dsig_pki, rsa, name="Trần Thị Bình"), unsigned_sample(data_id=DATA_ID)
        ),
        "an unsigned twin": add_unsigned_twin(signed, "HOTEN_NND", "GIẢ MẠO"),
        "the signed element moved": move_signed_element(signed, "HOTEN_NND", "GIẢ MẠO"),
        "SignatureValue altered": _edit(signed, _flip_signature_bit),
        "ECDSA SignatureValue altered": _edit(ec_signed, _flip_signature_bit),
        "ECDSA SignatureValue too short": _edit(ec_signed, _shorten_signature),
        "SignedInfo without inherited namespaces": _sign(
            dsig_pki, rsa, c14n_variant=C14nVariant.WITHOUT_INHERITED_NAMESPACES
        ),
        'SignedInfo with a spurious xmlns=""': _sign(dsig_pki, rsa, c14n_variant=C14nVariant.SPURIOUS_EMPTY_XMLNS),
        "an RSA SignatureMethod with an EC key": _edit(
            ec_signed,
            lambda r: next(r.iter(_ds("SignatureMethod"))).set(
                "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
            ),
        ),
        "the certificate's KeyValue": _edit(signed, _key_value(rsa.cert)),
        "another key's KeyValue": _edit(signed, _key_value(dsig_pki.root.cert)),
        "the certificate's DEREncodedKeyValue": _edit(signed, _der_key(rsa.cert)),
        "another key's DEREncodedKeyValue": _edit(signed, _der_key(dsig_pki.root.cert)),
        "the data Id twice, once namespaced": _edit(signed, _namespaced_id_twin(data_id)),
        "the Object Id twice, once namespaced": _edit(signed, _namespaced_id_twin(object_id)),
    }
    return {name: (doc, ec if "ECDSA" in name or "EC key" in name else rsa) for name, doc in xml.items()}


def test_signxml_and_the_portal_agree_on_every_document(
    dsig_pki: TestPKI, dsig_creds: dict[CertVariant, Credential]
) -> None:
    trust = TrustStore(
        cas=dsig_pki.ca_certs, crls=(), registrations={FACILITY: frozenset(c.fingerprint for c in dsig_creds.values())}
    )
    verdicts = {}
    for name, (xml, cred) in _cases(dsig_pki, dsig_creds).items():
        report = verify_signature(
            etree.fromstring(xml),
            data_tag="GIAYCHUNGSINH",
            trust=trust,
            facility_code=FACILITY,
            received_at=dsig_pki.now,
        )
        references = 1 if "enveloped" in name else 2
        theirs, ours = _signxml(xml, cred.cert, references), _portal(report)
        verdicts[name] = ours
        assert (theirs if isinstance(theirs, str) else None) == ours, name
        if isinstance(theirs, list) and report.signed_data is not None:  # the same signed content
            covered = theirs[-1].signed_xml
            assert isinstance(covered, etree._Element), name
            data = covered.find("GIAYCHUNGSINH") if references == 1 else covered
            assert data is not None and etree.tostring(data) == etree.tostring(report.signed_data), name
    # the corpus reaches every verdict, so the agreement above is not vacuous
    assert set(verdicts.values()) == {None, "digest", "value", "malformed"}
    assert [n for n, v in verdicts.items() if v is None] == [
        "valid",
        "valid enveloped",
        "valid ECDSA",
        "valid ECDSA enveloped",
        "a comment in the signed data",
        "an unsigned twin",  # crypto holds: SIG_UNSIGNED_DATA / XML_DATA_MULTIPLE refuse these two
        "the signed element moved",
        "the certificate's KeyValue",
        "the certificate's DEREncodedKeyValue",
    ]
