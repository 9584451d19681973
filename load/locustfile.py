"""Locust load kit: do hospitals still deliver every certificate within 4 working hours under load?

    locust -f load/locustfile.py --headless -u 50 -r 10 -t 60s --shape outage-recovery \\
        --clock-rate 600 -H http://127.0.0.1:8080 --admin-token $PORTAL_ADMIN_TOKEN --max-late 0

Personas (one abstract base, one subclass each):

* `HospitalUser` — a simulated hospital on one of `--facilities` facilities provisioned in
  `test_start` (account, test CA, signing certificate). It issues GCS / GBT at `--issue-rate` per
  sandbox hour (Poisson), signs each with the facility key at the issue instant and delivers them
  oldest first with the reference hospital's protocol (`fixtures.hospital.session.PortalSession`:
  token reuse, one re-login on 401; `RetryPolicy`: full-jitter backoff, then a pause of
  `--requeue-after`). Issue → acceptance is counted in working minutes of the sandbox clock.
  `--hospital-variant late-sender` holds every certificate past its deadline, `no-retry` gives up
  after the first failure.
* `IssuingDeskUser` — with `--trigger-url`, orders certificates from a hospital system under test
  through the conformance trigger contract (`{request_id, type, facility, issued_at, data}`),
  registers an expectation for each at the portal and polls it until it ARRIVED (ON_TIME / LATE).
* `IpssReaderUser` — with `--ipss-api-key`, reads the IPSS feed and the certificates it lists.

Deadline metrics are Locust request events of type DEADLINE (response time = working minutes; a
late or overdue certificate is a failure), so they reach the web UI, CSV and HTML reports. At the
end the master writes `<--deadline-report>.json` and `.svg`, and sets the exit code from
`--max-late`, `--max-fail-ratio` (HTTP requests only) and `--p95-ms` (HTTP only). The summary also
counts expired tokens and re-logins (not failures), samples the detail of each grouped failure, and
says when the load generator's own CPU saturated (load/summary.py).

Master/worker: the master provisions and sends the kit to the workers (custom message); custom
options reach the workers with the spawn message; workers report their deadline records with their
stats (`report_to_master`), with their samples of failure detail.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `load.*` next to fixtures/, mock_portal/

from conformance.portal import PortalState, SandboxAdmin  # noqa: E402
from load.deadlines import Thresholds, judge_thresholds  # noqa: E402
from load.personas import HospitalUser, IpssReaderUser, IssuingDeskUser  # noqa: E402
from load.portal_io import Kit, SandboxTime, provision, set_clock  # noqa: E402
from load.run import DEADLINE, KIT_MESSAGE, RECORDS_KEY, SAMPLES_KEY, STATE, opt  # noqa: E402
from load.shapes import SHAPES, DeadlineShape  # noqa: E402
from load.summary import GeneratorCpu, Relogins, summary_level  # noqa: E402
from mock_portal.deadline.working_time import load_calendar  # noqa: E402

__all__ = ["DeadlineShape", "HospitalUser", "IpssReaderUser", "IssuingDeskUser"]
"""What Locust picks up from this file: the personas and the shape."""

log = logging.getLogger("load")

# --- options ----------------------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    """The kit's options; `python -m load --help` lists them (Locust's own --help runs before this import)."""

    def add(*names: str, env_var: str, help: str, **kwargs: Any) -> None:  # noqa: A002 - argparse's name
        default = "" if kwargs.get("is_secret") or kwargs.get("default") in (None, "") else ", default %(default)s"
        parser.add_argument(*names, env_var=env_var, help=f"{help} [{env_var}{default}]", **kwargs)

    add("--admin-token", env_var="PORTAL_ADMIN_TOKEN", default="", is_secret=True, help="sandbox admin token")
    add("--ipss-api-key", env_var="PORTAL_IPSS_API_KEY", default="", is_secret=True, help="IPSS X-API-Key")
    add("--shape", env_var="LOAD_SHAPE", default="steady", choices=sorted(SHAPES), help="load shape")
    add("--facilities", env_var="LOAD_FACILITIES", type=int, default=4, help="hospital facilities to provision")
    add("--facility-base", env_var="LOAD_FACILITY_BASE", type=int, default=79500, help="first facility code")
    add("--issue-rate", env_var="LOAD_ISSUE_RATE", type=float, default=6.0, help="per HospitalUser, per sandbox h")
    add("--gbt-share", env_var="LOAD_GBT_SHARE", type=float, default=0.2, help="share of death notices (GBT)")
    add("--clock-rate", env_var="LOAD_CLOCK_RATE", type=float, default=0.0, help="set the sandbox clock rate (0: keep)")
    add("--clock-start", env_var="LOAD_CLOCK_START", default="monday", choices=["monday", "now"], help="with rate")
    add("--calendar", env_var="LOAD_CALENDAR", default="default", help="working-time calendar (as the portal's)")
    add(
        "--hospital-variant",
        env_var="LOAD_HOSPITAL_VARIANT",
        default="reference",
        choices=["reference", "late-sender", "no-retry"],
        help="HospitalUser behaviour",
    )
    add("--retry-base", env_var="LOAD_RETRY_BASE", type=float, default=0.2, help="backoff base, s")
    add("--retry-cap", env_var="LOAD_RETRY_CAP", type=float, default=5.0, help="backoff cap, s")
    add("--max-attempts", env_var="LOAD_MAX_ATTEMPTS", type=int, default=12, help="sends per round")
    add("--requeue-after", env_var="LOAD_REQUEUE_AFTER", type=float, default=10.0, help="pause after a round, s")
    add("--trigger-url", env_var="LOAD_TRIGGER_URL", default="", help="IssuingDeskUser: POST orders here")
    add("--desk-facility", env_var="LOAD_DESK_FACILITY", default="79001", help="facility of the system under test")
    add("--desk-issue-rate", env_var="LOAD_DESK_ISSUE_RATE", type=float, default=6.0, help="per desk, per sandbox h")
    add("--max-late", env_var="LOAD_MAX_LATE", type=int, default=None, help="fail when more are late/overdue")
    add("--max-fail-ratio", env_var="LOAD_MAX_FAIL_RATIO", type=float, default=None, help="HTTP failure ratio")
    add("--p95-ms", env_var="LOAD_P95_MS", type=float, default=None, help="fail when HTTP p95 is above, ms")
    add("--deadline-report", env_var="LOAD_DEADLINE_REPORT", default="load-deadline", help="<prefix>.json/.svg")
    add(
        "--keep-workspace",
        env_var="LOAD_KEEP_WORKSPACE",
        action="store_true",
        default=False,
        help="keep the workspace the run opened (with the operator key and no --trigger-url)",
    )


# --- run lifecycle ----------------------------------------------------------------------------


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    STATE.calendar = load_calendar(opt(environment, "calendar", "default"))
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):  # the master decides; a worker learns the options later
        # a persona without what it needs is not spawned at all
        wanted = [
            cls
            for cls in environment.user_classes
            if not (cls is IssuingDeskUser and not opt(environment, "trigger_url"))
            and not (cls is IpssReaderUser and not opt(environment, "ipss_api_key"))
        ]
        if wanted and len(wanted) != len(environment.user_classes):
            environment.user_classes[:] = wanted
    if isinstance(runner, WorkerRunner):
        runner.register_message(KIT_MESSAGE, lambda msg, **_: _take_kit(environment, msg.data))
    if isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(lambda client_id, data, **_: _take_report(data))
    else:
        environment.events.report_to_master.add_listener(lambda client_id, data, **_: _report(data))


def _report(data: dict[str, Any]) -> None:
    data[RECORDS_KEY] = STATE.book.drain()
    data[SAMPLES_KEY] = STATE.failures.drain()


def _take_report(data: dict[str, Any]) -> None:
    STATE.book.extend(data.get(RECORDS_KEY, []))
    STATE.failures.extend(data.get(SAMPLES_KEY, {}))


def _admin(environment: Environment) -> SandboxAdmin:
    """The sandbox API of the run's workspace: its own, or the given key's."""
    return SandboxAdmin(environment.host or "", STATE.workspace_key or opt(environment, "admin_token", ""))


def _open_workspace(environment: Environment) -> None:
    """With the operator key, the run opens a workspace of its own (docs/ARCHITECTURE.md, Workspaces), so
    its clock, outages and data touch no other tenant; without quotas (the operator's own load). A run
    that drives a system under test (--trigger-url) stays in the given key's workspace, where that
    system's account lives."""
    if opt(environment, "trigger_url"):
        return
    operator = SandboxAdmin(environment.host or "", opt(environment, "admin_token", ""))
    try:
        if operator.role() == "operator":
            unlimited = {"max_facilities": None, "max_submissions_per_minute": None, "max_documents": None}
            STATE.workspace, STATE.workspace_key = operator.create_workspace("load run", unlimited)
            log.info("opened workspace %s for the run", STATE.workspace)
    finally:
        operator.close()


def _close_workspace(environment: Environment) -> None:
    """Delete the run's workspace (once), unless --keep-workspace."""
    workspace, STATE.workspace = STATE.workspace, None
    if workspace is None:
        return
    if opt(environment, "keep_workspace", False):
        log.warning("workspace %s kept; its key: %s", workspace, STATE.workspace_key)
        return
    operator = SandboxAdmin(environment.host or "", opt(environment, "admin_token", ""))
    try:
        operator.delete_workspace(workspace)
    finally:
        operator.close()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # the kit arrives from the master
    if not opt(environment, "admin_token") or not environment.host:
        log.error("the load kit needs -H and --admin-token (PORTAL_ADMIN_TOKEN) to provision; stopping")
        environment.process_exit_code = 2
        if environment.runner is not None:
            gevent.spawn_later(0.1, environment.runner.quit)
        return
    base, count = opt(environment, "facility_base", 79500), max(1, opt(environment, "facilities", 4))
    _open_workspace(environment)
    admin = _admin(environment)
    try:
        STATE.saved = PortalState.take(admin)  # the shape's outage and --clock-rate change both
        codes = [f"{base + i:05d}" for i in range(count)]
        workspace = str(admin.whoami().get("id", "default"))  # accounts are unique across workspaces
        account = "BV" if workspace == "default" else workspace
        kit = provision(admin, codes, account=account, workspace_key=STATE.workspace_key)
        rate = opt(environment, "clock_rate", 0.0)
        if rate:
            set_clock(admin, rate, opt(environment, "clock_start", "monday"), STATE.calendar)
        clock = SandboxTime.read(admin)
    finally:
        admin.close()
    log.info("provisioned %d facilities; clock rate %s", len(kit.facilities), rate or "unchanged")
    message = {**kit.to_dict(), "time": clock.to_dict()}
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(KIT_MESSAGE, message)
    _take_kit(environment, message)


def _take_kit(environment: Environment, data: dict[str, Any]) -> None:
    """The master's provisioning and clock reading (workers: real clocks are assumed in sync, NTP)."""
    STATE.time = SandboxTime.from_dict(data["time"])
    STATE.kit = Kit.from_dict(data)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    shape = environment.shape_class
    if isinstance(shape, DeadlineShape):
        shape.lift_outage()
    _restore_portal(environment)


def _restore_portal(environment: Environment) -> None:
    """The clock and fault plans as they were before the run (once; also on Ctrl-C, via `quitting`)."""
    saved, STATE.saved = STATE.saved, None
    if saved is None:
        return
    admin = _admin(environment)
    try:
        saved.restore_or_log(admin)
    finally:
        admin.close()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    _restore_portal(environment)
    _close_workspace(environment)
    if environment.process_exit_code == 2:
        return
    environment.process_exit_code = _summarize(environment)


def _summarize(environment: Environment) -> int:
    """Write `<--deadline-report>.json` and `.svg`, log the summary, and return the exit code."""
    summary = STATE.book.summary()
    http = _http_total(environment)
    thresholds = Thresholds(
        max_late=opt(environment, "max_late"),
        max_fail_ratio=opt(environment, "max_fail_ratio"),
        p95_ms=opt(environment, "p95_ms"),
    )
    p95 = http.get_response_time_percentile(0.95) if http.num_requests else None
    verdicts = judge_thresholds(
        thresholds, issued=summary["issued"], late=summary["late"], fail_ratio=http.fail_ratio, p95_ms=p95
    )
    relogins = Relogins.from_stats(environment.stats.entries)
    cpu = GeneratorCpu.of(environment.runner, locust.runners.CPU_WARNING_THRESHOLD)  # the one Locust compared with
    extra = {
        "http": {"requests": http.num_requests, "failures": http.num_failures, "fail_ratio": http.fail_ratio},
        "http_p95_ms": p95,
        "token_expiry": relogins.to_dict(),
        "load_generator": cpu.to_dict(),
        "failure_samples": STATE.failures.to_list(),
        "thresholds": {k: v for k, v in vars(thresholds).items()},
        "threshold_failures": list(verdicts.failures),
    }
    paths = STATE.book.write(Path(opt(environment, "deadline_report", "load-deadline")), extra)
    log.log(
        summary_level(verdicts.failures, summary["late"]),
        "deadlines: %d issued, %d accepted, %d late/overdue, p95 %s working min; HTTP p95 %s ms, fail ratio %.4f; "
        "%d token(s) expired, %d re-login(s), %d failed -> %s, %s",
        *(summary["issued"], summary["accepted"], summary["late"], summary["working_minutes"]["p95"]),
        *(p95, http.fail_ratio, relogins.expired, relogins.succeeded, relogins.failed, *paths),
    )
    if warning := cpu.warning():
        log.warning(warning)
    for failure in verdicts.failures:
        log.error("threshold violated: %s", failure)
    return verdicts.exit_code


def _http_total(environment: Environment) -> StatsEntry:
    total = StatsEntry(environment.stats, "HTTP", "", use_response_times_cache=False)
    for entry in environment.stats.entries.values():
        if entry.method != DEADLINE:
            total.extend(entry)
    return total
