"""Distinguished names as signers write them in `X509SubjectName`, compared with a certificate's subject.

Why not `x509.Name.from_rfc4514_string`: it refuses what real signers write. .NET's `cert.Subject`
separates RDNs with ", ", calls UID `OID.0.9.2342.19200300.100.1.1` and stateOrProvinceName `S`, and
quotes values; Java's `getName()` and OpenSSL's `-nameopt RFC2253` write RFC 4514. Two names are the
same when their RDNs, in RFC 4514 order (most significant last), hold the same attribute types with the
same values, compared case-insensitively after Unicode NFKC and whitespace folding (RFC 4518's
caseIgnoreMatch, simplified); OpenSSL's default output, most significant first, is read too.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

__all__ = ["NAME_CHARS", "same_name"]

Rdn = frozenset[tuple[str, str]]
_KEYWORDS = {attr.replace("_", ""): oid for attr, oid in vars(NameOID).items() if isinstance(oid, ObjectIdentifier)} | {
    "CN": NameOID.COMMON_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "STREET": NameOID.STREET_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "T": NameOID.TITLE,
    "SN": NameOID.SURNAME,
    "G": NameOID.GIVEN_NAME,
}
"""Upper-cased keyword -> OID. `NameOID`'s own names without their underscores are the attributes' long
names (POSTAL_CODE: postalCode, which .NET writes `PostalCode=`; ORGANIZATION_IDENTIFIER,
BUSINESS_CATEGORY and the rest); then RFC 4514's short keywords and those of .NET and OpenSSL."""
NAME_CHARS = 8192
"""The longest X509SubjectName read as a name; a longer one names no certificate and is not parsed (it
would cost a second of CPU per few megabytes). RFC 5280's upper bounds (Appendix A) for what a subject
carries, CN 64 + O 64 + OU 64 + L 128 + ST 128 + C 2 + serialNumber 64 + title 64 + emailAddress 255
+ postalCode 16, sum to 849 characters; RFC 4514's hex escapes write a Vietnamese letter in up to 9
(`\\E1\\BB\\87`): 849 x 9 = 7641 < 8192."""
_DOTTED = re.compile(r"(?:OID\.)?([0-9]+(?:\.[0-9]+)+)", re.IGNORECASE)
_BER_STRINGS = {0x0C, 0x13, 0x14, 0x16, 0x1A}
"""UTF8String, PrintableString, TeletexString, IA5String, VisibleString: a `#hex` value of these is text."""


def _fold(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _split(text: str, separators: str) -> list[str]:
    """`text` cut at the separators that are neither escaped (`\\,`) nor inside a quoted value."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(raw: str) -> str:
    """RFC 4514 escapes (`\\,` and `\\C3\\A1`, UTF-8 bytes), a quoted value (where .NET doubles a quote
    inside: `O="A ""B"" C"` is `A "B" C`), a `#hex` BER string."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('""', '"')
    if value.startswith("#"):
        return _ber_text(value[1:])
    out, index = bytearray(), 0
    while index < len(value):
        pair = value[index + 1 : index + 3]
        if value[index] == "\\" and re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
            out.append(int(pair, 16))
            index += 3
        elif value[index] == "\\" and index + 1 < len(value):
            out += value[index + 1].encode()
            index += 2
        else:
            out += value[index].encode()
            index += 1
    return out.decode("utf-8", "replace")


def _ber_text(hexadecimal: str) -> str:
    try:
        der = bytes.fromhex(hexadecimal)
    except ValueError:
        return "#" + hexadecimal
    if len(der) >= 2 and der[0] in _BER_STRINGS and der[1] == len(der) - 2:
        return der[2:].decode("utf-8", "replace")
    return "#" + hexadecimal.lower()


def _attribute_type(raw: str) -> str | None:
    name = raw.strip()
    if name.upper() in _KEYWORDS:
        return _KEYWORDS[name.upper()].dotted_string
    dotted = _DOTTED.fullmatch(name)
    return dotted.group(1) if dotted else None


def _parse_dn(text: str) -> tuple[Rdn, ...] | None:
    """The RDNs of a string DN in the order written (RFC 4514: most significant last), each a set of
    (attribute OID, folded value); None when it is not a DN (an empty string, an unknown keyword)."""
    if not text.strip():
        return None
    rdns = []
    for rdn in _split(text, ",;"):
        pairs = set()
        for ava in _split(rdn, "+"):
            name, equals, value = ava.partition("=")
            oid = _attribute_type(name)
            if not equals or oid is None:
                return None
            pairs.add((oid, _fold(_unescape(value))))
        rdns.append(frozenset(pairs))
    return tuple(rdns)


def _rdns_of(name: x509.Name) -> tuple[Rdn, ...]:
    return tuple(
        frozenset((a.oid.dotted_string, _fold(a.value if isinstance(a.value, str) else a.value.hex())) for a in rdn)
        for rdn in reversed(name.rdns)
    )


def same_name(text: str, name: x509.Name) -> bool:
    """Does the string DN `text` name `name`? Written in RFC 4514 order or in the certificate's own
    (X.500) order, as OpenSSL's default `-subject` output and some Windows tools write it. Longer than
    `NAME_CHARS`, it names no certificate."""
    return len(text) <= NAME_CHARS and _same_name(text, name)


@functools.lru_cache(maxsize=256)
def _same_name(text: str, name: x509.Name) -> bool:
    """Remembered (at most `NAME_CHARS` a key): a hospital writes the same name with every document."""
    parsed, rdns = _parse_dn(text), _rdns_of(name)
    return parsed is not None and parsed in (rdns, rdns[::-1])
