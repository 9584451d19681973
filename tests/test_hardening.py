"""Hardening through real HTTP (issue 10): malformed paths and JSON, the dashboard's validation, sessions,
the login throttle, secrets on disk, salted credentials and the retention of unauthenticated submissions."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from lxml import etree

from fixtures.demo import ensure_pki
from fixtures.hospital.wire import tls_context
from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from mock_portal import store
from mock_portal.api.guard import RequestGuard
from mock_portal.config import Settings
from mock_portal.documents import DocumentError, DocumentType, parse_xml
from mock_portal.portal.auth import md5_upper, password_matches
from mock_portal.portal.service import build_portal
from mock_portal.serving import _Supervisor
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import CheckName, CheckOutcome, verify_signature
from tests.conftest import Hospital, provision
from tests.live import LiveServer, csrf_token, dashboard_login

THROTTLE = 3
pytestmark = [
    pytest.mark.portal(env={"PORTAL_LOGIN_MAX_FAILURES": str(THROTTLE), "PORTAL_UNAUTHENTICATED_MAX_SUBMISSIONS": "5"}),
    pytest.mark.one_hospital,
]


def _take(portal: LiveServer, username: str, password_md5: str) -> str:
    url = f"{portal.base_url}/api/token/take"
    reply = httpx.post(url, data={"username": username, "password": password_md5}, verify=tls_context())
    assert reply.status_code == 200, reply.text
    return str(reply.json()["maKetQua"])


# malformed paths and JSON ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "//sandbox/facilities"),
        ("POST", "//api/token/take"),
        ("POST", "//api/hososuckhoe/guiGiayToDienTu"),
        ("GET", "///ipss/v1/feed"),
        ("GET", "/sandbox//health"),
        ("GET", "//sandbox/ui/login"),
    ],
)
def test_paths_with_an_empty_segment_are_404_not_500(
    portal: LiveServer, admin: httpx.Client, method: str, path: str
) -> None:
    reply = admin.request(method, f"{portal.base_url}{path}")
    assert reply.status_code == 404, reply.text
    assert reply.json()["code"] == "NOT_FOUND"
    assert "Traceback" not in portal.log.read_text()


@pytest.mark.parametrize(
    "body",
    [b'{"minutes": NaN}', b'{"minutes": Infinity}', b'{"minutes": 1e400}', b"[" * 100_000, b'{"a":' * 50 + b"1"],
)
def test_hostile_json_is_400(admin: httpx.Client, body: bytes) -> None:
    reply = admin.post("/sandbox/clock/advance", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "REQUEST_INVALID"


def test_row_ids_beyond_64_bits_are_not_found(admin: httpx.Client) -> None:
    assert admin.get(f"/sandbox/submissions/{2**70}").status_code in (400, 404)
    assert admin.get("/sandbox/submissions", params={"before": 2**70}).status_code in (200, 400)


# the dashboard: one validation path with the API, sessions ------------------------------------------
@contextmanager
def _dashboard(portal: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal.base_url, timeout=30, verify=tls_context()) as client:
        logged_in = dashboard_login(client, portal.admin_token)
        assert logged_in.status_code == 302, logged_in.text
        yield client


def _csrf(client: httpx.Client) -> str:
    page = client.get("/sandbox/ui/clock")
    assert page.status_code == 200
    return csrf_token(page.text)


@pytest.mark.parametrize(
    "form",
    [
        {"action": "set", "now": "9999-12-31T00:00:00Z"},
        {"action": "set", "now": "1900-01-01T00:00:00+07:00"},
        {"action": "set", "rate": "nan"},
        {"action": "set", "rate": "1e300"},
        {"action": "advance", "unit": "minutes", "amount": "nan"},
        {"action": "advance", "unit": "minutes", "amount": "1e300"},
        {"action": "advance", "unit": "minutes", "amount": "-5"},
        {"action": "advance", "unit": "working_minutes", "amount": "900000000"},
    ],
)
def test_the_dashboard_refuses_what_the_api_refuses(
    portal: LiveServer, admin: httpx.Client, hospital: Hospital, form: dict[str, str]
) -> None:
    before = admin.get("/sandbox/clock").json()
    with _dashboard(portal) as ui:
        reply = ui.post("/sandbox/ui/clock", data={**form, "csrf": _csrf(ui)})
    assert reply.status_code == 400 and 'id="flash-error"' in reply.text  # refused, with a message
    after = admin.get("/sandbox/clock").json()
    assert after["rate"] == before["rate"] and after["now"][:4] == before["now"][:4]
    assert _take(portal, hospital.username, md5_upper(hospital.password)) == "200"


def test_a_huge_row_id_on_the_dashboard_is_404(portal: LiveServer) -> None:
    with _dashboard(portal) as ui:
        assert ui.get(f"/sandbox/ui/submissions/{2**70}").status_code == 404


def test_logout_revokes_the_cookie(portal: LiveServer) -> None:
    with _dashboard(portal) as ui:
        cookies = dict(ui.cookies)
        assert ui.get("/sandbox/ui/journal").status_code == 200
        assert ui.post("/sandbox/ui/logout", data={"csrf": _csrf(ui)}).status_code == 302
    replayed = httpx.get(f"{portal.base_url}/sandbox/ui/journal", cookies=cookies)
    assert replayed.status_code == 302 and "/sandbox/ui/login" in replayed.headers["location"]


# the token endpoint and the login throttle ----------------------------------------------------------
def test_lock_state_is_told_only_to_whoever_knows_the_password(
    portal: LiveServer, admin: httpx.Client, pki: TestPKI
) -> None:
    site = provision(admin, pki, portal.base_url)
    assert admin.post(f"/sandbox/facilities/{site.code}/lock").status_code == 200
    assert _take(portal, site.username, md5_upper("wrong")) == "401"
    assert _take(portal, site.username, md5_upper(site.password)) == "403"


def test_failed_logins_are_throttled_with_the_portal_code(
    portal: LiveServer, admin: httpx.Client, pki: TestPKI
) -> None:
    site, other = provision(admin, pki, portal.base_url), provision(admin, pki, portal.base_url)
    for _ in range(THROTTLE):
        assert _take(portal, site.username, md5_upper("guess")) == "401"
    assert _take(portal, site.username, md5_upper(site.password)) == "403"  # throttled, even when right
    for _ in range(THROTTLE):
        assert _take(portal, "99999_NOBODY", md5_upper("guess")) == "401"
    assert _take(portal, "99999_NOBODY", md5_upper("guess")) == "403"  # no hint that the name does not exist
    assert _take(portal, other.username, md5_upper(other.password)) == "200"


def test_dashboard_logins_are_throttled(portal: LiveServer) -> None:
    with httpx.Client(base_url=portal.base_url) as browser:
        statuses = [dashboard_login(browser, "wrong").status_code for _ in range(THROTTLE + 1)]
    assert statuses == [401] * THROTTLE + [429]


# storage --------------------------------------------------------------------------------------------
@pytest.mark.sqlite_only
def test_unauthenticated_submissions_are_kept_within_a_limit(portal: LiveServer, admin: httpx.Client) -> None:
    with httpx.Client(base_url=portal.base_url, verify=tls_context()) as client:
        for _ in range(140):
            reply = client.post("/api/hososuckhoe/guiGiayToDienTu", data={"loaiHs": "61", "fileBase64Str": "PA=="})
            assert reply.json()["MaKetQua"] == "401"
    with sqlite3.connect(portal.database) as db:
        (kept,) = db.execute("SELECT count(*) FROM submissions WHERE result = '401'").fetchone()
    assert kept <= 5 + 64


@pytest.mark.sqlite_only
def test_credentials_are_stored_salted_never_as_the_md5(portal: LiveServer, admin: httpx.Client) -> None:
    for code in ("48301", "48302"):
        created = admin.post(
            "/sandbox/facilities", json={"code": code, "name": "x", "username": f"{code}_BV", "password": "same"}
        )
        assert created.status_code == 201, created.text
    with sqlite3.connect(portal.database) as db:
        rows = db.execute("SELECT password_md5, password_hash FROM accounts WHERE username LIKE '4830%'").fetchall()
    assert [md5 for md5, _ in rows] == ["", ""]
    hashes = [hashed for _, hashed in rows]
    assert all(h.startswith("scrypt$") for h in hashes) and hashes[0] != hashes[1]
    assert md5_upper("same") not in Path(portal.database).read_bytes().decode("latin-1")
    assert _take(portal, "48301_BV", md5_upper("same")) == "200"


@pytest.mark.sqlite_only
def test_a_database_of_an_older_version_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    repo = store.Repository(store.create_engine_for(url))
    repo.create_schema()
    repo.engine.dispose()
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:  # the accounts table as older versions made it
        db.execute("ALTER TABLE accounts DROP COLUMN password_hash")
        db.execute("DROP TABLE alembic_version")  # older versions had no migrations
        db.execute("INSERT INTO facilities (code, name, created_at) VALUES ('48401', 'x', '2026-01-01 00:00:00')")
        db.execute(
            "INSERT INTO accounts (username, facility_code, password_md5, locked) VALUES ('48401_BV', '48401', ?, 0)",
            (md5_upper("old"),),
        )
    portal = build_portal(Settings(database_url=url))
    account = portal.repo.get_account("48401_BV")
    assert account is not None and account.password_md5 == "" and account.password_hash.startswith("scrypt$")
    assert password_matches(account, md5_upper("old")) and not password_matches(account, md5_upper("other"))
    portal.repo.engine.dispose()


@pytest.mark.sqlite_only
def test_secrets_are_created_owner_only(portal: LiveServer, tmp_path: Path) -> None:
    assert stat.S_IMODE(portal.database.stat().st_mode) == 0o600
    files = ensure_pki(tmp_path / "demo")
    for key in [*tmp_path.joinpath("demo").glob("*.key.pem")]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(files["ca.pem"].stat().st_mode) == 0o644


# the supervisor -------------------------------------------------------------------------------------
def test_the_restart_budget_is_per_time_window() -> None:
    supervisor = _Supervisor(Settings(), 2, "warning", False)
    supervisor.budget, supervisor.window = 5, 60.0
    week = [hour * 3600.0 for hour in range(0, 24 * 7, 12)]  # a crash every 12 hours for a week
    assert all(supervisor._may_restart(at) for at in week)
    burst = [10_000_000 + second for second in range(6)]  # six crashes within a minute: a crash loop
    assert [supervisor._may_restart(at) for at in burst] == [True] * 5 + [False]


# bounded work per document --------------------------------------------------------------------------
def test_each_reference_is_canonicalised_once(pki: TestPKI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of the two references is canonicalised once (for its digest, and the signed data is read back
    from those bytes) and SignedInfo once: three canonicalisations (each superlinear in attributes)."""
    credential = pki.issue_facility_cert("79001")
    xml = signed_sample(DocumentType.GCS, credential, facility_code="79001")
    root = parse_xml(xml)
    calls: list[int] = []
    tostring = etree.tostring

    def counting(node: Any, *args: Any, **kwargs: Any) -> Any:
        calls.extend([1] if kwargs.get("method") == "c14n" else [])
        return tostring(node, *args, **kwargs)

    monkeypatch.setattr(etree, "tostring", counting)
    report = verify_signature(
        root, data_tag="GIAYCHUNGSINH", trust=TrustStore(), facility_code="79001", received_at=datetime.now(UTC)
    )
    assert report.check(CheckName.DIGESTS_MATCH).outcome is CheckOutcome.PASSED
    assert report.check(CheckName.SIGNATURE_VALUE_VALID).outcome is CheckOutcome.PASSED
    assert len(calls) == 3


# the guard's budget ---------------------------------------------------------------------------------
def test_the_inflight_budget_is_given_back_whatever_happens() -> None:
    settings = Settings(max_inflight_bytes=100, max_file_bytes=1000)
    guard = RequestGuard(_never_called, SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    chunks = [{"type": "http.request", "body": b"x" * 60, "more_body": True}] * 2
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    chunked = [(b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "method": "POST", "path": "/sandbox/trust/cas", "headers": chunked}
    anyio.run(guard, scope, receive, send)
    assert sent[0]["status"] == 503 and b"SERVER_BUSY" in sent[1]["body"]
    assert (guard.inflight_bytes, guard.open_bodies) == (0, 0)
    chunks[:] = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]  # then the client leaves
    anyio.run(guard, scope, receive, send)
    assert (guard.inflight_bytes, guard.open_bodies) == (0, 0) and len(sent) == 2


def test_requests_without_a_body_are_never_refused_for_the_budget() -> None:
    served: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        served.append(scope["path"])

    guard = RequestGuard(app, SimpleNamespace(settings=Settings(max_open_bodies=0)))  # type: ignore[arg-type]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        served.append(str(message.get("status", "")))

    anyio.run(guard, {"type": "http", "method": "GET", "path": "/sandbox/health", "headers": []}, receive, send)
    post = {"type": "http", "method": "POST", "path": "/sandbox/x", "headers": [(b"content-length", b"2")]}
    anyio.run(guard, post, receive, send)
    assert served == ["/sandbox/health", "503", ""]


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the inner app must not see a refused or abandoned request")


def test_bytes_that_are_not_utf8_are_an_encoding_finding() -> None:
    xml = '<?xml version="1.0"?><HSDLGCS><GIAYCHUNGSINH><TEN_CON>Nguyễn</TEN_CON></GIAYCHUNGSINH></HSDLGCS>'
    with pytest.raises(DocumentError) as refused:
        parse_xml(xml.encode("utf-8").replace("ễ".encode(), "\xe9".encode("latin-1")))
    assert refused.value.finding.code == "XML_ENCODING" and "byte 58" in refused.value.finding.received
