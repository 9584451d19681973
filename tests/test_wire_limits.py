"""Limits that need their own server settings: expired tokens and oversize files (MaKetQua 1001)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from fixtures.pki import TestPKI
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
