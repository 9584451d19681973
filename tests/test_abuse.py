"""Abuse against a real `mock-portal serve --workers 2`: slow clients, oversize bodies, memory, hostile files.

Each case is one the portal once fell over on (issue 10); the server runs with short header/body
timeouts so the slow-client cases finish in seconds. The tests assert behaviour with time bounds wide
enough for a loaded 2-core CI machine (they separate "works" from "stalled" or "quadratic"); the numbers
the issue names are measured by bench/abuse.py (`make bench-abuse`, bench/README.md).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.history import fill
from fixtures.hostile import held_open, slow_uploads, stalled_upload, with_attributes
from fixtures.pki import TestPKI
from mock_portal.portal.auth import md5_upper
from mock_portal.store.repository import Repository, create_engine_for
from tests.conftest import Hospital, provision, trust_root
from tests.live import LiveServer, dashboard_login, start_server
from tests.wire import explain, sample

SUBMIT = "/api/hososuckhoe/guiGiayToDienTu"
MIB = 1024 * 1024
HEADER_TIMEOUT = BODY_IDLE_TIMEOUT = 2  # seconds, the module server's settings
STALLED = 10  # seconds: far above what a working portal takes on a loaded CI machine, below "stalled"
LOGIN_FAILURES, LOGIN_WINDOW = 10, 30  # the default failures, a shorter window: a probe every 3 s


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "PORTAL_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "PORTAL_BODY_IDLE_TIMEOUT_SECONDS": str(BODY_IDLE_TIMEOUT),
        "PORTAL_BODY_TIMEOUT_SECONDS": "30",
        "PORTAL_WORKER_RESTART_WINDOW_SECONDS": "2",
        "PORTAL_LOGIN_WINDOW_SECONDS": str(LOGIN_WINDOW),
    }
    live = start_server(tmp_path_factory.mktemp("abuse"), workers=2, extra_env=env)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def admin(portal: LiveServer) -> Iterator[httpx.Client]:
    with portal.admin() as client:
        yield client


@pytest.fixture(scope="module")
def hospital(portal: LiveServer, admin: httpx.Client, pki: TestPKI) -> Hospital:
    trust_root(admin, pki)
    return provision(admin, pki, portal.base_url)


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
    return [child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


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
        deadline = time.monotonic() + 20
        while victim in _workers(portal) or len(_workers(portal)) < 2:
            assert time.monotonic() < deadline and portal.process.poll() is None, portal.log.read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(0.6)  # a kill every ~2.5 s: at most one in each 2-second window
    assert portal.process.poll() is None
    assert hospital.client.send("GCS", sample(hospital)).ma_ket_qua == "200"


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
        forged = victim.post("/sandbox/ui/login", data={"token": attacker_key})  # no cookie, no token
        assert forged.status_code == 400 and "CSRF token missing or wrong" in forged.text
        victim.get("/sandbox/ui/login")  # the page sets the token in the cookie
        wrong = victim.post("/sandbox/ui/login", data={"token": attacker_key, "csrf": "guessed"})
        assert wrong.status_code == 400 and "CSRF token missing or wrong" in wrong.text
        assert victim.get("/sandbox/ui/journal").status_code == 302, "not logged in"
        assert dashboard_login(victim, portal.admin_token).status_code == 302, "the normal flow works"
        assert victim.get("/sandbox/ui/journal").status_code == 200
