"""Fidelity through real HTTP in both modes: documents shaped like the real vendors' generators (DIFF.md,
R1/R3/R10), the token request as production clients send it (R9), a facility mismatch (R2), and the
evidence grades on every finding, in the rules catalogue and in docs/fidelity.md."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx
import pytest

from conformance.cases import load_cases
from conformance.evidence import Bundle
from conformance.model import CaseVerdict
from conformance.outcome import summary
from conformance.portal import SandboxAdmin
from fixtures.certificates import scenario
from fixtures.pki import TestPKI
from fixtures.signer import sign_document
from mock_portal import fidelity
from mock_portal.documents import DocumentType
from mock_portal.documents.sources import R1_GBT_ORDER
from mock_portal.portal.auth import md5_upper
from tests.conftest import Hospital, provision
from tests.live import LiveServer, dashboard_login
from tests.wire import Sent, send, send_form

VN = ZoneInfo("Asia/Ho_Chi_Minh")
XMLNS = ' xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
MODES = ["portal", "strict"]
_serial = iter(range(50_000, 60_000))


def _fields(hospital: Hospital, kind: str, issued_at: datetime | None = None) -> dict[str, str]:
    name = "gcs_normal" if kind == "GCS" else "gbt_inpatient"
    issued = issued_at or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return scenario(name, facility_code=hospital.code, serial=next(_serial), issued_at=issued)[0][1]


def _signed(hospital: Hospital, doc_type: DocumentType, fields: dict[str, str], *, data_xmlns: bool = False) -> bytes:
    """Sign fields in the order given, empty ones as `<X />`, with R3's extra namespace declarations."""
    body = "".join(f"<{k}>{escape(v)}</{k}>" if v else f"<{k} />" for k, v in fields.items())
    data_ns = XMLNS if data_xmlns else ""
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><{doc_type.root_tag}{XMLNS}>'
        f'<{doc_type.data_tag} Id="Id-{next(_serial)}"{data_ns}>{body}</{doc_type.data_tag}>'
        f"<CHUKYDONVI /></{doc_type.root_tag}>"
    ).encode()
    credential = hospital.credential
    return sign_document(xml, credential.key, credential.cert, signing_time=datetime.now(UTC), chain=credential.chain)


def _site(admin: httpx.Client, pki: TestPKI, server: LiveServer, mode: str) -> Hospital:
    return provision(admin, pki, server.base_url, strictness=mode)


def _findings(sent: Sent) -> dict[tuple[str, str], dict]:
    """(code, field) -> finding."""
    return {(f["code"], (f["path"] or "").rsplit("/", 1)[-1]): f for f in sent.submission["findings"]}


def _assert_mode(sent: Sent, mode: str, deviations: set[tuple[str, str]]) -> None:
    """portal: 200 with each deviation a graded warning; strict: 205 with each deviation an error."""
    found = _findings(sent)
    assert deviations <= set(found), (deviations - set(found), sorted(found))
    for key in deviations:
        assert found[key]["grade"] and found[key]["source"], found[key]
    if mode == "portal":
        assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
        assert {found[key]["severity"] for key in deviations} == {"warning"}
        assert sent.submission["document"] is not None
        assert "warning" in sent.reply.explain and all(code in sent.reply.explain for code, _ in deviations)
    else:
        assert sent.reply.ma_ket_qua == "205", sent.submission["findings"]
        assert {found[key]["severity"] for key in deviations} == {"error"}
        assert sent.submission["document"] is None


# documents shaped like the vendors' generators -----------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_r1_shaped_gbt_portal_order_and_two_letter_nationality(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str
) -> None:
    """R1: the portal's 2023 table order (NGUOI_THANTHICH first), its 35 fields, MA_QUOCTICH of 2."""
    site = _site(admin, trusted, server, mode)
    fields = _fields(site, "GBT")
    fields["MA_QUOCTICH"] = "VN"
    r1 = {name: fields[name] for name in R1_GBT_ORDER}
    assert list(r1).index("NGUOI_THANTHICH") < list(r1).index("NGUOI_GHIGIAY")
    sent = send(admin, site, _signed(site, DocumentType.GBT, r1), "GBT")
    _assert_mode(sent, mode, {("SCHEMA_ORDER", "NGUOI_GHIGIAY"), ("SCHEMA_PATTERN", "MA_QUOCTICH")})
    severity = "warning" if mode == "portal" else "error"
    assert (
        f"SCHEMA_ORDER=RECONSTRUCTED:{severity}"
        in site.client.http.post(
            "/api/hososuckhoe/guiGiayToDienTu", data=site.client.form("60", _signed(site, DocumentType.GBT, r1))
        ).headers["X-Sandbox-Grades"]
    )
    order = _findings(sent)["SCHEMA_ORDER", "NGUOI_GHIGIAY"]
    assert "R1" in order["message_en"] and order["grade"] == "RECONSTRUCTED"
    assert sent.submission["signature"]["indication"] == "TOTAL_PASSED"


@pytest.mark.parametrize("mode", MODES)
def test_r3_shaped_gbt_every_element_empty_ones_kept_year_only_birth(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str
) -> None:
    """R3: every element present, `<X />` when unknown, xmlns:xsd/xsi on root and data element,
    year-only NGAY_SINH; fields R1 requires left empty."""
    site = _site(admin, trusted, server, mode)
    fields = _fields(site, "GBT")
    fields.update({"NGAY_SINH": fields["NGAY_SINH"][:4], "DCHI_THUONGTRU": "", "SO_BAOTU": "", "NOI_CAP": ""})
    sent = send(admin, site, _signed(site, DocumentType.GBT, fields, data_xmlns=True), "GBT")
    deviations = {("SCHEMA_PATTERN", "NGAY_SINH")} | {
        ("SCHEMA_REQUIRED_EMPTY", name) for name in ("DCHI_THUONGTRU", "SO_BAOTU", "NOI_CAP")
    }
    _assert_mode(sent, mode, deviations)
    assert _findings(sent)["SCHEMA_REQUIRED_EMPTY", "SO_BAOTU"]["grade"] == "CONFIRMED"  # R1 marks it required


@pytest.mark.parametrize("mode", MODES)
def test_r3_shaped_gcs_with_r3_only_required_fields_empty(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str
) -> None:
    site = _site(admin, trusted, server, mode)
    fields = _fields(site, "GCS")
    fields.update({"MA_BN": "", "CAN_NANG_CON": ""})
    sent = send(admin, site, _signed(site, DocumentType.GCS, fields, data_xmlns=True), "GCS")
    _assert_mode(sent, mode, {("SCHEMA_REQUIRED_EMPTY", "MA_BN"), ("SCHEMA_REQUIRED_EMPTY", "CAN_NANG_CON")})
    assert _findings(sent)["SCHEMA_REQUIRED_EMPTY", "MA_BN"]["grade"] == "RECONSTRUCTED"


@pytest.mark.parametrize("mode", MODES)
def test_r10_code_year_is_the_accounting_year(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str
) -> None:
    """R10 builds MA_GCS with the accounting year: a certificate of 2 January 2026 numbered `.25`."""
    site = _site(admin, trusted, server, mode)
    fields = _fields(site, "GCS", issued_at=datetime(2026, 1, 2, 9, 0, tzinfo=VN))
    fields["MA_GCS"] = fields["MA_GCS"][:-2] + "25"
    sent = send(admin, site, _signed(site, DocumentType.GCS, fields), "GCS")
    _assert_mode(sent, mode, {("RULE_CODE_YEAR", "MA_GCS")})
    assert _findings(sent)["RULE_CODE_YEAR", "MA_GCS"]["source"].count("R10") == 1


@pytest.mark.parametrize("mode", MODES)
def test_utf8_bom(admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str) -> None:
    """R6's StreamWriter(Encoding.UTF8) writes a BOM before a correctly signed file."""
    site = _site(admin, trusted, server, mode)
    signed = _signed(site, DocumentType.GCS, _fields(site, "GCS"))
    sent = send(admin, site, b"\xef\xbb\xbf" + signed, "GCS")
    _assert_mode(sent, mode, {("XML_BOM", "")})


def test_unsigned_file_is_refused_in_both_modes(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    for mode in MODES:
        site = _site(admin, trusted, server, mode)
        fields = _fields(site, "GCS")
        body = "".join(f"<{k}>{escape(v)}</{k}>" if v else f"<{k}/>" for k, v in fields.items())
        xml = f'<HSDLGCS><GIAYCHUNGSINH Id="a">{body}</GIAYCHUNGSINH><CHUKYDONVI/></HSDLGCS>'.encode()
        sent = send(admin, site, xml, "GCS")
        assert sent.reply.ma_ket_qua == "205" and "SIG_MISSING" in sent.error_codes
        finding = _findings(sent)["SIG_MISSING", "CHUKYDONVI"]
        assert finding["grade"] == "CONFIRMED" and "Decree 63" in finding["source"]


# the token request as production clients send it ---------------------------------------------


def _take(server: LiveServer, site: Hospital, *, json_body: bool, lowercase: bool) -> httpx.Response:
    password = md5_upper(site.password)
    payload = {"username": site.username, "password": password.lower() if lowercase else password}
    url = f"{server.base_url}/api/token/take"
    reply = httpx.post(url, json=payload) if json_body else httpx.post(url, data=payload)
    assert reply.status_code == 200, reply.text
    return reply


@pytest.mark.parametrize("mode", MODES)
def test_token_json_body_and_lowercase_md5(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str
) -> None:
    site = _site(admin, trusted, server, mode)
    json_upper = _take(server, site, json_body=True, lowercase=False)
    assert json_upper.json()["maKetQua"] == "200"
    assert json_upper.headers["X-Sandbox-Findings"] == "TOKEN_JSON_BODY"
    assert json_upper.headers["X-Sandbox-Grades"] == "TOKEN_JSON_BODY=OBSERVED:warning"
    assert list(json_upper.json()["APIKey"]) == ["access_token", "id_token", "token_type", "username", "expires_in"]
    lower = _take(server, site, json_body=True, lowercase=True)
    findings = lower.headers["X-Sandbox-Findings"].split(",")
    assert findings == ["TOKEN_JSON_BODY", "TOKEN_MD5_CASE"]
    if mode == "portal":
        assert lower.json()["maKetQua"] == "200"
        assert lower.headers["X-Sandbox-Explain"].startswith("TOKEN_ISSUED; warning(s)")
    else:
        assert lower.json() == {"maKetQua": "401", "APIKey": None}
        assert lower.headers["X-Sandbox-Explain"].startswith("TOKEN_MD5_CASE:")
    form_lower = _take(server, site, json_body=False, lowercase=True)
    assert form_lower.json()["maKetQua"] == ("200" if mode == "portal" else "401")
    journal = admin.get("/sandbox/journal", params={"facility": site.code, "operation": "token"}).json()
    entries = journal
    graded = [f for entry in entries for f in entry["graded_findings"] if f["code"] == "TOKEN_MD5_CASE"]
    assert len(graded) == 2 and {f["grade"] for f in graded} == {"OBSERVED"}


@pytest.mark.parametrize("mode", MODES)
def test_lowercase_md5_in_the_submission_form(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str
) -> None:
    site = _site(admin, trusted, server, mode)
    form = site.client.form("61", _signed(site, DocumentType.GCS, _fields(site, "GCS")))
    form["password"] = form["password"].lower()
    sent = send_form(admin, site, form)
    if mode == "portal":
        assert sent.reply.ma_ket_qua == "200" and "AUTH_MD5_CASE" in sent.codes
    else:
        assert sent.reply.ma_ket_qua == "401" and sent.error_codes == ["AUTH_MD5_CASE"]


def test_token_refusals_are_explained_and_journalled(admin: httpx.Client, server: LiveServer) -> None:
    reply = httpx.post(f"{server.base_url}/api/token/take", data={"username": "98765_BV", "password": "0" * 32})
    assert reply.json() == {"maKetQua": "401", "APIKey": None}
    assert reply.headers["X-Sandbox-Explain"].startswith("TOKEN_NO_ACCOUNT:")
    unknown = {"facility": "98765", "operation": "token", "identity": "unauthenticated"}  # nobody's account
    entries = admin.get("/sandbox/journal", params=unknown).json()
    assert entries and entries[0]["findings"] == ["TOKEN_NO_ACCOUNT"] and entries[0]["authenticated"] is False
    assert entries[0]["graded_findings"][0]["grade"] == "CONFIRMED"


def test_token_requests_refused_before_the_portal_are_explained_and_journalled(
    admin: httpx.Client, server: LiveServer
) -> None:
    url = f"{server.base_url}/api/token/take"
    broken = httpx.post(url, content=b'{"username": "55555_BV", ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.headers["X-Sandbox-Explain"].startswith("REQUEST_INVALID: Expecting")
    typed = httpx.post(url, content=b"username=55555_BV", headers={"Content-Type": "text/plain"})
    assert typed.status_code == 415 and typed.headers["X-Sandbox-Explain"].startswith("UNSUPPORTED_MEDIA_TYPE:")
    unread = {"operation": "token", "limit": 20, "identity": "unauthenticated"}  # no account proven
    journal = admin.get("/sandbox/journal", params=unread).json()
    assert {"REQUEST_INVALID", "UNSUPPORTED_MEDIA_TYPE"} <= {code for e in journal for code in e["findings"]}


# a facility mismatch --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_facility_mismatch(admin: httpx.Client, trusted: TestPKI, server: LiveServer, mode: str) -> None:
    """R2: a token of one facility with maCskcb of another is accepted and filed under the other."""
    sender = _site(admin, trusted, server, mode)
    other = provision(admin, trusted, server.base_url)
    fields = _fields(other, "GBT")  # the document speaks for the other facility (code, MACSKCB)
    xml = _signed(sender, DocumentType.GBT, fields)  # signed with the sender's registered certificate
    form = sender.client.form("60", xml)
    form["maCskcb"] = other.code
    sent = send_form(admin, sender, form)
    finding = _findings(sent)["AUTH_FACILITY_MISMATCH", ""]
    assert "FACILITY" in finding["code"] and finding["grade"] == "OBSERVED" and "R2" in finding["source"]
    if mode == "strict":
        assert sent.reply.ma_ket_qua == "401" and finding["severity"] == "error"
        return
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    assert finding["severity"] == "warning" and "AUTH_FACILITY_MISMATCH" in sent.reply.explain
    assert sent.reply.ma_gd.startswith(f"HS_GBT{other.code}_")
    document = sent.submission["document"]
    assert document["facility"] == other.code, "filed under the maCskcb sent (the wrong unit)"
    assert sent.submission["facility"] == other.code
    # a conformance run collects the sender's journal and its submissions: the mismatch fails a MUST case
    portal = SandboxAdmin(server.base_url, server.admin_token)
    journal = portal.journal(sender.code)
    assert [e["findings"] for e in journal if e["operation"] == "submit"] == [["AUTH_FACILITY_MISMATCH"]]
    bundle = Bundle(submissions=tuple(portal.submission(e["submission_id"]) for e in journal if e["submission_id"]))
    result = load_cases().get("GBT-DOC-007").judge(bundle)
    assert result.verdict is CaseVerdict.FAIL and result.blocking, result.message
    assert summary([result])["portal_compatible"]["verdict"] == "fail"


# the registry where users see it ----------------------------------------------------------------


def test_rules_catalogue_and_fidelity_registry_carry_grades(admin: httpx.Client) -> None:
    rules = admin.get("/sandbox/rules").json()
    assert rules and all(r["grade"] in {"OBSERVED", "RECONSTRUCTED", "ADVISORY"} and r["source"] for r in rules)
    year = next(r for r in rules if r["code"] == "RULE_CODE_YEAR")
    assert (year["portal_mode"], year["strict_mode"]) == ("warning", "refuse")
    behaviours = admin.get("/sandbox/fidelity").json()
    keys = {b["key"] for b in behaviours}
    assert {"wire.token_json", "wire.md5_case", "wire.facility_mismatch", "signature.required"} <= keys
    assert {"schema.GBT.MA_QUOCTICH", "schema.GBT.NGAY_SINH", "schema.order", "envelope.bom"} <= keys


def test_strictness_is_set_per_facility_and_validated(
    admin: httpx.Client, trusted: TestPKI, server: LiveServer
) -> None:
    site = provision(admin, trusted, server.base_url)
    shown = admin.get(f"/sandbox/facilities/{site.code}").json()
    assert (shown["strictness"], shown["strictness_override"]) == ("portal", None)
    put = admin.put(f"/sandbox/facilities/{site.code}/strictness", json={"strictness": "strict"})
    assert put.status_code == 200 and put.json()["strictness_override"] == "strict"
    bad = admin.put(f"/sandbox/facilities/{site.code}/strictness", json={"strictness": "lenient"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    missing = admin.put("/sandbox/facilities/00000/strictness", json={"strictness": "strict"})
    assert missing.status_code == 404
    back = admin.put(f"/sandbox/facilities/{site.code}/strictness", json={"strictness": None})
    assert back.json()["strictness"] == "portal" and back.json()["strictness_override"] is None


def test_every_finding_code_and_rule_has_a_graded_behaviour() -> None:
    from mock_portal.documents import list_rules

    codes = {code for b in fidelity.registry() for code in b.codes}
    assert {r.code for r in list_rules()} <= codes
    pattern = re.compile(r'"((?:SIG|XML|FILE|AUTH|SCHEMA|TOKEN)_[A-Z0-9_]+)"')
    emitted = {
        code
        for path in (Path(__file__).parents[1] / "mock_portal").rglob("*.py")
        for code in pattern.findall(path.read_text(encoding="utf-8"))
    }
    emitted -= {"FILE_NOT_STORED", "XML_1_0"}  # a sandbox API problem and an algorithm name, not findings
    assert emitted and emitted <= codes, emitted - codes


def test_portal_refusals_are_backed_by_their_grade() -> None:
    """portal mode refuses only CONFIRMED/OBSERVED behaviours, or integrity items said so in the reason."""
    for b in fidelity.registry():
        if b.evidence.portal.value == "refuse" and b.evidence.grade.value in {"RECONSTRUCTED", "ADVISORY"}:
            assert "integrity" in b.evidence.reason, b.key


def test_docs_fidelity_is_generated_from_the_registry() -> None:
    docs = Path(__file__).parents[1] / "docs" / "fidelity.md"
    assert docs.read_text(encoding="utf-8") == fidelity.render_markdown(), (
        "run `mock-portal fidelity --write docs/fidelity.md`"
    )
    assert "/work/shared" not in docs.read_text(encoding="utf-8")


def test_dashboard_shows_strictness_and_grades(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    site = _site(admin, trusted, server, "strict")
    fields = _fields(site, "GBT")
    fields["MA_QUOCTICH"] = "VN"
    sent = send(admin, site, _signed(site, DocumentType.GBT, fields), "GBT")
    assert sent.reply.ma_ket_qua == "205"
    with httpx.Client(base_url=server.base_url, follow_redirects=True) as ui:
        assert dashboard_login(ui, server.admin_token).status_code == 200
        facilities = ui.get("/sandbox/ui/facilities").text
        row = facilities[facilities.index(f'id="facility-{site.code}"') :]
        assert re.search(r'class="strictness"><span class="badge bad">strict</span>', row[:2000])
        page = ui.get(f"/sandbox/ui/submissions/{sent.reply.submission_id}").text
        assert "SCHEMA_PATTERN" in page and "grade-OBSERVED" in page and "R1 portal GBT table 2023" in page


def test_a_database_from_before_strictness_gets_the_column(tmp_path: Path) -> None:
    import sqlite3

    from mock_portal.store.repository import Repository, create_engine_for

    database = tmp_path / "old.sqlite3"
    with sqlite3.connect(database) as old:
        old.execute("CREATE TABLE facilities (code VARCHAR(5) PRIMARY KEY, name VARCHAR(255), created_at DATETIME)")
        old.execute("INSERT INTO facilities VALUES ('79001', 'old', '2026-01-01 00:00:00')")
    repo = Repository(create_engine_for(f"sqlite:///{database}"))
    repo.create_schema()
    repo.create_schema()  # idempotent
    assert repo.facility_strictness("79001") is None
    repo.set_facility_strictness("79001", "strict")
    assert repo.facility_strictness("79001") == "strict"
