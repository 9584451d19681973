"""`conformance check`: offline judgement of files with the portal's own checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conformance.cli import main
from fixtures.pki import TestPKI, cert_pem, crl_pem
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType


@pytest.fixture()
def files(tmp_path: Path, pki: TestPKI) -> dict[str, Path]:
    good = pki.issue_facility_cert("79001")
    revoked = pki.issue_facility_cert("79001", "revoked")
    out = {
        "ca": tmp_path / "ca.pem",
        "crl": tmp_path / "crl.pem",
        "good": tmp_path / "good.xml",
        "gbt": tmp_path / "gbt.xml",
        "tampered": tmp_path / "tampered.xml",
        "revoked": tmp_path / "revoked.xml",
    }
    out["ca"].write_bytes(cert_pem(pki.root.cert))
    out["crl"].write_bytes(crl_pem(pki.crl()))
    out["good"].write_bytes(signed_sample(DocumentType.GCS, good, facility_code="79001"))
    out["gbt"].write_bytes(signed_sample(DocumentType.GBT, good, facility_code="79001"))
    out["tampered"].write_bytes(signed_sample(DocumentType.GCS, good, facility_code="79001", invalid="tampered"))
    out["revoked"].write_bytes(signed_sample(DocumentType.GCS, revoked, facility_code="79001"))
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, list[dict]]:
    code = main(["check", "--json", *map(str, argv)])
    return code, json.loads(capsys.readouterr().out)


def test_good_files_pass(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, results = run(capsys, files["good"], files["gbt"], "--trust", files["ca"])
    assert code == 0
    assert [r["result"] for r in results] == ["200", "200"]
    assert [r["facility"] for r in results] == ["79001", "79001"]


def test_each_defect_is_named(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, results = run(capsys, files["tampered"], files["revoked"], "--trust", files["ca"], "--crl", files["crl"])
    assert code == 1
    tampered, revoked = ([f["code"] for f in r["findings"]] for r in results)
    assert "SIG_DIGEST_MISMATCH" in tampered
    assert "SIG_CERT_REVOKED" in revoked


def test_without_a_trusted_ca_the_chain_fails(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, [result] = run(capsys, files["good"])
    assert code == 1
    assert result["signature"]["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"


def test_cases_are_judged_on_the_files(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cases` judges the document and signature cases on the files, with the live run's reporters."""
    out = tmp_path / "out"
    code = main(
        [
            "check",
            str(files["good"]),
            str(files["tampered"]),
            "--trust",
            str(files["ca"]),
            "--cases",
            "--report-dir",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in report["cases"]}
    assert {c["area"] for c in report["cases"]} == {"documents", "signature"}
    assert verdicts["SIG-004"] == "fail" and verdicts["GCS-DOC-003"] == "pass"
    assert verdicts["GBT-DOC-001"] == "skip"
    assert "FAIL  SIG-004" in text
    # no portal observed an offline check: its bundle verifies as not attested, and a pinned portal key refuses it
    assert main(["verify", str(out)]) == 0
    assert "NOT ATTESTED BY A PORTAL" in capsys.readouterr().out
    key = tmp_path / "portal.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert main(["verify", str(out), "--portal-key", str(key)]) == 1
    assert "not attested by a portal: signed with a key made for the bundle" in capsys.readouterr().out


@pytest.fixture()
def r1_shaped(tmp_path: Path, pki: TestPKI) -> Path:
    """A GBT as R1's table orders it (NGUOI_THANTHICH first) with a 2-letter MA_QUOCTICH, signed correctly."""
    from datetime import UTC, datetime

    from fixtures.certificates import build_xml, scenario
    from fixtures.signer import sign_document
    from mock_portal.documents.sources import R1_GBT_ORDER

    credential = pki.issue_facility_cert("79001")
    fields = scenario("gbt_inpatient", facility_code="79001", issued_at=datetime.now(UTC))[0][1]
    fields["MA_QUOCTICH"] = "VN"
    xml = build_xml(DocumentType.GBT, {name: fields[name] for name in R1_GBT_ORDER})
    path = tmp_path / "r1.xml"
    path.write_bytes(sign_document(xml, credential.key, credential.cert, signing_time=datetime.now(UTC)))
    return path


def test_strictness_judges_vendor_shapes_offline(
    files: dict[str, Path], r1_shaped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, [portal] = run(capsys, r1_shaped, "--trust", files["ca"], "--strictness", "portal")
    assert code == 0 and portal["result"] == "200" and portal["strictness"] == "portal"
    warned = {(f["code"], f["severity"], f["grade"]) for f in portal["findings"]}
    assert {("SCHEMA_ORDER", "warning", "RECONSTRUCTED"), ("SCHEMA_PATTERN", "warning", "OBSERVED")} <= warned
    code, [strict] = run(capsys, r1_shaped, "--trust", files["ca"], "--strictness", "strict")
    assert code == 1 and strict["result"] == "205"
    assert {"SCHEMA_ORDER", "SCHEMA_PATTERN"} <= {f["code"] for f in strict["findings"] if f["severity"] == "error"}


def test_offline_facility_mismatch_fails_a_must_case(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    code = main(
        ["check", str(files["gbt"]), "--trust", str(files["ca"]), "--facility", "79002", "--report-dir", str(reports)]
    )
    capsys.readouterr()
    assert code == 0, "the real portal accepts the file (portal mode)"
    report = json.loads((reports / "report.json").read_text())
    facility = next(c for c in report["cases"] if c["id"] == "GBT-DOC-007")
    assert facility["verdict"] == "fail" and facility["level"] == "MUST"
    assert report["summary"]["portal_compatible"]["verdict"] == "fail"
    assert "GBT-DOC-007" in report["summary"]["portal_compatible"]["failed"]
