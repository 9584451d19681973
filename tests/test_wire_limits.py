"""Limits that need their own server settings: expired tokens and oversize files (MaKetQua 1001)."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from fixtures.pki import TestPKI
from mock_portal.portal.auth import md5_upper
from tests.conftest import Hospital, provision, trust_root
from tests.live import LiveServer, start_server
from tests.wire import explain, sample

MAX_FILE = 16 * 1024


def _trusting(server: LiveServer, pki: TestPKI) -> httpx.Client:
    admin = server.admin()
    trust_root(admin, pki)
    return admin


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("small"), extra_env={"PORTAL_MAX_FILE_BYTES": str(MAX_FILE)})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def expiring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("expiring"), extra_env={"PORTAL_TOKEN_TTL_MINUTES": "0"})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def small_hospital(small_server: LiveServer, pki: TestPKI) -> Hospital:
    return provision(_trusting(small_server, pki), pki, small_server.base_url)


def test_file_over_the_limit_is_1001_before_parsing(small_server: LiveServer, small_hospital: Hospital) -> None:
    oversize = b"<" * (MAX_FILE + 1)  # not even XML: it must never be parsed
    reply = small_hospital.client.send("GCS", oversize)
    assert reply.ma_ket_qua == "1001" and reply.ma_gd == ""
    with small_server.admin() as admin:
        submission = explain(admin, reply)
    assert [f["code"] for f in submission["findings"]] == ["FILE_TOO_LARGE"]
    assert submission["document"] is None


def test_file_at_the_limit_is_examined(small_server: LiveServer, small_hospital: Hospital) -> None:
    xml = sample(small_hospital)
    assert len(xml) <= MAX_FILE
    assert small_hospital.client.send("GCS", xml).ma_ket_qua == "200"


def test_body_far_over_the_limit_is_cut_off_with_1001(small_server: LiveServer, small_hospital: Hospital) -> None:
    form = small_hospital.client.form("61", b"x")
    form["fileBase64Str"] = base64.b64encode(b"A" * (MAX_FILE * 4)).decode()
    reply = httpx.post(f"{small_server.base_url}/api/hososuckhoe/guiGiayToDienTu", data=form, timeout=30)
    assert reply.status_code == 200
    assert reply.json()["MaKetQua"] == "1001"
    assert httpx.get(f"{small_server.base_url}/sandbox/health").status_code == 200


def test_oversize_sandbox_body_is_413_problem(small_server: LiveServer) -> None:
    with small_server.admin() as admin:
        reply = admin.post(
            "/sandbox/trust/cas",
            content=b"-" * (MAX_FILE * 8),
            headers={"Content-Type": "application/x-pem-file"},
        )
    assert reply.status_code == 413
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["code"] == "BODY_TOO_LARGE"


def test_expired_token_is_401(expiring_server: LiveServer, pki: TestPKI) -> None:
    hospital = provision(_trusting(expiring_server, pki), pki, expiring_server.base_url)
    reply = hospital.client.send("GCS", sample(hospital))
    assert reply.ma_ket_qua == "401"
    with expiring_server.admin() as admin:
        submission = explain(admin, reply)
    assert [f["code"] for f in submission["findings"]] == ["AUTH_TOKEN_EXPIRED"]


@pytest.mark.sqlite_only
def test_portal_failure_is_maketqua_500_and_nothing_is_acknowledged(
    tmp_path_factory: pytest.TempPathFactory, pki: TestPKI
) -> None:
    live = start_server(tmp_path_factory.mktemp("broken"))
    try:
        hospital = provision(_trusting(live, pki), pki, live.base_url)
        xml = sample(hospital)
        hospital.client.take_token()
        with sqlite3.connect(live.database) as db:  # the database loses a table under the running portal
            db.execute("DROP TABLE documents")
        reply = hospital.client.send("GCS", xml)
        assert (reply.ma_ket_qua, reply.ma_gd, reply.submission_id) == ("500", "", None)
        assert reply.explain.startswith("SERVER_ERROR")
        with sqlite3.connect(live.database) as db:
            db.execute("DROP TABLE tokens")
        token = httpx.post(
            f"{live.base_url}/api/token/take",
            data={"username": hospital.username, "password": md5_upper(hospital.password)},
        )
        assert token.status_code == 200 and token.json() == {"maKetQua": "500", "APIKey": None}
        assert httpx.get(f"{live.base_url}/sandbox/health").status_code == 200
    finally:
        live.stop()
