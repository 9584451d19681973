"""Issue 25: KeyInfo's X509SubjectName, missing, empty, another name or the signing certificate's subject,
over real HTTP in `portal` mode (a graded warning) and `strict` mode (a refusal), with real signatures.

KeyInfo is outside what the signature covers, so each file is a reference signature whose
X509SubjectName is then rewritten: the signature itself stays valid (TOTAL_PASSED) in every case."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import httpx
import pytest
from cryptography import x509

from fixtures.pki import TestPKI
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
