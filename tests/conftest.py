"""Shared test resources: a real portal on a loopback port, a test PKI, provisioned facilities."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fixtures.hospital import HiapClient
from fixtures.pki import Credential, TestPKI, cert_pem, crl_pem
from fixtures.postgres import PostgresServer
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgresql = config.getoption("--db") == "postgresql"
    other = "postgresql_only" if not on_postgresql else "sqlite_only"
    reason = "needs PostgreSQL: `make test` runs it with --db postgresql" if not on_postgresql else "SQLite-specific"
    for item in items:
        if item.get_closest_marker(other):
            item.add_marker(pytest.mark.skip(reason=reason))


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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("portal"))
    yield live
    live.stop()


@pytest.fixture(scope="session")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


def trust_root(admin: httpx.Client, pki: TestPKI) -> None:
    """Make the portal behind `admin` trust the PKI's root CA."""
    added = admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM)
    assert added.status_code == 201, added.text


@pytest.fixture(scope="session")
def trusted(admin: httpx.Client, pki: TestPKI) -> TestPKI:
    """The shared portal trusts the PKI's root CA."""
    trust_root(admin, pki)
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


@pytest.fixture()
def hospital(admin: httpx.Client, trusted: TestPKI, server: LiveServer, request: pytest.FixtureRequest) -> Hospital:
    """A fresh facility with a valid registered certificate, for one test; parametrize it indirectly
    with "portal" or "strict" to give the facility that strictness (else the server's default)."""
    return provision(admin, trusted, server.base_url, strictness=getattr(request, "param", None))


def load_crl(admin: httpx.Client, pki: TestPKI) -> None:
    loaded = admin.post(
        "/sandbox/trust/crls", content=crl_pem(pki.crl()), headers={"Content-Type": "application/x-pem-file"}
    )
    assert loaded.status_code == 201, loaded.text
