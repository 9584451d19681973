"""The README walk-through: `serve --demo`, a signed sample accepted, a tampered one explained."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.demo import DEMO
from fixtures.hospital import HiapClient
from fixtures.ports import free_port
from tests.live import demo_server


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {**os.environ, "PORTAL_PORT": str(port), "PORTAL_ADMIN_TOKEN": "demo-admin"}
    env.pop("PORTAL_DATABASE_URL", None)
    with demo_server(workdir, [sys.executable, "-m", "mock_portal.cli", "serve", "--demo"], env) as base:
        yield base, workdir


def make_sample(workdir: Path, *extra: str) -> bytes:
    out = workdir / "sample.xml"
    subprocess.run(
        [sys.executable, "-m", "fixtures", "sample", "--type", "gcs", "--out", str(out), *extra],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def test_demo_start_prints_how_to_use_it(demo: tuple[str, Path]) -> None:
    printed = (demo[1] / "serve.log").read_text()
    assert "79001_BV" in printed and "demo1234" in printed and "demo-admin" in printed
    assert (demo[1] / "var" / "demo" / "79001.key.pem").exists()
    assert (demo[1] / "var" / "portal.sqlite3").exists()


def test_demo_sample_is_accepted_and_tampered_one_explained(demo: tuple[str, Path]) -> None:
    base, workdir = demo
    client = HiapClient(base, facility_code=DEMO.code, username=DEMO.username, password=DEMO.password)
    accepted = client.send("GCS", make_sample(workdir))
    assert accepted.ma_ket_qua == "200"
    seen = httpx.get(
        f"{base}/sandbox/submissions/{accepted.submission_id}", headers={"Authorization": "Bearer demo-admin"}
    ).json()
    checks = {c["name"]: c["outcome"] for c in seen["signature"]["checks"]}
    assert checks["certificate_not_revoked"] == "PASSED"  # the demo loaded var/demo/crl.pem (issue 11, point 15)
    refused = client.send("GCS", make_sample(workdir, "--invalid", "tampered"))
    assert refused.ma_ket_qua == "205"
    why = httpx.get(
        f"{base}/sandbox/submissions/{refused.submission_id}", headers={"Authorization": "Bearer demo-admin"}
    ).json()
    assert why["signature"]["sub_indication"] == "HASH_FAILURE"
    assert "SIG_DIGEST_MISMATCH" in [f["code"] for f in why["findings"]]


def test_sample_cli_lists_its_kinds() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "fixtures", "sample", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "tampered" in shown and "wrong_year" in shown
