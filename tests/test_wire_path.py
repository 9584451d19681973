"""The wire operations are served by Connexion's AsyncApp, never through Flask (the hot path has no
WSGI hand-off), while every other request — and other methods on the wire paths — stays with the
FlaskApp. In-process through the whole ASGI stack `mock-portal serve` runs (guard, gateway, apps)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import httpx
import pytest
from flask import Flask, request

from mock_portal.api import validators
from mock_portal.api.blocking import HEAVY_REST, LOGIN_THREADS, WIRE_THREADS
from mock_portal.api.validators import OffLoopFormParser
from mock_portal.app import create_asgi
from mock_portal.config import Settings
from mock_portal.portal import workspaces
from mock_portal.portal.service import Portal, SubmissionForm

ADMIN = "wire-path-admin"
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


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


def _burst(app: object, path: str, data: dict[str, str], count: int) -> list[httpx.Response]:
    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            return await asyncio.gather(*(client.post(path, data=data) for _ in range(count)))

    return asyncio.run(burst())


class _Peak:
    """Counts how many calls of a patched method run at once, and on which threads."""

    def __init__(self) -> None:
        self.running = self.peak = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, *_args: object, **_kwargs: object) -> object:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        raise RuntimeError("not stored")  # answered as the portal's MaKetQua 500


def test_small_submissions_run_one_at_a_time_on_the_event_loop(asgi: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A certificate-sized submission is examined and stored on the event loop (no thread hand-off);
    so a process runs one at a time, and every one still reaches the handler (no busy refusal)."""
    peak = _Peak()
    monkeypatch.setattr(Portal, "submit", peak)
    replies = _burst(asgi, "/api/hososuckhoe/guiGiayToDienTu", {"username": "79001_BV"}, 12)
    assert {(r.json()["MaKetQua"], r.headers["x-sandbox-explain"]) for r in replies} == {
        ("500", "SERVER_ERROR: RuntimeError")
    }
    assert peak.peak == 1
    assert peak.threads == {threading.current_thread().name}  # asyncio.run's loop runs on this thread


def test_big_submissions_and_tokens_go_to_at_most_ten_threads(
    asgi: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above `wire_inline_bytes` (here 0: every submission) the blocking work goes to its own bounded pool
    (as many threads as Flask's view pool had), so a burst cannot take more database connections than
    that; a token request (scrypt, ~60 ms) never runs on the event loop, whatever its size (`asgi`: the
    default settings)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}", admin_token=ADMIN, wire_inline_bytes=0)
    app = create_asgi(settings)
    peak = _Peak()
    monkeypatch.setattr(Portal, "submit", peak)
    replies = _burst(app, "/api/hososuckhoe/guiGiayToDienTu", {"username": "79001_BV"}, 25)
    assert {r.json()["MaKetQua"] for r in replies} == {"500"}
    assert peak.peak == WIRE_THREADS == 10
    assert threading.current_thread().name not in peak.threads

    tokens = _Peak()
    monkeypatch.setattr(Portal, "take_token", tokens)
    replies = _burst(asgi, "/api/token/take", {"username": "79001_BV", "password": "x"}, 3)
    assert {r.json()["maKetQua"] for r in replies} == {"500"}
    assert threading.current_thread().name not in tokens.threads


def test_heavy_submissions_take_turns_and_big_forms_are_parsed_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A submission over 64 KiB is heavy: one at a time per process (8 connections of 5 MiB files once
    kept 8 threads parsing and the loop waiting for the GIL), whatever the inline setting; a small one is
    not, even with no inline serving (PostgreSQL's default): up to ten at once. Connexion parses the
    big form off the event loop (`OffLoopFormParser`), once: its validator's fields are the handler's."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}", admin_token=ADMIN, wire_inline_bytes=0)
    app = create_asgi(settings)
    peak, parsed = _Peak(), []
    monkeypatch.setattr(Portal, "submit", peak)
    parse = OffLoopFormParser._parse

    def on_thread(self: OffLoopFormParser, body: bytes) -> object:
        parsed.append(threading.current_thread().name)
        return parse(self, body)

    monkeypatch.setattr(OffLoopFormParser, "_parse", on_thread)
    big = {"username": "79001_BV", "fileBase64Str": "A" * 70_000}
    started = time.monotonic()
    assert {r.json()["MaKetQua"] for r in _burst(app, "/api/hososuckhoe/guiGiayToDienTu", big, 6)} == {"500"}
    assert peak.peak == 1
    assert time.monotonic() - started >= 5 * 0.05 * (1 + HEAVY_REST)  # each turn rested after its 50 ms
    assert len(parsed) == 6 and threading.current_thread().name not in parsed  # one parse per request
    peak = _Peak()
    monkeypatch.setattr(Portal, "submit", peak)
    small = {"username": "79001_BV", "fileBase64Str": "A" * 1_000}
    assert {r.json()["MaKetQua"] for r in _burst(app, "/api/hososuckhoe/guiGiayToDienTu", small, 25)} == {"500"}
    assert peak.peak == WIRE_THREADS


def test_a_wire_form_is_parsed_once_and_each_schema_validator_built_once(
    asgi: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connexion reads a form twice (its validator, then the handler's body) and built a JSON Schema validator
    per request: here the handler gets the validator's fields as sent (a repeated field joined with commas,
    as Connexion resolves a form's) from one parse per request, and each operation's schema is built once."""
    parses, built, seen = [], [], []
    parse, build = OffLoopFormParser._parse, validators.Draft4RequestValidator

    def counted_parse(self: OffLoopFormParser, body: bytes) -> object:
        parses.append(body)
        return parse(self, body)

    def counted_build(*args: object, **kwargs: object) -> object:
        built.append(args[0])
        return build(*args, **kwargs)

    def submit(_portal: Portal, form: SubmissionForm, *_args: object) -> object:
        seen.append(form)
        raise RuntimeError("not stored")

    monkeypatch.setattr(OffLoopFormParser, "_parse", counted_parse)
    monkeypatch.setattr(validators, "Draft4RequestValidator", counted_build)
    monkeypatch.setattr(Portal, "submit", submit)
    form = "username=79001_BV&loaiHs=60&loaiHs=61&fileBase64Str=a%2Bb+c%3D&maCskcb=79001"
    for _ in range(3):
        reply = _call(asgi, "POST", "/api/hososuckhoe/guiGiayToDienTu", content=form, headers=FORM_TYPE)
        assert reply.json()["MaKetQua"] == "500"
    token = _call(asgi, "POST", "/api/token/take", data={"username": "79001_BV", "password": "x"})
    assert token.json()["maKetQua"] == "401"
    assert len(parses) == 4
    assert [(f.credentials.username, f.loai_hs, f.file_b64, f.credentials.facility_code) for f in seen] == [
        ("79001_BV", "60,61", "a+b c=", "79001")
    ] * 3
    assert len(built) == 2 and built[0] is not built[1]  # the submit form's schema, the token form's


def test_token_password_checks_have_a_thread_of_their_own(asgi: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token request's identity (its password: scrypt) is decided on `LOGIN_THREADS` threads, not on the
    ten every submission needs: a flood of wrong passwords for many accounts queues there, on the loop."""
    decided, identity = _Peak(), workspaces.wire_identity

    def counted(*args: object) -> object:
        with contextlib.suppress(RuntimeError):
            decided()
        return identity(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(workspaces, "wire_identity", counted)
    replies = _burst(asgi, "/api/token/take", {"username": "79001_BV", "password": "x"}, 6)
    assert {r.json()["maKetQua"] for r in replies} == {"401"}
    assert decided.peak == LOGIN_THREADS == 1
    assert threading.current_thread().name not in decided.threads


def test_inline_by_default_on_sqlite_only() -> None:
    """PostgreSQL's round trips (maybe to another host) would hold the event loop: threads by default."""
    assert Settings(database_url="sqlite:///x.sqlite3").inline_limit == 32 * 1024
    assert Settings(database_url="postgresql://portal@127.0.0.1/portal").inline_limit == 0
    assert Settings.from_env({"PORTAL_WIRE_INLINE_BYTES": "0"}).inline_limit == 0
    assert (
        Settings.from_env({"PORTAL_WIRE_INLINE_BYTES": "65536", "PORTAL_DATABASE_URL": "postgresql://h/p"}).inline_limit
        == 65536
    )


def test_the_gateway_reads_no_more_than_a_few_dozen_form_fields() -> None:
    """The wire's forms have seven fields; tens of thousands (`a=&a=&…`, parsed on the event loop) are read
    as none (the handler refuses the request), the seven are read as sent."""
    from mock_portal.api.gateway import MAX_FORM_FIELDS, _form

    assert _form(b"a=&" * 21_845) == {}
    assert _form(b"a=&" * (MAX_FORM_FIELDS + 1)) == {}
    seven = b"maCskcb=79001&token=t&id_token=i&username=79001_BV&password=p&loaiHs=61&fileBase64Str=QQ%3D%3D"
    assert _form(seven) == {
        "maCskcb": "79001",
        "token": "t",
        "id_token": "i",
        "username": "79001_BV",
        "password": "p",
        "loaiHs": "61",
    }
