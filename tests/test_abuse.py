"""Abuse against a real `mock-portal serve --workers 2`: slow clients, oversize bodies, memory, hostile files.

Each case is one the portal once fell over on (issue 10); the server runs with short header/body
timeouts so the slow-client cases finish in seconds. The tests assert behaviour with time bounds wide
enough for a loaded 2-core CI machine (they separate "works" from "stalled" or "quadratic"); the numbers
the issue names are measured by bench/abuse.py (`make bench-abuse`, bench/README.md).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import itertools
import json
import os
import re
import signal
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.certificates import build_xml
from fixtures.history import fill
from fixtures.hostile import held_open, slow_uploads, stalled_upload, with_attributes
from fixtures.pki import Credential, TestPKI
from fixtures.samples import sample_fields
from fixtures.signer import sign_document
from mock_portal import store
from mock_portal.api.errors import HTTP_METHODS
from mock_portal.app import create_asgi
from mock_portal.config import Settings
from mock_portal.documents import DocumentType
from mock_portal.documents.parsing import DocumentError, parse_xml
from mock_portal.portal import auth
from mock_portal.portal.auth import md5_upper
from mock_portal.portal.service import Portal
from mock_portal.store.repository import Repository, create_engine_for
from tests.conftest import Hospital, provision, trust_root
from tests.live import IPSS_KEY, LiveServer, dashboard_login, start_server
from tests.wire import explain, sample

SUBMIT = "/api/hososuckhoe/guiGiayToDienTu"
MIB = 1024 * 1024
HEADER_TIMEOUT = BODY_IDLE_TIMEOUT = 2  # seconds, the module server's settings
STALLED = 10  # seconds: far above what a working portal takes on a loaded CI machine, below "stalled"
LOGIN_FAILURES, LOGIN_WINDOW = 10, 30  # the default failures, a shorter window: a probe every 3 s
pytestmark = [
    pytest.mark.portal(
        workers=2,
        env={
            "PORTAL_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
            "PORTAL_BODY_IDLE_TIMEOUT_SECONDS": str(BODY_IDLE_TIMEOUT),
            "PORTAL_BODY_TIMEOUT_SECONDS": "30",
            "PORTAL_WORKER_RESTART_WINDOW_SECONDS": "2",
            "PORTAL_LOGIN_WINDOW_SECONDS": str(LOGIN_WINDOW),
        },
    ),
    pytest.mark.one_hospital,
]


def _port(portal: LiveServer) -> int:
    return int(portal.base_url.rsplit(":", 1)[1])


def _response(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def _workers(portal: LiveServer) -> list[int]:
    pid = portal.process.pid
    children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [child for child in children if b"spawn_main" in _cmdline(child)]


def _listening(port: int) -> int:
    """The sockets listening on `port` (each worker binds its own, SO_REUSEPORT): a worker counts as up once
    its socket is bound, not as soon as its process exists."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty when it exited between the listing and the read (a killed worker)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# slow clients ---------------------------------------------------------------------------------------
def test_forty_slow_uploads_stall_nothing(portal: LiveServer, hospital: Hospital) -> None:
    # Flask views: thread-pool bound. Trickling a byte every 0.5 s, the uploads outlast the 2 s idle timeout.
    with slow_uploads(portal.base_url, "/sandbox/ui/login", 40, trickle_every=0.5) as socks:
        time.sleep(0.3)
        started = time.monotonic()
        health = httpx.get(f"{portal.base_url}/sandbox/health", timeout=30)
        # before the fix health waited until the uploads closed; the "< 2 s": bench/abuse.py
        assert health.status_code == 200 and time.monotonic() - started < STALLED
        assert hospital.client.send("GCS", sample(hospital)).ma_ket_qua == "200"
        assert held_open(socks) == 40  # served while the uploads were open, not once the server cut them


def test_a_stalled_body_times_out_with_the_portal_code(portal: LiveServer) -> None:
    sandbox = stalled_upload(portal.base_url, "/sandbox/ui/login", 1000)
    wire = stalled_upload(portal.base_url, SUBMIT, 1000)
    try:  # the server answers after BODY_IDLE_TIMEOUT and closes; the read windows leave slack for a loaded CI
        sandbox_reply, wire_reply = _response(sandbox, 5 * BODY_IDLE_TIMEOUT), _response(wire, 5 * BODY_IDLE_TIMEOUT)
    finally:
        sandbox.close()
        wire.close()
    assert sandbox_reply.startswith(b"HTTP/1.1 408") and b'"code": "BODY_TIMEOUT"' in sandbox_reply
    assert wire_reply.startswith(b"HTTP/1.1 200") and b'"MaKetQua": "500"' in wire_reply
    assert b"x-sandbox-explain: BODY_TIMEOUT" in wire_reply


def test_unfinished_headers_are_cut_off(portal: LiveServer) -> None:
    sock = socket.create_connection(("127.0.0.1", _port(portal)))
    started = time.monotonic()
    try:
        sock.sendall(b"GET /sandbox/health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        assert _response(sock, 10 * HEADER_TIMEOUT) == b""  # closed by the server, no reply
    finally:
        sock.close()
    assert time.monotonic() - started < 5 * HEADER_TIMEOUT  # the deadline plus slack, not the read window


def test_an_endless_header_is_cut_off(portal: LiveServer) -> None:
    started = time.monotonic()  # before the connection: a cut at the header deadline comes >= HEADER_TIMEOUT later
    sock = socket.create_connection(("127.0.0.1", _port(portal)))
    try:
        sock.sendall(b"GET /sandbox/health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(OSError):  # the server closes the connection while we are still sending
            for _ in range(64):
                sock.sendall(b"a" * 16384)
            assert _response(sock, 5) == b""
    finally:
        sock.close()
    assert time.monotonic() - started < HEADER_TIMEOUT  # cut at 64 KiB (milliseconds), not by the deadline
    assert httpx.get(f"{portal.base_url}/sandbox/health", timeout=5).status_code == 200


# sizes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [900_000, int(4.5 * MIB)])
def test_valid_files_up_to_the_cap_are_judged_and_accepted(hospital: Hospital, size: int) -> None:
    plain = sample(hospital)
    xml = sample(hospital, padding=size - len(plain))
    assert abs(len(xml) - size) < 4096
    assert hospital.client.send("GCS", xml).ma_ket_qua == "200"


def test_one_byte_over_the_cap_is_1001(portal: LiveServer, admin: httpx.Client, hospital: Hospital) -> None:
    reply = hospital.client.send("GCS", b"<" * (5 * MIB + 1))
    assert reply.ma_ket_qua == "1001"
    assert [f["code"] for f in explain(admin, reply)["findings"]] == ["FILE_TOO_LARGE"]


def test_a_declared_oversize_body_gets_its_1001_not_a_reset(
    portal: LiveServer, admin: httpx.Client, hospital: Hospital
) -> None:
    form = {**hospital.client.form("61", b"x"), "fileBase64Str": "A" * (7 * MIB + 512 * 1024)}
    reply = httpx.post(f"{portal.base_url}{SUBMIT}", data=form, timeout=30)  # sent whole, then read
    assert reply.status_code == 200 and reply.json()["MaKetQua"] == "1001"
    newest = admin.get("/sandbox/journal", params={"operation": "submit", "limit": 1}).json()[0]
    assert newest["outcome"] == "1001"  # journalled like any other exchange


def test_a_chunked_body_over_the_cap_is_1001(portal: LiveServer, hospital: Hospital) -> None:
    form = hospital.client.form("61", b"x")
    form["fileBase64Str"] = "A" * (8 * MIB)
    encoded = httpx.QueryParams(form).__str__().encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(encoded), 256 * 1024):
            yield encoded[start : start + 256 * 1024]

    reply = httpx.post(
        f"{portal.base_url}{SUBMIT}",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert reply.status_code == 200 and reply.json()["MaKetQua"] == "1001"


def test_big_fields_never_get_a_5xx(portal: LiveServer, hospital: Hospital) -> None:
    token = httpx.post(f"{portal.base_url}/api/token/take", data={"username": "x" * (2 * MIB), "password": "A"})
    assert token.status_code == 200 and token.json()["maKetQua"] == "401"
    form = hospital.client.form("61", sample(hospital, padding=2 * MIB))
    multipart = httpx.post(f"{portal.base_url}{SUBMIT}", files={k: (None, v) for k, v in form.items()}, timeout=30)
    assert multipart.status_code == 415  # the wire takes url-encoded forms only: a client error, not a 500
    assert hospital.client.send_form(form).ma_ket_qua == "200"
    huge_name = httpx.post(f"{portal.base_url}{SUBMIT}", data={**form, "username": "u" * (2 * MIB)}, timeout=30)
    assert huge_name.status_code == 200 and huge_name.json()["MaKetQua"] == "401"


# memory ---------------------------------------------------------------------------------------------
def test_stalled_big_uploads_hold_bounded_memory(portal: LiveServer) -> None:
    workers = _workers(portal)
    assert len(workers) == 2
    before = {pid: _rss_mib(pid) for pid in workers}
    declared, payload = 7 * MIB, b"A" * (6 * MIB + 512 * 1024)
    socks = []
    try:
        for _ in range(60):
            sock = stalled_upload(portal.base_url, SUBMIT, declared, b"")
            try:
                sock.settimeout(2)
                sock.sendall(payload)  # a refused connection is closed by the server meanwhile
            except OSError:
                pass
            socks.append(sock)
        assert httpx.get(f"{portal.base_url}/sandbox/health", timeout=5).status_code == 200
        during = {pid: _rss_mib(pid) for pid in workers}
    finally:
        for sock in socks:
            sock.close()
    for pid in workers:  # the in-flight budget (64 MiB a process) plus slack; ~390 MB of bodies offered
        assert during[pid] - before[pid] < 120, (before, during)


# hostile documents ----------------------------------------------------------------------------------
def test_fifty_thousand_attributes_are_refused_fast(admin: httpx.Client, hospital: Hospital) -> None:
    hostile = with_attributes(sample(hospital), 50_000)
    started = time.monotonic()
    reply = hospital.client.send("GCS", hostile)
    assert time.monotonic() - started < STALLED  # took 89 s before the fix; the "< 2 s": bench/abuse.py
    assert reply.ma_ket_qua == "205"
    assert "XML_TOO_MANY_ATTRIBUTES" in [f["code"] for f in explain(admin, reply)["findings"]]


@pytest.mark.parametrize(
    ("before", "after"),
    [(b"<HSDLGCS", b'<HSDLGCS xmlns:n="u"'), (b"<CHUKYDONVI", b'<CHUKYDONVI xmlns:r="a/b"')],
)
def test_relative_namespace_uris_are_205(admin: httpx.Client, hospital: Hospital, before: bytes, after: bytes) -> None:
    xml = sample(hospital)
    assert before in xml
    reply = hospital.client.send("GCS", xml.replace(before, after, 1))
    assert reply.ma_ket_qua == "205"
    assert "XML_NAMESPACE_RELATIVE" in [f["code"] for f in explain(admin, reply)["findings"]]


@pytest.mark.parametrize("encoding", ["utf-32-be", "utf-32-le", "utf-32", "utf-16-be", "utf-16-le", "utf-16"])
def test_every_utf16_and_utf32_form_is_205(admin: httpx.Client, hospital: Hospital, encoding: str) -> None:
    text = sample(hospital).decode("utf-8").replace('encoding="utf-8"', f'encoding="{encoding}"')
    reply = hospital.client.send("GCS", text.encode(encoding))
    assert reply.ma_ket_qua == "205"
    findings = explain(admin, reply)["findings"]
    assert [f["code"] for f in findings] == ["XML_ENCODING"]
    assert encoding.split("-")[1] in findings[0]["received"]


def test_base64_of_garbage_is_still_205(hospital: Hospital) -> None:
    form = hospital.client.form("61", b"x")
    form["fileBase64Str"] = base64.b64encode(b"\x00\x01\x02").decode()
    assert hospital.client.send_form(form).ma_ket_qua == "205"


# worker deaths --------------------------------------------------------------------------------------
def test_workers_killed_again_and_again_are_restarted(portal: LiveServer, hospital: Hospital) -> None:
    """More deaths than the old lifetime budget (5), spread out: the portal keeps serving."""
    for _ in range(7):
        victim = _workers(portal)[0]
        os.kill(victim, signal.SIGKILL)
        _until(portal, lambda victim=victim: victim not in _workers(portal) and len(_workers(portal)) >= 2)
        time.sleep(0.6)  # a kill every ~2.5 s: at most one in each 2-second window
    # a replacement exists before it listens: on a loaded machine the last two may both still be starting
    # (the send was once refused); waiting for them here, not before each kill, lets a kill still land on
    # a worker that is starting, as before (waiting before each kill: ~5 s more CPU in finished starts)
    _until(portal, lambda: _listening(_port(portal)) >= 2)
    assert portal.process.poll() is None
    assert hospital.client.send("GCS", sample(hospital)).ma_ket_qua == "200"


def _until(portal: LiveServer, done: Callable[[], bool]) -> None:
    """Wait until `done()`: 20 s at most, and never on a portal whose supervisor has exited."""
    deadline = time.monotonic() + 20
    while not done():
        assert time.monotonic() < deadline and portal.process.poll() is None, portal.log.read_text()[-2000:]
        time.sleep(0.1)


# Issue 24: CPU off the event loop ---------------------------------------------------------------------
def _in_process(tmp_path: Path) -> tuple[object, store.Account, dict[str, str]]:
    """The app `mock-portal serve` runs, in this process, over a database with one account and a valid
    token of it; the account, and its submission form (the right password, no file yet)."""
    url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    repo = store.Repository(store.create_engine_for(url))
    repo.create_schema()
    password = auth.md5_upper("pw")
    account = store.Account(username="48301_BV", facility_code="48301", password_hash=auth.hash_password_md5(password))
    repo.add_facility(store.Facility(code="48301", name="BV", created_at=datetime(2026, 1, 1, tzinfo=UTC)), account)
    now = datetime.now(UTC)
    token = store.Token(access_token="access", id_token="id", username="48301_BV", issued_at=now)
    token.expires_at = now + timedelta(hours=1)
    repo.add_token(token)
    form = {"maCskcb": "48301", "token": "access", "id_token": "id", "username": "48301_BV", "password": password}
    return create_asgi(Settings(database_url=url, admin_token="in-process")), account, {**form, "loaiHs": "61"}


def _post_in_process(app: object, forms: list[dict[str, str]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            return [await client.post(SUBMIT, data=form) for form in forms]

    return asyncio.run(go())


def test_a_wrong_password_is_never_hashed_on_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid token with a wrong password once ran scrypt (~60 ms) inline; only a password the process
    verified already (no scrypt) may be judged on the event loop."""
    app, _account, form = _in_process(tmp_path)
    threads: list[str] = []
    real = auth._scrypt
    monkeypatch.setattr(auth, "_scrypt", lambda *a: threads.append(threading.current_thread().name) or real(*a))
    file = {"fileBase64Str": base64.b64encode(b"<HSDLGCS/>").decode()}
    wrong, right = {**form, **file, "password": auth.md5_upper("guess")}, {**form, **file}
    replies = _post_in_process(app, [wrong, right, right])
    assert [r.json()["MaKetQua"] for r in replies] == ["401", "205", "205"]
    assert replies[0].headers["x-sandbox-findings"] == "AUTH_BAD_CREDENTIALS"
    assert len(threads) == 2, "each password hashed once: the right one is remembered"
    assert threading.current_thread().name not in threads  # asyncio.run's loop runs on this thread


def test_unknown_passwords_spend_the_sender_s_budget_then_go_unhashed(portal: LiveServer, hospital: Hospital) -> None:
    """Over its budget of scrypt checks a sender's wrong passwords get the portal's 401 without hashing;
    the owner, from another address, keeps access."""
    form = hospital.client.form("61", sample(hospital))
    wrong = {**form, "password": auth.md5_upper("guess")}
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")  # one connection: one worker, one budget
    with httpx.Client(base_url=portal.base_url, transport=elsewhere, timeout=30) as attacker:
        findings = []
        while "AUTH_PASSWORD_THROTTLED" not in findings and len(findings) <= 2 * auth.SENDER_CHECKS:
            reply = attacker.post(SUBMIT, data=wrong)
            assert reply.json()["MaKetQua"] == "401"
            findings.append(reply.headers["x-sandbox-findings"])
    assert findings[: auth.SENDER_CHECKS] == ["AUTH_BAD_CREDENTIALS"] * auth.SENDER_CHECKS
    assert findings[-1] == "AUTH_PASSWORD_THROTTLED"
    assert hospital.client.send("GCS", sample(hospital)).ma_ket_qua == "200"


def test_another_account_s_wrong_passwords_never_refuse_the_owner() -> None:
    """The budget is the client address's *and the account's*: reaching the check takes a valid token of
    the account, so a tenant guessing on its own account from the owner's address (one proxy, loopback)
    spends its own checks, and the owner's first submission in a process is still hashed and accepted."""
    budget = auth.SenderBudget(checks=2, refill_seconds=3600)
    owner, other = (
        store.Account(username=name, password_hash=auth.hash_password_md5(auth.md5_upper(name)))
        for name in ("79001_BV", "79002_BV")
    )
    guess = auth.budgeted_password_check(budget, "127.0.0.1")
    assert [guess(other, auth.md5_upper(f"guess {n}")) for n in range(3)] == [False, False, None]
    assert guess(owner, auth.md5_upper("79001_BV")) is True


def test_a_burst_of_one_right_password_on_a_cold_cache_is_hashed_once_and_refused_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server just started knows no password yet; a hospital's burst of concurrent submissions (more than
    `SENDER_CHECKS`) waits for the first one's scrypt instead of each spending the sender's budget: once,
    the ones beyond the budget were refused as AUTH_PASSWORD_THROTTLED with the right password. A wrong
    password sent the same way is hashed once and is wrong for every one of them."""
    budget = auth.SenderBudget(checks=2, refill_seconds=3600)
    owner = store.Account(username="79001_BV", password_hash=auth.hash_password_md5(auth.md5_upper("79001_BV")))
    hashed: list[str] = []
    slow = auth._scrypt

    def counted(secret: str, *args: Any) -> bytes:
        hashed.append(secret)
        time.sleep(0.2)  # every thread of the burst arrives while the first one hashes
        return slow(secret, *args)

    monkeypatch.setattr(auth, "_scrypt", counted)
    check = auth.budgeted_password_check(budget, "127.0.0.1")
    together = threading.Barrier(12)

    def burst(password: str) -> bool | None:
        together.wait()  # all twelve are sent at once; the first to hash holds the others for 0.2 s
        return check(owner, auth.md5_upper(password))

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        right = list(pool.map(burst, ["79001_BV"] * 12))
        wrong = list(pool.map(burst, ["guess"] * 12))
    assert right == [True] * 12 and wrong == [False] * 12
    assert len(hashed) == 2  # one scrypt for each pair


def test_only_a_file_that_needs_little_work_is_examined_inline(
    hospital: Hospital, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4,200 empty elements fit in 22 KB, under the inline byte limit, and cost ~40 ms to examine: the
    gateway's pre-scan sends them to a thread; a certificate's GCS stays on the event loop."""
    app, account, form = _in_process(tmp_path)
    assert auth.password_matches(account, form["password"])  # verified once, as by the token request
    threads: list[str] = []
    monkeypatch.setattr(Portal, "submit", lambda *a: threads.append(threading.current_thread().name) or 1 / 0)
    hostile = sample(hospital).replace(b"</GIAYCHUNGSINH>", b"<x/>" * 4200 + b"</GIAYCHUNGSINH>", 1)
    forms = [{**form, "fileBase64Str": base64.b64encode(xml).decode()} for xml in (sample(hospital), hostile)]
    assert len(urlencode(forms[1])) <= Settings(database_url="sqlite://").inline_limit
    assert {r.json()["MaKetQua"] for r in _post_in_process(app, forms)} == {"500"}  # the patched submit failed
    assert threads[0] == threading.current_thread().name != threads[1]


def test_a_million_empty_elements_are_refused_without_walking_them(admin: httpx.Client, hospital: Hospital) -> None:
    """The element count stops at the limit plus one: 5 MiB of empty elements (1.3 M) once each got a
    Python proxy before the count refused them (1.1-1.3 s of CPU in the parser here; libxml2's parse
    takes 0.2 s). 4 MiB here: the base64 of `<x/>` has a '+' to escape in every 16 characters, and the
    form of 5 MiB of them is over the body cap."""
    hostile = b"<HSDLGCS>" + b"<x/>" * (4 * MIB // 4 - 8) + b"</HSDLGCS>"
    tracemalloc.start()
    try:
        with pytest.raises(DocumentError) as refused:
            parse_xml(hostile)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.finding.code == "XML_TOO_MANY_ELEMENTS"
    assert peak < 8 * MIB, "Python objects for 5,001 nodes, not for 1.3 M"
    reply = hospital.client.send("GCS", hostile)
    assert reply.ma_ket_qua == "205"
    assert [f["code"] for f in explain(admin, reply)["findings"]] == ["XML_TOO_MANY_ELEMENTS"]


# Issue 24: no 5xx for any input ---------------------------------------------------------------------
RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")
"""The DER of the OID 1.2.840.113549.1.1.1 (rsaEncryption), the algorithm of the test PKI's RSA keys."""


def _resigned(hospital: Hospital, credential: Credential, signing_time: str) -> bytes:
    """A GCS of `hospital` signed by `credential` with SigningTime written exactly as `signing_time` (a
    strftime format without directives is itself)."""
    now = datetime.now(UTC).replace(microsecond=0)
    fields = sample_fields(
        DocumentType.GCS, facility_code=hospital.code, serial=next(_resigned_serials), issued_at=now, seed=0
    )
    xml = build_xml(DocumentType.GCS, fields)
    return sign_document(xml, credential.key, credential.cert, signing_time=now, signing_time_format=signing_time)


_resigned_serials = itertools.count(24_000)


def _with_certificate_der(xml: bytes, der: bytes) -> bytes:
    return re.sub(
        rb"<X509Certificate>[^<]*</X509Certificate>",
        b"<X509Certificate>" + base64.b64encode(der) + b"</X509Certificate>",
        xml,
        count=1,
    )


@pytest.mark.parametrize(
    ("make", "code"),
    [
        pytest.param(
            lambda h, pki: re.sub(rb"<SignatureValue>[^<]*</SignatureValue>", b"<SignatureValue/>", sample(h)),
            "SIG_VALUE_INVALID",
            id="empty-SignatureValue",
        ),
        pytest.param(
            lambda h, pki: re.sub(
                rb"<SignatureValue>[^<]*</SignatureValue>", b"<SignatureValue> </SignatureValue>", sample(h)
            ),
            "SIG_VALUE_INVALID",
            id="blank-SignatureValue",
        ),
        pytest.param(
            lambda h, pki: _with_certificate_der(
                sample(h),
                h.credential.cert.public_bytes(Encoding.DER).replace(RSA_ENCRYPTION, RSA_ENCRYPTION[:-1] + b"\x63"),
            ),
            "SIG_PROFILE_UNKNOWN",
            id="unknown-key-algorithm",
        ),
        *(
            pytest.param(
                lambda h, pki, when=when: _resigned(h, pki.untrusted_root, when), "SIG_SIGNING_TIME_INVALID", id=when
            )
            for when in ("0001-01-01T00:00:00", "0001-01-01T05:00:00", "9999-12-31T23:59:59-14:00")
        ),
    ],
)
def test_permanently_bad_signatures_are_205_with_their_finding(
    admin: httpx.Client,
    hospital: Hospital,
    pki: TestPKI,
    make: Callable[[Hospital, TestPKI], bytes],
    code: str,
) -> None:
    """Never the transient MaKetQua 500 (a correct hospital would retry it for ever): 205, stored, explained."""
    reply = hospital.client.send("GCS", make(hospital, pki))
    assert reply.ma_ket_qua == "205", reply.explain
    assert reply.explain.startswith(f"{code}:")
    assert explain(admin, reply)["findings"][0]["code"] == code


@pytest.mark.parametrize("path", ["/api/token/take", SUBMIT])
def test_a_lone_surrogate_on_the_wire_gets_the_portals_answer(
    portal: LiveServer, admin: httpx.Client, path: str
) -> None:
    body = b'{"username":"\\ud800","password":"x"}'
    reply = httpx.post(f"{portal.base_url}{path}", content=body, headers={"Content-Type": "application/json"})
    newest = admin.get("/sandbox/journal", params={"identity": "unauthenticated", "limit": 1}).json()[0]
    assert newest["username"] == "\ufffd"  # read as the replacement character, journalled apart
    if path == SUBMIT:  # the submission takes forms only: JSON is the wire's 415, whatever it holds
        assert reply.status_code == 415 and reply.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
        return
    assert reply.status_code == 200 and reply.json() == {"maKetQua": "401", "APIKey": None}
    assert newest["outcome"] == "401"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/sandbox/workspaces", {"id": "ws-24", "name": "\ud800"}),
        ("POST", "/sandbox/facilities", {"code": "79924", "name": "\ud800", "username": "79924_BV", "password": "x"}),
        ("POST", "/sandbox/facilities", {"code": "79924", "name": "x", "username": "79924_BV", "password": "\udfff"}),
        ("PUT", "/sandbox/faults", {"faults": [{"name": "a\udc80", "effect": "http_error", "status": 503}]}),
    ],
)
def test_a_lone_surrogate_in_a_sandbox_body_is_a_400_problem(
    admin: httpx.Client, method: str, path: str, body: dict[str, Any]
) -> None:
    reply = admin.request(method, path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["code"] == "JSON_TEXT_INVALID" and problem["detail_vi"] and problem["detail_en"]


def test_a_json_body_without_content_type_is_a_415_problem(portal: LiveServer) -> None:
    request = httpx.Request(
        "PUT",
        f"{portal.base_url}/sandbox/clock",
        content=b'{"rate": 1}',
        headers={"Authorization": f"Bearer {portal.admin_token}"},
    )
    assert "content-type" not in request.headers
    reply = httpx.Client().send(request)
    assert reply.status_code == 415 and reply.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    chunked = httpx.Request(  # no Content-Length either: the body announced by Transfer-Encoding
        "PUT",
        f"{portal.base_url}/sandbox/clock",
        content=iter([b'{"rate": 1}']),
        headers={"Authorization": f"Bearer {portal.admin_token}"},
    )
    assert chunked.headers["transfer-encoding"] == "chunked" and "content-type" not in chunked.headers
    reply = httpx.Client().send(chunked)
    assert reply.status_code == 415 and reply.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


SPEC = yaml.safe_load((Path(__file__).parents[1] / "mock_portal" / "openapi.yaml").read_text(encoding="utf-8"))
OPERATIONS = sorted(
    ((path, method) for path, item in SPEC["paths"].items() for method in item if method in HTTP_METHODS),
    key=lambda operation: operation == ("/sandbox/reset", "post"),  # the reset wipes the data: last
)
HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            "\ud800",
            "a\udfffb",
            "\x00",
            "",
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59.999999+23:59",
            "99999-01-01T00:00:00Z",
            "1e400",
            "NaN",
            "../../etc/passwd",
            "%ED%A0%80",
            "A" * 5000,
        ]
    ),
    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Lo", "So"]), max_size=6),
)
HOSTILE_JSON = st.one_of(
    HOSTILE_TEXT, st.sampled_from([2**64, -(2**63) - 1, 1e308, -0.5, [], {}, None, True, ["\ud800"]])
)


def _resolved(node: Any) -> Any:
    """`node` with its `$ref` (one level, as openapi.yaml uses them) followed."""
    while isinstance(node, dict) and "$ref" in node:
        node = functools.reduce(lambda part, key: part[key], node["$ref"].removeprefix("#/").split("/"), SPEC)
    return node


def _plain(schema: dict[str, Any]) -> Any:
    """A value the spec itself offers for a property (its example, default or first enum value), so that a
    hostile value can sit beside valid ones and get past the schema to the handler."""
    return schema.get("example", schema.get("default", (schema.get("enum") or [""])[0]))


def _raw(text: str) -> bytes:
    """What a client puts on the wire for `text`, lone surrogates included (as WTF-8: not UTF-8)."""
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def swept(
    tmp_path_factory: pytest.TempPathFactory, pki: TestPKI
) -> Iterator[tuple[LiveServer, dict[str, str], httpx.Client]]:
    """A portal of the sweep's own (it resets, deletes and sets faults with hostile values: the module's
    other tests must not meet what it leaves), a valid submission form of a hospital on it, and the client
    that sends the sweep: a new connection for every request, as `httpx.request` opens, without the SSL
    context `httpx.request` builds each time (30 ms of CPU: 9 s over the ~300 requests)."""
    live = start_server(tmp_path_factory.mktemp("sweep"), workers=1)
    try:
        with live.admin() as admin:
            trust_root(admin, pki)
            hospital = provision(admin, pki, live.base_url)
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            yield live, hospital.client.form("61", sample(hospital)), client
    finally:
        live.stop()


@settings(max_examples=6, derandomize=True, deadline=None, database=None)
@given(data=st.data())
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_no_operation_answers_a_5xx_to_hostile_input(
    swept: tuple[LiveServer, dict[str, str], httpx.Client], path: str, method: str, data: st.DataObject
) -> None:
    """Every operation of openapi.yaml, every parameter and body property hostile (lone surrogates, controls,
    dates at the ends of the calendar, numbers out of range), or the wire's own valid values: no 5xx; a
    refusal on the sandbox API is problem+json with a bilingual detail, the wire answers as the portal."""
    portal, submit_form, client = swept
    operation = SPEC["paths"][path][method]
    parameters = [_resolved(p) for p in (*SPEC["paths"][path].get("parameters", []), *operation.get("parameters", []))]
    values = {p["name"]: data.draw(HOSTILE_TEXT, label=p["name"]) for p in parameters}
    url = re.sub(r"\{(\w+)\}", lambda m: quote(_raw(values[m[1]]), safe=""), path)
    query = urlencode({p["name"]: _raw(values[p["name"]]) for p in parameters if p["in"] == "query"})
    headers = {"Authorization": f"Bearer {portal.admin_token}", "X-API-Key": IPSS_KEY}
    content = b""
    media = next(iter(operation.get("requestBody", {}).get("content", {})), None)
    if media is not None:
        schema = _resolved(operation["requestBody"]["content"][media].get("schema", {}))
        fields = {name: submit_form.get(name, "") for name in schema.get("properties", {})}
        if media == "application/json":
            plain = {name: _plain(_resolved(prop)) for name, prop in schema.get("properties", {}).items()}
            body = {name: data.draw(st.one_of(st.just(plain[name]), HOSTILE_JSON), label=name) for name in fields}
            content = json.dumps(body).encode()
        elif media == "application/x-www-form-urlencoded":
            form = {
                name: data.draw(st.one_of(st.just(value), HOSTILE_TEXT), label=name) for name, value in fields.items()
            }
            content = urlencode({name: _raw(value) for name, value in form.items()}).encode()
        else:
            content = _raw(data.draw(HOSTILE_TEXT, label="body"))
        if data.draw(st.booleans(), label="with Content-Type"):
            headers["Content-Type"] = media
    reply = client.request(
        method.upper(), f"{portal.base_url}{url}{'?' + query if query else ''}", content=content, headers=headers
    )
    assert reply.status_code < 500, (reply.status_code, reply.text[:500])
    if path.startswith("/api/") and reply.status_code == 200:
        assert ("maKetQua" if path.endswith("/take") else "MaKetQua") in reply.json()
    elif reply.status_code >= 400:
        assert reply.headers["content-type"] == "application/problem+json", reply.text[:500]
        problem = reply.json()
        assert problem["code"] and problem["detail_vi"] and problem["detail_en"], problem


# Issue 24: maintenance, throttle, login CSRF ----------------------------------------------------------
MAINTENANCE_STALL = 1.0  # seconds: one chunk and one submission on a loaded CI machine, far below a whole reset


@pytest.mark.sqlite_only  # the rows are written straight into the server's SQLite file
def test_a_big_reset_does_not_stall_another_workspace(
    portal: LiveServer, admin: httpx.Client, hospital: Hospital
) -> None:
    """Another tenant's submissions go on while a workspace with thousands of rows is reset. Before the
    fix the reset was one transaction holding the write gate throughout (every deleted submission's
    foreign key checked by a scan of all documents): the other tenant's submission waited for all of it."""
    assert portal.database is not None
    keys = {}
    for workspace in ("big-reset", "bystander"):
        created = admin.post("/sandbox/workspaces", json={"id": workspace})
        assert created.status_code == 201, created.text
        keys[workspace] = created.json()["key"]
    repo = Repository(create_engine_for(f"sqlite:///{portal.database}"))
    try:
        fill(repo.scoped("big-reset"), "79101", submissions=3000, journal=3000, file_bytes=1000)
        fill(repo.scoped("bystander"), "79102", submissions=3000, journal=0, file_bytes=1000)
    finally:
        repo.engine.dispose()
    xml = sample(hospital)
    assert hospital.client.send("GCS", xml).ma_ket_qua == "200"  # the token taken, the path warm
    big = httpx.Client(base_url=portal.base_url, headers={"Authorization": f"Bearer {keys['big-reset']}"}, timeout=60)
    with big, concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        reset = pool.submit(big.post, "/sandbox/reset")
        slowest = 0.0
        while not reset.done():
            sent = time.monotonic()
            assert hospital.client.send("GCS", xml).ma_ket_qua in {"200", "205"}
            slowest = max(slowest, time.monotonic() - sent)
        assert reset.result().status_code == 204
        took = time.monotonic() - started
        assert slowest < MAINTENANCE_STALL, (slowest, took)
        assert big.get("/sandbox/submissions").json() == []
        assert big.get("/sandbox/journal", params={"identity": "all"}).json() == []


def test_forty_wrong_passwords_from_the_owner_s_address_do_not_lock_the_owner_out(
    portal: LiveServer, admin: httpx.Client, pki: TestPKI
) -> None:
    """On loopback the guesser and the owner share an address, so one throttle key: before the fix the
    owner's right password got 403 TOKEN_THROTTLED for the whole window after the guesser's 20."""
    site = provision(admin, pki, portal.base_url)
    right = {"username": site.username, "password": md5_upper(site.password)}
    wrong = {"username": site.username, "password": md5_upper("guess")}
    with httpx.Client(base_url=portal.base_url, timeout=30) as wire:

        def take(form: dict[str, str]) -> str:
            return str(wire.post("/api/token/take", data=form).json()["maKetQua"])

        assert take(right) == "200"  # the hospital logs in as every day
        guesses = [take(wrong) for _ in range(40)]
        checked = guesses.count("401")  # the others were refused unchecked: 403
        assert checked <= 2 * LOGIN_FAILURES + 2 and guesses.count("403") == 40 - checked, guesses
        deadline = time.monotonic() + 3 * LOGIN_WINDOW / LOGIN_FAILURES  # a probe of each worker, with slack
        while (owner := take(right)) != "200" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert owner == "200", "the owner gets a token: a password already verified, or the next probe"
        assert [take(wrong) for _ in range(5)].count("401") <= 2, "the guesser stays throttled"


def test_a_dashboard_login_without_its_csrf_token_logs_nobody_in(portal: LiveServer, admin: httpx.Client) -> None:
    """Login CSRF: a cross-site form posting the attacker's workspace key would have logged the victim's
    browser into the attacker's workspace; the login form now carries the token its page set."""
    created = admin.post("/sandbox/workspaces", json={"id": "login-csrf"})
    assert created.status_code == 201, created.text
    attacker_key = created.json()["key"]
    with httpx.Client(base_url=portal.base_url) as victim:
        for csrf in ({}, {"csrf": "-"}, {"csrf": ""}):  # no cookie: no token to match, whatever is sent
            forged = victim.post("/sandbox/ui/login", data={"token": attacker_key, **csrf})
            assert forged.status_code == 400 and "CSRF token missing or wrong" in forged.text, csrf
        victim.get("/sandbox/ui/login")  # the page sets the token in the cookie
        wrong = victim.post("/sandbox/ui/login", data={"token": attacker_key, "csrf": "guessed"})
        assert wrong.status_code == 400 and "CSRF token missing or wrong" in wrong.text
        assert victim.get("/sandbox/ui/journal").status_code == 302, "not logged in"
        assert dashboard_login(victim, portal.admin_token).status_code == 302, "the normal flow works"
        assert victim.get("/sandbox/ui/journal").status_code == 200
