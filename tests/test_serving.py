"""`mock-portal serve --workers 2` on one SQLite file, and the write gate behind it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.hospital import HiapClient
from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from mock_portal import store
from mock_portal.documents import DocumentType
from mock_portal.store.write_gate import WriteGate
from tests.conftest import provision, trust_root
from tests.live import LiveServer, start_server


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # sharing polls only at start, so an idle worker uses no CPU (the CPU check below sees who served)
    env = {"PORTAL_SHARING_INTERVAL_MS": "600000"}
    live = start_server(tmp_path_factory.mktemp("two-workers"), workers=2, extra_env=env)
    yield live
    live.stop()


def _worker_pids(server: LiveServer) -> list[int]:
    """The server's children running the app (spawned processes, not multiprocessing helpers)."""
    kids = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [int(k) for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


def test_two_workers_share_connections_and_lose_nothing(two_workers: LiveServer, pki: TestPKI) -> None:
    with two_workers.admin() as admin:
        trust_root(admin, pki)
        site = provision(admin, pki, two_workers.base_url)
        deadline = time.monotonic() + 30
        while len(pids := _worker_pids(two_workers)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(pids) == 2
        cpu_before = {pid: _cpu_ticks(pid) for pid in pids}
        token, accepted = site.client.take_token(), set()
        for serial in range(1, 25):  # a new connection per submission: the kernel spreads them
            with httpx.Client(base_url=two_workers.base_url, timeout=30) as http:
                client = HiapClient(
                    two_workers.base_url,
                    facility_code=site.code,
                    username=site.username,
                    password=site.password,
                    http=http,
                )
                client.token = token
                xml = signed_sample(DocumentType.GCS, site.credential, facility_code=site.code, serial=serial)
                reply = client.send("GCS", xml)
                assert reply.ma_ket_qua == "200", reply.explain
                accepted.add(reply.ma_gd)
        busy = [pid for pid in pids if _cpu_ticks(pid) > cpu_before[pid]]
        assert len(busy) == 2, "both workers served requests"
        stored = admin.get("/sandbox/submissions", params={"facility": site.code, "limit": 100}).json()
        assert {row["ma_gd"] for row in stored} == accepted
        journal = admin.get("/sandbox/journal", params={"facility": site.code, "operation": "submit"}).json()
        assert sorted(e["submission_id"] for e in journal) == sorted(row["id"] for row in stored)


def test_a_second_server_on_a_taken_port_fails_fast(two_workers: LiveServer) -> None:
    port = two_workers.base_url.rsplit(":", 1)[1]
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "mock_portal.cli", "serve", "--workers", "2", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1 and "cannot listen" in run.stderr
    assert time.monotonic() - started < 30


@pytest.mark.sqlite_only
def test_write_gate_is_reentrant_and_shared_per_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gate.sqlite3'}"
    one, two = store.create_engine_for(url), store.create_engine_for(url)
    gate = WriteGate.for_engine(one)
    assert gate is not None and gate is WriteGate.for_engine(two)
    assert (tmp_path / "gate.sqlite3-writer").exists()
    order: list[str] = []

    def other() -> None:
        with gate.hold():
            order.append("other")

    with gate.hold(), gate.hold():  # nested in one thread: no self-deadlock
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.1)
        order.append("holder")  # the other thread waits for the outermost release
    thread.join(5)
    assert order == ["holder", "other"]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
