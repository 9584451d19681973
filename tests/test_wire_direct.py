"""A plain submission form is answered by the wire gateway itself (`api/gateway.py: plain_submission`), with
the handler's own function, not through Connexion's layers: the reply must be the one Connexion's path gives,
byte for byte apart from what differs between two submissions (MaGD, the receipt time, the ids), over real
HTTP with real signatures; every other form still goes through Connexion."""

from __future__ import annotations

import asyncio
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


def _form(hospital: Hospital, xml: bytes, **changes: str) -> bytes:
    return urlencode({**hospital.client.form(LOAI_HS["GCS"], xml), **changes}).encode("ascii")


@pytest.mark.parametrize(
    "case",
    ["accepted", "invalid file", "wrong token", "no fields", "unknown field", "not a document"],
)
def test_the_gateways_reply_is_connexions_reply(
    portal: LiveServer, admin: httpx.Client, hospital: Hospital, case: str
) -> None:
    def body() -> bytes:  # each send its own certificate: an accepted one is stored, twice is a new story
        if case == "accepted":
            return _form(hospital, sample(hospital))
        if case == "invalid file":
            return _form(hospital, sample(hospital, invalid="missing_required"))
        if case == "wrong token":
            return _form(hospital, sample(hospital), token="0" * 64)
        if case == "unknown field":
            return _form(hospital, sample(hospital), extra="1")
        if case == "not a document":
            return _form(hospital, b"<x/>")
        return b""

    direct, connexion = _raw(portal, body(), PLAIN), _raw(portal, body(), VIA_CONNEXION)
    assert _masked(direct) == _masked(connexion), (direct, connexion)
    assert direct[2].endswith(b"}\n")
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
        ((b"application/x-www-form-urlencoded",), b"a=1&a=2", None),  # a field twice
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
