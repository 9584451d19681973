"""Issue 24's attacks, short: bench/stall.py with 2 s per attack and 4 attackers, wide bounds.

Marked `alone`: `make test` leaves it out and `make stall-check` runs it with the machine to itself. Beside
`make test`'s other processes on 2 cores, CI measured health p99 2,823 ms (p50 1,345 ms) under the 5 MiB
files, a verdict on the machine's load rather than on the portal.

The bench runs once as a subprocess (as `make bench-stall` runs it; no test imports bench modules) on
its own `mock-portal serve --workers 2`; each attack is one test over its row of the bench's JSON
line. The bounds (health p99 < 1.5 s, valid submission p99 < 2 s, every valid submission accepted)
are wide enough for a 2-core CI machine: they separate "slower" from "stalled". The targets
issue 24 asks for (100 / 250 ms) are measured by `make bench-stall` (bench/README.md, "Stall targets").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.alone
ROOT = Path(__file__).resolve().parent.parent
HEALTH_P99_MS, SUBMIT_P99_MS = 1500, 2000
ATTACKS = ["wrong-password", "wrong-password-token", "inline-worst", "many-elements", "reset"]
ATTACKER_REPLY = {
    "wrong-password": "401 AUTH_BAD_CREDENTIALS",
    "wrong-password-token": "401 TOKEN_NO_ACCOUNT",
    "many-elements": "205 XML_TOO_MANY_ELEMENTS",
}
"""What the attackers must have got at least once: proof the attack reached the check it aims at."""


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, Any]]:
    command = [
        sys.executable,
        "bench/stall.py",
        "--seconds=2",
        "--attackers=4",
        "--reset-rows=1000",
        f"--attacks={','.join(ATTACKS)}",
        f"--health-target-ms={HEALTH_P99_MS}",
        f"--submit-target-ms={SUBMIT_P99_MS}",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("{"), done.stdout[-2000:] + done.stderr[-3000:]
    summary = json.loads(lines[-1])
    assert summary["reset_prefill"]["rows"]["journal"] >= 1000
    return {row["attack"]: row for row in summary["rows"]}


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_hospital_is_served_under_attack(rows: dict[str, dict[str, Any]], attack: str) -> None:
    row = rows[attack]
    if attack in ATTACKER_REPLY:
        assert ATTACKER_REPLY[attack] in row["attacker_replies"], row["attacker_replies"]
    if attack == "reset":
        assert row["reset"]["status"] == 204
    assert row["submit"]["results"] == ["200"], row
    assert row["submit"]["count"] == 8 and row["health"]["count"] == 20, row
    assert row["health"]["results"] == ["200"], row
    assert row["health"]["p99_ms"] < HEALTH_P99_MS, row
    assert row["submit"]["p99_ms"] < SUBMIT_P99_MS, row
