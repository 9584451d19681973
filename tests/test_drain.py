"""Stopping a real `mock-portal serve` with SIGTERM, as `podman stop` does (to the first process only), in
the middle of a flood of signed submissions: every request the server received is answered, every
submission it acknowledged is stored, none it stored went unanswered, and it exits 0 soon after. And
`GET /sandbox/ready`: 200 when the process should get traffic, 503 while it drains or while its
database cannot serve it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from fixtures.hospital import LOAI_HS, SUBMIT_PATH
from fixtures.pki import TestPKI
from mock_portal import store
from mock_portal.store import migrate
from tests.conftest import provision, trust_root
from tests.live import LiveServer, new_database_url, start_server
from tests.wire import sample

FLOOD = 12
"""Connections sending at once (each a keep-alive connection sending its next form as soon as it is answered)."""
TERM_AFTER = 30
"""Acknowledged submissions before SIGTERM."""
FORMS = TERM_AFTER + 6 * FLOOD
"""Forms sent in all: the flood goes on after SIGTERM until they run out."""
EXIT_WITHIN = 10.0
"""Seconds from SIGTERM to the process's exit: the drain (`PORTAL_DRAIN_TIMEOUT_SECONDS`, 8) is the bound;
a drain of short requests takes about `DRAIN_LINGER_SECONDS`."""


@dataclass
class Flood:
    """What the clients saw: for each request its start and end (monotonic), and its reply or error."""

    term_at: float = 0.0
    acknowledged: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    """MaKetQua of the replies other than 200."""
    errors: list[tuple[float, str]] = field(default_factory=list)
    """(when the request had left the client, infinity if it never did; the exception type) of the requests
    that got no reply."""
    in_flight_at_term: int = 0
    """Requests sent before SIGTERM and answered (or not) after it."""


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_in_a_flood_drains_and_loses_nothing(tmp_path: Path, pki: TestPKI, workers: int) -> None:
    database_url = new_database_url(tmp_path)
    (tmp_path / "again").mkdir()
    portal = start_server(tmp_path, workers=workers, database_url=database_url)
    try:
        with portal.admin() as admin:
            trust_root(admin, pki)
            hospital = provision(admin, pki, portal.base_url)
        token = hospital.client.take_token()
        forms = [hospital.client.form(LOAI_HS["GCS"], sample(hospital), token) for _ in range(FORMS)]
        flood = asyncio.run(_flood_then_term(portal, forms))
        exited = portal.process.wait(timeout=EXIT_WITHIN + 5)
        took = time.monotonic() - flood.term_at
    finally:
        portal.stop()
    no_reply = sorted({kind for _, kind in flood.errors})
    print(
        f"workers={workers}: in flight at SIGTERM {flood.in_flight_at_term}, acknowledged {len(flood.acknowledged)},"
        f" refused {len(flood.refused)} {sorted(set(flood.refused))}, no reply {len(flood.errors)} {no_reply},"
        f" exit {exited} after {took:.2f} s"
    )
    assert exited == 0, portal.log.read_text(errors="replace")[-2000:]
    assert took < EXIT_WITHIN
    assert len(flood.acknowledged) >= TERM_AFTER and flood.in_flight_at_term, "SIGTERM came in the middle"
    early = [kind for sent, kind in flood.errors if sent < flood.term_at]
    assert not early, f"requests sent before SIGTERM got no reply: {early}"
    again = start_server(tmp_path / "again", database_url=database_url)
    try:
        with again.admin() as admin:
            page = admin.get("/sandbox/submissions", params={"facility": hospital.code, "limit": 500})
    finally:
        again.stop()
    assert page.status_code == 200, page.text
    stored = page.json()
    accepted = {row["ma_gd"] for row in stored if row["result"] == "200"}
    assert accepted == flood.acknowledged, "acknowledged = stored as accepted"
    assert len(stored) == len(flood.acknowledged) + len(flood.refused), "every stored submission was answered"


async def _flood_then_term(portal: LiveServer, forms: list[dict[str, str]]) -> Flood:
    """Send `forms` on `FLOOD` connections; once `TERM_AFTER` are acknowledged, SIGTERM the server's first
    process (the supervisor with workers) while the rest are in flight; go on until the forms run out."""
    flood = Flood()
    pending = iter(forms)

    async def sender(client: httpx.AsyncClient) -> None:
        for form in pending:
            start, sent = time.monotonic(), [float("inf")]

            async def trace(event: str, _info: dict[str, object], sent: list[float] = sent) -> None:
                if event == "http11.send_request_body.complete":  # the request has left the client
                    sent[0] = time.monotonic()

            try:
                reply = await client.post(SUBMIT_PATH, data=form, extensions={"trace": trace})
            except httpx.TransportError as exc:  # when it was sent, not when the client began: a loaded client
                flood.errors.append((sent[0], type(exc).__name__))  # may write it a second later
                continue
            finally:
                if start < flood.term_at < time.monotonic():
                    flood.in_flight_at_term += 1
            body = reply.json()
            code = str(body["MaKetQua"])
            if code == "200":
                flood.acknowledged.add(body["MaGD"])
            else:
                flood.refused.append(f"{code} {reply.headers.get('X-Sandbox-Explain')}")
            if len(flood.acknowledged) >= TERM_AFTER and not flood.term_at:
                flood.term_at = time.monotonic()
                os.kill(portal.process.pid, signal.SIGTERM)

    limits = httpx.Limits(max_connections=FLOOD)
    async with httpx.AsyncClient(base_url=portal.base_url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(sender(client) for _ in range(FLOOD)))
    return flood


# readiness ---------------------------------------------------------------------------------------------------------
def test_ready_while_serving_and_503_draining_on_a_connection_kept_open(tmp_path: Path) -> None:
    portal = start_server(tmp_path)
    try:
        with httpx.Client(base_url=portal.base_url, timeout=10) as client:
            ready = client.get("/sandbox/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
            portal.process.send_signal(signal.SIGTERM)
            _wait_refused(portal.base_url)  # the server stopped listening; this idle connection lingers
            draining = client.get("/sandbox/ready")
            assert draining.status_code == 503, draining.text
            assert draining.headers["content-type"] == "application/problem+json"
            assert draining.json()["code"] == "DRAINING"
            assert draining.headers["connection"] == "close"
        assert portal.process.wait(timeout=EXIT_WITHIN) == 0
    finally:
        portal.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_with_a_drain_delay_new_connections_are_served_not_ready_until_the_delay_ends(
    tmp_path: Path, workers: int
) -> None:
    """`PORTAL_DRAIN_DELAY_SECONDS`: told to stop, the server goes on accepting (a load balancer's check gets
    503 DRAINING on a new connection, and a submission would be answered), then stops listening, drains and
    exits 0. Without the delay the listening socket closes at once (the test above)."""
    portal = start_server(tmp_path, workers=workers, extra_env={"PORTAL_DRAIN_DELAY_SECONDS": "2"})
    try:
        assert httpx.get(f"{portal.base_url}/sandbox/ready", timeout=5).status_code == 200
        told = time.monotonic()
        portal.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the supervisor has passed it on; every process is draining, none stopped listening
        for _ in range(4):  # new connections each (SO_REUSEPORT spreads them over the workers)
            draining = httpx.get(f"{portal.base_url}/sandbox/ready", timeout=5, headers={"Connection": "close"})
            assert draining.status_code == 503 and draining.json()["code"] == "DRAINING", draining.text
        assert time.monotonic() - told < 2, "the checks above ran inside the delay"
        _wait_refused(portal.base_url)
        assert time.monotonic() - told >= 2, "it stopped listening only after the delay"
        assert portal.process.wait(timeout=EXIT_WITHIN + 2) == 0
    finally:
        portal.stop()


def _wait_refused(base_url: str, timeout: float = 5) -> None:
    """Until a new connection to `base_url` is refused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base_url}/sandbox/health", timeout=1)
        except httpx.ConnectError:
            return
        time.sleep(0.02)
    raise AssertionError(f"{base_url} still accepts connections {timeout} s after SIGTERM")


@pytest.mark.sqlite_only
def test_ready_is_503_while_the_database_is_behind_the_code_and_200_on_a_newer_one(tmp_path: Path) -> None:
    """Behind (a revision older than the code's newest): not ready. A revision the code does not know was
    made by a newer version's `mock-portal migrate`: the replicas not yet upgraded keep serving on it
    (deploy/README.md, rolling upgrade), or HAProxy would take every one of them out at once."""
    portal = start_server(tmp_path, database_url=new_database_url(tmp_path))
    assert portal.database is not None
    older = min(migrate.known() - {migrate.head()})
    try:
        with httpx.Client(base_url=portal.base_url, timeout=10) as client:
            revision = _set_revision(portal.database, older)
            behind = client.get("/sandbox/ready")
            assert behind.status_code == 503 and behind.json()["code"] == "DATABASE_NOT_READY", behind.text
            assert older in behind.json()["detail_en"]
            assert client.get("/sandbox/health").status_code == 200, "alive all the same"
            _set_revision(portal.database, "made_by_a_newer_version")
            assert client.get("/sandbox/ready").status_code == 200
            _set_revision(portal.database, revision)
            assert client.get("/sandbox/ready").status_code == 200
    finally:
        portal.stop()


def _set_revision(database: Path, revision: str) -> str:
    """Set the database's Alembic revision; the one it had."""
    with sqlite3.connect(database) as connection:
        (before,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    return str(before)


@pytest.mark.sqlite_only
def test_an_unreachable_database_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    repo = store.Repository(store.create_engine_for(f"sqlite:///{folder / 'portal.sqlite3'}"))
    repo.create_schema()
    assert repo.schema_problem() is None
    repo.engine.dispose()
    shutil.rmtree(folder)
    assert repo.schema_problem() == "the database is unreachable"  # the driver's words (paths, hosts) are logged
