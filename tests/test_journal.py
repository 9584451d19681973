"""Journal retention and the switched-off journal, each on a server of its own."""

from __future__ import annotations

import httpx
import pytest

from mock_portal.portal.auth import md5_upper
from tests.live import start_server


def test_journal_is_capped_for_long_runs_each_kind_under_its_own_bound(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Authenticated rows are trimmed counting authenticated rows only: a flood of requests that merely name
    an account (here an unknown one) trims its own kind and never pushes the accounts' evidence out."""
    env = {
        "PORTAL_JOURNAL_MAX_ENTRIES": "10",
        "PORTAL_UNAUTHENTICATED_JOURNAL_MAX_ENTRIES": "5",
        "PORTAL_LOGIN_MAX_FAILURES": "0",  # 300 failed logins: no throttle
    }
    live = start_server(tmp_path_factory.mktemp("capped"), extra_env=env)
    try:
        with live.admin() as admin:
            made = admin.post(
                "/sandbox/facilities", json={"code": "48001", "name": "BV", "username": "48001_BV", "password": "pw"}
            )
            assert made.status_code == 201, made.text
        with httpx.Client(base_url=live.base_url) as client:
            for _ in range(20):  # ids 1-20
                right = client.post("/api/token/take", data={"username": "48001_BV", "password": md5_upper("pw")})
                assert right.json()["maKetQua"] == "200"
            for _ in range(300):  # ids 21-320: the 256th write trims both kinds
                client.post("/api/token/take", data={"username": "00000_BV", "password": "x"})
        with live.admin() as admin:
            mine = admin.get("/sandbox/journal", params={"limit": 1000}).json()
            theirs = admin.get("/sandbox/journal/count", params={"identity": "unauthenticated"}).json()["count"]
            newest = admin.get("/sandbox/journal", params={"limit": 1, "identity": "all"}).json()
            assert admin.get("/sandbox/journal/count").json()["count"] == len(mine)
        assert [e["id"] for e in mine] == list(range(20, 10, -1)) and all(e["authenticated"] for e in mine)
        assert theirs == 5 + 64, theirs
        assert newest[0]["id"] == 320 and newest[0]["outcome"] == "401" and newest[0]["authenticated"] is False
    finally:
        live.stop()


def test_switched_off_journal_refuses_queries(tmp_path_factory: pytest.TempPathFactory) -> None:
    live = start_server(tmp_path_factory.mktemp("nojournal"), extra_env={"PORTAL_JOURNAL_MAX_ENTRIES": "0"})
    try:
        reply = httpx.post(f"{live.base_url}/api/token/take", data={"username": "00000_BV", "password": "x"})
        assert reply.json()["maKetQua"] == "401", "the wire API works without a journal"
        with live.admin() as admin:
            for path in ("/sandbox/journal", "/sandbox/journal/count"):
                refused = admin.get(path)
                assert refused.status_code == 409 and refused.json()["code"] == "JOURNAL_DISABLED"
    finally:
        live.stop()
