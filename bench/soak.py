"""Soak: mixed good and hostile traffic against `mock-portal serve --workers 2` while workers are killed.

    .venv/bin/python bench/soak.py [--minutes 10] [--kill-every 60] [--concurrency 6]

Starts the portal (bench/ingest.py's `running_server`: free port, fresh SQLite file), provisions a
facility, then for N minutes keeps C clients busy with a mix of: valid signed GCS (each distinct),
invalid files (205), oversize files (1001), bad tokens (401), unauthenticated junk, `//` paths,
sandbox JSON with NaN or deep nesting, dashboard logins, and slow uploads that stall. Every
`--kill-every` seconds on average (uniformly 0.5x..1.5x) one worker gets SIGKILL.

At the end it checks, and exits 1 if any fails:
* nothing acknowledged lost — every MaGD answered MaKetQua 200 is stored as accepted;
* IPSS exactly once — once the outbox is empty, every accepted MA_GCS appears exactly once in the
  IPSS feed;
* no 5xx — no HTTP status >= 500 at all (a killed worker shows as a reset connection, the only
  injected fault, counted separately);
* RSS flat — the largest worker RSS in the last quarter of the run is within 25 % (+ 40 MB) of the
  largest in the second quarter (after warm-up);
* the portal is still serving.
The last line is machine-readable JSON; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from ingest import Facility, provision, running_server, sign_pool, stored_accepted, worker_pids

from conformance.portal import LocalPortal
from fixtures.hospital import LOAI_HS, SUBMIT_PATH, TOKEN_PATH
from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType

IPSS_KEY = "soak-ipss-key"
FACILITY = "79902"


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    resets: Counter[str] = field(default_factory=Counter)
    five_xx: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    kills: int = 0
    rss: list[tuple[float, float]] = field(default_factory=list)


class Traffic:
    """One kind of request per call, picked at random with fixed weights."""

    def __init__(
        self, server: LocalPortal, facility: Facility, pool: list[bytes], invalid: bytes, tally: Tally
    ) -> None:
        self.server, self.facility, self.pool, self.invalid, self.tally = server, facility, pool, invalid, tally
        self.next_doc = 0
        self.form_base = facility.client.form(LOAI_HS["GCS"], b"x")
        self.kinds = [
            (self.good, 40),
            (self.bad_file, 10),
            (self.oversize, 3),
            (self.bad_token, 8),
            (self.junk, 8),
            (self.double_slash, 5),
            (self.hostile_json, 5),
            (self.dashboard_login, 4),
            (self.slow_upload, 2),
            (self.health, 15),
        ]

    async def one(self, http: httpx.AsyncClient) -> None:
        kind = random.choices([k for k, _ in self.kinds], weights=[w for _, w in self.kinds])[0]
        try:
            await kind(http)
        except (httpx.TransportError, ConnectionError, OSError):
            self.tally.resets[kind.__name__] += 1  # a killed worker (the injected fault), or see README

    def _count(self, label: str, reply: httpx.Response) -> None:
        self.tally.statuses[f"{label} {reply.status_code}"] += 1
        if reply.status_code >= 500:
            self.tally.five_xx.append(f"{label} {reply.status_code} {reply.text[:200]}")

    async def _submit(self, http: httpx.AsyncClient, label: str, xml_b64: str, **override: str) -> httpx.Response:
        form = {**self.form_base, "fileBase64Str": xml_b64, **override}
        reply = await http.post(SUBMIT_PATH, data=form)
        self._count(label, reply)
        return reply

    async def good(self, http: httpx.AsyncClient) -> None:
        if self.next_doc >= len(self.pool):
            return await self.bad_file(http)
        doc = self.pool[self.next_doc]
        self.next_doc += 1
        reply = await self._submit(http, "good", base64.b64encode(doc).decode())
        body = reply.json() if reply.status_code == 200 else {}
        if body.get("MaKetQua") == "200":
            self.tally.acknowledged.add(body["MaGD"])

    async def bad_file(self, http: httpx.AsyncClient) -> None:
        await self._submit(http, "invalid", base64.b64encode(self.invalid).decode())

    async def oversize(self, http: httpx.AsyncClient) -> None:
        await self._submit(http, "oversize", "A" * (7 * 1024 * 1024 + 8))

    async def bad_token(self, http: httpx.AsyncClient) -> None:
        await self._submit(http, "bad-token", "PA==", token="nope")

    async def junk(self, http: httpx.AsyncClient) -> None:
        choice = random.randrange(3)
        if choice == 0:
            reply = await http.post(SUBMIT_PATH, data={"loaiHs": "61", "fileBase64Str": "PA=="})
        elif choice == 1:
            reply = await http.post(TOKEN_PATH, data={"username": "x" * random.randrange(1, 300_000), "password": "A"})
        else:
            reply = await http.post(TOKEN_PATH, content=b"\xff\xfe" * 100, headers={"Content-Type": "text/plain"})
        self._count("junk", reply)

    async def double_slash(self, http: httpx.AsyncClient) -> None:
        path = random.choice(["//sandbox/facilities", "//api/token/take", "//", "///ipss/v1/feed"])
        # an absolute URL: with a relative one httpx merges the slashes into the base URL's path
        reply = await http.request(random.choice(["GET", "POST"]), self.server.base_url + path)
        self._count("slashes", reply)

    async def hostile_json(self, http: httpx.AsyncClient) -> None:
        body = random.choice([b'{"minutes": NaN}', b"[" * 100_000, b'{"now": "9999-12-31T00:00:00Z"}'])
        headers = {"Authorization": f"Bearer {self.server.admin_token}", "Content-Type": "application/json"}
        path = random.choice(["/sandbox/clock/advance", "/sandbox/clock"])
        method = "POST" if path.endswith("advance") else "PUT"
        reply = await http.request(method, path, content=body, headers=headers)
        self._count("json", reply)

    async def dashboard_login(self, http: httpx.AsyncClient) -> None:
        page = await http.get("/sandbox/ui/login")  # its CSRF token, as a browser gets it
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        reply = await http.post("/sandbox/ui/login", data={"token": "wrong", "csrf": found.group(1) if found else ""})
        self._count("login", reply)

    async def slow_upload(self, _http: httpx.AsyncClient) -> None:
        host, port = self.server.base_url.removeprefix("http://").split(":")
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"POST {SUBMIT_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nabc".encode())
        await writer.drain()
        await asyncio.sleep(random.uniform(0.5, 3))
        writer.close()

    async def health(self, http: httpx.AsyncClient) -> None:
        self._count("health", await http.get("/sandbox/health"))


def _worker_rss_mb(server: LocalPortal) -> float:
    largest = 0.0
    for pid in worker_pids(server):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    largest = max(largest, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return largest


def _killer(server: LocalPortal, tally: Tally, every: float, stop: threading.Event, started: float) -> None:
    while not stop.wait(random.uniform(0.5 * every, 1.5 * every)):
        workers = worker_pids(server)
        if workers:
            victim = random.choice(workers)
            try:
                os.kill(victim, signal.SIGKILL)
                tally.kills += 1
                print(f"[{time.monotonic() - started:6.0f} s] SIGKILL worker {victim}", flush=True)
            except ProcessLookupError:
                pass


def _sampler(server: LocalPortal, tally: Tally, stop: threading.Event, started: float) -> None:
    while not stop.wait(5):
        tally.rss.append((time.monotonic() - started, _worker_rss_mb(server)))


async def _drive(traffic: Traffic, base_url: str, seconds: float, concurrency: int) -> None:
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            while time.monotonic() < deadline:
                await traffic.one(http)

    await asyncio.gather(*(client() for _ in range(concurrency)))


def ipss_feed(server: LocalPortal) -> Counter[str]:
    seen: Counter[str] = Counter()
    after = 0
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": IPSS_KEY}, timeout=30) as http:
        while True:
            page = http.get("/ipss/v1/feed", params={"after": after, "limit": 500})
            page.raise_for_status()
            body = page.json()
            seen.update(item["ma_gd"] for item in body["items"])
            if not body["items"]:
                return seen
            after = body["next_after"]


def _wait_shared(server: LocalPortal, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    with server.admin() as admin:
        while time.monotonic() < deadline:
            pending = int(admin.get("/sandbox/sharing").json()["pending"])
            if pending == 0:
                return 0
            time.sleep(1)
    return pending


def _rss_flat(samples: list[tuple[float, float]], seconds: float) -> tuple[bool, float, float]:
    second = [rss for at, rss in samples if seconds / 4 <= at < seconds / 2]
    last = [rss for at, rss in samples if at >= seconds * 3 / 4]
    if not second or not last:
        return True, 0.0, 0.0
    early, late = max(second), max(last)
    return late <= early * 1.25 + 40, early, late


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--kill-every", type=float, default=60, help="mean seconds between worker kills")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--pool", type=int, default=3000, help="distinct valid documents signed up front")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    os.environ["PORTAL_IPSS_API_KEY"] = IPSS_KEY
    seconds = args.minutes * 60
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, running_server(Path(tmp), 2) as server:
        pki = TestPKI.create()
        facility = provision(server, pki, FACILITY)
        pool = sign_pool(facility.credential, FACILITY, args.pool)
        invalid = signed_sample(DocumentType.GCS, facility.credential, facility_code=FACILITY, invalid="tampered")
        traffic = Traffic(server, facility, pool, invalid, tally)
        stop, started = threading.Event(), time.monotonic()
        threads = [
            threading.Thread(target=_killer, args=(server, tally, args.kill_every, stop, started), daemon=True),
            threading.Thread(target=_sampler, args=(server, tally, stop, started), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            asyncio.run(_drive(traffic, server.base_url, seconds, args.concurrency))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        time.sleep(3)  # the supervisor restarts the last killed worker
        serving = httpx.get(f"{server.base_url}/sandbox/health", timeout=10).status_code == 200
        stored, _total = stored_accepted(server, FACILITY)
        lost = sorted(tally.acknowledged - stored)
        pending = _wait_shared(server)
        feed = ipss_feed(server)
        not_once = sorted(ma for ma in stored if feed[ma] != 1)
        flat, early, late = _rss_flat(tally.rss, seconds)
    result = {
        "minutes": args.minutes,
        "requests": sum(tally.statuses.values()),
        "resets": sum(tally.resets.values()),
        "resets_by_kind": dict(sorted(tally.resets.items())),
        "kills": tally.kills,
        "acknowledged": len(tally.acknowledged),
        "lost": len(lost),
        "ipss_pending": pending,
        "ipss_not_exactly_once": len(not_once),
        "five_xx": len(tally.five_xx),
        "rss_mb_q2_max": round(early, 1),
        "rss_mb_q4_max": round(late, 1),
        "rss_flat": flat,
        "serving": serving,
        "statuses": dict(sorted(tally.statuses.items())),
    }
    for line in tally.five_xx[:10]:
        print("5xx:", line, file=sys.stderr)
    ok = serving and not lost and not pending and not not_once and not tally.five_xx and flat and tally.acknowledged
    print(json.dumps({"ok": bool(ok), **result}, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
