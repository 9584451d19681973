"""Journal retention and the switched-off journal, each on a server of its own."""

from __future__ import annotations

import httpx
import pytest

from tests.live import start_server


def test_journal_is_capped_for_long_runs(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"PORTAL_JOURNAL_MAX_ENTRIES": "10", "PORTAL_LOGIN_MAX_FAILURES": "0"}  # 260 failed logins: no throttle
    live = start_server(tmp_path_factory.mktemp("capped"), extra_env=env)
    try:
        with httpx.Client(base_url=live.base_url) as client:
            for _ in range(260):
                client.post("/api/token/take", data={"username": "00000_BV", "password": "x"})
        with live.admin() as admin:
            count = admin.get("/sandbox/journal/count").json()["count"]
            newest = admin.get("/sandbox/journal", params={"limit": 1}).json()
        assert 10 <= count < 20, count
        assert newest[0]["id"] == 260 and newest[0]["outcome"] == "401"
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
