"""The Locust load kit (`load/`): short headless runs against a portal of this module's own.

Locust runs in a subprocess only: importing it into a pytest process that loaded the schemathesis
plugin breaks (locust #2250). The pure deadline book-keeping is tested in-process.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from fixtures.pki import TestPKI, cert_pem, key_pem
from fixtures.ports import free_port
from load.deadlines import DeadlineLedger, DeadlineRecord, Status, Thresholds, judge_thresholds, render_svg
from load.summary import (
    EXPIRED_NAME,
    RELOGIN_NAME,
    FailureSamples,
    GeneratorCpu,
    Relogins,
    cause_of,
    failure_text,
    summary_level,
)
from mock_portal.control.clock import VN_TZ
from mock_portal.deadline.working_time import WorkingCalendar
from tests.live import IPSS_KEY, LiveServer

ROOT = Path(__file__).resolve().parents[1]
LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "load" / "locustfile.py")]
SUBMIT = "/api/hososuckhoe/guiGiayToDienTu"
# a portal of its own: the runs count the default workspace's journal and trust their own CA
pytestmark = pytest.mark.portal()
MONDAY_0800 = datetime(2026, 3, 9, 8, 0, tzinfo=VN_TZ)


def locust(
    portal: LiveServer, out: Path, *args: str, timeout: float = 60, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A Locust run against `portal` with its operator key (its own workspace) or `token` (a workspace key)."""
    command = [
        *LOCUST,
        "-H",
        portal.base_url,
        "--admin-token",
        token or portal.admin_token,
        "--csv",
        str(out / "run"),
        "--deadline-report",
        str(out / "deadline"),
        "--only-summary",
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, cwd=out, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def stats(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (out / "run_stats.csv").open(encoding="utf-8") as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def summary(out: Path) -> dict:
    return json.loads((out / "deadline.json").read_text(encoding="utf-8"))


def test_headless_run_with_the_reference_policy_meets_every_deadline(portal: LiveServer, tmp_path: Path) -> None:
    """Hospitals and an IPSS reader for a few seconds at 600x; nothing late, so --max-late 0 exits 0."""
    run = locust(
        portal,
        tmp_path,
        *("--headless", "-u", "4", "-r", "4", "-t", "5s", "--clock-rate", "600", "--issue-rate", "40"),
        *("--ipss-api-key", IPSS_KEY, "--facilities", "2", "--max-late", "0", "--max-fail-ratio", "0.2"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = stats(tmp_path)
    submit = rows[("POST", SUBMIT)]
    assert int(submit["Request Count"]) > 0 and int(submit["Failure Count"]) == 0
    deadline_rows = [row for (kind, _), row in rows.items() if kind == "DEADLINE"]
    assert deadline_rows and all(int(row["Failure Count"]) == 0 for row in deadline_rows)
    assert ("GET", "/ipss/v1/feed") in rows
    report = summary(tmp_path)
    assert report["summary"]["accepted"] > 0 and report["summary"]["late"] == 0
    assert report["threshold_failures"] == []
    assert (tmp_path / "deadline.svg").read_text(encoding="utf-8").startswith("<svg")
    with portal.admin() as admin:  # the run gave the clock back
        assert admin.get("/sandbox/clock").json()["rate"] == 1.0


def test_late_sender_and_impossible_p95_fail_the_run(portal: LiveServer, tmp_path: Path) -> None:
    """At 20000x the late-sender holds each certificate past 240 working minutes within a second."""
    run = locust(
        portal,
        tmp_path,
        *("--headless", "-u", "2", "-r", "2", "-t", "4s", "--clock-rate", "20000", "--issue-rate", "1"),
        *("--hospital-variant", "late-sender", "--max-late", "0", "--p95-ms", "1"),
    )
    assert run.returncode == 1, run.stderr[-3000:]
    report = summary(tmp_path)
    assert report["summary"]["late"] > 0
    failures = " ".join(report["threshold_failures"])
    assert "--max-late 0" in failures and "--p95-ms 1" in failures
    late_rows = [row for (kind, _), row in stats(tmp_path).items() if kind == "DEADLINE"]
    assert sum(int(row["Failure Count"]) for row in late_rows) > 0
    errors = run.stderr.partition("Error report")[2]  # (issue 25) one row per status, not per certificate
    assert "LateDelivery('LATE')" in errors and not re.search(r"\d{5}\.G(CS|BT)\.", errors), errors


def test_issuing_desk_drives_the_reference_hospital_through_the_trigger(portal: LiveServer, tmp_path: Path) -> None:
    """IssuingDeskUser orders from `python -m fixtures.hospital serve` and judges each expectation."""
    code = "79088"
    pki = TestPKI.create({code: "Bệnh viện SUT"})
    cred = pki.issue_facility_cert(code)
    with portal.admin() as admin:
        facility = {"code": code, "name": "SUT", "username": f"{code}_BV", "password": "sut-pass"}
        assert admin.post("/sandbox/facilities", json=facility).status_code in (201, 409)
        pem = {"Content-Type": "application/x-pem-file"}
        assert admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=pem).status_code == 201
        registered = admin.post(f"/sandbox/facilities/{code}/certificates", content=cert_pem(cred.cert), headers=pem)
        assert registered.status_code == 201, registered.text
    (tmp_path / "key.pem").write_bytes(key_pem(cred.key))
    (tmp_path / "cert.pem").write_bytes(cert_pem(cred.cert))
    port = free_port()
    sut = subprocess.Popen(
        [
            *(sys.executable, "-m", "fixtures.hospital", "serve", "--state-dir", str(tmp_path / "sut")),
            *("--portal", portal.base_url, "--facility", code, "--username", f"{code}_BV", "--password", "sut-pass"),
            *("--key", str(tmp_path / "key.pem"), "--cert", str(tmp_path / "cert.pem"), "--clock-rate", "600"),
            *("--listen", f"127.0.0.1:{port}", "--retry-base", "0.05", "--retry-cap", "0.5"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health")
        run = locust(
            portal,
            tmp_path,
            *("--headless", "-u", "1", "-r", "1", "-t", "5s", "--clock-rate", "600", "--max-late", "0"),
            *("--trigger-url", f"http://127.0.0.1:{port}/orders", "--desk-facility", code, "--desk-issue-rate", "20"),
            *("--facilities", "1"),
            "IssuingDeskUser",
        )
    finally:
        sut.terminate()
        sut.wait(timeout=15)
    assert run.returncode == 0, run.stderr[-3000:]
    by_persona = summary(tmp_path)["summary"]["by_persona"]
    assert by_persona["desk"]["ON_TIME"] > 0 and by_persona["desk"]["LATE"] == 0, by_persona
    assert int(stats(tmp_path)[("POST", "trigger: POST order")]["Failure Count"]) == 0


def test_master_and_one_worker_on_loopback(portal: LiveServer, tmp_path: Path) -> None:
    """Custom options reach the worker, the kit travels as a message, records come back to the master."""
    port = free_port()
    master = subprocess.Popen(
        [
            *LOCUST,
            *("--master", "--headless", "--expect-workers", "1", "--master-bind-host", "127.0.0.1"),
            *("--master-bind-port", str(port), "-u", "3", "-r", "3", "-t", "4s", "-H", portal.base_url),
            *("--admin-token", portal.admin_token, "--clock-rate", "600", "--issue-rate", "40", "--max-late", "0"),
            *("--csv", str(tmp_path / "run"), "--deadline-report", str(tmp_path / "deadline"), "--only-summary"),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = subprocess.Popen(
        [*LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _, err = master.communicate(timeout=60)
        worker.wait(timeout=20)
    finally:
        for process in (master, worker):
            if process.poll() is None:
                process.kill()
    assert master.returncode == 0, err[-3000:]
    assert int(stats(tmp_path)[("POST", SUBMIT)]["Request Count"]) > 0
    report = summary(tmp_path)["summary"]
    assert report["accepted"] > 0 and report["late"] == 0


def _wait_http(url: str) -> None:
    with httpx.Client(timeout=1) as client:  # one SSL context, not one per poll (30 ms of CPU each)
        for _ in range(100):
            try:
                client.get(url)
                return
            except httpx.TransportError:
                time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


# --- the deadline book, in-process ------------------------------------------------------------


@pytest.mark.parametrize(
    ("accepted_after", "end_after", "refused", "expected"),
    [
        (timedelta(hours=3), None, False, Status.ON_TIME),
        (timedelta(hours=4), None, False, Status.ON_TIME),  # 08:00 + 240 working min = 12:00 exactly
        (timedelta(hours=5, minutes=1), None, False, Status.LATE),  # 13:01: one working minute late
        (None, timedelta(hours=2), False, Status.PENDING),
        (None, timedelta(hours=6), False, Status.OVERDUE),
        (None, None, True, Status.REFUSED),
    ],
    ids=["on-time", "at-deadline", "late-after-lunch", "pending", "overdue", "refused"],
)
def test_records_are_judged_in_working_minutes(
    accepted_after: timedelta | None, end_after: timedelta | None, refused: bool, expected: Status
) -> None:
    record = DeadlineRecord.judged(
        persona="hospital",
        doc_type="GCS",
        code="00001.GCS.79001.26",
        facility="79001",
        issued_at=MONDAY_0800,
        accepted_at=MONDAY_0800 + accepted_after if accepted_after else None,
        calendar=WorkingCalendar.default(),
        end=MONDAY_0800 + end_after if end_after else None,
        refused=refused,
    )
    assert record.status is expected
    assert record.late == (expected in (Status.LATE, Status.OVERDUE))
    assert DeadlineRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_book_summary_thresholds_and_picture(tmp_path: Path) -> None:
    calendar, book = WorkingCalendar.default(), DeadlineLedger()
    for minutes in (10, 100, 300):
        book.add(
            DeadlineRecord.judged(
                persona="hospital",
                doc_type="GCS",
                code=f"{minutes:05d}.GCS.79001.26",
                facility="79001",
                issued_at=MONDAY_0800,
                accepted_at=MONDAY_0800 + timedelta(minutes=minutes),
                calendar=calendar,
            )
        )
    worker = DeadlineLedger()
    worker.extend(book.drain())
    assert book.records == [] and len(worker.records) == 3
    report = worker.summary()
    assert (
        report["accepted"] == 3 and report["late"] == 1
    )  # 13:00: 240 working minutes, but after the 12:00 deadline (LATE in a pause)
    assert report["working_minutes"]["max"] == 240.0
    verdicts = judge_thresholds(Thresholds(max_late=0, p95_ms=500), issued=3, late=1, fail_ratio=0.0, p95_ms=80)
    assert verdicts.exit_code == 1 and verdicts.failures == ("1 certificate(s) late or overdue > --max-late 0",)
    assert judge_thresholds(Thresholds(), issued=9, late=9, fail_ratio=1.0, p95_ms=9e9).exit_code == 0
    # no certificate issued is no evidence, not a pass (issue 11, point 19)
    empty = judge_thresholds(Thresholds(max_late=0), issued=0, late=0, fail_ratio=0.0, p95_ms=None)
    assert empty.exit_code == 1 and "no certificate was issued" in empty.failures[0]
    json_path, svg_path = worker.write(tmp_path / "out" / "deadline")
    assert json.loads(json_path.read_text())["summary"]["late"] == 1
    assert svg_path.read_text().count('<circle class="mark-') == 3
    assert render_svg([]).startswith("<svg")


def test_python_m_load_help_lists_the_kit_options() -> None:
    """(issue 11, point 11) `locust -f … --help` prints before the locustfile is imported: `python -m load --help`."""
    shown = subprocess.run(
        [sys.executable, "-m", "load", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for option in ("--shape", "--clock-rate", "--max-late", "LOAD_CLOCK_RATE", "--retry-base", "default 0.2"):
        assert option in shown, option


def test_503_is_reported_as_503_and_the_portal_gets_its_fault_plan_back(portal: LiveServer, tmp_path: Path) -> None:
    """(issue 11, points 19 and 2) a 503 reply was counted as "no reply"; the run restores the plan it found.
    Run with a workspace key (issue 17: a run given a workspace stays in it), whose plan is the one found."""
    plan = {"seed": 1, "faults": [{"name": "down", "effect": "http_error", "status": 503, "operations": ["submit"]}]}
    with portal.admin() as operator:
        created = operator.post("/sandbox/workspaces", json={"name": "load 503"}).json()
    key = created["key"]
    with httpx.Client(base_url=portal.base_url, headers={"Authorization": f"Bearer {key}"}) as admin:
        assert admin.put("/sandbox/faults", json=plan).status_code == 200
        try:
            run = locust(
                portal,
                tmp_path,
                *("--headless", "-u", "2", "-r", "2", "-t", "3s", "--clock-rate", "600", "--issue-rate", "60"),
                *("--facilities", "1", "--shape", "outage-recovery", "--retry-base", "0.05", "--retry-cap", "0.2"),
                token=key,
            )
            assert run.returncode in (0, 1), run.stderr[-3000:]
            # Locust's final error table: its CSV is written once a second and missed the last rows under load
            errors = run.stderr.partition("Error report")[2]
            assert "HTTP 503" in errors and "no reply" not in errors, run.stderr[-3000:]
            assert admin.get("/sandbox/faults").json()["plan"]["faults"] == plan["faults"]
            assert admin.get("/sandbox/clock").json()["mode"] == "real"
        finally:
            with portal.admin() as operator:
                operator.delete(f"/sandbox/workspaces/{created['id']}")


def test_a_run_opens_a_workspace_of_its_own_and_deletes_it_unless_kept(portal: LiveServer, tmp_path: Path) -> None:
    """(issue 17) with the operator key the kit provisions, sends and moves the clock in its own workspace."""
    import re

    with portal.admin() as admin:
        journal_before = admin.get("/sandbox/journal/count").json()["count"]
    quick = ("--headless", "-u", "2", "-r", "2", "-t", "3s", "--clock-rate", "600", "--issue-rate", "60")
    opened = []
    for keep in (False, True):
        out = tmp_path / f"keep-{keep}"
        out.mkdir()
        run = locust(portal, out, *quick, "--facilities", "1", *(["--keep-workspace"] if keep else []))
        assert run.returncode == 0, run.stderr[-3000:]
        found = re.search(r"opened workspace (\S+) for the run", run.stderr)
        assert found, run.stderr[-3000:]
        opened.append(found.group(1))
        assert int(stats(out)[("POST", SUBMIT)]["Request Count"]) > 0
    with portal.admin() as admin:
        listed = [w["id"] for w in admin.get("/sandbox/workspaces").json()]
        assert opened[0] not in listed and opened[1] in listed
        assert admin.get("/sandbox/journal/count").json()["count"] == journal_before  # nothing in default
        assert admin.get("/sandbox/clock").json()["mode"] == "real"
        assert admin.delete(f"/sandbox/workspaces/{opened[1]}").status_code == 204


# Issue 25: Locust's error table groups failures, expected re-logins are no failures, the generator's CPU


def test_expired_tokens_are_re_logins_not_failures_and_a_saturated_generator_is_named(
    portal: LiveServer, tmp_path: Path
) -> None:
    """Once the hospitals are sending, the run's sandbox clock jumps 61 minutes: every token they hold
    (60 minutes) has expired at the portal, not yet by their own reading of its clock. Each expiry was a
    failure and an error row of its own ("Token expired at <instant>"). Locust's CPU monitor, made to
    fire by a second locustfile, flags the run as one whose generator saturated."""
    with portal.admin() as operator:
        created = operator.post("/sandbox/workspaces", json={"name": "load tokens"}).json()
    key = created["key"]
    jump = threading.Thread(target=_advance_once_submitting, args=(portal.base_url, key), daemon=True)
    try:
        jump.start()
        run = locust(
            portal,
            tmp_path,
            *("--headless", "-u", "2", "-r", "2", "-t", "3s", "--clock-rate", "600", "--issue-rate", "60"),
            *("--facilities", "1", "-f", f"{LOCUST[-1]},{ROOT / 'tests' / 'load_cpu_saturated.py'}"),
            token=key,
        )
        jump.join(timeout=5)
    finally:
        with portal.admin() as operator:
            operator.delete(f"/sandbox/workspaces/{created['id']}")
    assert run.returncode == 0, run.stderr[-3000:]
    errors = run.stderr.partition("Error report")[2]  # Locust's final table (its CSV is written once a second)
    assert "AUTH_TOKEN_EXPIRED" not in errors and not re.search(r"\d{4}-\d\d-\d\dT", errors), errors
    report = summary(tmp_path)  # counted from Locust's rows of the expired submissions and the re-logins
    assert report["token_expiry"]["tokens_expired"] > 0, report["token_expiry"]
    assert report["token_expiry"]["relogins"] > 0 and report["token_expiry"]["relogins_failed"] == 0
    assert report["http"]["failures"] == 0 and report["summary"]["accepted"] > 0
    assert report["load_generator"]["cpu_saturated"] is True
    assert re.search(r"/INFO/load: deadlines: .* token\(s\) expired", run.stderr), run.stderr[-3000:]
    assert re.search(r"/WARNING/load: the load generator's CPU was above -1 % \(this process\)", run.stderr)


def _advance_once_submitting(base_url: str, key: str) -> None:
    """Advance the workspace's clock by 61 minutes once two submissions are in its journal."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5) as admin:
        for _ in range(300):
            if admin.get("/sandbox/journal/count", params={"operation": "submit"}).json()["count"] >= 2:
                admin.post("/sandbox/clock/advance", json={"minutes": 61}).raise_for_status()
                return
            time.sleep(0.05)


def test_failure_texts_carry_no_per_request_value_and_keep_a_bounded_sample() -> None:
    explain = "AUTH_TOKEN_EXPIRED: Token expired at 2026-03-09T01:00:00Z; take a new one"
    assert failure_text("AUTH", 200, "401", explain) == "AUTH: HTTP 200 code 401 AUTH_TOKEN_EXPIRED"
    assert cause_of("FAULT outage, slow; SIG_DIGEST_MISMATCH: Reference #x digest differs") == (
        "FAULT outage, slow; SIG_DIGEST_MISMATCH"
    )
    assert cause_of("FAULT load-outage") == "FAULT load-outage"
    assert cause_of("free text: 2026-03-09") == "" and cause_of(None) == ""
    samples = FailureSamples(per_error=2, max_errors=2)
    for n in range(5):
        samples.add("A", f"detail {n}")
    samples.add("B", "b")
    samples.add("C", "c")  # a third text: counted by Locust, not sampled
    worker = FailureSamples()
    worker.extend(samples.drain())
    assert samples.to_list() == [] and worker.to_list() == [
        {"error": "A", "examples": ["detail 0", "detail 1"]},
        {"error": "B", "examples": ["b"]},
    ]


def test_re_logins_are_counted_from_locust_statistics() -> None:
    entry = SimpleNamespace
    entries = {
        (EXPIRED_NAME, "POST"): entry(num_requests=7, num_failures=0),
        (RELOGIN_NAME, "POST"): entry(num_requests=8, num_failures=2),
        (SUBMIT, "POST"): entry(num_requests=50, num_failures=1),
    }
    assert Relogins.from_stats(entries).to_dict() == {"tokens_expired": 7, "relogins": 6, "relogins_failed": 2}
    assert Relogins.from_stats({}).to_dict() == {"tokens_expired": 0, "relogins": 0, "relogins_failed": 0}


@pytest.mark.parametrize(
    ("runner", "where"),
    [
        (SimpleNamespace(cpu_warning_emitted=False), None),
        (SimpleNamespace(cpu_warning_emitted=True), "(this process)"),
        (SimpleNamespace(cpu_warning_emitted=False, worker_cpu_warning_emitted=True), "(a worker)"),
    ],
    ids=["cool", "local", "worker"],
)
def test_a_saturated_generator_is_named_in_the_summary(runner: SimpleNamespace, where: str | None) -> None:
    cpu = GeneratorCpu.of(runner, 90)
    assert cpu.to_dict()["cpu_saturated"] is (where is not None)
    warning = cpu.warning()
    assert warning is None if where is None else warning.startswith(f"the load generator's CPU was above 90 % {where}")
    assert summary_level((), late=0) == logging.INFO
    assert summary_level(("late",), late=1) == summary_level((), late=1) == logging.WARNING


# Issue 25: the kit decodes X-Sandbox-Explain (percent-encoded outside printable ASCII) before sampling it


def test_a_failure_sample_carries_the_decoded_explain_line() -> None:
    from load.portal_io import LocustWire
    from mock_portal.wire.reply import header_safe

    said = "SIG_CERT_UNTRUSTED: Chứng thư số không được tin cậy — 100% " + "á" * 300
    resp = SimpleNamespace(
        status_code=200,
        headers={"X-Sandbox-Explain": header_safe(said, limit=1000)},
        content=json.dumps({"MaKetQua": "205", "MaGD": None}).encode(),
        request_meta={},
        failure=lambda text: None,
    )
    samples = FailureSamples()
    LocustWire(None, samples)._judge(resp, token=False)
    [entry] = samples.to_list()
    [detail] = entry["examples"]
    assert said[:200] in detail and "%C3" not in detail and "%25" not in detail, detail
    assert entry["error"].endswith("SIG_CERT_UNTRUSTED"), entry
