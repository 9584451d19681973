"""`mock-portal rejudge LOG`: a log of real exchanges judged again, offline, at the instant each was sent.

Real signed files from the test PKI; the real codes of the log are chosen to agree and to disagree with the
sandbox, so the matrices, the disagreements and the behaviours' tallies are known exactly. The PKI lives in
the past (2025): its certificate has expired today but was valid when the log says the files were sent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from fixtures.pki import Credential, TestPKI, cert_pem, crl_pem
from fixtures.postgres import pg_bin
from fixtures.samples import signed_sample
from mock_portal.cli import main
from mock_portal.config import Settings
from mock_portal.documents import DocumentType
from mock_portal.evidence import field
from mock_portal.evidence.field import load_evidence
from mock_portal.evidence.log import LineError, LoggedSend, line_limit, read_log
from mock_portal.evidence.rejudge import RejudgeReport, rejudge
from mock_portal.portal.intake import IntakePolicy
from mock_portal.signature.trust import trust_from_files
from tests.conftest import postgres_server
from tests.markdown_blocks import blocks

PKI_NOW = datetime(2025, 6, 15, tzinfo=UTC)
SENT = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)
"""When the log says the files were sent: 09:00 in Vietnam, within the certificate's life."""
MAX_FILE = 64 * 1024
"""PORTAL_MAX_FILE_BYTES of these runs: a too-long line and a too-large file stay small."""
SECRETS = ("MK-bi-mat-2025", "tok.secret.value", "idtok.secret.value", "bv79001-user", "GD-SECRET-0001")
SEEDED = ("NGUYỄN THỊ HẠT GIỐNG", "079190999888")
"""Personal values the log carries outside the file (an extra key, an extra form field): never printed."""


@dataclass
class Log:
    path: Path
    ca: Path
    crl: Path
    credential: Credential
    late: Credential
    personal: set[str]
    """Every value of the signed files' data long enough to be a name, an ID number or a date."""


def _personal(xml: bytes) -> set[str]:
    root = etree.fromstring(xml)
    return {
        text.strip()
        for element in root.iter()
        if element.tag.split("}")[-1] not in ("SignatureValue", "X509Certificate", "DigestValue")
        and (text := element.text)
        and len(text.strip()) >= 8
    }


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    folder = tmp_path_factory.mktemp("rejudge")
    pki = TestPKI.create(now=PKI_NOW)
    credential = pki.issue_facility_cert("79001")
    late = pki.issue_facility_cert("79001", not_before=SENT + timedelta(days=30))
    revoked = pki.issue_facility_cert("79001", "revoked")
    assert credential.cert.not_valid_after_utc < datetime.now(UTC), "expired today, valid when sent"
    personal: set[str] = set()

    def signed(kind: str | None = None, signer: Credential = credential, serial: int = 1) -> bytes:
        xml = signed_sample(
            DocumentType.GCS,
            signer,
            facility_code="79001",
            serial=serial,
            issued_at=SENT - timedelta(hours=1),
            signing_time=SENT - timedelta(minutes=5),
            invalid=kind,
            seed=serial,
        )
        personal.update(_personal(xml))
        return xml

    def line(xml: bytes | None, reply: dict[str, Any] | None, **extra: Any) -> str:
        form: dict[str, Any] = {
            "maCskcb": "79001",
            "username": SECRETS[3],
            "password": SECRETS[0],
            "token": SECRETS[1],
            "id_token": SECRETS[2],
            "loaiHs": "61",
            "nguoi_nhap": SEEDED[0],
        }
        if xml is not None:
            form["fileBase64Str"] = base64.b64encode(xml).decode()
        form.update(extra.pop("form", {}))
        entry = {"sent_at": "2025-07-01T09:00:00+07:00", "form": form, "reply": reply, "benh_nhan": SEEDED, **extra}
        return json.dumps(entry, ensure_ascii=False)

    def answered(code: str) -> dict[str, str]:
        return {"MaKetQua": code, "MaGD": SECRETS[4] if code == "200" else "", "ThoiGianTiepNhan": "20250701090001"}

    (folder / "files").mkdir()
    (folder / "files" / "ok.xml").write_bytes(signed(serial=10))
    (folder / "files" / "big.xml").write_bytes(b"<x/>" + b" " * MAX_FILE)
    (folder / "files" / "out").symlink_to(folder.parent)
    (folder.parent / "outside.xml").write_bytes(signed(serial=11))
    lines = [
        line(signed(serial=1), answered("200"), id="k-1"),  # 1 agrees in both modes, at its instant
        line(signed("too_long", serial=2), answered("200"), id="k-2"),  # 2 strict refuses: stricter
        line(signed("bad_cccd", serial=3), answered("205")),  # 3 portal mode only warns: contradicted
        line(signed("tampered", serial=4), answered("205")),  # 4 agrees: the signature
        line(signed(serial=5), answered("401")),  # 5 not comparable
        line(signed(serial=6), None, failure="timeout"),  # 6 not comparable
        line(signed(serial=7), None, failure="http", http_status=502),  # 7 not comparable
        line(signed(signer=late, serial=8), answered("200"), id="k-8"),  # 8 signed before its notBefore
        line(signed(signer=revoked, serial=9), answered("200")),  # 9 revoked before it was signed (--crl)
        line(None, answered("200"), form={"file": "files/ok.xml"}),  # 10 the raw file beside the log
        line(None, answered("200"), form={"file": "../outside.xml"}),  # 11
        line(None, answered("200"), form={"file": str(folder.parent / "outside.xml")}),  # 12
        line(None, answered("200"), form={"file": "files/out/outside.xml"}),  # 13 a link out of the folder
        "{not json",  # 14
        "\udcff",  # 15 not UTF-8 (written as the byte 0xff below)
        line(signed(serial=16), answered("200")).replace("+07:00", ""),  # 16
        line(signed(serial=17), answered("200")).replace('"loaiHs": "61", ', ""),  # 17
        line(None, answered("200"), file_sha256="ab" * 32),  # 18
        line(None, answered("200"), form={"file": "files/nope.xml"}),  # 19
        line(signed(serial=20), answered("200"), file_sha256="cd" * 32),  # 20
        json.dumps({"padding": "x" * line_limit(MAX_FILE)}),  # 21
        line(None, answered("205"), form={"file": "files/big.xml"}),  # 22
        "",  # 23 a blank line: not an exchange
        line(signed(serial=24), answered("200")),  # 24 the run went on
    ]
    raw = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    path = folder / "exchanges.jsonl"
    path.write_bytes(raw)
    (folder / "ca.pem").write_bytes(cert_pem(*pki.ca_certs))
    (folder / "crl.pem").write_bytes(crl_pem(pki.crl()))
    return Log(path, folder / "ca.pem", folder / "crl.pem", credential, late, personal)


EXPECTED_ERRORS = {
    11: "LOG_FILE_OUTSIDE",
    12: "LOG_FILE_OUTSIDE",
    13: "LOG_FILE_OUTSIDE",
    14: "LOG_NOT_JSON",
    15: "LOG_NOT_UTF8",
    16: "LOG_TIME_NAIVE",
    17: "LOG_SCHEMA",
    18: "LOG_NO_FILE",
    19: "LOG_FILE_MISSING",
    20: "LOG_HASH_MISMATCH",
    21: "LOG_LINE_TOO_LONG",
    22: "LOG_FILE_TOO_LARGE",
}


def _report(log: Log, *, crl: bool = True) -> RejudgeReport:
    trust = trust_from_files([log.ca], [log.crl] if crl else [])
    policy = IntakePolicy.of(Settings(max_file_bytes=MAX_FILE))
    with log.path.open("rb") as lines:
        entries = read_log(lines, folder=log.path.parent, max_file_bytes=MAX_FILE)
        return rejudge(entries, trust=trust, policy=policy, log=log.path.name)


@pytest.fixture(scope="module")
def report(log: Log) -> RejudgeReport:
    return _report(log)


def test_the_matrix_counts_each_send_by_real_and_sandbox_code_per_mode(report: RejudgeReport) -> None:
    assert report.matrix("portal") == {
        "200": {"200": 4, "205": 2},  # 1, 2 (a warning), 10, 24; 8 not yet valid, 9 revoked
        "205": {"200": 1, "205": 1},  # 3 (a warning only), 4
        "401": {"200": 1},
        "http_502": {"200": 1},
        "timeout": {"200": 1},
    }
    assert report.matrix("strict") == {
        "200": {"200": 3, "205": 3},
        "205": {"205": 2},
        "401": {"200": 1},
        "http_502": {"200": 1},
        "timeout": {"200": 1},
    }
    assert (report.lines, report.judged, report.not_comparable, report.comparable) == (23, 11, 3, 8)
    assert report.agreements == {"portal": 5, "strict": 5}


def test_each_disagreement_names_the_modes_and_their_first_error_without_values(report: RejudgeReport) -> None:
    found = {d.line: d for d in report.disagreements}
    assert sorted(found) == [2, 3, 8, 9] and report.disagreement_count == 4
    too_long, cccd, late, revoked = found[2], found[3], found[8], found[9]
    assert (too_long.id, too_long.modes, too_long.sandbox) == ("k-2", ("strict",), {"portal": "200", "strict": "205"})
    assert too_long.causes["portal"] is None
    assert too_long.causes["strict"] and too_long.causes["strict"].code == "SCHEMA_TOO_LONG"
    assert [(f.code, f.path, f.portal, f.strict) for f in too_long.findings] == [
        ("SCHEMA_TOO_LONG", "/HSDLGCS/GIAYCHUNGSINH/MA_BN", "warning", "error")
    ]
    assert (cccd.real, cccd.modes) == ("205", ("portal",))
    assert cccd.causes["strict"] and cccd.causes["strict"].path == "/HSDLGCS/GIAYCHUNGSINH/SO_CCCD_NND"
    assert (late.id, late.modes) == ("k-8", ("portal", "strict"))
    assert [f.code for f in late.findings] == ["SIG_CERT_INVALID_AT_SIGNING_TIME", "SIG_CERT_INVALID_AT_RECEIPT"]
    assert {mode: cause and cause.code for mode, cause in revoked.causes.items()} == {
        "portal": "SIG_CERT_REVOKED",
        "strict": "SIG_CERT_REVOKED",
    }


def test_the_trust_store_the_user_gives_is_the_one_judged_with(log: Log) -> None:
    """Without the CRL the revoked certificate is not known to be revoked: line 9 agrees."""
    without = _report(log, crl=False)
    assert 9 not in {d.line for d in without.disagreements}
    assert without.matrix("portal")["200"] == {"200": 5, "205": 1}


def test_a_certificate_expired_today_is_judged_valid_at_the_instant_the_file_was_sent(log: Log) -> None:
    """Line 1 agrees because it is judged at sent_at: the same send judged now is refused, expired."""
    with log.path.open("rb") as lines:
        first = next(iter(read_log(lines, folder=log.path.parent, max_file_bytes=MAX_FILE)))
    assert isinstance(first, LoggedSend) and first.sent.sent_at == SENT
    now = replace(first, sent=replace(first.sent, sent_at=datetime.now(UTC)))
    again = rejudge(
        [now], trust=trust_from_files([log.ca], []), policy=IntakePolicy.of(Settings(max_file_bytes=MAX_FILE))
    )
    assert "SIG_CERT_INVALID_AT_RECEIPT" in [f.code for f in again.disagreements[0].findings]


def test_behaviours_are_tallied_from_the_comparable_sends(report: RejudgeReport) -> None:
    behaviours = {key: tally.to_dict() for key, tally in report.tally.behaviours.items()}
    assert behaviours["schema.GCS.MA_BN"]["accepted_warned"] == 1
    assert behaviours["rule.RULE_CCCD_FORMAT"]["refused_warned"] == 1
    assert behaviours["signature.integrity"]["refused_refused"] == 1
    assert sum(b["supports"] for b in behaviours.values()) == 2  # type: ignore[misc]  # ints, to_dict's counts
    assert report.tally.unexplained_refusals == 0


def test_every_bad_line_is_reported_with_its_code_and_the_run_goes_on(report: RejudgeReport) -> None:
    assert {e.line: e.code for e in report.line_errors} == EXPECTED_ERRORS
    assert report.line_error_count == len(EXPECTED_ERRORS)
    missing = next(e for e in report.line_errors if e.line == 17)
    assert "form.loaiHs" in missing.message_en and "form.loaiHs" in missing.message_vi
    assert report.matrix("portal")["200"]["200"] == 4, "line 24, after every bad line, was judged"


def test_a_file_path_escaping_the_logs_folder_is_never_read(log: Log, tmp_path: Path) -> None:
    """A file outside the log's folder that is not even XML: were it read, the line would be judged."""
    (tmp_path / "logs").mkdir()
    for name in ("../secret.txt", "/etc/passwd", "logs/../../secret.txt", "..\\secret.txt"):
        entry = {
            "sent_at": "2025-07-01T09:00:00+07:00",
            "form": {"maCskcb": "79001", "loaiHs": "61", "file": name},
            "reply": {"MaKetQua": "205"},
        }
        (tmp_path / "secret.txt").write_text("not for the log")
        found = list(
            read_log(io.BytesIO(json.dumps(entry).encode()), folder=tmp_path / "logs", max_file_bytes=MAX_FILE)
        )
        assert [(type(f), getattr(f, "code", None)) for f in found] == [(LineError, "LOG_FILE_OUTSIDE")], name


def test_a_long_line_is_skipped_without_holding_it_whole() -> None:
    limit = line_limit(1024)
    data = b'{"x": "' + b"y" * (limit * 3) + b'"}\n{also bad}\n'
    found = list(read_log(io.BytesIO(data), folder=Path("."), max_file_bytes=1024))
    assert [(f.line, getattr(f, "code", None)) for f in found] == [(1, "LOG_LINE_TOO_LONG"), (2, "LOG_NOT_JSON")]
    assert line_limit(5 << 20) == 6_990_508 + 873_813 + 65_536, "5 MiB in base64, an eighth more, 64 KiB"


def _cli(log: Log, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, str]:
    code = main(["rejudge", str(log.path), "--trust", str(log.ca), "--crl", str(log.crl), *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_MAX_FILE_BYTES", str(MAX_FILE))


@pytest.mark.usefixtures("small_files")
def test_the_cli_prints_the_matrices_disagreements_behaviours_and_bad_lines(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(log, capsys)
    assert code == 0 and err == ""
    assert "23 exchanges read: 11 judged again, 12 bad lines; 8 comparable" in out
    assert "portal mode: agrees with the real portal on 5 of 8" in out
    assert "line 2 id k-2: real 200; portal 200 (no error), strict 205 (SCHEMA_TOO_LONG at " in out
    assert "the real portal accepted 1 file where it failed: supports portal mode (warning); strict is stricter" in out
    assert (
        "the real portal refused 1 file where only it failed: contradicts portal mode (warning); supports strict" in out
    )
    assert "  schema.GCS.MA_BN (RECONSTRUCTED): portal mode 1 send for, 0 against\n" in out
    assert "  rule.RULE_CCCD_FORMAT (RULE_CCCD_FORMAT; ADVISORY): portal mode 0 sends for, 1 against\n" in out
    assert "line 21: LOG_LINE_TOO_LONG: " in out
    sections = [
        out.index(title)
        for title in ("portal mode:", "strict mode:", "Disagreements: 4", "What the real", "Bad lines: 12")
    ]
    assert sections == sorted(sections)


@pytest.mark.usefixtures("small_files")
def test_the_cli_json_has_stable_keys_and_the_html_the_reports_style(
    log: Log, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _cli(log, capsys, "--format", "json")
    data = json.loads(out)
    assert code == 0 and list(data) == [
        "log",
        "sandbox_version",
        "counts",
        "matrices",
        "comparable_codes",
        "disagreements",
        "disagreements_listed",
        "behaviours",
        "line_errors",
        "line_errors_listed",
    ]
    assert data["matrices"]["strict"]["200"] == {"200": 3, "205": 3}
    assert data["counts"]["disagreements"] == 4 and data["disagreements"][0]["disagree_in"] == ["strict"]
    page = tmp_path / "rejudge.html"
    assert _cli(log, capsys, "--format", "html", "--out", str(page))[:2] == (0, "")
    html = page.read_text(encoding="utf-8")
    from mock_portal.reports.page import REPORT_CSS

    assert str(REPORT_CSS) in html and 'id="matrix-portal"' in html and "<script" not in html
    assert html.count('<tr><td class="num">') == 4 + 12, "a row per disagreement and per bad line"


@pytest.mark.usefixtures("small_files")
def test_no_credential_nor_personal_value_reaches_any_output(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    """The findings' messages quote names and ID numbers (RULE_CCCD_FORMAT quotes the number): no output
    has a message, an expected or a received value; the form's credentials are never read."""
    outputs = {form: _cli(log, capsys, "--format", form)[1] for form in ("text", "json", "html")}
    export = log.path.parent / "evidence.json"
    assert _cli(log, capsys, "--export", str(export))[0] == 0
    outputs["export"] = export.read_text(encoding="utf-8")
    assert "099190123456" in log.personal and len(log.personal) > 20, "the seeded values are there to find"
    for form, text in outputs.items():
        for value in (*SECRETS, *SEEDED, *log.personal):
            assert value not in text, f"{form} output has {value!r}"


@pytest.mark.usefixtures("small_files")
def test_the_export_holds_every_judged_send_and_loads_as_field_evidence(
    log: Log, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    export = tmp_path / "evidence.json"
    code, out, err = _cli(log, capsys, "--format", "json", "--export", str(export))
    report = json.loads(out)
    assert code == 0 and f"evidence without personal data written to {export}" in err
    loaded = load_evidence([export])
    assert len(loaded.records) + loaded.duplicates == report["counts"]["judged"] == 11
    assert loaded.tally().to_dict() == report["behaviours"], "the file says what the run said"


def test_an_export_too_large_for_one_file_is_split_into_files_that_each_load(
    log: Log, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(field, "PART_BYTES", 1500)
    export = field.EvidenceExport(tmp_path / "evidence.json")
    with log.path.open("rb") as lines:
        entries = read_log(lines, folder=log.path.parent, max_file_bytes=MAX_FILE)
        rejudge(entries, trust=trust_from_files([log.ca], []), policy=IntakePolicy.of(Settings()), sink=export.add)
    written = export.close()
    assert [path.name for path in written][:3] == ["evidence.json", "evidence-2.json", "evidence-3.json"]
    assert all(len(path.read_bytes()) < 1500 + 2048 for path in written)
    assert sum(len(load_evidence([path]).records) for path in written) == 11


def test_the_cli_refuses_what_it_cannot_use_with_exit_2(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rejudge", str(log.path.parent / "absent.jsonl")]) == 2
    assert "absent.jsonl: No such file or directory" in capsys.readouterr().err
    assert main(["rejudge", str(log.path.parent)]) == 2
    assert "Is a directory" in capsys.readouterr().err
    assert main(["rejudge", str(log.path), "--trust", str(log.path)]) == 2
    err = capsys.readouterr().err
    assert f"--trust {log.path}: " in err and "Traceback" not in err
    assert main(["rejudge", str(log.path), "--trust", str(log.ca), "--crl", str(log.ca)]) == 2
    assert f"--crl {log.ca}: not a valid CRL" in capsys.readouterr().err


def test_no_trust_is_said_on_stderr_and_every_chain_fails(
    tmp_path: Path, log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one.jsonl"
    one.write_bytes(log.path.read_bytes().split(b"\n", 1)[0] + b"\n")
    assert main(["rejudge", str(one), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "no --trust CA given" in captured.err
    assert json.loads(captured.out)["disagreements"][0]["first_error"]["portal"]["code"].startswith("SIG_")


def test_a_log_line_hash_matching_its_file_is_judged(tmp_path: Path, log: Log) -> None:
    xml = (log.path.parent / "files" / "ok.xml").read_bytes()
    entry = {
        "sent_at": "2025-07-01T09:00:00+07:00",
        "form": {"maCskcb": "79001", "loaiHs": "61", "file": "ok.xml"},
        "reply": {"MaKetQua": 200},
        "file_sha256": hashlib.sha256(xml).hexdigest().upper(),
    }
    (tmp_path / "ok.xml").write_bytes(xml)
    found = list(read_log(io.BytesIO(json.dumps(entry).encode()), folder=tmp_path, max_file_bytes=MAX_FILE))
    assert len(found) == 1 and isinstance(found[0], LoggedSend) and found[0].real == "200"
    assert base64.b64decode(found[0].sent.file_b64) == xml


def test_more_bad_lines_each_get_their_own_code(tmp_path: Path) -> None:
    (tmp_path / "a-folder.xml").mkdir()
    base = {"form": {"maCskcb": "79001", "loaiHs": "61", "fileBase64Str": "PA=="}, "reply": {"MaKetQua": "200"}}
    entries = [
        {**base, "sent_at": "2025-13-01T09:00:00+07:00"},
        {
            **base,
            "sent_at": "2025-07-01T09:00:00+07:00",
            "form": {"maCskcb": "79001", "loaiHs": "61", "file": "a-folder.xml"},
        },
        {**base, "sent_at": "2025-07-01T09:00:00+07:00", "form": {"maCskcb": "79001", "loaiHs": "61"}},
        {**base, "sent_at": "2025-07-01T09:00:00+07:00", "reply": {"MaKetQua": "NGUYỄN VĂN A"}},
        {**base, "sent_at": "2025-07-01T09:00:00+07:00", "reply": None, "failure": "http"},
    ]
    data = "\n".join(json.dumps(entry, ensure_ascii=False) for entry in entries).encode()
    found = list(read_log(io.BytesIO(data), folder=tmp_path, max_file_bytes=MAX_FILE))
    assert [getattr(f, "code", None) for f in found] == [
        "LOG_TIME_INVALID",
        "LOG_FILE_UNREADABLE",
        "LOG_NO_FILE",
        "LOG_SCHEMA",
        "LOG_SCHEMA",
    ]
    schema = [f for f in found if isinstance(f, LineError) and f.code == "LOG_SCHEMA"]
    assert [f.message_en for f in schema] == [
        "reply.MaKetQua: must be a code of digits (a string or a number).",
        "http_status is missing.",
    ]


DOC = Path(__file__).resolve().parents[1] / "docs" / "field-evidence.md"


def test_the_docs_example_line_is_a_line_of_the_format() -> None:
    section = DOC.read_text(encoding="utf-8").split("## 2.", 1)[1].split("\n## 3.", 1)[0]
    example = next(b.code for b in blocks(DOC) if b.lang == "json" and b.code in section)
    found = list(read_log(io.BytesIO(example.encode()), folder=Path("."), max_file_bytes=MAX_FILE))
    assert len(found) == 1 and isinstance(found[0], LoggedSend), found
    assert (found[0].id, found[0].real, found[0].sent.sent_at) == (
        "GCS-2026-000123",
        "205",
        datetime(2026, 3, 2, 2, 15, tzinfo=UTC),
    )


@pytest.mark.skipif(pg_bin() is None or shutil.which("psql") is None, reason="PostgreSQL is not installed")
def test_the_docs_sql_writes_a_log_from_a_send_table(log: Log, tmp_path: Path) -> None:
    """The CREATE TABLE and the query of section 2, run as the docs say (psql -A -t) on a real PostgreSQL."""
    import psycopg

    create, query = (b.code for b in blocks(DOC) if b.lang == "sql")
    server = postgres_server()
    database = server.new_database("rejudge").rsplit("/", 1)[1]
    ok = (log.path.parent / "files" / "ok.xml").read_bytes()
    cccd = signed_sample(
        DocumentType.GCS,
        log.credential,
        facility_code="79001",
        issued_at=SENT - timedelta(hours=1),
        signing_time=SENT - timedelta(minutes=5),
        invalid="bad_cccd",
    )
    insert = "INSERT INTO gui_hiap VALUES (%s, %s, '79001', %s, '61', %s, %s, %s, %s, %s, %s)"
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname={database}") as connection:
        connection.execute(create)
        for row in (
            (1, SENT, "bv79001", ok, "200", "GD1", "20250701090001", None, None),
            (2, SENT, None, cccd, "205", "", "20250701090002", None, None),
            (3, SENT, "bv79001", ok, None, None, None, "timeout", None),
            (4, SENT, "bv79001", ok, None, None, None, "http", 502),
        ):
            connection.execute(insert, row)
    script = tmp_path / "exchanges.sql"
    script.write_text(query, encoding="utf-8")
    command = query.splitlines()[0].removeprefix("-- exchanges.sql: ").split()
    connect = ["-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", database]
    subprocess.run([*command, *connect], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    with (tmp_path / "exchanges.jsonl").open("rb") as lines:
        found = list(read_log(lines, folder=tmp_path, max_file_bytes=MAX_FILE))
    assert all(isinstance(f, LoggedSend) for f in found), found
    assert [(f.id, f.real, f.sent.sent_at) for f in found if isinstance(f, LoggedSend)] == [
        ("1", "200", SENT),
        ("2", "205", SENT),
        ("3", "timeout", SENT),
        ("4", "http_502", SENT),
    ]
    report = rejudge(found, trust=trust_from_files([log.ca], []), policy=IntakePolicy.of(Settings()))
    assert report.matrix("portal") == {
        "200": {"200": 1},
        "205": {"200": 1},
        "http_502": {"200": 1},
        "timeout": {"200": 1},
    }


def test_an_out_file_that_cannot_be_written_is_a_usage_error(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    out = log.path.parent / "no-such-folder" / "r.json"
    assert main(["rejudge", str(log.path), "--trust", str(log.ca), "--out", str(out)]) == 2
    assert f"--out {out}: No such file or directory" in capsys.readouterr().err


def test_an_instant_at_the_calendars_ends_is_a_bad_line_and_a_send_the_sandbox_trips_on_too(log: Log) -> None:
    """Year 1 and year 9999 overflow once moved to UTC: the log reader refuses them, and a send that still
    makes the sandbox fail (here one built past the reader) is a bad line, never the end of the run."""
    base = {"form": {"maCskcb": "79001", "loaiHs": "61", "fileBase64Str": "PA=="}, "reply": {"MaKetQua": "200"}}
    ends = [{**base, "sent_at": at} for at in ("0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-07:00")]
    data = "\n".join(json.dumps(entry) for entry in ends).encode()
    found = list(read_log(io.BytesIO(data), folder=Path("."), max_file_bytes=MAX_FILE))
    assert [getattr(f, "code", None) for f in found] == ["LOG_TIME_INVALID", "LOG_TIME_INVALID"]
    with log.path.open("rb") as lines:
        first = next(iter(read_log(lines, folder=log.path.parent, max_file_bytes=MAX_FILE)))
    assert isinstance(first, LoggedSend)
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=7)))
    entries = [replace(first, sent=replace(first.sent, sent_at=year_one)), replace(first, line=2)]
    report = rejudge(entries, trust=trust_from_files([log.ca], []), policy=IntakePolicy.of(Settings()))
    assert [(e.line, e.code) for e in report.line_errors] == [(1, "LOG_UNJUDGEABLE")]
    assert "OverflowError" in report.line_errors[0].message_en and report.judged == 1, "the run went on"
    assert report.unjudgeable == 1 and report.to_dict()["counts"]["unjudgeable"] == 1


def test_a_send_the_sandbox_fails_on_makes_the_command_exit_1_with_its_traceback(
    log: Log, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug of the sandbox is not a bad line of the vendor's: the run goes on, then the command says so and
    exits 1 (an exit 0 would pass a CI step that judged nothing); each traceback goes to the log (standard
    error, outside pytest)."""

    def trips(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a sandbox bug")

    monkeypatch.setattr("mock_portal.evidence.rejudge.judge", trips)
    code, out, err = _cli(log, capsys)
    assert code == 1 and "LOG_UNJUDGEABLE" in out
    failed = [r for r in caplog.records if r.exc_info and r.exc_info[0] is KeyError]
    assert f"the sandbox failed on {len(failed)} send(s)" in err and len(failed) == out.count("LOG_UNJUDGEABLE") > 10


def test_a_reply_code_is_ascii_digits_whatever_the_schemas_pattern_lets_through() -> None:
    """JSON Schema patterns search: "200\\n" matches ^[0-9]{1,6}$; 200.0 is an integer to it."""
    base = {
        "sent_at": "2025-07-01T09:00:00+07:00",
        "form": {"maCskcb": "79001", "loaiHs": "61", "fileBase64Str": "PA=="},
    }
    replies = [{"MaKetQua": "200\n"}, {"MaKetQua": 200.0}, {"MaKetQua": 205}]
    data = "\n".join(json.dumps({**base, "reply": reply}) for reply in replies).encode()
    found = list(read_log(io.BytesIO(data), folder=Path("."), max_file_bytes=MAX_FILE))
    assert isinstance(found[0], LineError) and found[0].code == "LOG_SCHEMA"
    assert found[0].message_en == "reply.MaKetQua: must be a code of digits (a string or a number)."
    assert [(f.real, f.sent.real_code) for f in found[1:] if isinstance(f, LoggedSend)] == [
        ("200", "200"),
        ("205", "205"),
    ]


@pytest.mark.usefixtures("small_files")
def test_an_id_with_control_characters_cannot_forge_lines_of_the_text_report(
    log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = log.path.read_bytes().split(b"\n")[1]  # strict refuses it: a disagreement, its id printed
    forged = "k\nline 99 id x: real 200; portal 200 (no error)\x1b[2J"
    entry = {**json.loads(second), "id": forged}
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    assert main(["rejudge", str(one), "--trust", str(log.ca)]) == 0
    out = capsys.readouterr().out
    assert f"line 1 id {forged!r}: real 200" in out
    assert "\nline 99" not in out and "\x1b" not in out


def test_export_without_trust_is_refused_before_anything_is_written(
    log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a CA every chain fails: the file would say the real portal accepted what the sandbox refuses
    on its signature, against signature grades that are CONFIRMED."""
    export = tmp_path / "evidence.json"
    assert main(["rejudge", str(log.path), "--export", str(export)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "--trust" in captured.err
    assert not export.exists()


def test_an_out_or_export_that_cannot_be_written_stops_the_run_before_it_starts(
    log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, out = tmp_path / "evidence.json", tmp_path / "report.txt"
    missing = tmp_path / "no-such-folder" / "x.json"
    trust = ["--trust", str(log.ca)]
    assert main(["rejudge", str(log.path), *trust, "--export", str(export), "--out", str(missing)]) == 2
    assert capsys.readouterr().err == f"mock-portal rejudge --out {missing}: No such file or directory\n"
    assert not export.exists(), "no run, no export"
    assert main(["rejudge", str(log.path), *trust, "--export", str(missing), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"mock-portal rejudge --export {missing}: No such file or directory\n"
    assert main(["rejudge", str(log.path), *trust, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"mock-portal rejudge --out {tmp_path}: Is a directory\n"
    assert not out.exists()
