"""XMLDSig building blocks shared by the verifier and the reference signer.

Why a module of its own: the portal's profile (a default-namespace `Signature` inside
`CHUKYDONVI`, inclusive C14N 1.0) hits a libxml2/lxml quirk — canonicalising a subtree *in place*
emits a spurious `xmlns=""` on grandchildren of an element whose default namespace is declared on
itself under a parent without it. `canonicalize()` is therefore the only C14N used by the project:
it serialises the element (lxml declares every in-scope namespace on it), re-parses that and
canonicalises the new root, which is correct inclusive C14N and matches xmlsec1 and .NET SignedXml.
The deliberately *wrong* variants (`C14nVariant`) exist only so the verifier can name a broken
signer's mistake and the test signer can imitate it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from lxml import etree

__all__ = [
    "C14N_10",
    "DS_NS",
    "ENVELOPED",
    "C14nVariant",
    "DigestMethod",
    "SignatureMethod",
    "b64",
    "canonicalize",
    "digest",
    "read_canonical",
    "reparse",
    "strip_inherited_namespaces",
]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

_INTERNAL_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class SignatureMethod(StrEnum):
    """SignatureMethod URIs the project knows; which are *accepted* is `SignaturePolicy`'s job."""

    RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
    RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    HMAC_SHA1 = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
    HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
    RSA_MD5 = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"


class DigestMethod(StrEnum):
    SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
    SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
    SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
    MD5 = "http://www.w3.org/2001/04/xmldsig-more#md5"

    @property
    def hashlib_name(self) -> str:
        return self.name.lower()


class C14nVariant(StrEnum):
    """How a signer canonicalised SignedInfo: correctly, or one of the usual mistakes."""

    CORRECT = "correct"
    WITHOUT_INHERITED_NAMESPACES = "without-inherited-namespaces"
    SPURIOUS_EMPTY_XMLNS = "spurious-empty-xmlns"


def canonicalize(element: etree._Element, variant: C14nVariant = C14nVariant.CORRECT) -> bytes:
    """Inclusive C14N 1.0 (no comments) of `element` with the namespaces in scope.

    `variant` reproduces a broken signer: WITHOUT_INHERITED_NAMESPACES drops namespace declarations
    inherited from ancestors (`xmlns:xsd`, `xmlns:xsi` of the root); SPURIOUS_EMPTY_XMLNS is lxml's
    in-place subtree canonicalisation (what signxml 5.2 does to SignedInfo).
    """
    if variant is C14nVariant.SPURIOUS_EMPTY_XMLNS:
        return etree.tostring(element, method="c14n", exclusive=False, with_comments=False)
    serialized = etree.tostring(element)
    memo: dict[bytes, bytes] | None = getattr(_memo, "cache", None)
    key = hashlib.sha256(serialized).digest()
    c14n = memo.get(key) if memo is not None else None
    if c14n is None:
        copy = etree.fromstring(serialized, parser=_INTERNAL_PARSER)
        c14n = etree.tostring(copy, method="c14n", exclusive=False, with_comments=False)
        if memo is not None:
            memo[key] = c14n
    if variant is C14nVariant.WITHOUT_INHERITED_NAMESPACES:
        return strip_inherited_namespaces(c14n, element)
    return c14n


_memo = threading.local()


@contextmanager
def canonicalisation_memo() -> Iterator[None]:
    """Within the block (one document's verification, on this thread), content canonicalised once is
    not canonicalised again: the diagnosis of a wrong C14N (`C14nVariant.WITHOUT_INHERITED_NAMESPACES`
    starts from the correct form) canonicalises again the references and SignedInfo the verification
    already did, and canonicalisation is the costly part (superlinear in attributes). Keyed by a hash of
    the serialised node; dropped at the end."""
    previous = getattr(_memo, "cache", None)
    _memo.cache = {}
    try:
        yield
    finally:
        _memo.cache = previous


def reparse(element: etree._Element) -> etree._Element:
    """A detached copy of `element` carrying every in-scope namespace declaration on itself.

    Input here is the project's own serialisation of an already-parsed (hardened) tree, not wire data.
    """
    return etree.fromstring(etree.tostring(element), parser=_INTERNAL_PARSER)


def read_canonical(c14n: bytes) -> etree._Element | None:
    """What a reference's canonical bytes read back to: the signed content and nothing else (no comment, no
    text node split by one); None when they are not one element (signxml's `signed_xml`, as it was)."""
    try:
        return etree.fromstring(c14n, parser=_INTERNAL_PARSER)
    except etree.XMLSyntaxError:
        return None


def strip_inherited_namespaces(c14n: bytes, element: etree._Element) -> bytes:
    """Remove from the first start tag the prefixed namespace declarations `element` only inherits."""
    own = set(_own_prefixes(element))
    end = c14n.index(b">")
    head, tail = c14n[:end], c14n[end:]
    for prefix in (p for p in element.nsmap if p is not None and p not in own):
        head = re.sub(rb" xmlns:" + prefix.encode() + rb'="[^"]*"', b"", head)
    return head + tail


def _own_prefixes(element: etree._Element) -> list[str | None]:
    parent = element.getparent()
    parent_map = parent.nsmap if parent is not None else {}
    return [p for p, uri in element.nsmap.items() if parent_map.get(p) != uri]


def digest(data: bytes, method: DigestMethod) -> bytes:
    return hashlib.new(method.hashlib_name, data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
