"""The wire operations are served by Connexion's AsyncApp, never through Flask (the hot path has no
WSGI hand-off), while every other request — and other methods on the wire paths — stays with the
FlaskApp. In-process through the whole ASGI stack `mock-portal serve` runs (guard, gateway, apps)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from flask import Flask, request

from mock_portal.api.hiap import WIRE_THREADS
from mock_portal.app import create_asgi
from mock_portal.config import Settings
from mock_portal.portal.service import Portal

ADMIN = "wire-path-admin"


@pytest.fixture()
def asgi(tmp_path: Path) -> object:
    return create_asgi(Settings(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}", admin_token=ADMIN))


def _call(app: object, method: str, path: str, **kwargs: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_wire_posts_never_reach_flask(asgi: object, monkeypatch: pytest.MonkeyPatch) -> None:
    flask_calls: list[str] = []
    real = Flask.full_dispatch_request

    def counting(self: Flask) -> object:
        flask_calls.append(request.path)
        return real(self)

    monkeypatch.setattr(Flask, "full_dispatch_request", counting)
    token = _call(asgi, "POST", "/api/token/take", data={"username": "79001_BV", "password": "x"})
    submit = _call(asgi, "POST", "/api/hososuckhoe/guiGiayToDienTu", data={"username": "79001_BV"})
    assert token.status_code == 200 and token.json() == {"maKetQua": "401", "APIKey": None}
    assert submit.status_code == 200 and submit.json()["MaKetQua"] == "401"
    assert submit.headers["x-sandbox-findings"] == "AUTH_FIELDS_MISSING"
    assert flask_calls == []

    health = _call(asgi, "GET", "/sandbox/health")
    wrong_method = _call(asgi, "GET", "/api/token/take")
    assert health.status_code == 200
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert flask_calls == ["/sandbox/health"]  # the 405 comes from Connexion's router in front of Flask


def test_a_refused_wire_body_is_answered_by_the_async_app_like_before(asgi: object) -> None:
    """Connexion's validators and the portal's problem handlers run in the AsyncApp too."""
    bad_json = _call(asgi, "POST", "/api/token/take", content=b"{bad", headers={"content-type": "application/json"})
    wrong_type = _call(asgi, "POST", "/api/hososuckhoe/guiGiayToDienTu", json={"username": "x"})
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "REQUEST_INVALID"
    assert wrong_type.status_code == 415 and wrong_type.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert wrong_type.headers["x-sandbox-findings"] == "UNSUPPORTED_MEDIA_TYPE"


def test_at_most_ten_submissions_run_at_once_per_process(asgi: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocking work of wire requests gets its own bounded pool (as many threads as Flask's view pool
    had), so a burst cannot take more database connections than before."""
    running, peak, lock = 0, 0, threading.Lock()

    def slow_submit(self: Portal, form: object, journal: object = None) -> object:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        raise RuntimeError("not stored")  # answered as the portal's MaKetQua 500

    monkeypatch.setattr(Portal, "submit", slow_submit)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            send = [client.post("/api/hososuckhoe/guiGiayToDienTu", data={"username": "79001_BV"}) for _ in range(25)]
            return await asyncio.gather(*send)

    replies = asyncio.run(burst())
    assert {(r.json()["MaKetQua"], r.headers["x-sandbox-explain"]) for r in replies} == {
        ("500", "SERVER_ERROR: RuntimeError")  # every one reached the handler (not a busy refusal)
    }
    assert peak == WIRE_THREADS == 10
