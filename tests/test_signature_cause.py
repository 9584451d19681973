"""A certificate defect is named by its own first finding, in every surface a vendor reads.

Each hospital below signs with a certificate that fails exactly one trust rule, from the real test PKI,
over real HTTP; the cause must lead the X-Sandbox-Explain header, the journal entry, the dashboard's
verdict, `conformance check` and the six-monthly report's refusal reasons — one order, decided in the
domain. The portal trusts the root CA's *renewed* certificate (valid from 2025-03-01): a leaf it issued
for 2024 still chains to it, so the expired leaf is "expired", not "untrusted" (issue 23).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.cli import main as conformance_main
from fixtures.certificates import build_xml
from fixtures.pki import Credential, TestPKI, cert_pem, crl_pem
from fixtures.samples import sample_fields, signed_sample
from fixtures.signer import sign_document
from mock_portal.documents import DocumentType
from tests.conftest import Hospital, load_crl, provision
from tests.live import LiveServer, dashboard_login

RENEWED = datetime(2025, 3, 1, tzinfo=UTC)
PEM = {"Content-Type": "application/x-pem-file"}
TOTAL_FAILED = {"EXPIRED", "NOT_YET_VALID", "REVOKED"}
# a portal of its own: it reads the newest journal entries, and trusts a PKI of the module's own
pytestmark = pytest.mark.portal()
"""The sub-indications of a definite failure: the signer's own SigningTime convicts it."""


@dataclass(frozen=True)
class Cause:
    """One defect: how to sign with it, and the finding, words and sub-indication that must lead."""

    code: str
    words: str
    sub_indication: str
    offline: bool = True
    """`conformance check` judges it too (it takes the file's certificate as registered, at real time)."""


CAUSES: dict[str, Cause] = {
    "expired": Cause("SIG_CERT_INVALID_AT_SIGNING_TIME", "had expired on 2025-01-01", "EXPIRED"),
    "not-yet-valid": Cause("SIG_CERT_INVALID_AT_SIGNING_TIME", "was not yet valid", "NOT_YET_VALID"),
    "expired-at-receipt": Cause("SIG_CERT_INVALID_AT_RECEIPT", "had expired", "OUT_OF_BOUNDS_NO_POE", False),
    "not-yet-valid-at-receipt": Cause(
        "SIG_CERT_INVALID_AT_RECEIPT", "was not yet valid", "OUT_OF_BOUNDS_NO_POE", False
    ),
    "revoked": Cause("SIG_CERT_REVOKED", "was revoked on", "REVOKED"),
    "revoked-after-signing": Cause("SIG_CERT_REVOKED", "with no proof it was signed before", "REVOKED_NO_POE"),
    "untrusted": Cause("SIG_CERT_UNTRUSTED", "does not chain to a CA the portal trusts", "NO_CERTIFICATE_CHAIN_FOUND"),
    "wrong-key-usage": Cause(
        "SIG_CERT_KEY_USAGE", "neither digitalSignature nor nonRepudiation", "CHAIN_CONSTRAINTS_FAILURE"
    ),
    "unregistered": Cause("SIG_CERT_NOT_REGISTERED", "not registered for facility", "SIG_CONSTRAINTS_FAILURE", False),
}


@dataclass
class Signed:
    """A refused submission: the file, the reply's header and the submission id."""

    hospital: Hospital
    xml: bytes
    explain: str
    submission_id: str


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create(now=datetime.now(UTC).replace(microsecond=0))


def _sign(hospital: Hospital, credential: Credential, signing_time: datetime) -> bytes:
    return signed_sample(
        DocumentType.GCS, credential, facility_code=hospital.code, issued_at=signing_time, signing_time=signing_time
    )


def _send(admin: httpx.Client, hospital: Hospital, xml: bytes, at: datetime | None = None) -> Signed:
    """Send at sandbox instant `at` (the clock frozen there, then back to real time), else now."""
    if at is not None:
        assert admin.put("/sandbox/clock", json={"now": at.isoformat(), "rate": 0}).status_code == 200
    try:
        hospital.client.take_token()
        reply = hospital.client.send("GCS", xml)
    finally:
        if at is not None:
            assert admin.delete("/sandbox/clock").status_code == 200
    assert reply.ma_ket_qua == "205", "the wire reply stays the real portal's: an invalid file"
    assert reply.submission_id and reply.explain
    return Signed(hospital, xml, reply.explain, reply.submission_id)


@pytest.fixture(scope="module")
def sent(admin: httpx.Client, portal: LiveServer, pki: TestPKI) -> dict[str, Signed]:
    """Every cause sent once, each by a facility of its own."""
    renewed = admin.post("/sandbox/trust/cas", content=cert_pem(pki.renewed_root(RENEWED)), headers=PEM)
    assert renewed.status_code == 201, renewed.text
    now = pki.now

    def hospital(variant: str = "valid", **validity: datetime) -> tuple[Hospital, Credential]:
        site = provision(admin, pki, portal.base_url, variant=variant)
        if not validity:
            return site, site.credential
        credential = pki.issue_facility_cert(site.code, variant, **validity)
        registered = admin.post(
            f"/sandbox/facilities/{site.code}/certificates", content=cert_pem(credential.cert), headers=PEM
        )
        assert registered.status_code == 201, registered.text
        return site, credential

    def rotated(site: Hospital) -> tuple[Hospital, Credential]:
        """The token rotated: a new certificate of the trusted CA, never registered for the facility."""
        return site, pki.issue_facility_cert(site.code)

    ends, starts = now + timedelta(days=10), now + timedelta(days=20)
    plan: dict[str, tuple[tuple[Hospital, Credential], datetime, datetime | None]] = {
        # name: (facility and the certificate it signs with, SigningTime, sandbox instant of receipt or now)
        "expired": (
            hospital(not_before=datetime(2024, 1, 1, tzinfo=UTC), not_after=datetime(2025, 1, 1, tzinfo=UTC)),
            now,
            None,
        ),
        "not-yet-valid": (hospital("not-yet-valid"), now, None),
        "expired-at-receipt": (hospital(not_after=ends), ends - timedelta(hours=1), ends + timedelta(hours=1)),
        "not-yet-valid-at-receipt": (
            hospital(not_before=starts),
            starts + timedelta(minutes=1),
            starts - timedelta(minutes=2),
        ),
        "revoked": (hospital("revoked"), now, None),  # revoked a day before now
        "revoked-after-signing": (hospital("revoked"), now - timedelta(days=2), None),
        "untrusted": (hospital("untrusted-ca"), now, None),
        "wrong-key-usage": (hospital("wrong-key-usage"), now, None),
        "unregistered": (rotated(hospital()[0]), now, None),
    }
    load_crl(admin, pki)  # revokes both "revoked" certificates
    return {
        name: _send(admin, site, _sign(site, credential, signing_time), at)
        for name, ((site, credential), signing_time, at) in plan.items()
    }


def _submission(admin: httpx.Client, signed: Signed) -> dict[str, Any]:
    found = admin.get(f"/sandbox/submissions/{signed.submission_id}")
    assert found.status_code == 200, found.text
    return found.json()


def _error_codes(findings: list[dict[str, Any]]) -> list[str]:
    return [f["code"] for f in findings if f["severity"] == "error"]


@pytest.mark.parametrize("name", list(CAUSES))
def test_the_cause_leads_the_header_and_the_verdict(admin: httpx.Client, sent: dict[str, Signed], name: str) -> None:
    cause, signed = CAUSES[name], sent[name]
    assert signed.explain.startswith(f"{cause.code}: "), signed.explain
    assert cause.words in signed.explain, signed.explain
    submission = _submission(admin, signed)
    assert _error_codes(submission["findings"])[0] == cause.code
    assert submission["signature"]["sub_indication"] == cause.sub_indication
    assert submission["explain"] == signed.explain


@pytest.mark.parametrize("name", list(CAUSES))
def test_the_cause_leads_the_journal(admin: httpx.Client, sent: dict[str, Signed], name: str) -> None:
    entries = admin.get("/sandbox/journal", params={"limit": 200}).json()
    [entry] = [e for e in entries if str(e.get("submission_id")) == sent[name].submission_id]
    assert entry["findings"][0] == CAUSES[name].code, entry["findings"]


def test_an_expired_leaf_of_a_renewed_ca_is_expired_not_untrusted(admin: httpx.Client, sent: dict[str, Signed]) -> None:
    """Issue 23's measurement: the chain is found whatever the instant, then the certificate is judged."""
    checks = {c["name"]: c for c in _submission(admin, sent["expired"])["signature"]["checks"]}
    assert checks["certificate_chain_trusted"]["outcome"] == "PASSED"
    assert checks["certificate_valid_at_signing_time"]["outcome"] == "FAILED"
    assert checks["certificate_not_revoked"]["outcome"] == "PASSED"  # the CRL was read for it


def test_a_check_that_could_not_run_names_what_stopped_it(admin: httpx.Client, sent: dict[str, Signed]) -> None:
    checks = {c["name"]: c for c in _submission(admin, sent["untrusted"])["signature"]["checks"]}
    revocation = checks["certificate_not_revoked"]
    assert revocation["outcome"] == "SKIPPED"
    assert revocation["message_en"] == (
        "Not checked: SIG_CERT_UNTRUSTED stopped the chain: no trusted issuer to look up a CRL for."
    )
    assert revocation["detail"] == "SIG_CERT_UNTRUSTED"
    assert checks["certificate_valid_at_signing_time"]["outcome"] == "PASSED", "the leaf's own dates still judged"


@pytest.fixture(scope="module")
def dashboard(portal: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal.base_url, follow_redirects=True, timeout=30) as client:
        assert dashboard_login(client, portal.admin_token).status_code == 200
        yield client


@pytest.mark.parametrize("name", list(CAUSES))
def test_the_cause_leads_the_dashboard_verdict(dashboard: httpx.Client, sent: dict[str, Signed], name: str) -> None:
    page = dashboard.get(f"/sandbox/ui/submissions/{sent[name].submission_id}")
    assert page.status_code == 200
    verdict = re.search(r'<p id="verdict">(.*?)</p>', page.text, re.S)
    assert verdict is not None
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", verdict.group(1))).split())
    assert text.startswith(f"MaKetQua 205 {CAUSES[name].code}: ") and CAUSES[name].words in text, text


def test_the_dashboard_shows_what_stopped_a_check(dashboard: httpx.Client, sent: dict[str, Signed]) -> None:
    page = html.unescape(dashboard.get(f"/sandbox/ui/submissions/{sent['untrusted'].submission_id}").text)
    assert "Not checked: SIG_CERT_UNTRUSTED stopped the chain" in page


@pytest.mark.parametrize("name", [name for name, cause in CAUSES.items() if cause.offline])
def test_the_cause_leads_conformance_check(
    sent: dict[str, Signed], pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    cause, signed = CAUSES[name], sent[name]
    (tmp_path / "ca.pem").write_bytes(cert_pem(pki.renewed_root(RENEWED)))
    (tmp_path / "crl.pem").write_bytes(crl_pem(pki.crl()))
    (tmp_path / "file.xml").write_bytes(signed.xml)
    argv = [
        "check",
        str(tmp_path / "file.xml"),
        "--trust",
        str(tmp_path / "ca.pem"),
        "--crl",
        str(tmp_path / "crl.pem"),
    ]
    assert conformance_main([*argv, "--facility", signed.hospital.code]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"  cause: {cause.code}: ") and cause.words in lines[1], lines[:3]
    indication = "TOTAL_FAILED" if cause.sub_indication in TOTAL_FAILED else "INDETERMINATE"
    assert lines[2] == f"  signature: {indication} / {cause.sub_indication} (two-reference)"


def test_offline_takes_the_certificate_as_registered(
    sent: dict[str, Signed], pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Why `unregistered` has no offline row: `conformance check` has no "Danh mục chứng thư số"."""
    (tmp_path / "ca.pem").write_bytes(cert_pem(pki.renewed_root(RENEWED)))
    (tmp_path / "file.xml").write_bytes(sent["unregistered"].xml)
    assert conformance_main(["check", str(tmp_path / "file.xml"), "--trust", str(tmp_path / "ca.pem")]) == 0
    assert "ACCEPTED" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(CAUSES))
def test_the_cause_is_the_six_monthly_refusal_reason(
    admin: httpx.Client, sent: dict[str, Signed], pki: TestPKI, name: str
) -> None:
    span = {
        "from": (pki.now - timedelta(days=3)).date().isoformat(),
        "to": (pki.now + timedelta(days=30)).date().isoformat(),
    }
    report = admin.get("/sandbox/reports/semiannual", params=span)
    assert report.status_code == 200, report.text
    [row] = [f for f in report.json()["facilities"] if f["code"] == sent[name].hospital.code]
    assert row["GCS"]["refused_by_reason"] == {CAUSES[name].code: 1}


# Issue 25: the dashboard shows an out-of-range SigningTime as written, it never fails on it ---------------


@pytest.mark.parametrize("written", ["0001-01-01T00:00:00", "9999-12-31T23:59:59"])
def test_a_signing_time_at_the_end_of_the_calendar_is_shown_as_written(
    admin: httpx.Client, portal: LiveServer, pki: TestPKI, dashboard: httpx.Client, written: str
) -> None:
    """A SigningTime of year 1 or 9999 read in UTC+7 overflows when turned to UTC or Vietnam time."""
    site = provision(admin, pki, portal.base_url)
    fields = sample_fields(DocumentType.GCS, facility_code=site.code, serial=1, issued_at=pki.now, seed=0)
    xml = sign_document(
        build_xml(DocumentType.GCS, fields),
        site.credential.key,
        site.credential.cert,
        signing_time=pki.now,
        signing_time_format=written,
    )
    site.client.take_token()
    reply = site.client.send("GCS", xml)
    assert reply.submission_id, reply
    page = dashboard.get(f"/sandbox/ui/submissions/{reply.submission_id}")
    assert page.status_code == 200, page.text[:500]
    assert written in page.text
