"""Issue 25: KeyInfo's X509SubjectName, missing, empty, another name or the signing certificate's subject,
over real HTTP in `portal` mode (a graded warning) and `strict` mode (a refusal), with real signatures.

KeyInfo is outside what the signature covers, so each file is a reference signature whose
X509SubjectName is then rewritten: the signature itself stays valid (TOTAL_PASSED) in every case."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from fixtures.certificates import build_xml
from fixtures.pki import TestPKI
from fixtures.samples import sample_fields
from fixtures.signer import sign_document
from mock_portal.documents import DocumentType
from mock_portal.signature.checks import ParsedSignature, check_subject_name, locate_signature, parse_signature
from mock_portal.signature.names import same_name
from tests.conftest import Hospital, provision
from tests.live import LiveServer
from tests.wire import Sent, sample, send

CODE = "SIG_X509_SUBJECT_NAME"
NAME = re.compile(rb"<X509SubjectName>[^<]*</X509SubjectName>")


def _with_name(xml: bytes, element: str) -> bytes:
    assert len(NAME.findall(xml)) == 1
    return NAME.sub(element.encode(), xml)


def _dotnet(cert: x509.Certificate) -> str:
    """What .NET's `cert.Subject` writes: ", " between RDNs, UID by its OID."""
    return cert.subject.rfc4514_string().replace(",", ", ").replace("UID=", "OID.0.9.2342.19200300.100.1.1=")


EDITS: dict[str, Callable[[x509.Certificate, TestPKI], str]] = {
    "missing": lambda cert, pki: "",
    "empty": lambda cert, pki: "<X509SubjectName/>",
    "another": lambda cert, pki: f"<X509SubjectName>{pki.root.cert.subject.rfc4514_string()}</X509SubjectName>",
    "rfc4514": lambda cert, pki: f"<X509SubjectName>{cert.subject.rfc4514_string()}</X509SubjectName>",
    "dotnet": lambda cert, pki: f"<X509SubjectName>{_dotnet(cert)}</X509SubjectName>",
}
SAYS = {"missing": "has no X509SubjectName", "empty": "is empty", "another": "is not the signing certificate's"}


@pytest.fixture(scope="module", params=["portal", "strict"])
def facility(request: pytest.FixtureRequest, admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> Hospital:
    return provision(admin, trusted, server.base_url, strictness=request.param)


@pytest.mark.parametrize("edit", list(EDITS))
def test_x509_subject_name(admin: httpx.Client, trusted: TestPKI, facility: Hospital, edit: str) -> None:
    strict = admin.get(f"/sandbox/facilities/{facility.code}").json()["strictness"] == "strict"
    cert = facility.credential.cert
    sent: Sent = send(admin, facility, _with_name(sample(facility), EDITS[edit](cert, trusted)))
    assert sent.submission["signature"]["indication"] == "TOTAL_PASSED"
    found = [f for f in sent.submission["findings"] if f["code"] == CODE]
    if edit not in SAYS:  # the certificate's subject, as RFC 4514 or as .NET writes it
        assert found == [] and sent.reply.ma_ket_qua == "200", sent.submission["findings"]
        return
    [finding] = found
    assert SAYS[edit] in finding["message_en"] and finding["grade"] == "OBSERVED"
    assert finding["expected"] == cert.subject.rfc4514_string()
    if edit == "another":
        assert finding["received"] == trusted.root.cert.subject.rfc4514_string()
    if strict:
        assert sent.reply.ma_ket_qua == "205" and finding["severity"] == "error"
        assert sent.error_codes[0] == CODE and sent.reply.explain == f"{CODE}: {finding['message_en']}"
    else:
        assert sent.reply.ma_ket_qua == "200" and finding["severity"] == "warning"


@pytest.mark.parametrize(
    ("written", "same"),
    [
        ("CN=Bệnh viện Từ Dũ,UID=CSKCB:79001,O=Bệnh viện Từ Dũ,C=VN", True),  # RFC 4514, Java, OpenSSL RFC2253
        ("cn=BỆNH VIỆN TỪ DŨ; uid=CSKCB:79001; o=Bệnh  viện Từ Dũ; c=vn", True),  # case, spacing, ';'
        ("C = VN, O = Bệnh viện Từ Dũ, UID = CSKCB:79001, CN = Bệnh viện Từ Dũ", True),  # OpenSSL's default
        (
            'CN="Bệnh viện Từ Dũ",0.9.2342.19200300.100.1.1=#0c0b43534b43423a3739303031,O=B\\E1\\BB\\87'
            + "nh viện Từ Dũ,C=VN",
            True,
        ),
        ("CN=Bệnh viện Từ Dũ,UID=CSKCB:79002,O=Bệnh viện Từ Dũ,C=VN", False),  # another facility's UID
        ("CN=Bệnh viện Từ Dũ,O=Bệnh viện Từ Dũ,C=VN", False),  # an RDN short
        ("UID=CSKCB:79001,CN=Bệnh viện Từ Dũ,O=Bệnh viện Từ Dũ,C=VN", False),  # RDNs out of order
        ("Bệnh viện Từ Dũ", False),
        ("XX=1,CN=Bệnh viện Từ Dũ", False),
    ],
)
def test_subject_names_are_compared_as_distinguished_names(pki: TestPKI, written: str, same: bool) -> None:
    cert = pki.issue_facility_cert("79001").cert
    assert same_name(written, cert.subject) is same
    assert same_name(unicodedata.normalize("NFD", written), cert.subject) is same


# Issue 25: a huge X509SubjectName is judged without parsing it and quoted clipped; .NET's other keywords
def _parsed(pki: TestPKI) -> ParsedSignature:
    """A reference signature, signed in-process, as the examination parses it."""
    now = datetime.now(UTC).replace(microsecond=0)
    cred = pki.issue_facility_cert("79001")
    fields = sample_fields(DocumentType.GCS, facility_code="79001", serial=1, issued_at=now, seed=25)
    xml = sign_document(build_xml(DocumentType.GCS, fields), cred.key, cred.cert, signing_time=now)
    _, sig = locate_signature(etree.fromstring(xml))
    assert sig is not None
    return parse_signature(sig)


def test_a_megabyte_subject_name_is_another_name_at_once_and_quoted_clipped(pki: TestPKI) -> None:
    """A 1 MB name took ~1.3 s of CPU to parse, and was quoted three times in the stored finding."""
    parsed = replace(_parsed(pki), subject_names=("CN=a," * 200_000,))
    started = time.process_time()
    [finding] = check_subject_name(parsed)
    assert time.process_time() - started < 0.05
    assert finding.received == "CN=a," * 40 and finding.expected == parsed.certificates[0].subject.rfc4514_string()
    assert len(finding.message_en) < 600 and len(finding.message_vi) < 600


@pytest.mark.parametrize(
    ("written", "same"),
    [
        ('CN=Bệnh viện Từ Dũ, PostalCode=700000, OID.2.5.4.97=VNVN-79001, O=Sở Y tế \\"TP.HCM\\", C=VN', True),
        ('CN=Bệnh viện Từ Dũ, OID.2.5.4.17=700000, OID.2.5.4.97=VNVN-79001, O="Sở Y tế ""TP.HCM""", C=VN', True),
        ('CN=Bệnh viện Từ Dũ,postalCode=700000,organizationIdentifier=VNVN-79001,O=Sở Y tế \\"TP.HCM\\",C=VN', True),
        ('CN=Bệnh viện Từ Dũ, PostalCode=700001, OID.2.5.4.97=VNVN-79001, O="Sở Y tế ""TP.HCM""", C=VN', False),
    ],
)
def test_dotnet_keywords_and_doubled_quotes(written: str, same: bool) -> None:
    """.NET writes postalCode `PostalCode=` and doubles a quote inside a quoted value."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Sở Y tế "TP.HCM"'),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "VNVN-79001"),
            x509.NameAttribute(NameOID.POSTAL_CODE, "700000"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Bệnh viện Từ Dũ"),
        ]
    )
    assert same_name(written, name) is same
