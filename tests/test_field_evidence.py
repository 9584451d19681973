"""The field-evidence file (issue 27, item 2): written from real judged sends, loaded, merged; refused when
it has room for anything but codes, element paths, days and hashes; the grades it would move, on the
command line and on `GET /sandbox/fidelity` of a portal started with `PORTAL_FIELD_EVIDENCE`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from mock_portal import cli, sandbox_version
from mock_portal.config import Settings, SettingsError
from mock_portal.documents import DocumentType, ParseLimits
from mock_portal.evidence import field
from mock_portal.evidence.field import EvidenceFileError, load_evidence, loaded_field_evidence, write_evidence
from mock_portal.evidence.judge import Sent, judge
from mock_portal.evidence.moves import CONTRADICTED, CORROBORATED, MOVES, review
from mock_portal.evidence.record import EvidenceRecord, FindingRecord, record_of
from mock_portal.portal.intake import IntakePolicy
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import SignaturePolicy
from tests.live import LiveServer, start_server

NOW = datetime.now(UTC).replace(microsecond=0)
FACILITY = "79001"


def _sent(
    pki: TestPKI, invalid: str | None, real_code: str, days_ago: int, seed: int, prefix: bytes = b""
) -> EvidenceRecord:
    """The record of a GCS signed with the facility's real certificate `days_ago`, broken the named way
    (and `prefix` put before it), to which the real portal answered `real_code`."""
    at = NOW - timedelta(days=days_ago)
    xml = signed_sample(
        DocumentType.GCS,
        pki.issue_facility_cert(FACILITY),
        facility_code=FACILITY,
        issued_at=at - timedelta(hours=1),
        signing_time=at - timedelta(minutes=30),
        invalid=invalid,
        seed=seed,
        serial=seed + 1,
    )
    sent = Sent(FACILITY, "61", base64.b64encode(prefix + xml).decode(), at, real_code)
    policy = IntakePolicy(5 << 20, ParseLimits(max_bytes=5 << 20), SignaturePolicy())
    return record_of(judge(sent, trust=TrustStore(cas=pki.ca_certs, crls=()), policy=policy))


@pytest.fixture(scope="module")
def sends(pki: TestPKI) -> dict[str, EvidenceRecord]:
    """Real sends as a hospital logged them, each judged by the sandbox."""
    return {
        "clean": _sent(pki, None, "200", 12, 1),
        "cccd_1": _sent(pki, "bad_cccd", "200", 10, 2),  # ADVISORY, portal warns, real accepts: supports
        "cccd_2": _sent(pki, "bad_cccd", "200", 5, 3),
        "date": _sent(pki, "impossible_date", "205", 3, 4),  # RECONSTRUCTED, portal warns, real refuses alone
        "tampered": _sent(pki, "tampered", "205", 2, 5),  # CONFIRMED, portal refuses, real refuses
        "no_reply": _sent(pki, "bad_cccd", "", 1, 6),  # says nothing
    }


def _day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).astimezone(field.VIETNAM).date().isoformat()


def _write(path: Path, records: list[EvidenceRecord]) -> Path:
    path.write_bytes(write_evidence(records))
    return path


@pytest.fixture(scope="module")
def files(sends: dict[str, EvidenceRecord], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two vendors' files; the second repeats one send of the first."""
    folder = tmp_path_factory.mktemp("evidence")
    first = ["clean", "cccd_1", "date", "no_reply"]
    second = ["cccd_1", "cccd_2", "tampered"]
    return [
        _write(folder / "a.json", [sends[k] for k in first]),
        _write(folder / "b.json", [sends[k] for k in second]),
    ]


def test_the_sends_are_judged_as_the_moves_below_assume(sends: dict[str, EvidenceRecord]) -> None:
    codes = {name: [f.code for f in record.findings if f.strict == "error"] for name, record in sends.items()}
    assert codes["clean"] == [] and codes["cccd_1"] == ["RULE_CCCD_FORMAT"] == codes["cccd_2"]
    assert codes["date"] == ["RULE_DATE_INVALID"]
    assert sends["tampered"].portal_code == "205" and "SIG_DIGEST_MISMATCH" in codes["tampered"]


def test_a_written_file_loads_back_as_the_same_records(sends: dict[str, EvidenceRecord], tmp_path: Path) -> None:
    records = list(sends.values())
    path = _write(tmp_path / "e.json", records)
    document = json.loads(path.read_bytes())
    assert document["format"] == "vn-civil-cert-sandbox/field-evidence" and document["version"] == 1
    assert document["sandbox_version"] == sandbox_version() != ""
    assert date.fromisoformat(document["made_on"]) >= date.fromisoformat(_day(0)) - timedelta(days=1)
    assert document["counts"] == {
        "records": 6,
        "withheld": 0,
        "by_real_code": {"200": 3, "205": 2, "none": 1},
        "by_doc_type": {"GCS": 6},
    }
    assert load_evidence([path]).records == tuple(records)
    assert path.read_text(encoding="utf-8").count("\n  {") == 6, "one record a line, for a reviewer's diff"


def test_files_are_merged_and_a_send_seen_twice_counts_once(files: list[Path], sends: dict[str, Any]) -> None:
    loaded = load_evidence(files)
    assert len(loaded.records) == 6 and loaded.duplicates == 1
    assert loaded.files == tuple(str(p) for p in files)
    again = replace(sends["cccd_1"], real_code="500")  # the same file answered otherwise: another send
    assert len(load_evidence([*files, _write(files[0].parent / "c.json", [again])]).records) == 7
    tally = loaded.tally().behaviours["rule.RULE_CCCD_FORMAT"]
    assert tally.supports == 2, "cccd_1 of both files once, cccd_2 once; the send with no reply says nothing"


def test_the_moves_are_those_the_tally_implies(files: list[Path]) -> None:
    done = review(load_evidence(files))
    cccd = done.behaviours["rule.RULE_CCCD_FORMAT"]
    assert cccd.status == MOVES and cccd.counts.grade == "ADVISORY" and cccd.would_move_to == "OBSERVED"
    assert cccd.source == f"field evidence: 2 sends, {_day(10)}–{_day(5)}"
    dates = done.behaviours["rule.RULE_DATE_INVALID"]
    assert dates.status == CONTRADICTED and dates.counts.grade == "RECONSTRUCTED"
    assert dates.would_move_to is None and dates.source is None
    assert dates.contradiction() == (
        "portal mode only warns; the real portal refused 1 sends where it was the only failed check"
    )
    integrity = done.behaviours["signature.integrity"]
    assert integrity.status == CORROBORATED and integrity.would_move_to is None
    assert set(done.behaviours) == {"rule.RULE_CCCD_FORMAT", "rule.RULE_DATE_INVALID", "signature.integrity"}


def test_a_contradicted_behaviour_is_listed_not_moved_even_with_support(
    sends: dict[str, EvidenceRecord], tmp_path: Path
) -> None:
    refused = replace(sends["cccd_2"], real_code="205", file_sha256="f" * 64)
    done = review(load_evidence([_write(tmp_path / "e.json", [sends["cccd_1"], sends["cccd_2"], refused])]))
    cccd = done.behaviours["rule.RULE_CCCD_FORMAT"]
    assert (cccd.counts.supports, cccd.counts.contradicts) == (2, 1)
    assert cccd.status == CONTRADICTED and cccd.would_move_to is None


# --- no personal data: the schema has no room for it ---

NAME = "Nguyễn Văn An"


def _edited(files: list[Path], tmp_path: Path, edit: Any) -> Path:
    document = json.loads(files[0].read_bytes())
    edit(document)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


REFUSED = {
    "a key at the top": (lambda d: d.update(facility="79001"), "the top level has a key the format does not have"),
    "a name in a record": (lambda d: d["records"][1].update(ho_ten=NAME), "records/1 has a key the format"),
    "a message in a finding": (
        lambda d: d["records"][1]["findings"][0].update(message_vi=f"Sai số CCCD của {NAME}"),
        "records/1/findings/0 has a key the format does not have",
    ),
    "a name in a path": (
        lambda d: d["records"][1]["findings"][0].update(path=f"/HSDLGCS/{NAME}"),
        "records/1/findings/0/path is not a path of element names",
    ),
    "free text for a code": (
        lambda d: d["records"][1]["findings"][0].update(code=f"RULE_CCCD_FORMAT {NAME}"),
        "records/1/findings/0/code is not a finding code",
    ),
    "a date of birth for a day": (lambda d: d["records"][1].update(day="1990-05-17"), "records/1/day is not a day"),
    "a token for a hash": (
        lambda d: d["records"][1].update(file_sha256="eyJhbGciOiJSUzI1NiJ9"),
        "records/1/file_sha256 is not a SHA-256",
    ),
    "a number for a count key": (
        lambda d: d["counts"]["by_doc_type"].update({"079190000001": 1}),
        "counts/by_doc_type has a key that is not a code",
    ),
    "counts that do not match": (
        lambda d: d["counts"]["by_real_code"].update({"200": 9}),
        "its counts do not match its records",
    ),
    "a finding absent in both modes": (
        lambda d: d["records"][1]["findings"][0].update(portal="absent", strict="absent"),
        "records/1/findings/0 breaks a rule of the format: a finding is a failed check in one mode at least",
    ),
    "another version": (lambda d: d.update(version=2), "format version 2; this sandbox reads version 1"),
    "a name in the sandbox version": (
        lambda d: d.update(sandbox_version="0+NGUYENVANAN.079190999888"),
        "sandbox_version is not a package version",
    ),
    "another format": (lambda d: d.update(format="x"), 'not a field-evidence file (no "format"'),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_file_with_room_for_personal_data_is_refused_naming_file_and_problem(
    case: str, files: list[Path], tmp_path: Path
) -> None:
    edit, problem = REFUSED[case]
    path = _edited(files, tmp_path, edit)
    with pytest.raises(EvidenceFileError) as refused:
        load_evidence([files[1], path])
    message = str(refused.value)
    assert message.startswith(f"{path}: {problem}"), message
    assert "Nguy" not in message and "eyJ" not in message and "1990" not in message, "never quotes the value"


def test_a_key_given_twice_or_a_file_too_large_or_not_json_is_refused(files: list[Path], tmp_path: Path) -> None:
    twice = tmp_path / "twice.json"
    text = files[0].read_text(encoding="utf-8")
    twice.write_text(text.replace('"loai_hs": "61",', f'"loai_hs": "{NAME}", "loai_hs": "61",', 1), encoding="utf-8")
    huge, broken = tmp_path / "huge.json", tmp_path / "broken.json"
    with huge.open("wb") as out:
        out.truncate(field.MAX_FILE_BYTES + 1)
    broken.write_text(text[:200], encoding="utf-8")
    expected = {
        twice: "an object gives one of its keys twice",
        huge: f"larger than {field.MAX_FILE_BYTES} bytes",
        broken: "not JSON: ",
        tmp_path / "absent.json": "No such file or directory",
    }
    for path, problem in expected.items():
        with pytest.raises(EvidenceFileError, match=f"^{path}: {problem}"):
            load_evidence([path])


def test_the_writer_withholds_a_record_the_schema_would_refuse(
    sends: dict[str, EvidenceRecord], tmp_path: Path
) -> None:
    odd = replace(sends["cccd_1"], loai_hs="sixty-one")
    namespaced = replace(sends["date"], findings=(FindingRecord("XML_ROOT_MISMATCH", "/{urn:x}R", "error", "error"),))
    document = json.loads(write_evidence([sends["clean"], odd, namespaced]))
    assert document["counts"]["records"] == 1 and document["counts"]["withheld"] == 2
    assert "sixty-one" not in json.dumps(document) and "urn:x" not in json.dumps(document)
    assert load_evidence([_write(tmp_path / "e.json", [sends["clean"], odd])]).withheld == 1


def test_a_record_keeps_the_findings_of_both_modes_and_the_tally_reads_them_all(pki: TestPKI, tmp_path: Path) -> None:
    """A UTF-8 BOM before a tampered file: `strict` stops at the BOM, `portal` only warns of it and reads on
    to the broken signature. Both checks failed: a real 205 is not attributed to the BOM alone."""
    bom = _sent(pki, "tampered", "205", 4, 7, prefix=b"\xef\xbb\xbf")
    assert [(f.code, f.portal, f.strict) for f in bom.findings] == [
        ("XML_BOM", "warning", "error"),
        ("SIG_DIGEST_MISMATCH", "error", "absent"),
    ]
    behaviours = load_evidence([_write(tmp_path / "e.json", [bom])]).tally().behaviours
    assert {key: (b.refused_with_others, b.contradicts) for key, b in behaviours.items()} == {
        "envelope.bom": (1, 0),
        "signature.integrity": (1, 0),
    }


def test_a_check_only_portal_mode_reached_counts_as_failed_where_strict_would_refuse_it(
    pki: TestPKI, tmp_path: Path
) -> None:
    """A BOM before a file with a CCCD `portal` mode only warns about: `strict` stops at the BOM and never
    reaches the rule it would refuse. A real 205 is not the BOM's alone; a real 200 accepted both."""
    refused = _sent(pki, "bad_cccd", "205", 4, 7, prefix=b"\xef\xbb\xbf")
    accepted = _sent(pki, "bad_cccd", "200", 4, 8, prefix=b"\xef\xbb\xbf")
    assert [(f.code, f.portal, f.strict) for f in refused.findings] == [
        ("XML_BOM", "warning", "error"),
        ("RULE_CCCD_FORMAT", "warning", "absent"),
    ]
    behaviours = load_evidence([_write(tmp_path / "e.json", [refused, accepted])]).tally().behaviours
    assert {key: (b.refused_with_others, b.accepted_warned, b.contradicts) for key, b in behaviours.items()} == {
        "envelope.bom": (1, 1, 0),
        "rule.RULE_CCCD_FORMAT": (1, 1, 0),
    }


def test_a_string_with_a_final_newline_does_not_pass_for_a_code(
    sends: dict[str, EvidenceRecord], files: list[Path], tmp_path: Path
) -> None:
    """JSON Schema patterns search, and `$` matches before a final newline: the format's patterns are held
    to the whole string, by the writer and by the loader."""
    odd = replace(sends["cccd_1"], real_code="200\n")
    assert json.loads(write_evidence([sends["clean"], odd]))["counts"]["withheld"] == 1

    def newline(document: dict[str, Any]) -> None:
        document["records"][1]["real_code"] = "200\n"
        document["counts"]["by_real_code"] = {"200": 1, "200\n": 1, "205": 1, "none": 1}

    with pytest.raises(EvidenceFileError, match="records/1/real_code is not a reply code"):
        load_evidence([_edited(files, tmp_path, newline)])


def test_a_development_builds_long_local_version_is_written_without_it(
    sends: dict[str, EvidenceRecord], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(field, "sandbox_version", lambda: "0.2.0.dev3+g1a2b3c4d.d20261207")
    written = load_evidence([_write(tmp_path / "e.json", [sends["clean"]])])
    assert written.sandbox_versions == ("0.2.0.dev3",)


def test_a_file_nested_too_deeply_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert cli.main(["fidelity", "--evidence", str(deep)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"mock-portal fidelity --evidence: {deep}: nested too deeply to be a field-evidence file\n"


# --- the command ---


def test_fidelity_evidence_prints_the_moves_and_json(files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fidelity", "--evidence", *map(str, files)]) == 0
    text = capsys.readouterr().out
    assert "2 file(s), 6 sends" in text and "1 duplicates counted once" in text
    assert (
        f"Would move to OBSERVED: 1\n  rule.RULE_CCCD_FORMAT  ADVISORY: would be OBSERVED, field evidence: 2 sends,"
        f" {_day(10)}–{_day(5)}\n"
    ) in text
    assert "Contradicted (the grade stays: a maintainer must look): 1\n  rule.RULE_DATE_INVALID  RECONSTRUCTED:" in text
    assert "Corroborated: 1\n  signature.integrity  CONFIRMED: 1 sends agree" in text
    assert cli.main(["fidelity", "--evidence", *map(str, files), "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in done["moves"]] == ["rule.RULE_CCCD_FORMAT"] and done["sends"] == 6
    assert done["contradicted"][0]["contradicts"] == 1 and done["corroborated"][0]["key"] == "signature.integrity"


def test_fidelity_evidence_refuses_a_bad_file_in_one_line(
    files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _edited(files, tmp_path, REFUSED["a name in a record"][0])
    assert cli.main(["fidelity", "--evidence", str(files[0]), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"mock-portal fidelity --evidence: {bad}: records/1 has a key"), captured.err


@pytest.mark.parametrize(
    "options", [["--json"], ["--evidence", "e.json", "--write", "f.md"], ["--fields", "d.md", "--evidence", "e.json"]]
)
def test_fidelity_refuses_options_it_would_ignore(options: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["fidelity", *options])
    assert stopped.value.code == 2 and "mock-portal fidelity: error: " in capsys.readouterr().err


# --- the server ---


@pytest.fixture(scope="module")
def evidence_server(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A portal started with both files in PORTAL_FIELD_EVIDENCE."""
    live = start_server(
        tmp_path_factory.mktemp("evidence-portal"),
        extra_env={"PORTAL_FIELD_EVIDENCE": os.pathsep.join(map(str, files))},
    )
    yield live
    live.stop()


def test_sandbox_fidelity_shows_the_field_evidence_counts(evidence_server: LiveServer) -> None:
    with evidence_server.admin() as admin:
        reply = admin.get("/sandbox/fidelity")
    assert reply.status_code == 200, reply.text
    by_key = {b["key"]: b for b in reply.json()}
    assert by_key["rule.RULE_CCCD_FORMAT"]["field_evidence"] == {
        "status": "moves",
        "supports": 2,
        "contradicts": 0,
        "not_attributed": 0,
        "first_day": _day(10),
        "last_day": _day(5),
        "would_move_to": "OBSERVED",
        "source": f"field evidence: 2 sends, {_day(10)}–{_day(5)}",
        "contradiction": None,
    }
    assert by_key["rule.RULE_DATE_INVALID"]["field_evidence"]["status"] == "contradicted"
    assert by_key["rule.RULE_DATE_INVALID"]["grade"] == "RECONSTRUCTED", "the grade itself does not move"
    assert "field_evidence" not in by_key["wire.credentials"], "no send bears on it"


def test_the_reply_with_field_evidence_keeps_the_contract(evidence_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{evidence_server.base_url}/openapi.json")
    case = schema["/sandbox/fidelity"]["GET"].Case(headers={"Authorization": f"Bearer {evidence_server.admin_token}"})
    response = case.call()
    assert response.status_code == 200 and "field_evidence" in response.text
    case.validate_response(response)


def test_without_field_evidence_the_behaviours_are_as_ever(server: LiveServer) -> None:
    with server.admin() as admin:
        behaviours = admin.get("/sandbox/fidelity").json()
    assert behaviours and not any("field_evidence" in b for b in behaviours)


def test_a_bad_evidence_file_stops_the_start_naming_it(files: list[Path], tmp_path: Path) -> None:
    bad = _edited(files, tmp_path, REFUSED["a name in a path"][0])
    env = {**os.environ, "PORTAL_FIELD_EVIDENCE": os.pathsep.join([str(files[0]), str(bad)]), "PORTAL_PORT": "1"}
    env["PORTAL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'never.sqlite3'}"
    run = subprocess.run(
        [sys.executable, "-m", "mock_portal.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(
        f"mock-portal: PORTAL_FIELD_EVIDENCE={env['PORTAL_FIELD_EVIDENCE']!r}: {bad}: records/1/findings/0/path"
    ), run.stderr
    assert not (tmp_path / "never.sqlite3").exists()
    with pytest.raises(SettingsError, match="PORTAL_FIELD_EVIDENCE="):  # `uvicorn mock_portal.asgi:app` too
        loaded_field_evidence(Settings(field_evidence=str(bad)))


CONTRIBUTED = Path(__file__).resolve().parents[1] / "evidence" / "field"


def test_every_contributed_evidence_file_loads() -> None:
    """docs/field-evidence.md section 6: a file added under evidence/field/ fails the checks unless it fits
    the schema (so it has no room for personal data). None is there yet."""
    for path in sorted(CONTRIBUTED.glob("*.json")):
        assert load_evidence([path]).records, f"{path}: no sends"
