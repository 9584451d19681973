"""What a newcomer following the README meets first (issue 11): links, errors, the demo, the CLIs.

Each test names the numbered point of the issue it proves; all go through a real served portal or the
real command line, as a newcomer does.
"""

from __future__ import annotations

import os
import queue
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conformance.cli import main as conformance_main
from conformance.portal import SandboxAdmin, restoring
from fixtures.ports import free_port
from tests.conftest import Hospital
from tests.live import LiveServer, start_server
from tests.wire import sample, send

ROOT = Path(__file__).resolve().parents[1]


# 1, 16: links -------------------------------------------------------------------------------------
def test_dashboard_link_without_slash_redirects_to_the_dashboard(server: LiveServer) -> None:
    """(1) `/sandbox/ui` was a 308 without Location, rendered as a JSON "Internal error"."""
    reply = httpx.get(f"{server.base_url}/sandbox/ui", follow_redirects=False)
    assert reply.status_code == 308 and reply.headers["location"] == "/sandbox/ui/"
    landed = httpx.get(f"{server.base_url}/sandbox/ui", follow_redirects=True)
    assert landed.status_code == 200 and "text/html" in landed.headers["content-type"]
    assert "token" in landed.text.lower()  # the login page


def test_root_leads_to_the_dashboard_and_swagger_lists_this_server(server: LiveServer) -> None:
    """(16) `/` was a JSON 404; Swagger UI's server list was empty."""
    root = httpx.get(f"{server.base_url}/", follow_redirects=False)
    assert root.status_code in (301, 302, 307, 308) and root.headers["location"].endswith("/sandbox/ui/")
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    assert spec["servers"][0]["url"] == server.base_url


# 7: journal paging --------------------------------------------------------------------------------
def test_journal_after_pages_forward_oldest_first(admin: httpx.Client, hospital: Hospital) -> None:
    """(7) `after=N&limit=3` returned the newest three, silently skipping the ones in between."""
    for _ in range(7):
        hospital.client.send_form({"username": hospital.username, "password": "0" * 32})  # journalled 401s
    every = {"facility": hospital.code, "identity": "all"}  # no token: unauthenticated rows among them
    mine = admin.get("/sandbox/journal", params={**every, "limit": 100}).json()
    ids = sorted(e["id"] for e in mine)
    assert len(ids) >= 7
    seen, after = [], ids[0] - 1
    while True:
        page = admin.get("/sandbox/journal", params={**every, "after": after, "limit": 3}).json()
        if not page:
            break
        assert [e["id"] for e in page] == sorted(e["id"] for e in page)  # oldest first
        seen += [e["id"] for e in page]
        after = page[-1]["id"]
    assert seen == ids


# 13: human messages for bad query values -----------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/sandbox/reports/semiannual", {"period": "2026-Q3"}, "REPORT_PERIOD_INVALID"),
        ("/sandbox/journal", {"since": "yesterday"}, "TIME_INVALID"),
    ],
)
def test_bad_period_or_since_is_explained_not_dumped(admin: httpx.Client, path: str, params: dict, code: str) -> None:
    """(13) a jsonschema regex dump came back instead of a coded, bilingual problem."""
    reply = admin.get(path, params=params)
    assert reply.status_code == 400 and reply.headers["content-type"] == "application/problem+json"
    body = reply.json()
    assert body["code"] == code
    value = next(iter(params.values()))
    assert value in body["detail_en"] and value in body["detail_vi"]
    assert "Failed validating" not in body["detail"] and "^" not in body["detail"]


# 15: a skipped check says one reason in both languages -----------------------------------------------
def test_skipped_revocation_check_gives_the_same_reason_in_both_languages(
    admin: httpx.Client, hospital: Hospital
) -> None:
    """(15) "an earlier check failed" in Vietnamese, "no CRL" in English, for an accepted document."""
    sent = send(admin, hospital, sample(hospital))
    assert sent.reply.ma_ket_qua == "200"
    check = next(c for c in sent.submission["signature"]["checks"] if c["name"] == "certificate_not_revoked")
    assert check["outcome"] == "SKIPPED"
    assert "CRL" in check["message_en"] and "CRL" in check["message_vi"]
    assert "trước" not in check["message_vi"]  # not "an earlier check failed"


# 10, 9: conformance CLI usage errors ------------------------------------------------------------------
def test_conformance_check_with_a_missing_file_or_a_bad_trust_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(10) a traceback and exit 1 (the code for "refused")."""
    missing = tmp_path / "missing.xml"
    assert conformance_main(["check", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    not_a_cert = tmp_path / "ca.pem"
    not_a_cert.write_text("hello\n")
    (tmp_path / "doc.xml").write_text("<x/>")
    assert conformance_main(["check", str(tmp_path / "doc.xml"), "--trust", str(not_a_cert)]) == 2
    err = capsys.readouterr().err
    assert "--trust" in err and "certificate" in err and "Traceback" not in err


def test_conformance_run_with_a_vendor_trigger_needs_a_portal(capsys: pytest.CaptureFixture[str]) -> None:
    """(9) without --portal it started a private portal the vendor's system could not reach."""
    assert conformance_main(["run", "--trigger-url", "http://127.0.0.1:9/orders"]) == 2
    assert "--portal" in capsys.readouterr().err


# 2: the portal gets its clock and faults back ---------------------------------------------------------
def test_restoring_puts_clock_and_fault_plans_back_after_an_interrupt(server: LiveServer, hospital: Hospital) -> None:
    """(2) `conformance run --portal` left the portal at 600x, days ahead (and its faults on)."""
    admin = SandboxAdmin(server.base_url, server.admin_token)
    plan = {"seed": 3, "faults": [{"name": "slow", "effect": "latency", "latency": {"ms": 1}}]}
    try:
        admin.set_clock(now="2026-03-09T08:00:00+07:00", rate=2)
        admin.set_global_faults(plan)
        with pytest.raises(KeyboardInterrupt), restoring(admin, (hospital.code,)):
            admin.set_clock(now="2026-04-01T08:00:00+07:00", rate=600)
            admin.set_global_faults({"faults": []})
            admin.set_faults(hospital.code, {"faults": [{"name": "down", "effect": "http_error", "status": 503}]})
            raise KeyboardInterrupt
        clock = admin.clock()
        assert clock["rate"] == 2 and clock["now"].startswith("2026-03-09T01:")
        assert admin.global_faults()["faults"] == plan["faults"]
        assert admin.facility_faults(hospital.code) == {"faults": []}
    finally:
        admin.reset_clock()
        admin.clear_global_faults()
        admin.close()


def test_conformance_run_against_a_given_portal_restores_its_clock(tmp_path: Path) -> None:
    """(2) end to end: a real `conformance run --portal` leaves the clock as it found it. Its own portal: the
    reference run provisions facilities 79101… that the shared portal's tests allocate too."""
    portal = start_server(tmp_path)
    try:
        code = conformance_main(
            [
                "run", "--reference", "--portal", portal.base_url, "--admin-token", portal.admin_token,
                "--only", "API-001", "--seed", "5", "--clock-rate", "1200",
            ]
        )  # fmt: skip
        assert code == 0
        with portal.admin() as admin:
            clock = admin.get("/sandbox/clock").json()
        assert clock["mode"] == "real" and clock["rate"] == 1.0
    finally:
        portal.stop()


# 14: the demo's secrets and a busy port -----------------------------------------------------------------
def _serve_demo(workdir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")} | {"PORTAL_PORT": str(port)}
    return subprocess.Popen(
        [sys.executable, "-m", "mock_portal.cli", "serve", "--demo", "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _banner_token(process: subprocess.Popen[str]) -> str:
    """The token of the banner's `export PORTAL_ADMIN_TOKEN=…` line, waiting at most 30 s for it."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # readline blocks; a thread keeps the wait bounded when the line never comes
        try:
            for line in process.stdout:  # type: ignore[union-attr]
                lines.put(line)
        except (OSError, ValueError):  # the test closed the pipe (communicate) while this read
            pass

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if "export PORTAL_ADMIN_TOKEN=" in line:
            return line.split("=", 1)[1].strip()
    raise AssertionError("serve printed no `export PORTAL_ADMIN_TOKEN=` line")


def test_demo_admin_token_survives_a_restart_and_a_busy_port_prints_no_tokens(tmp_path: Path) -> None:
    """(14) a new admin token on every restart; a start on a busy port still printed fresh tokens."""
    port = free_port()
    first = _serve_demo(tmp_path, port)
    try:
        token = _banner_token(first)
        secret = tmp_path / "var" / "demo" / "admin-token"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        busy = _serve_demo(tmp_path, port)
        out, _ = busy.communicate(timeout=60)
        assert busy.returncode == 1 and "cannot listen" in out and "PORTAL_ADMIN_TOKEN" not in out
    finally:
        first.terminate()
        first.communicate(timeout=10)
    again = _serve_demo(tmp_path, port)
    try:
        assert _banner_token(again) == token
    finally:
        again.terminate()
        again.communicate(timeout=10)


# 5, 8, 20: samples and orders --------------------------------------------------------------------------
def _fixtures(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixtures", *argv], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.demo import ensure_pki

    workdir = tmp_path_factory.mktemp("demo-pki")
    ensure_pki(workdir / "var" / "demo")
    return workdir


def test_sample_at_a_sandbox_instant_is_signed_then_with_a_certificate_valid_then(demo_dir: Path) -> None:
    """(5) after `PUT /sandbox/clock` to 2026-03-09 a sample was signed "now" with a not-yet-valid certificate."""

    at = "2026-03-09T08:00:00+07:00"
    done = _fixtures(demo_dir, "sample", "--type", "gcs", "--at", at, "--out", "s.xml")
    assert done.returncode == 0, done.stderr
    xml = (demo_dir / "s.xml").read_text(encoding="utf-8")
    assert "<SigningTime>2026-03-09T08:00:00</SigningTime>" in xml  # local time, as the portal writes it
    assert ".GCS.79001.26<" in xml
    refused = _fixtures(demo_dir, "sample", "--type", "gcs", "--at", "2001-01-01T08:00:00+07:00", "--out", "t.xml")
    assert refused.returncode == 2 and "valid" in refused.stderr and "Traceback" not in refused.stderr


def test_sample_reads_the_sandbox_clock_of_a_given_portal(server: LiveServer, demo_dir: Path) -> None:
    """(5) with --portal, the default instant is the portal's sandbox clock."""
    with server.admin() as admin:
        admin.put("/sandbox/clock", json={"now": "2026-03-09T08:00:00+07:00", "rate": 0})
        try:
            done = _fixtures(
                demo_dir, "sample", "--type", "gbt", "--portal", server.base_url,
                "--admin-token", server.admin_token, "--out", "p.xml",
            )  # fmt: skip
        finally:
            admin.delete("/sandbox/clock")
    assert done.returncode == 0, done.stderr
    assert "signed at 2026-03-09T08:00:00+07:00" in done.stdout


def test_default_samples_differ_and_staff_names_are_vietnamese(demo_dir: Path) -> None:
    """(20) every default sample had the same mother and MA_GCS 00001; staff were called "Jane"."""
    from fixtures.certificates import scenario

    texts = []
    for name in ("a.xml", "b.xml"):
        assert _fixtures(demo_dir, "sample", "--type", "gcs", "--out", name).returncode == 0
        texts.append((demo_dir / name).read_text(encoding="utf-8"))
    code = [t.split("<MA_GCS>")[1].split("<")[0] for t in texts]
    mother = [t.split("<HOTEN_NND>")[1].split("<")[0] for t in texts]
    assert code[0] != code[1] and mother[0] != mother[1]
    western = {"John", "Jane"}
    for seed in range(40):
        for _doc_type, fields in scenario("gcs_normal", facility_code="79001", serial=1, seed=seed) + scenario(
            "gbt_inpatient", facility_code="79001", serial=1, seed=seed
        ):
            staff = [fields.get(k, "") for k in ("NGUOI_DO_DE", "NGUOI_GHI_PHIEU", "THU_TRUONG_DVI", "TTRUONG_DVI")]
            assert not western & {word for name in staff for word in name.split()}, staff


def test_order_example_follows_the_trigger_contract_and_the_reference_hospital_takes_it(
    demo_dir: Path, tmp_path: Path
) -> None:
    """(8) no example order: vendors typed 69 fields by hand."""
    import json

    import jsonschema

    done = _fixtures(demo_dir, "order", "--type", "gcs", "--at", "2026-03-09T08:00:00+07:00")
    assert done.returncode == 0, done.stderr
    order = json.loads(done.stdout)
    schema = json.loads((ROOT / "conformance" / "trigger.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(order, schema)
    assert order["data"]["MA_GCS"].endswith(".GCS.79001.26")
    for example in sorted((ROOT / "examples" / "orders").glob("*.json")):
        jsonschema.validate(json.loads(example.read_text(encoding="utf-8")), schema)
    taken = subprocess.run(
        [sys.executable, "-m", "fixtures.hospital", "order", "--state-dir", str(tmp_path / "h")],
        input=done.stdout, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr


# 18: help texts -----------------------------------------------------------------------------------------
HELP_COMMANDS = [
    ["-m", "fixtures.hospital", "--help"],
    ["-m", "fixtures.hospital", "work", "--help"],
    ["-m", "fixtures.hospital", "serve", "--help"],
    ["-m", "fixtures", "sample", "--help"],
    ["-m", "mock_portal.cli", "serve", "--help"],
    ["-m", "conformance.cli", "run", "--help"],
]


def test_help_texts_speak_to_users_and_show_backoff_defaults() -> None:
    """(18) help spoke of internal work items ("issue 4, point 4") and hid the backoff defaults."""
    import re

    shown = [
        subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60, check=True).stdout
        for command in HELP_COMMANDS
    ]  # one start per command: `work --help` is read again below, not run twice
    for command, text in zip(HELP_COMMANDS, shown, strict=True):
        assert not re.search(r"\b(issue|point) \d", text, re.IGNORECASE), (command, text)
    work = shown[1]
    assert "(default: 0.2)" in work and "(default: 5.0)" in work and "(default: 12)" in work


def test_work_drain_says_what_it_did(demo_dir: Path, tmp_path: Path) -> None:
    """(18) `work --drain` printed nothing on success."""
    keys = demo_dir / "var" / "demo"
    done = subprocess.run(
        [
            sys.executable, "-m", "fixtures.hospital", "work", "--drain", "--state-dir", str(tmp_path),
            "--portal", "http://127.0.0.1:9", "--facility", "79001", "--username", "79001_BV", "--password", "x",
            "--key", str(keys / "79001.key.pem"), "--cert", str(keys / "79001.cert.pem"),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("drained: 0 order(s) handled")


def test_every_explained_pattern_is_one_the_spec_uses() -> None:
    """(13) the error layer words the spec's patterns; a pattern renamed in the spec must not go unexplained."""
    import yaml

    from mock_portal.api.errors import _PATTERNS

    spec = yaml.safe_load((ROOT / "mock_portal" / "openapi.yaml").read_text(encoding="utf-8"))
    used: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                used.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert set(_PATTERNS) <= used
