"""Cryptographic verification through signxml, with the project's correct inclusive C14N.

Why a subclass: signxml 5.2 canonicalises SignedInfo *in place*; with the portal's default-namespace
Signature under a parent without it, lxml then emits a spurious `xmlns=""` and signxml rejects valid
signatures from xmlsec1 and .NET. `_PortalVerifier._c14n` routes every canonicalisation through
`mock_portal.signature.xmldsig.canonicalize` (serialise, re-parse, canonicalise the new root). Certificate
validity is not judged by signxml (`_check_cert_validity` is a no-op): `TrustStore` judges it at
SigningTime and at receipt so the report can say which. A fresh verifier per call keeps this
thread-safe (signxml stores per-call state on `self`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import signxml
from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from lxml import etree
from signxml.algorithms import CanonicalizationMethod
from signxml.exceptions import InvalidDigest, InvalidSignature, SignXMLException

from mock_portal.signature.checks import (
    EXPLAIN_EN,
    EXPLAIN_VI,
    WRONG_VARIANTS,
    ParsedSignature,
    check,
    passed,
)
from mock_portal.signature.model import CheckName, CheckOutcome, CheckResult, SignaturePolicy, SubIndication
from mock_portal.signature.xmldsig import C14N_10, SignatureMethod, canonicalize

__all__ = ["CryptoOutcome", "parse_signing_time", "verify_crypto"]

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class _PortalVerifier(signxml.XMLVerifier):
    def _c14n(
        self,
        nodes: etree._Element | list[etree._Element],
        algorithm: CanonicalizationMethod,
        inclusive_ns_prefixes: list[str] | None = None,
    ) -> bytes:
        if algorithm.value != C14N_10:
            theirs: bytes = super()._c14n(nodes, algorithm, inclusive_ns_prefixes=inclusive_ns_prefixes)
            return theirs
        nodes = nodes if isinstance(nodes, list) else [nodes]
        return b"".join(canonicalize(node) for node in nodes)

    def _check_cert_validity(self, cert: x509.Certificate, cert_source: str) -> None:
        return None


def compile_schemas() -> None:
    """signxml compiles its own XSDs on the first verify (under its own lock, not the documents'): done
    now, with the documents' (`mock_portal.portal.intake.prepare`), before threads can race for
    libxml2's first compile."""
    _PortalVerifier.schemas()  # type: ignore[no-untyped-call]  # signxml leaves it unannotated


@dataclass(frozen=True)
class CryptoOutcome:
    """signxml's verdict: the signature-value check, and what the signature covers (when valid)."""

    signature_check: CheckResult
    digest_check: CheckResult | None
    signed: tuple[etree._Element, ...]


def verify_crypto(root: etree._Element, parsed: ParsedSignature, policy: SignaturePolicy) -> CryptoOutcome:
    """Verify SignatureValue and digests with signxml pinned to the document's first certificate."""
    config = signxml.SignatureConfiguration(
        location=f"./{'CHUKYDONVI'}/",
        expect_references=len(parsed.references),
        signature_methods=frozenset(signxml.SignatureMethod(m.value) for m in policy.signature_methods),
        digest_algorithms=frozenset(signxml.DigestAlgorithm(m.value) for m in policy.digest_methods),
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    name = CheckName.SIGNATURE_VALUE_VALID
    if not parsed.signature_value:  # signxml fails on it with a TypeError: refused here, as the file's fault
        empty = check(
            name,
            CheckOutcome.FAILED,
            "SignatureValue rỗng: không có giá trị chữ ký để kiểm tra.",
            "SignatureValue is empty: there is no signature value to verify.",
            "empty",
            SubIndication.FORMAT_FAILURE,
        )
        return CryptoOutcome(empty, None, ())
    try:
        results = _PortalVerifier().verify(
            root, x509_cert=parsed.certificates[0], expect_config=config, id_attribute="Id"
        )
    except InvalidDigest as exc:
        ok = passed(name, "Giá trị chữ ký hợp lệ.", "SignatureValue is valid.")
        bad = check(
            CheckName.DIGESTS_MATCH,
            CheckOutcome.FAILED,
            "Sai giá trị băm.",
            f"Digest mismatch: {exc}",
            str(exc),
            SubIndication.HASH_FAILURE,
        )
        return CryptoOutcome(ok, bad, ())
    except InvalidSignature as exc:
        return CryptoOutcome(_explain_bad_value(parsed, str(exc)), None, ())
    except (SignXMLException, ValueError) as exc:
        bad = check(
            name,
            CheckOutcome.FAILED,
            "Không kiểm tra được chữ ký (cấu trúc XMLDSig không hợp lệ).",
            f"The signature cannot be verified (malformed XMLDSig): {exc}",
            str(exc),
            SubIndication.FORMAT_FAILURE,
        )
        return CryptoOutcome(bad, None, ())
    listed = results if isinstance(results, list) else [results]
    signed = tuple(r.signed_xml for r in listed if r.signed_xml is not None)
    return CryptoOutcome(passed(name, "Giá trị chữ ký hợp lệ.", "SignatureValue is valid."), None, signed)


def _explain_bad_value(parsed: ParsedSignature, error: str) -> CheckResult:
    """Name the wrong canonicalisation that would make the signature verify — to explain, never to accept."""
    for variant in WRONG_VARIANTS:
        if _raw_verify(parsed, canonicalize(parsed.signed_info, variant)):
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
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


def _raw_verify(parsed: ParsedSignature, data: bytes) -> bool:
    try:
        method = SignatureMethod(parsed.signature_method or "")  # None: ValueError, as ""
        algo = _HASH[method.name.rsplit("_", 1)[1]]()
    except (ValueError, KeyError):
        return False
    key = parsed.certificates[0].public_key()
    sig = parsed.signature_value
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            half = len(sig) // 2
            der = utils.encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
            key.verify(der, data, ec.ECDSA(algo))
        else:
            return False
    except CryptoInvalidSignature:
        return False
    return True


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
