"""`POST /api/token/take` through real HTTP: the reply shape and each maKetQua code."""

from __future__ import annotations

import re

import httpx
import pytest

from fixtures.pki import TestPKI
from mock_portal.portal.auth import md5_upper
from tests.conftest import provision
from tests.live import LiveServer


def take(server: LiveServer, username: str, password_md5: str) -> dict:
    reply = httpx.post(f"{server.base_url}/api/token/take", data={"username": username, "password": password_md5})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


def test_token_reply_has_the_real_portal_shape(server: LiveServer, admin: httpx.Client, trusted: TestPKI) -> None:
    hospital = provision(admin, trusted, server.base_url)
    body = take(server, hospital.username, md5_upper(hospital.password))
    assert body["maKetQua"] == "200"
    key = body["APIKey"]
    assert set(key) == {"access_token", "id_token", "token_type", "username", "expires_in"}
    assert key["token_type"] == "Bearer"
    assert key["username"] == hospital.username
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", key["expires_in"])
    assert key["access_token"] != key["id_token"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown_account", "401"),
        ("wrong_password", "401"),
        ("plain_password", "401"),
    ],
    ids=str,
)
def test_token_refusals(server: LiveServer, admin: httpx.Client, trusted: TestPKI, case: str, expected: str) -> None:
    hospital = provision(admin, trusted, server.base_url)
    username, password = hospital.username, md5_upper(hospital.password)
    if case == "unknown_account":
        username = "99999_BV"
    elif case == "wrong_password":
        password = md5_upper("not the password")
    elif case == "lowercase_md5":
        password = password.lower()
    elif case == "plain_password":
        password = hospital.password
    body = take(server, username, password)
    assert body == {"maKetQua": expected, "APIKey": None}


@pytest.mark.parametrize(
    "username", ["48999_BV", "../..", "48202_\u0000", "48202_", "48202_a/b", "BV", "48202_BV\n", "48202_BV\r\n"]
)
def test_usernames_that_could_never_log_in_are_refused(admin: httpx.Client, username: str) -> None:
    """The portal reads the facility from the name's prefix: an account of facility 48202 named 48999_BV
    could only ever get 402, one named `../..` or with a NUL byte never anything at all."""
    created = admin.post(
        "/sandbox/facilities",
        json={"code": "48202", "name": "BV Đà Nẵng", "username": username, "password": "pw"},
    )
    assert created.status_code == 400, created.text
    # the schema's pattern refuses most (REQUEST_INVALID); the prefix rule, and a final newline (which
    # Python's `$` lets through), need the domain's check
    expected = "ACCOUNT_USERNAME_INVALID" if username in ("48999_BV", "48202_BV\n") else "REQUEST_INVALID"
    assert created.json()["code"] == expected


def test_locked_account_is_403_and_unlocking_restores_it(
    server: LiveServer, admin: httpx.Client, trusted: TestPKI
) -> None:
    hospital = provision(admin, trusted, server.base_url)
    locked = admin.post(f"/sandbox/facilities/{hospital.code}/lock")
    assert locked.status_code == 200 and locked.json()["accounts"][0]["locked"] is True
    assert take(server, hospital.username, md5_upper(hospital.password))["maKetQua"] == "403"
    assert admin.post(f"/sandbox/facilities/{hospital.code}/unlock").status_code == 200
    assert take(server, hospital.username, md5_upper(hospital.password))["maKetQua"] == "200"
