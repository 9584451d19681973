"""A plain submission form is answered by the wire gateway itself (`api/gateway.py: plain_submission`), with
the handler's own function, not through Connexion's layers: the reply must be the one Connexion's path gives,
byte for byte apart from what differs between two submissions (MaGD, the receipt time, the ids), over real
HTTP with real signatures; every other form still goes through Connexion."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.types import Scope

from fixtures.hospital.wire import LOAI_HS, SUBMIT_PATH
from mock_portal.api import hiap  # the handler Connexion calls
from mock_portal.api.gateway import plain_submission
from mock_portal.api.render import Reply
from mock_portal.app import create_asgi
from mock_portal.config import Settings
from mock_portal.portal.service import Portal
from tests.conftest import Hospital
from tests.live import LiveServer
from tests.wire import sample

PLAIN = "application/x-www-form-urlencoded"
VIA_CONNEXION = "application/x-www-form-urlencoded; x-sandbox=1"
"""A parameter the gateway does not take as plain: Connexion reads the form (its media type has no parameters)."""


def _raw(portal: LiveServer, body: bytes, content_type: str) -> tuple[int, list[tuple[str, str]], bytes]:
    reply = httpx.post(f"{portal.base_url}{SUBMIT_PATH}", content=body, headers={"Content-Type": content_type})
    headers = [(k, v) for k, v in reply.headers.items() if k not in ("date", "server")]
    return reply.status_code, headers, reply.content


def _masked(reply: tuple[int, list[tuple[str, str]], bytes]) -> tuple[int, list[tuple[str, bytes]], bytes]:
    """The reply with what differs between two submissions (MaGD's UUID, times, ids, serials, lengths) masked."""
    status, headers, body = reply
    return status, [(k, _mask(v.encode())) for k, v in headers], _mask(body)


def _mask(text: bytes) -> bytes:
    return re.sub(rb"\d+", b"#", re.sub(rb"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}", b"UUID", text))


def _code(reply: tuple[int, list[tuple[str, str]], bytes]) -> str:
    return str(json.loads(reply[2])["MaKetQua"])


def _form(hospital: Hospital, xml: bytes, **changes: str) -> bytes:
    return urlencode({**hospital.client.form(LOAI_HS["GCS"], xml), **changes}).encode("ascii")


@pytest.mark.parametrize(
    "case",
    [
        "accepted",
        "invalid file",
        "wrong token",
        "no fields",
        "unknown field",
        "not a document",
        "a blank token twice",
        "a fault plan",
    ],
)
def test_the_gateways_reply_is_connexions_reply(
    portal: LiveServer, admin: httpx.Client, hospital: Hospital, case: str
) -> None:
    """Also for a field sent twice, once blank (Connexion joins the two: the gateway leaves that form to it, so
    nobody proves an account with one token and is judged with the other), and under a fault plan."""

    def body() -> bytes:  # each send its own certificate: an accepted one is stored, twice is a new story
        if case in ("accepted", "a fault plan"):
            return _form(hospital, sample(hospital))
        if case == "invalid file":
            return _form(hospital, sample(hospital, invalid="missing_required"))
        if case == "wrong token":
            return _form(hospital, sample(hospital), token="0" * 64)
        if case == "unknown field":
            return _form(hospital, sample(hospital), extra="1")
        if case == "not a document":
            return _form(hospital, b"<x/>")
        if case == "a blank token twice":
            form = hospital.client.form(LOAI_HS["GCS"], sample(hospital))
            return f"token=&{urlencode(form)}".encode()
        return b""

    if case == "a fault plan":
        plan = {"faults": [{"name": "down", "effect": "portal_error", "operations": ["submit"]}]}
        assert admin.put("/sandbox/faults", json=plan).status_code == 200
    try:
        direct, connexion = _raw(portal, body(), PLAIN), _raw(portal, body(), VIA_CONNEXION)
    finally:
        admin.put("/sandbox/faults", json={"faults": []})
    assert _masked(direct) == _masked(connexion), (direct, connexion)
    assert _code(direct) == _code(connexion), (direct, connexion)
    assert direct[2].endswith(b"}\n") == (case != "a fault plan")  # a fault's reply is the gateway's own
    expected = {"accepted": "200", "unknown field": "200", "not a document": "205", "a fault plan": "500"}
    refused = {"wrong token": "401", "no fields": "401", "a blank token twice": "401"}
    assert _code(direct) == {**expected, **refused}.get(case, _code(direct))
    journal = admin.get("/sandbox/journal", params={"limit": 2, "identity": "all"}).json()
    outcome = direct[2].split(b'"MaKetQua":"')[1][:3].decode()
    assert [(e["outcome"], e["file_sha256"] is not None) for e in journal] == [(outcome, case != "no fields")] * 2


def _scope(*content_types: bytes) -> Scope:
    return {"type": "http", "headers": [(b"content-type", t) for t in content_types]}


@pytest.mark.parametrize(
    ("content_types", "body", "plain"),
    [
        ((b"application/x-www-form-urlencoded",), b"a=1&b=%2B", {"a": "1", "b": "+"}),
        ((b"Application/X-WWW-Form-Urlencoded; charset=UTF-8",), b"a=1", {"a": "1"}),
        ((b"application/x-www-form-urlencoded",), b"", {}),
        ((b"application/x-www-form-urlencoded",), b"a=&b=1", {"a": "", "b": "1"}),
        ((b"application/x-www-form-urlencoded",), b"a=1&a=2", None),  # a field twice
        ((b"application/x-www-form-urlencoded",), b"a=1&a=", None),  # twice, once blank (Connexion: "1,")
        ((b"application/x-www-form-urlencoded",), b"a=&a=1", None),
        ((b"application/x-www-form-urlencoded",), b"a", None),  # a pair without "="
        ((b"application/x-www-form-urlencoded",), b"a=%C3%A9", None),  # a value outside ASCII
        ((b"application/x-www-form-urlencoded",), "a=é".encode(), None),  # a body outside ASCII
        ((b"application/x-www-form-urlencoded; charset=latin-1",), b"a=1", None),
        ((b"application/json",), b"a=1", None),
        ((), b"a=1", None),
        ((b"application/x-www-form-urlencoded", b"application/x-www-form-urlencoded"), b"a=1", None),
        ((b"application/x-www-form-urlencoded",), b"&".join(b"f%d=1" % i for i in range(65)), None),
    ],
)
def test_only_a_plain_form_is_answered_by_the_gateway(
    content_types: tuple[bytes, ...], body: bytes, plain: dict[str, str] | None
) -> None:
    assert plain_submission(_scope(*content_types), body) == plain


def test_a_plain_form_skips_the_handler_and_any_other_reaches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process through the same ASGI app as `mock-portal serve` runs: Connexion's handler is called for the
    form it must read, never for a plain one, and both answer the same."""
    calls: list[object] = []
    real = hiap.send_document

    async def counted(body: dict[str, Any] | None = None) -> Reply:
        calls.append(body)
        return await real(body)

    monkeypatch.setattr(hiap, "send_document", counted)
    app = create_asgi(Settings(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}", admin_token="direct-admin"))
    form = urlencode({"username": "79001_BV", "token": "t", "loaiHs": "61", "fileBase64Str": "PHgvPg=="}).encode()

    async def post(content_type: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            return await client.post(SUBMIT_PATH, content=form, headers={"Content-Type": content_type})

    direct = asyncio.run(post(PLAIN))
    assert calls == []
    connexion = asyncio.run(post(VIA_CONNEXION))
    assert len(calls) == 1
    assert direct.json()["MaKetQua"] == connexion.json()["MaKetQua"] == "401"
    assert direct.headers["x-sandbox-explain"] == connexion.headers["x-sandbox-explain"]


def test_an_unexpected_failure_is_answered_and_journalled_as_connexion_answers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure past the portal's own MaKetQua 500 (here: an outcome the reply cannot be made from) is the
    problem+json 500 of Connexion's error handler on both paths, journalled HTTP-500 with the file's digest."""
    monkeypatch.setattr(Portal, "submit", lambda *_args, **_kwargs: object())
    app = create_asgi(Settings(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}", admin_token="direct-admin"))
    form = urlencode({"username": "79001_BV", "token": "t", "loaiHs": "61", "fileBase64Str": "PHgvPg=="}).encode()

    async def post(content_type: str) -> tuple[httpx.Response, dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            reply = await client.post(SUBMIT_PATH, content=form, headers={"Content-Type": content_type})
            auth = {"Authorization": "Bearer direct-admin"}
            journal = await client.get("/sandbox/journal", params={"limit": 1, "identity": "all"}, headers=auth)
            return reply, journal.json()[0]

    (direct, row), (connexion, other) = asyncio.run(post(PLAIN)), asyncio.run(post(VIA_CONNEXION))
    assert direct.status_code == connexion.status_code == 500
    shown = ("content-type", "x-sandbox-explain", "x-sandbox-findings")
    assert [direct.headers.get(h) for h in shown] == [connexion.headers.get(h) for h in shown]
    assert direct.headers["content-type"] == "application/problem+json" and direct.content == connexion.content
    assert (
        (row["outcome"], row["file_sha256"])
        == (other["outcome"], other["file_sha256"])
        == ("HTTP-500", row["file_sha256"])
    )
    assert row["file_sha256"]
