"""`conformance check`: offline judgement of files with the portal's own checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
