"""`conformance run --reference --portal <shadow>` with a sandbox upstream: the proxy is transparent, so the
run is as CONFORMANT through it as it is direct (every sandbox API call, fault and reset passes through).

Marked `proof`: a whole conformance run (51-72 s), so `make field-evidence` runs it, not `make test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main
from tests.live import LiveServer
from tests.shadow import start_shadow

pytestmark = [pytest.mark.portal(), pytest.mark.proof]


def test_a_reference_run_through_the_shadow_is_conformant(portal: LiveServer, tmp_path: Path) -> None:
    shadow = start_shadow(tmp_path, portal.base_url)
    try:
        report_dir = tmp_path / "report"
        argv = ["run", "--reference", "--seed", "11", "--portal", shadow.base_url, "--admin-token", portal.admin_token]
        assert main([*argv, "--report-dir", str(report_dir)]) == 0
        report = json.loads((report_dir / "report.json").read_text())
        assert {c["id"] for c in report["cases"] if c["verdict"] == "pass"} == {c["id"] for c in report["cases"]}
        counts = shadow.comparisons()["counts"]
    finally:
        shadow.stop()
    assert counts["submit"] > 20 and counts["token"] > 0 and "errors" not in counts, counts
    assert len(shadow.lines()) >= counts["judged"] > 0, "every judged submission is in the log"
