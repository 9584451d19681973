"""Shared test resources: a real portal on a loopback port, a test PKI, provisioned facilities."""

from __future__ import annotations

import functools
import inspect
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.hospital import HiapClient
from fixtures.pki import CertVariant, Credential, TestPKI, cert_pem, crl_pem
from fixtures.postgres import PostgresServer
from mock_portal import store
from tests import live
from tests.live import LiveServer, start_server

_codes = itertools.count(1)
PEM = {"Content-Type": "application/x-pem-file"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the database of every portal the tests start: an SQLite file, or a PostgreSQL server the "
        "session starts itself (initdb + pg_ctl in a temporary directory)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: SQLite-specific; skipped with --db postgresql")
    config.addinivalue_line("markers", "postgresql_only: several hosts on one PostgreSQL; runs with --db postgresql")
    config.addinivalue_line(
        "markers",
        "portal(workers=1, env=None): the module's `portal` is one of its own, started with `workers` and the "
        "`env` settings, instead of the session's shared one",
    )
    config.addinivalue_line(
        "markers", "one_hospital: `hospital` is one facility for the whole module (on its own or the shared portal)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgresql = config.getoption("--db") == "postgresql"
    other = "postgresql_only" if not on_postgresql else "sqlite_only"
    # the other database's tests are deselected, not skipped: `make test` runs each in its own pass, and a
    # skip in the summary would read as a test that could not run
    other_pass = [item for item in items if item.get_closest_marker(other)]
    if other_pass:
        config.hook.pytest_deselected(items=other_pass)
        items[:] = [item for item in items if not item.get_closest_marker(other)]
    for item in items:
        if _is_live(item):
            item.add_marker(pytest.mark.live)
        if item.nodeid.startswith(SLOW) or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    # the modules that hold slow tests go first, so that under xdist no process starts a long one when the
    # others are done
    slow_groups = {_group(item.nodeid) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: _group(item.nodeid) not in slow_groups)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `--dist loadfile`, each module's tests on one xdist process (its module-scoped portal starts
    once), and the CPU_HEAVY modules together on one, one after another. (xdist's `loadgroup` sets a
    node id that pytest 9.2 no longer reads, so it groups nothing.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return ByModule(config, log)


CPU_HEAVY = {"test_dashboard_browser.py", "test_load.py"}
"""Chromium and Locust keep cores busy and judge latencies: under xdist they are
one unit, so they run one after another, never beside each other."""

SPREAD = {
    "test_architecture.py",
    "test_deadline.py",
    "test_documents_rules.py",
    "test_documents_schema.py",
    "test_fidelity.py",
    "test_wire_path.py",
    "test_wire_submit.py",
}
"""Long modules without a module-scoped fixture (their tests use the session's portal, if any): under xdist
their tests are spread over the processes one by one, not kept together."""

SLOW_MODULES = {
    # every test of these is a conformance run, a Locust run, a walk through the README or waits on a
    # module fixture that is one
    "test_attestation.py",
    "test_conformance_isolation.py",
    "test_conformance_live.py",
    "test_field_log.py",
    "test_load.py",
    "test_readme_walkthrough.py",
    "test_shadow_conformance.py",
    "test_stall.py",
}
SLOW = tuple(
    f"tests/{test}"
    for test in (
        "test_abuse.py::test_a_big_reset_does_not_stall_another_workspace",
        "test_abuse.py::test_no_operation_answers_a_5xx_to_hostile_input",
        "test_abuse.py::test_workers_killed_again_and_again_are_restarted",
        "test_architecture.py::test_domain_packages_know_no_http",
        "test_conformance_placement.py::test_a_bugs_verdict_does_not_depend_on_the_scenarios_run_before_it",
        "test_conformance_placement.py::test_a_run_reads_the_portals_calendar_and_places_its_scenarios_on_it",
        "test_conformance_selftest.py::test_selftest_runs_a_variant_live_and_prints_the_matrix",
        "test_documents_schema.py::test_the_first_schema_compiles_of_a_fresh_process_may_run_at_once",
        "test_group_commit.py::test_kill_9_in_a_flood_loses_no_acknowledged_submission",
        "test_hardening.py::test_unauthenticated_submissions_are_kept_within_a_limit",
        "test_hospital.py::test_command_trigger_order_is_sent_with_exactly_its_data",
        "test_hospital.py::test_order_taken_before_an_outage_is_sent_once_after_a_restart",
        "test_ipss.py::test_document_accepted_without_a_worker_is_shared_once_after_restart",
        "test_journal.py::test_journal_is_capped_for_long_runs_each_kind_under_its_own_bound",
        "test_newcomer.py::test_conformance_run_against_a_given_portal_restores_its_clock",
        "test_newcomer.py::test_default_samples_differ_and_staff_names_are_vietnamese",
        "test_newcomer.py::test_demo_admin_token_survives_a_restart_and_a_busy_port_prints_no_tokens",
        "test_newcomer.py::test_help_texts_speak_to_users_and_show_backoff_defaults",
        "test_newcomer.py::test_order_example_follows_the_trigger_contract_and_the_reference_hospital_takes_it",
        "test_newcomer.py::test_sample_at_a_sandbox_instant_is_signed_then_with_a_certificate_valid_then",
        "test_openapi_contract.py::test_every_operation_conforms",
        "test_openapi_contract.py::test_global_state_operations_conform_on_their_own_server",
        "test_reports.py::test_cli_reports_on_the_workspace_it_is_given",
        "test_reports.py::test_cli_writes_the_same_report",
        "test_serving.py::test_two_workers_share_connections_and_lose_nothing",
        "test_shadow.py::test_explain_adds_the_sandboxs_verdict_and_keep_files_keeps_the_file",
        "test_shadow.py::test_the_hospital_receives_the_upstreams_bytes",
        "test_shadow.py::test_the_log_is_a_rejudge_input_without_credentials_or_personal_data",
        "test_shadow.py::test_the_report_lists_exactly_the_disagreements_the_upstream_implies",
    )
)
"""Tests of more than ~5 s on a quiet 2-core machine (measured with `--durations=0`; a parametrized test by
its name, all its cases): `make test-fast` leaves these and those of SLOW_MODULES out."""

_STARTS_A_SERVER = re.compile(r"\b(?:start_server|start_local_portal|demo_server)\(|\"serve\"|\[\s*\"run\"")
"""A portal (or the demo, or a `conformance run` with its own portal) started in a test or fixture body."""


def _is_live(item: pytest.Item) -> bool:
    """Whether the test starts a server or talks HTTP to one: it uses the shared or the module's portal, or
    its body or one of its fixtures starts one."""
    if not isinstance(item, pytest.Function):
        return False
    if {"server", "portal"} & set(item.fixturenames):
        return True
    bodies = [item.obj] + [d.func for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs]
    return any(_STARTS_A_SERVER.search(_source(body)) for body in bodies)


@functools.cache
def _source(function: Callable[..., object]) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _group(nodeid: str) -> str:
    """The unit xdist hands one process: the test's module, "cpu-heavy" for the CPU_HEAVY modules, the
    test itself in a SPREAD module."""
    path = nodeid.split("::", 1)[0]
    name = Path(path).name
    if name in CPU_HEAVY:
        return "cpu-heavy"
    return nodeid if name in SPREAD else path


_postgres: PostgresServer | None = None


def postgres_server() -> PostgresServer:
    """The session's PostgreSQL server, started on first use and stopped at the end of the session."""
    global _postgres
    if _postgres is None:
        _postgres = PostgresServer.start()
    return _postgres


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _postgres is not None:
        _postgres.stop()


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """`sqlite` or `postgresql`: the database of every portal this session starts (`--db`)."""
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session", autouse=True)
def _database_backend(backend: str) -> Iterator[None]:
    """With `--db postgresql`, every `start_server` gets a new database on the session's server."""
    if backend != "postgresql":
        yield
        return
    server = postgres_server()
    default = live.new_database_url
    live.new_database_url = lambda _directory: server.new_database()
    yield
    live.new_database_url = default


@pytest.fixture()
def database_url(backend: str, tmp_path: Path) -> str:
    """A new, empty database of the session's backend."""
    if backend == "postgresql":
        return postgres_server().new_database()
    return f"sqlite:///{tmp_path / 'portal.sqlite3'}"


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI.create(
        {"79001": "Bệnh viện Từ Dũ", "01002": "Bệnh viện Bạch Mai"},
        now=datetime.now(UTC).replace(microsecond=0),
    )


@pytest.fixture(scope="session")
def dsig_pki() -> TestPKI:
    """A PKI for the signature's own tests: facility 79001, an intermediate CA."""
    return TestPKI.create({"79001": "Bệnh viện Từ Dũ"}, intermediate=True)


@pytest.fixture(scope="session")
def dsig_creds(dsig_pki: TestPKI) -> dict[CertVariant, Credential]:
    """An RSA and an ECDSA certificate of facility 79001 under `dsig_pki`."""
    return {v: dsig_pki.issue_facility_cert("79001", v) for v in (CertVariant.VALID, CertVariant.ECDSA)}


@pytest.fixture()
def repo(database_url: str) -> Iterator[store.Repository]:
    """A repository on a fresh database with the newest schema."""
    repo = store.Repository(store.create_engine_for(database_url))
    repo.create_schema()
    yield repo
    repo.engine.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The session's shared portal (one per xdist worker), with the default settings."""
    live = start_server(tmp_path_factory.mktemp("portal"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def portal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The module's portal: one of its own when the module is marked `portal(...)` (its settings differ,
    or its tests need a portal nobody else writes to), else the session's shared `server`."""
    marker = request.node.get_closest_marker("portal")
    if marker is None:
        yield request.getfixturevalue("server")
        return
    own = start_server(
        tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]),
        workers=marker.kwargs.get("workers", 1),
        extra_env=marker.kwargs.get("env"),
    )
    yield own
    own.stop()


@pytest.fixture(scope="module")
def admin(portal: LiveServer) -> Iterator[httpx.Client]:
    """The module's portal's admin (operator) client."""
    with portal.admin() as client:
        yield client


def trust_root(admin: httpx.Client, pki: TestPKI) -> None:
    """Make the portal behind `admin` trust the PKI's root CA."""
    added = admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM)
    assert added.status_code == 201, added.text


@pytest.fixture(scope="module")
def trusted(admin: httpx.Client, pki: TestPKI) -> TestPKI:
    """The module's portal trusts the PKI's root CA (409: an earlier module made the shared portal trust it)."""
    added = admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM)
    assert added.status_code in (201, 409), added.text
    return pki


@dataclass
class Hospital:
    """A provisioned facility: its code, account, signing credential and a wire client."""

    code: str
    username: str
    password: str
    credential: Credential
    client: HiapClient


def new_facility_code(province: str = "79") -> str:
    return f"{province}{next(_codes):03d}"


def provision(
    admin: httpx.Client,
    pki: TestPKI,
    base_url: str,
    code: str | None = None,
    variant: str = "valid",
    register: bool = True,
    strictness: str | None = None,
    username: str | None = None,
    name: str | None = None,
) -> Hospital:
    code = code or new_facility_code()
    password = f"pw-{code}"
    username = username or f"{code}_BV"
    created = admin.post(
        "/sandbox/facilities",
        json={"code": code, "name": name or f"Bệnh viện {code}", "username": username, "password": password},
    )
    assert created.status_code == 201, created.text
    if strictness is not None:
        put = admin.put(f"/sandbox/facilities/{code}/strictness", json={"strictness": strictness})
        assert put.status_code == 200 and put.json()["strictness"] == strictness, put.text
    credential = pki.issue_facility_cert(code, variant)
    if register:
        registered = admin.post(
            f"/sandbox/facilities/{code}/certificates",
            content=cert_pem(credential.cert),
            headers={"Content-Type": "application/x-pem-file"},
        )
        assert registered.status_code == 201, registered.text
    client = HiapClient(base_url, facility_code=code, username=username, password=password)
    return Hospital(code, username, password, credential, client)


@pytest.fixture(scope="module")
def module_hospital(admin: httpx.Client, trusted: TestPKI, portal: LiveServer) -> Hospital:
    return provision(admin, trusted, portal.base_url)


@pytest.fixture()
def hospital(admin: httpx.Client, trusted: TestPKI, portal: LiveServer, request: pytest.FixtureRequest) -> Hospital:
    """A facility with a valid registered certificate on the module's portal: a fresh one for each test, or
    one for the whole module when it is marked `one_hospital`. Parametrize it indirectly with "portal" or
    "strict" to give the facility that strictness (else the server's default)."""
    if request.node.get_closest_marker("one_hospital"):
        assert not hasattr(request, "param"), "one_hospital: the module's one facility has the server's strictness"
        return request.getfixturevalue("module_hospital")
    return provision(admin, trusted, portal.base_url, strictness=getattr(request, "param", None))


def load_crl(admin: httpx.Client, pki: TestPKI) -> None:
    loaded = admin.post(
        "/sandbox/trust/crls", content=crl_pem(pki.crl()), headers={"Content-Type": "application/x-pem-file"}
    )
    assert loaded.status_code == 201, loaded.text
