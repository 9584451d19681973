"""`POST /api/hososuckhoe/guiGiayToDienTu` through real HTTP with real signatures from the test PKI.

Accepted documents are stored before the reply; every bad input gets the real portal's MaKetQua,
a specific finding, and is never stored as accepted.
"""

from __future__ import annotations

import ast
import base64
import itertools
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import httpx
import pytest

import mock_portal
from fixtures.certificates import INVALID_KINDS, build_xml
from fixtures.hospital.wire import LOAI_HS, SUBMIT_PATH
from fixtures.pki import TestPKI
from fixtures.samples import SIGNATURE_KINDS, sample_fields
from fixtures.signer import sign_document
from mock_portal.documents import DocumentType
from mock_portal.results.findings import EXPLAIN_CHARS
from mock_portal.store.models import Submission
from tests.conftest import Hospital, load_crl, provision
from tests.live import LiveServer
from tests.wire import Sent, sample, send, send_form

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def assert_refused(sent: Sent, code: str, finding: str) -> None:
    assert sent.reply.ma_ket_qua == code, sent.submission["findings"]
    assert sent.reply.ma_gd == ""
    assert finding in sent.codes, sent.codes
    assert sent.submission["result"] == code
    assert sent.submission["document"] is None, "a refused file is never stored as accepted"
    assert sent.reply.explain and ":" in sent.reply.explain


@pytest.fixture(scope="module")
def facility(admin: httpx.Client, trusted: TestPKI, portal: LiveServer, request: pytest.FixtureRequest) -> Hospital:
    """A facility of the strictness given ("portal" or "strict", indirectly), one for the module's tests that
    send one file and judge only that file's submission (its findings, its reply). What they test is the
    file, not the facility, and a fresh facility each cost a new RSA key, an HTTP client and a scrypt token
    (~0.2 s of CPU, 87 times). The tests that change a facility (lock, unregister, another's certificate or
    token) or count its submissions keep a fresh `hospital`."""
    return provision(admin, trusted, portal.base_url, strictness=request.param)


# accepted documents ---------------------------------------------------------------------------


def test_valid_gcs_is_accepted_stored_and_explained(admin: httpx.Client, hospital: Hospital) -> None:
    xml = sample(hospital, "GCS")
    before = datetime.now(UTC).replace(microsecond=0)
    sent = send(admin, hospital, xml)
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    assert re.fullmatch(rf"HS_GCS{hospital.code}_[0-9A-F-]{{36}}", sent.reply.ma_gd)
    received = datetime.strptime(sent.reply.thoi_gian_tiep_nhan, "%Y%m%d%H%M%S").replace(tzinfo=VN)
    assert before - timedelta(seconds=1) <= received <= datetime.now(UTC) + timedelta(seconds=1), "Vietnam time"
    assert sent.reply.explain.startswith("ACCEPTED: GCS")
    document = sent.submission["document"]
    assert document["type"] == "GCS" and document["ma_gd"] == sent.reply.ma_gd
    assert document["fields"]["MA_GCS"] == document["code"]
    assert sent.submission["signature"]["indication"] == "TOTAL_PASSED"
    assert sent.submission["signature"]["profile"] == "two-reference"
    stored = admin.get(f"/sandbox/submissions/{sent.reply.submission_id}/file")
    assert stored.status_code == 200 and stored.content == xml
    by_code = admin.get(f"/sandbox/documents/{document['code']}")
    assert by_code.status_code == 200 and [d["ma_gd"] for d in by_code.json()] == [sent.reply.ma_gd]


def test_valid_gbt_is_accepted(admin: httpx.Client, hospital: Hospital) -> None:
    sent = send(admin, hospital, sample(hospital, "GBT"), "GBT")
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    assert sent.submission["document"]["type"] == "GBT"
    assert sent.reply.ma_gd.startswith(f"HS_GBT{hospital.code}_")


def test_sending_twice_makes_two_records(admin: httpx.Client, hospital: Hospital) -> None:
    xml = sample(hospital)
    first, second = send(admin, hospital, xml), send(admin, hospital, xml)
    assert first.reply.ma_ket_qua == second.reply.ma_ket_qua == "200"
    assert first.reply.ma_gd != second.reply.ma_gd
    code = first.submission["document"]["code"]
    assert len(admin.get(f"/sandbox/documents/{code}").json()) == 2


def test_older_enveloped_profile_is_accepted_and_named(admin: httpx.Client, hospital: Hospital) -> None:
    sent = send(admin, hospital, sample(hospital, profile="enveloped"))
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    assert sent.submission["signature"]["profile"] == "enveloped"


def test_ecdsa_certificate_is_accepted(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    hospital = provision(admin, trusted, server.base_url, variant="ecdsa")
    sent = send(admin, hospital, sample(hospital))
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]


# bad transport and XML ------------------------------------------------------------------------


def _form(hospital: Hospital, xml: bytes | None = None, **overrides: str) -> dict[str, str]:
    form = hospital.client.form("61", xml if xml is not None else b"<x/>")
    form.update(overrides)
    return form


@pytest.mark.parametrize(
    ("payload", "finding"),
    [
        (b"this is not xml at all", "XML_NOT_WELL_FORMED"),
        (b"<HSDLGCS><GIAYCHUNGSINH Id='a'>", "XML_NOT_WELL_FORMED"),
        (b'<?xml version="1.0"?><!DOCTYPE HSDLGCS [<!ELEMENT HSDLGCS ANY>]><HSDLGCS/>', "XML_DTD_FORBIDDEN"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><HSDLGCS>&x;</HSDLGCS>',
            "XML_ENTITY_FORBIDDEN",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><HSDLGCS>&c;</HSDLGCS>',
            "XML_ENTITY_FORBIDDEN",
        ),
        (b"<HSDLGCS>" + b"<a>" * 300 + b"</a>" * 300 + b"</HSDLGCS>", "XML_TOO_DEEP"),
        (b"\xef\xbb\xbf<HSDLGCS/>", "XML_BOM"),
        ('<?xml version="1.0" encoding="utf-16"?><HSDLGCS/>'.encode("utf-16"), "XML_ENCODING"),
        (b"<HSDLGBT><GIAYBAOTU Id='x'/><CHUKYDONVI/></HSDLGBT>", "XML_ROOT_MISMATCH"),
    ],
    ids=[
        "not-xml",
        "truncated",
        "dtd",
        "external-entity",
        "entity-expansion",
        "deep-nesting",
        "bom",
        "utf-16",
        "wrong-root",
    ],
)
@pytest.mark.parametrize("facility", ["portal", "strict"], indirect=True)
def test_hostile_or_broken_xml_is_205(admin: httpx.Client, facility: Hospital, payload: bytes, finding: str) -> None:
    assert_refused(send(admin, facility, payload), "205", finding)


def test_gbt_sent_as_loaihs_61_is_a_root_mismatch(admin: httpx.Client, hospital: Hospital) -> None:
    sent = send(admin, hospital, sample(hospital, "GBT"), "GCS")
    assert_refused(sent, "205", "XML_ROOT_MISMATCH")


@pytest.mark.parametrize(
    ("overrides", "code", "finding"),
    [
        ({"fileBase64Str": "not base64 !!!"}, "205", "FILE_BASE64_INVALID"),
        ({"fileBase64Str": "PEhTRExHQ1M+"[:-1]}, "205", "FILE_BASE64_INVALID"),
        ({"fileBase64Str": ""}, "205", "FILE_EMPTY"),
        ({"loaiHs": "39"}, "205", "FILE_LOAIHS_UNKNOWN"),
        ({"loaiHs": ""}, "205", "FILE_LOAIHS_UNKNOWN"),
        ({"loaiHs": "6\x7f"}, "205", "FILE_LOAIHS_UNKNOWN"),
        ({"maCskcb": "7\x01"}, "401", "AUTH_FACILITY_UNKNOWN"),
    ],
    ids=[
        "malformed-base64",
        "truncated-base64",
        "empty-file",
        "unknown-loaihs",
        "missing-loaihs",
        "control-char-in-loaihs",
        "control-char-in-macskcb",
    ],
)
@pytest.mark.parametrize("facility", ["portal"], indirect=True)
def test_bad_form_values(
    admin: httpx.Client, facility: Hospital, overrides: dict[str, str], code: str, finding: str
) -> None:
    assert_refused(send_form(admin, facility, _form(facility, **overrides)), code, finding)


# schema and business rules: broken before signing, so the signature itself is good ------------


PORTAL_REFUSES = {"bad_pattern", "empty_required", "missing_required"}
"""Defects outside every source's shape: refused in portal mode too. The rest only the sandbox (or one
source) checks: portal mode accepts them with a warning."""


@pytest.mark.parametrize("facility", ["portal", "strict"], indirect=True)
@pytest.mark.parametrize("kind", sorted(INVALID_KINDS), ids=str)
def test_field_level_defects_per_mode(
    admin: httpx.Client, facility: Hospital, kind: str, request: pytest.FixtureRequest
) -> None:
    invalid = INVALID_KINDS[kind]
    doc_kind = sorted(t.name for t in invalid.doc_types)[0]
    sent = send(admin, facility, sample(facility, doc_kind, invalid=kind), doc_kind)
    assert sent.submission["signature"]["indication"] == "TOTAL_PASSED", "only the data is wrong"
    finding = next(f for f in sent.submission["findings"] if f["code"] == invalid.code)
    assert finding["grade"] in {"CONFIRMED", "OBSERVED", "RECONSTRUCTED", "ADVISORY"} and finding["source"]
    if request.node.callspec.params["facility"] == "strict" or kind in PORTAL_REFUSES:
        assert_refused(sent, "205", invalid.code)
        return
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    assert finding["severity"] == "warning"
    assert invalid.code in sent.reply.explain and invalid.code in sent.codes
    assert sent.submission["document"] is not None


# signatures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("facility", ["portal", "strict"], indirect=True)
@pytest.mark.parametrize("kind", sorted(SIGNATURE_KINDS), ids=str)
def test_signature_defects_are_205_with_their_finding(admin: httpx.Client, facility: Hospital, kind: str) -> None:
    sent = send(admin, facility, sample(facility, invalid=kind))
    assert_refused(sent, "205", SIGNATURE_KINDS[kind].code)
    signature = sent.submission["signature"]
    assert signature is None or signature["indication"] in {"TOTAL_FAILED", "INDETERMINATE"}


def test_wrong_canonicalisation_is_explained_by_name(admin: httpx.Client, hospital: Hospital) -> None:
    sent = send(admin, hospital, sample(hospital, invalid="wrong_c14n"))
    messages = " ".join(f["message_en"] for f in sent.submission["findings"])
    assert "namespace" in messages.lower(), messages


@pytest.mark.parametrize(
    ("variant", "finding", "sub_indication"),
    [
        ("untrusted-ca", "SIG_CERT_UNTRUSTED", "NO_CERTIFICATE_CHAIN_FOUND"),
        ("expired", "SIG_CERT_INVALID_AT_SIGNING_TIME", "EXPIRED"),
        ("not-yet-valid", "SIG_CERT_INVALID_AT_SIGNING_TIME", "NOT_YET_VALID"),
        ("wrong-key-usage", "SIG_CERT_KEY_USAGE", "CHAIN_CONSTRAINTS_FAILURE"),
    ],
    ids=str,
)
@pytest.mark.parametrize("mode", ["portal", "strict"])
def test_certificate_defects(
    admin: httpx.Client,
    trusted: TestPKI,
    server: LiveServer,
    variant: str,
    finding: str,
    sub_indication: str,
    mode: str,
) -> None:
    hospital = provision(admin, trusted, server.base_url, variant=variant, strictness=mode)
    sent = send(admin, hospital, sample(hospital))
    assert_refused(sent, "205", finding)
    assert sent.submission["signature"]["sub_indication"] == sub_indication


def test_revoked_certificate_is_refused_once_the_crl_is_loaded(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer
) -> None:
    hospital = provision(admin, trusted, server.base_url, variant="revoked")
    load_crl(admin, trusted)
    sent = send(admin, hospital, sample(hospital))
    assert_refused(sent, "205", "SIG_CERT_REVOKED")
    assert sent.submission["signature"]["sub_indication"] == "REVOKED"


def test_unregistered_certificate_is_refused(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    hospital = provision(admin, trusted, server.base_url, register=False)
    assert_refused(send(admin, hospital, sample(hospital)), "205", "SIG_CERT_NOT_REGISTERED")


def test_certificate_of_another_facility_is_refused(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    mine, other = provision(admin, trusted, server.base_url), provision(admin, trusted, server.base_url)
    borrowed = Hospital(mine.code, mine.username, mine.password, other.credential, mine.client)
    assert_refused(send(admin, mine, sample(borrowed)), "205", "SIG_CERT_NOT_REGISTERED")


def test_unregistering_a_certificate_takes_effect(admin: httpx.Client, hospital: Hospital) -> None:
    fingerprint = hospital.credential.fingerprint
    assert admin.delete(f"/sandbox/facilities/{hospital.code}/certificates/{fingerprint}").status_code == 204
    assert_refused(send(admin, hospital, sample(hospital)), "205", "SIG_CERT_NOT_REGISTERED")


# authentication -------------------------------------------------------------------------------


def test_token_of_another_facility_is_401(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    mine, other = provision(admin, trusted, server.base_url), provision(admin, trusted, server.base_url)
    form = mine.client.form("61", sample(mine), token=other.client.take_token())
    assert_refused(send_form(admin, mine, form), "401", "AUTH_TOKEN_OTHER_ACCOUNT")


@pytest.mark.parametrize("facility", ["portal", "strict"], indirect=True)
@pytest.mark.parametrize(
    ("field", "value", "finding"),
    [
        ("token", "forged-token", "AUTH_TOKEN_INVALID"),
        ("id_token", "forged-id-token", "AUTH_TOKEN_INVALID"),
        ("password", "0" * 32, "AUTH_BAD_CREDENTIALS"),
        ("maCskcb", "01999", "AUTH_FACILITY_"),
        ("token", "", "AUTH_FIELDS_MISSING"),
    ],
    ids=["forged-token", "forged-id-token", "wrong-password", "unknown-maCskcb", "missing-token"],
)
def test_bad_credentials_are_401(admin: httpx.Client, facility: Hospital, field: str, value: str, finding: str) -> None:
    form = facility.client.form("61", sample(facility))
    form[field] = value
    sent = send_form(admin, facility, form)
    assert_refused(sent, "401", next(c for c in sent.codes if c.startswith(finding)))


def test_locked_account_cannot_submit(admin: httpx.Client, hospital: Hospital) -> None:
    form = hospital.client.form("61", sample(hospital))
    assert admin.post(f"/sandbox/facilities/{hospital.code}/lock").status_code == 200
    assert_refused(send_form(admin, hospital, form), "401", "AUTH_ACCOUNT_LOCKED")


# the server stays well -------------------------------------------------------------------------


def test_refusals_never_reach_accepted_documents(admin: httpx.Client, hospital: Hospital) -> None:
    sent = send(admin, hospital, sample(hospital, invalid="tampered"))
    code = sent.submission["document_code"]
    assert admin.get(f"/sandbox/documents/{code}").status_code == 404


def test_submissions_can_be_filtered(admin: httpx.Client, hospital: Hospital) -> None:
    send(admin, hospital, sample(hospital))
    send(admin, hospital, sample(hospital, invalid="unsigned"))
    refused = admin.get("/sandbox/submissions", params={"facility": hospital.code, "result": "205"}).json()
    accepted = admin.get("/sandbox/submissions", params={"facility": hospital.code, "result": "200"}).json()
    assert [s["result"] for s in refused] == ["205"] and [s["result"] for s in accepted] == ["200"]
    assert all(s["facility"] == hospital.code for s in refused + accepted)


def test_server_is_healthy_after_hostile_input(server: LiveServer) -> None:
    health = httpx.get(f"{server.base_url}/sandbox/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert b"Traceback" not in server.log.read_bytes()


def test_base64_with_line_breaks_is_decoded(admin: httpx.Client, hospital: Hospital) -> None:
    xml = sample(hospital)
    wrapped = base64.encodebytes(xml).decode()
    assert "\n" in wrapped
    sent = send_form(admin, hospital, hospital.client.form("61", xml) | {"fileBase64Str": wrapped})
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]


def test_unknown_form_fields_are_ignored_as_on_the_real_portal(admin: httpx.Client, hospital: Hospital) -> None:
    form = hospital.client.form("61", sample(hospital)) | {"maTinh": "79", "ghiChu": "extra"}
    sent = send_form(admin, hospital, form)
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]


def test_a_body_without_content_type_is_answered_by_the_portal(server: LiveServer) -> None:
    reply = httpx.post(f"{server.base_url}/api/hososuckhoe/guiGiayToDienTu", content=b"garbage")
    assert reply.status_code == 200 and reply.json()["MaKetQua"] == "401"
    assert reply.headers["x-sandbox-explain"].startswith("AUTH_FIELDS_MISSING")


# Issue 25: a field moved far is one SCHEMA_ORDER finding naming it ------------------------------------


@pytest.mark.parametrize("hospital", ["portal"], indirect=True)
def test_a_field_moved_far_is_one_order_finding_naming_it(admin: httpx.Client, hospital: Hospital) -> None:
    """The vendor's file: HOTEN_NND second and signed so. It got five SCHEMA_ORDER warnings naming the
    fields it jumped over (MA_BN … MA_THE_NND); one names HOTEN_NND (strict mode: tests/test_documents_schema.py)."""
    now = datetime.now(UTC).replace(microsecond=0)
    fields = sample_fields(DocumentType.GCS, facility_code=hospital.code, serial=1, issued_at=now, seed=25)
    names = [name for name in fields if name != "HOTEN_NND"]
    names.insert(1, "HOTEN_NND")
    xml = build_xml(DocumentType.GCS, {name: fields[name] for name in names})
    credential = hospital.credential
    sent = send(
        admin, hospital, sign_document(xml, credential.key, credential.cert, signing_time=now, chain=credential.chain)
    )
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    assert sent.reply.explain.endswith("; 1 warning(s): SCHEMA_ORDER")
    (order,) = [f for f in sent.submission["findings"] if f["code"] == "SCHEMA_ORDER"]
    assert (order["path"], order["severity"]) == (DocumentType.GCS.path("HOTEN_NND"), "warning")
    assert (
        order["message_en"] == "<HOTEN_NND> is after <MA_GCS>; the documented order (PL02) puts it after <MA_THE_NND>"
    )


# Issue 25: X-Sandbox-Explain is ASCII and says what the JSON says (non-ASCII percent-encoded as UTF-8)
def _english_templates() -> Iterator[tuple[str, int, str]]:
    """Every English message template in mock_portal: an `en=` / `message_en=` / `why_en=` / `detail_en=`
    argument, the argument after a Vietnamese one (the bilingual pairs), and the `*_EN` tables."""

    def vietnamese(node: ast.AST) -> bool:
        return any(not c.isascii() and unicodedata.category(c).startswith("L") for c in _constants(node))

    for path in sorted(Path(mock_portal.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found: list[ast.AST] = []
            if isinstance(node, ast.Call):
                found += [k.value for k in node.keywords if k.arg in {"en", "message_en", "why_en", "detail_en"}]
                found += [after for before, after in itertools.pairwise(node.args) if vietnamese(before)]
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "").endswith("_EN") for t in node.targets):
                found.append(node.value)
            yield from ((path.name, n.lineno, _constants(n)) for n in found)


def _constants(node: ast.AST) -> str:
    return "".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def test_every_english_message_template_is_ascii_but_for_the_vietnamese_words_it_quotes() -> None:
    """Headers carry the English messages: typographic dashes, quotes and ellipses read as '?' in a header.
    Vietnamese words a message quotes (a form's wording, 'Không cân') are data, percent-encoded there."""
    templates = list(_english_templates())
    assert len(templates) > 100, "the scan finds the catalogue"
    typographic = [
        (name, line, text)
        for name, line, text in templates
        if any(not c.isascii() and not unicodedata.category(c).startswith(("L", "M")) for c in text)
    ]
    assert typographic == []


def _raw_explain(reply: httpx.Response) -> str:
    [raw] = [value for name, value in reply.headers.raw if name.lower() == b"x-sandbox-explain"]
    assert raw.isascii() and raw.decode("ascii").isprintable(), raw
    return unquote(raw.decode("ascii"))


@pytest.mark.parametrize("kind", ["vietnamese", "newline", "wrong_c14n"])
def test_x_sandbox_explain_is_ascii_and_decodes_to_the_json_explanation(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer, kind: str
) -> None:
    """A strict facility's refusal whose cause quotes a Vietnamese value the document carries (an unknown
    ethnicity code 'Tà', or one with a line break: the header used to carry a space there), and the signature
    cause whose message had a typographic dash (now ASCII)."""
    hospital = provision(admin, trusted, server.base_url, strictness="strict")
    if kind in ("vietnamese", "newline"):
        now = datetime.now(UTC).replace(microsecond=0)
        fields = sample_fields(DocumentType.GCS, facility_code=hospital.code, serial=1, issued_at=now, seed=25)
        fields["MA_DANTOC_MTH"] = "Tà" if kind == "vietnamese" else "\nà"
        cred = hospital.credential
        xml = sign_document(build_xml(DocumentType.GCS, fields), cred.key, cred.cert, signing_time=now)
    else:
        xml = sample(hospital, invalid=kind)
    reply = hospital.client.http.post(SUBMIT_PATH, data=hospital.client.form(LOAI_HS["GCS"], xml))
    assert reply.json()["MaKetQua"] == "205"
    stored = admin.get(f"/sandbox/submissions/{reply.headers['x-sandbox-submission']}").json()
    cause = next(f for f in stored["findings"] if f["severity"] == "error")
    assert _raw_explain(reply) == stored["explain"] == f"{cause['code']}: {cause['message_en']}"
    quoted = {"vietnamese": "'Tà'", "newline": "\nà", "wrong_c14n": "xmlns:xsi): inclusive C14N"}[kind]
    assert quoted in stored["explain"]
    assert hospital.client.send_form(hospital.client.form(LOAI_HS["GCS"], xml)).explain == stored["explain"]


# Issue 25: X-Sandbox-Explain and the stored `explain` are cut at one length (a long cause decodes whole)
def test_a_long_explanation_decodes_to_the_whole_stored_explain(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer
) -> None:
    """A strict refusal for another X509SubjectName quotes it and the certificate's subject: ~320 characters,
    past the header's old 300 while the store kept 512."""
    hospital = provision(admin, trusted, server.base_url, strictness="strict")
    other = "CN=Bệnh viện Đa khoa Khu vực Miền núi phía Bắc tỉnh Lào Cai,OU=Phòng Kế hoạch Tổng hợp,"
    other += "O=Sở Y tế tỉnh Lào Cai,STREET=Số 1 đường Hoàng Liên,L=Thành phố Lào Cai,ST=Lào Cai,C=VN"
    xml = re.sub(
        rb"<X509SubjectName>[^<]*</X509SubjectName>",
        f"<X509SubjectName>{other}</X509SubjectName>".encode(),
        sample(hospital),
    )
    reply = hospital.client.http.post(SUBMIT_PATH, data=hospital.client.form(LOAI_HS["GCS"], xml))
    stored = admin.get(f"/sandbox/submissions/{reply.headers['x-sandbox-submission']}").json()
    assert reply.json()["MaKetQua"] == "205" and stored["explain"].startswith("SIG_X509_SUBJECT_NAME: ")
    assert len(stored["explain"]) > 300 and other in stored["explain"]
    assert _raw_explain(reply) == stored["explain"]


# Issue 25 (review): an issue date at the calendar's ends is accepted and counted in bounded time -----------


@pytest.mark.parametrize(("issued", "deadline"), [("00010101", None), ("00020102", "LATE"), ("99991231", "ON_TIME")])
def test_an_issue_date_at_the_ends_of_the_calendar_is_accounted_without_an_error(
    admin: httpx.Client, hospital: Hospital, issued: str, deadline: str | None
) -> None:
    """Without SigningTime (the enveloped profile) the deadline counts from NGAY_CT in Vietnam time:
    0001-01-01 00:00 UTC+7 is no UTC instant (it answered MaKetQua 500 SERVER_ERROR: OverflowError), and
    year 2 was counted day by day to today (20 s of CPU); both are now a document without a deadline or a
    LATE one, counted over the last `COUNTED_SPAN`."""
    now = datetime.now(UTC).replace(microsecond=0)
    fields = sample_fields(DocumentType.GCS, facility_code=hospital.code, serial=25_001, issued_at=now, seed=0)
    fields["NGAY_CT"] = issued
    xml = build_xml(DocumentType.GCS, fields)
    credential = hospital.credential
    signed = sign_document(xml, credential.key, credential.cert, signing_time=now, profile="enveloped")
    sent = send(admin, hospital, signed)
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    document = sent.submission["document"]
    assert (document["deadline"] or {}).get("status") == deadline, document["deadline"]


def test_the_stored_explain_column_holds_exactly_what_the_header_carries() -> None:
    """The store imports no domain package, so its column length is written out: it must be the cut's."""
    assert Submission.__table__.c.explain.type.length == EXPLAIN_CHARS
