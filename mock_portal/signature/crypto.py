"""The SignatureValue check and the signed data, by the portal's own verification.

Why the portal's own verification is the authority and signxml is not (signxml stays the independent
cross-check of `tests/test_signature_crosscheck.py`, which runs both over the signature corpus):
- `signxml.XMLVerifier.verify` takes a document and re-parses it 9 times per call (the document, the
  Signature, SignedInfo, a copy of the whole document per reference, each reference before and after
  C14N): 57 % of an examination (issue 28). Using it on the tree the portal already parsed, with the
  canonical bytes `checks.check_digests` already made, would mean overriding its private methods.
- signxml 5.2 canonicalises SignedInfo in place: the portal's default-namespace Signature under a parent
  without it gets a spurious `xmlns=""` and valid signatures from xmlsec1 and .NET fail; it needed a
  subclass routing C14N through `xmldsig.canonicalize` anyway.
- The profile leaves signxml nothing of its own to decide: `checks` already judges the location, the
  profile (two references by Id without transforms, or URI="" + enveloped), the algorithms, the
  references' targets and digests (each canonicalised once). What remains is done here, as signxml did:
  SignedInfo canonicalised (correct inclusive C14N 1.0) and verified with the document's first
  certificate's key under the SignatureMethod's algorithm (a key of another type is malformed XMLDSig);
  the Signature valid against signxml's XMLDSig schema (`_SIGNATURE_SCHEMAS`; an invalid one still raises
  `DocumentInvalid`, which the intake reports as XML_C14N_FAILED, as before); a KeyValue or
  DEREncodedKeyValue beside the certificate must be its key (after the SignatureValue held, as signxml
  compared them); a reference that more than
  one element designates by an attribute named Id in any namespace is refused as ambiguous (signxml's
  reading, after the SignatureValue and each earlier reference held). The signed data is what the
  canonical bytes of the references read back to, as signxml's `signed_xml` was.
Certificate validity is not judged here: `TrustStore` judges it at SigningTime and at receipt.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import signxml
from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from lxml import etree

from mock_portal.signature.checks import (
    EXPLAIN_EN,
    EXPLAIN_VI,
    WRONG_VARIANTS,
    Ids,
    ParsedSignature,
    check,
    passed,
)
from mock_portal.signature.model import CheckName, CheckOutcome, CheckResult, SubIndication
from mock_portal.signature.xmldsig import DS_NS, SignatureMethod, canonicalize, read_canonical, reparse

__all__ = ["CryptoOutcome", "parse_signing_time", "verify_crypto"]

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DSIG11_NS = "http://www.w3.org/2009/xmldsig11#"
_KEY_INFO = {"ds": DS_NS, "dsig11": DSIG11_NS}


def _signature_schemas() -> list[etree.XMLSchema]:
    schemas: list[etree.XMLSchema] = signxml.XMLVerifier.schemas()  # type: ignore[no-untyped-call]  # unannotated
    return schemas


def compile_schemas() -> None:
    """The XMLDSig schema (signxml's copy) is compiled on first use: done now, with the documents'
    (`mock_portal.portal.intake.prepare`), before threads can race for libxml2's first compile."""
    _signature_schemas()


@dataclass(frozen=True)
class CryptoOutcome:
    """The SignatureValue check, and what the signature covers (only when it and every digest hold)."""

    signature_check: CheckResult
    signed: tuple[etree._Element | None, ...]
    """Per reference, its content read back from its canonical bytes (None when they do not read as XML)."""


class _Malformed(Exception):
    """The signature cannot be verified at all (what signxml raised as InvalidInput): FORMAT_FAILURE."""


def verify_crypto(
    parsed: ParsedSignature, ids: Ids, digests: CheckResult, payloads: tuple[bytes, ...]
) -> CryptoOutcome:
    """Verify SignatureValue with the document's first certificate; `digests` and `payloads` are
    `checks.check_digests`' verdict and canonical references."""
    name = CheckName.SIGNATURE_VALUE_VALID
    if not parsed.signature_value:
        empty = check(
            name,
            CheckOutcome.FAILED,
            "SignatureValue rỗng: không có giá trị chữ ký để kiểm tra.",
            "SignatureValue is empty: there is no signature value to verify.",
            "empty",
            SubIndication.FORMAT_FAILURE,
        )
        return CryptoOutcome(empty, ())
    _validate_schema(parsed.element)
    try:
        error = _verify_value(parsed, canonicalize(parsed.signed_info))
        if error is None:
            _match_key_info(parsed)
            _refuse_ambiguous(parsed, ids, len(payloads))
    except _Malformed as exc:
        bad = check(
            name,
            CheckOutcome.FAILED,
            "Không kiểm tra được chữ ký (cấu trúc XMLDSig không hợp lệ).",
            f"The signature cannot be verified (malformed XMLDSig): {exc}",
            str(exc),
            SubIndication.FORMAT_FAILURE,
        )
        return CryptoOutcome(bad, ())
    if error is not None:
        return CryptoOutcome(_explain_bad_value(parsed, error), ())
    ok = passed(name, "Giá trị chữ ký hợp lệ.", "SignatureValue is valid.")
    if digests.outcome is not CheckOutcome.PASSED:
        return CryptoOutcome(ok, ())
    return CryptoOutcome(ok, tuple(read_canonical(p) for p in payloads))


def _validate_schema(signature: etree._Element) -> None:
    """The Signature element against the XMLDSig schema; raises `etree.DocumentInvalid` when it fails. A
    failure is raised from a detached copy, as signxml validated one: its message names lines of that copy."""
    if any(schema.validate(signature) for schema in _signature_schemas()):
        return
    _signature_schemas()[-1].assertValid(reparse(signature))


def _match_key_info(parsed: ParsedSignature) -> None:
    """A KeyValue or DEREncodedKeyValue beside the certificate must be the certificate's key."""
    key = parsed.certificates[0].public_key()
    key_value = parsed.element.find("ds:KeyInfo/ds:KeyValue", _KEY_INFO)
    if key_value is not None and not _key_value_is(key_value, key):
        raise _Malformed(_AMBIGUOUS_KEY.format(what="KeyValue"))
    der = parsed.element.find("ds:KeyInfo/dsig11:DEREncodedKeyValue", _KEY_INFO)
    if der is not None and not _der_key_is(der.text, key):
        raise _Malformed(_AMBIGUOUS_KEY.format(what="DEREncodedKeyValue"))


_AMBIGUOUS_KEY = (
    "Both X509Data and {what} found and they represent different public keys. Use "
    "verify(ignore_ambiguous_key_info=True) to ignore {what} and validate using X509Data only."
)
"""signxml's words, kept so that a report reads as it did when signxml verified."""


def _long(element: etree._Element | None) -> int | None:
    if element is None:
        return None
    try:
        return int.from_bytes(base64.b64decode("".join((element.text or "").split()), validate=True), "big")
    except (binascii.Error, ValueError):
        return None


def _key_value_is(key_value: etree._Element, key: object) -> bool:
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        modulus = _long(key_value.find("ds:RSAKeyValue/ds:Modulus", _KEY_INFO))
        exponent = _long(key_value.find("ds:RSAKeyValue/ds:Exponent", _KEY_INFO))
        return (modulus, exponent) == (numbers.n, numbers.e)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not _names_curve(key_value.find("dsig11:ECKeyValue/dsig11:NamedCurve", _KEY_INFO), key.curve):
            return False
        point = key_value.findtext("dsig11:ECKeyValue/dsig11:PublicKey", namespaces=_KEY_INFO)
        try:
            sent = base64.b64decode("".join((point or "").split()), validate=True)
        except (binascii.Error, ValueError):
            return False
        return sent == key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return False


def _names_curve(named: etree._Element | None, curve: ec.EllipticCurve) -> bool:
    """NamedCurve's URI is `urn:oid:` and the OID of the certificate key's curve: the same point on another
    curve is another key (signxml refused it so); no NamedCurve (explicit parameters) is none the portal reads."""
    uri = named.get("URI", "") if named is not None else ""
    if not uri.startswith("urn:oid:"):
        return False
    try:
        return isinstance(curve, ec.get_curve_for_oid(x509.ObjectIdentifier(uri.removeprefix("urn:oid:"))))
    except (ValueError, LookupError):
        return False


def _der_key_is(text: str | None, key: object) -> bool:
    try:
        sent = load_der_public_key(base64.b64decode("".join((text or "").split()), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        return False
    spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    return isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) and sent.public_bytes(
        *spki
    ) == key.public_bytes(*spki)


def _refuse_ambiguous(parsed: ParsedSignature, ids: Ids, matched: int) -> None:
    """A reference more than one element designates by an attribute named Id, in any namespace, checked as
    signxml did: in order, up to the first reference whose digest did not match."""
    for index, ref in enumerate(parsed.references):
        uri = ref.uri or ""
        count = ids.named(uri[1:]) if uri.startswith("#") else 0
        if count > 1:
            raise _Malformed(f"Ambiguous reference URI {uri} resolved to {count} nodes")
        if index >= matched:
            return


def _explain_bad_value(parsed: ParsedSignature, error: str) -> CheckResult:
    """Name the wrong canonicalisation that would make the signature verify — to explain, never to accept."""
    for variant in WRONG_VARIANTS:
        if _verify_value(parsed, canonicalize(parsed.signed_info, variant)) is None:
            what = "SignedInfo"
            return check(
                CheckName.SIGNATURE_VALUE_VALID,
                CheckOutcome.FAILED,
                "Chữ ký không hợp lệ: " + EXPLAIN_VI[variant].format(what=what),
                "Invalid SignatureValue: " + EXPLAIN_EN[variant].format(what=what),
                variant.value,
                SubIndication.SIG_CRYPTO_FAILURE,
            )
    return check(
        CheckName.SIGNATURE_VALUE_VALID,
        CheckOutcome.FAILED,
        "Giá trị chữ ký không hợp lệ với khoá công khai của chứng thư số.",
        "SignatureValue does not verify with the certificate's public key.",
        error,
        SubIndication.SIG_CRYPTO_FAILURE,
    )


_HASH: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
    "MD5": hashes.MD5,
}


def _verify_value(parsed: ParsedSignature, data: bytes) -> str | None:
    """None when SignatureValue verifies over `data` with the first certificate's key, else why not (in
    signxml's words, kept as the check's detail so a report reads as before). Raises `_Malformed` when the
    SignatureMethod and the key cannot be used together."""
    try:
        method = SignatureMethod(parsed.signature_method or "")
    except ValueError as exc:
        raise _Malformed(f"Unsupported signature algorithm {parsed.signature_method}") from exc
    family, _, hash_name = method.name.partition("_")
    if family not in ("RSA", "ECDSA") or hash_name not in _HASH:
        raise _Malformed(f"Unsupported signature algorithm {method.name}")
    algorithm, key, value = _HASH[hash_name](), parsed.certificates[0].public_key(), parsed.signature_value
    try:
        if family == "RSA":
            if not isinstance(key, rsa.RSAPublicKey):
                raise _Malformed("DER encoded key value does not match specified signature algorithm")
            key.verify(value, data, padding.PKCS1v15(), algorithm)
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise _Malformed("DER encoded key value does not match specified signature algorithm")
            size = (key.key_size + 7) // 8 * 2
            if len(value) != size:
                return f"Signature verification failed: Expected {size} byte SignatureValue, got {len(value)}"
            half = size // 2
            r, s = int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big")
            key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
    except CryptoInvalidSignature as exc:
        return f"Signature verification failed: {exc}"
    return None


def parse_signing_time(signed_object: etree._Element) -> datetime | None:
    """SigningTime from the *signed* Object: `yyyy-MM-ddTHH:mm:ss` in Vietnam time (an offset is honoured)."""
    text = signed_object.findtext("SignatureProperties/SignatureProperty/SigningTime")
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=VN_TZ)


def certificate_of(parsed: ParsedSignature) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """The signing certificate (first X509Certificate) and the others as candidate intermediates."""
    return parsed.certificates[0], parsed.certificates[1:]
