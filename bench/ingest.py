"""Ingest benchmark: signed GCS submissions through real HTTP vs the in-process examination.

    .venv/bin/python bench/ingest.py [--seconds N] [--rate R] [--workers W] [--concurrency C]

Starts `mock-portal serve --workers W` on a free 127.0.0.1 port with a fresh SQLite file and its own
admin token, provisions a facility through the sandbox API (trusts a test CA, registers the
facility certificate), pre-signs a pool of distinct valid GCS documents, takes one token, and sends
`POST /api/hososuckhoe/guiGiayToDienTu` for N seconds: closed loop with C requests in flight, or
with --rate an open-loop schedule at R requests/s (latency counted from the scheduled instant, so
queueing in the client is not hidden). Afterwards it checks through `GET /sandbox/submissions`
that every acknowledged MaKetQua 200 was stored, reads the peak RSS (VmHWM) of the server
processes, stops the server, and times `mock_portal.portal.intake.examine_xml` in this process on one
core over the same documents. The last line is machine-readable; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import httpx

from conformance.portal import LocalPortal, start_local_portal
from fixtures.hospital import LOAI_HS, SUBMIT_PATH, HiapClient
from fixtures.pki import Credential, TestPKI, cert_pem
from fixtures.samples import signed_sample
from mock_portal.config import Settings
from mock_portal.documents import DocumentType
from mock_portal.portal.intake import IntakePolicy, examine_xml
from mock_portal.results.codes import SubmitResult
from mock_portal.signature.trust import TrustStore, fingerprint, load_certificates

HOST = "127.0.0.1"
FACILITY = "79901"
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- server lifecycle
def processes(server: LocalPortal) -> list[int]:
    """The server process and its descendants (uvicorn supervisor, workers, helpers)."""
    found, frontier = [server.process.pid], [server.process.pid]
    while frontier:
        pid = frontier.pop()
        for kid in _children(pid):
            found.append(kid)
            frontier.append(kid)
    return found


def worker_pids(server: LocalPortal) -> list[int]:
    """The uvicorn worker processes: spawned children running `spawn_main` (not the resource tracker).

    With one worker uvicorn serves from the started process itself.
    """
    if server.workers == 1:
        return [server.process.pid]
    return [pid for pid in processes(server)[1:] if b"spawn_main" in _read(f"/proc/{pid}/cmdline")]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        kids += [int(k) for k in _read(f"/proc/{pid}/task/{task}/children").split()]
    return kids


def vm_hwm_mb(pid: int) -> float:
    for line in _read(f"/proc/{pid}/status").decode().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat."""
    raw = _read(f"/proc/{pid}/stat").decode()
    if not raw:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@contextmanager
def database(directory: Path, kind: str) -> Iterator[str]:
    """The portal's database URL: a fresh SQLite file, or a fresh PostgreSQL server (fixtures/postgres.py: initdb
    + pg_ctl in a temporary directory, fsync and synchronous_commit on, as a real deployment has)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'portal.sqlite3'}"
        return
    from fixtures.postgres import PostgresServer

    server = PostgresServer.start(durable=True)
    try:
        yield server.new_database("bench")
    finally:
        server.stop()


@contextmanager
def running_server(directory: Path, workers: int, database_url: str = "", port: int = 0) -> Iterator[LocalPortal]:
    """`mock-portal serve` (conformance/portal.py's starter) on a free loopback port over `database_url`
    (default: a fresh SQLite file in `directory`), once every worker is up; its log's tail on failure."""
    server = start_local_portal(
        directory, port=port or None, host=HOST, workers=workers, database_url=database_url or None, timeout=60
    )
    try:
        _wait_workers(server)
        yield server
    except Exception:
        tail = server.log.read_text(errors="replace")[-3000:]
        if tail:
            print(f"--- server log (tail) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        server.stop()


def _wait_workers(server: LocalPortal) -> None:
    deadline = time.monotonic() + 60
    while len(worker_pids(server)) < server.workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.workers} workers did not start within 60 s")
        time.sleep(0.1)


# --------------------------------------------------------------------------- provisioning and documents
@dataclass
class Facility:
    code: str
    credential: Credential
    ca_pem: bytes
    client: HiapClient


def provision(server: LocalPortal, pki: TestPKI, code: str) -> Facility:
    password = secrets.token_urlsafe(12)
    username = f"{code}_BV"
    credential = pki.issue_facility_cert(code)
    ca_pem = cert_pem(pki.root.cert)
    pem_type = {"Content-Type": "application/x-pem-file"}
    with server.admin() as admin:
        steps = [
            admin.post("/sandbox/trust/cas", content=ca_pem, headers=pem_type),
            admin.post(
                "/sandbox/facilities",
                json={"code": code, "name": f"Bệnh viện {code}", "username": username, "password": password},
            ),
            admin.post(
                f"/sandbox/facilities/{code}/certificates",
                content=cert_pem(credential.cert),
                headers=pem_type,
            ),
        ]
    for step in steps:
        if step.status_code != 201:
            raise RuntimeError(f"{step.request.method} {step.request.url.path}: {step.status_code} {step.text}")
    client = HiapClient(server.base_url, facility_code=code, username=username, password=password)
    return Facility(code, credential, ca_pem, client)


def sign_pool(credential: Credential, code: str, size: int) -> list[bytes]:
    """Distinct valid GCS documents (serials 1..size, so distinct MA_GCS), signed a minute ago."""
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return [
        signed_sample(
            DocumentType.GCS,
            credential,
            facility_code=code,
            serial=i,
            seed=i,
            issued_at=when,
            signing_time=when,
        )
        for i in range(1, size + 1)
    ]


# --------------------------------------------------------------------------- HTTP load
@dataclass
class LoadResult:
    sent: int = 0
    accepted: int = 0
    other_results: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    """Of accepted submissions; closed loop: send -> reply; open loop: scheduled instant -> reply."""
    ma_gd: set[str] = field(default_factory=set)
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    late_starts: int = 0
    """Open loop: requests that started > 10 ms after their scheduled instant (client or cap saturated)."""


Post = Callable[[bytes], Awaitable[tuple[int, bytes]]]
"""Sends one form body to the submit path; the reply's HTTP status and body (raises on transport errors)."""


@asynccontextmanager
async def http_client(kind: str, base_url: str, concurrency: int) -> AsyncIterator[Post]:
    """A keep-alive client of at most `concurrency` connections: aiohttp (the default, ~0.5 ms of CPU
    per request) or httpx (what the figures before 2026-12-01 used, ~1.1 ms) — the client shares the
    server's cores, so its cost is part of the result."""
    url = base_url + SUBMIT_PATH
    if kind == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:

            async def post_httpx(body: bytes) -> tuple[int, bytes]:
                reply = await client.post(url, content=body, headers=FORM_TYPE)
                return reply.status_code, reply.content

            yield post_httpx
        return
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def post_aiohttp(body: bytes) -> tuple[int, bytes]:
            async with session.post(url, data=body, headers=FORM_TYPE) as reply:
                return reply.status, await reply.read()

        yield post_aiohttp


async def _send(post: Post, body: bytes, result: LoadResult, started: float) -> None:
    result.sent += 1
    try:
        status, raw = await post(body)
    except (TimeoutError, httpx.HTTPError, aiohttp.ClientError) as exc:
        name = type(exc).__name__
        result.errors[name] = result.errors.get(name, 0) + 1
        return
    done = time.perf_counter()
    if status != 200:
        key = f"HTTP {status}"
        result.errors[key] = result.errors.get(key, 0) + 1
        return
    payload = json.loads(raw)
    code = str(payload.get("MaKetQua"))
    if code == SubmitResult.OK.value:
        result.accepted += 1
        result.ma_gd.add(payload["MaGD"])
        result.latencies_ms.append((done - started) * 1000)
    else:
        result.other_results[code] = result.other_results.get(code, 0) + 1


async def _closed_loop(http: Post, bodies: list[bytes], seconds: float, concurrency: int, result: LoadResult) -> None:
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def user() -> None:
        while time.perf_counter() < deadline:
            body = bodies[next(counter) % len(bodies)]
            await _send(http, body, result, time.perf_counter())

    await asyncio.gather(*(user() for _ in range(concurrency)))


async def _open_loop(
    http: Post,
    bodies: list[bytes],
    seconds: float,
    rate: float,
    concurrency: int,
    result: LoadResult,
) -> None:
    total = int(seconds * rate)
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()

    async def one(index: int, scheduled: float) -> None:
        async with gate:
            if time.perf_counter() - scheduled > 0.010:
                result.late_starts += 1
            await _send(http, bodies[index % len(bodies)], result, scheduled)

    tasks = []
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)


def run_load(
    base_url: str,
    bodies: list[bytes],
    *,
    seconds: float,
    rate: float | None,
    concurrency: int,
    warmup: list[bytes],
    client: str = "aiohttp",
) -> tuple[LoadResult, LoadResult]:
    async def main() -> tuple[LoadResult, LoadResult]:
        async with http_client(client, base_url, concurrency) as http:
            warm = LoadResult()
            await asyncio.gather(*(_send(http, body, warm, time.perf_counter()) for body in warmup))
            result = LoadResult()
            cpu0, t0 = time.process_time(), time.perf_counter()
            if rate:
                await _open_loop(http, bodies, seconds, rate, concurrency, result)
            else:
                await _closed_loop(http, bodies, seconds, concurrency, result)
            result.elapsed_s = time.perf_counter() - t0
            result.client_cpu_s = time.process_time() - cpu0
            return warm, result

    return asyncio.run(main())


def stored_accepted(server: LocalPortal, code: str) -> tuple[set[str], int]:
    """MaGD of every stored MaKetQua 200 of the facility (paged), and the health endpoint's total."""
    stored: set[str] = set()
    before: int | None = None
    with server.admin() as admin:
        while True:
            params: dict[str, str | int] = {"facility": code, "result": "200", "limit": 500}
            if before is not None:
                params["before"] = before
            page = admin.get("/sandbox/submissions", params=params)
            page.raise_for_status()
            rows = page.json()
            stored.update(row["ma_gd"] for row in rows if row.get("ma_gd"))
            if len(rows) < 500:
                break
            before = min(row["id"] for row in rows)
        health = admin.get("/sandbox/health")
        health.raise_for_status()
    return stored, int(health.json().get("submissions", -1))


def prefill(database: Path, count: int, batch: int = 5000) -> None:
    """Copy the last accepted submission and its document `count` times (facility 99999, outbox row
    already shared), straight into the SQLite file, in transactions of `batch` rows."""
    con = sqlite3.connect(database, timeout=60)
    try:
        columns = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})") if r[1] != "id"] for t in TABLES}
        sub_id, doc_id = con.execute("SELECT submission_id, id FROM documents ORDER BY id DESC LIMIT 1").fetchone()
        sub_cols, doc_cols = columns["submissions"], columns["documents"]

        def copy(table: str, cols: list[str], overrides: dict[str, str]) -> str:
            values = ", ".join(overrides.get(c, c) for c in cols)
            return f"INSERT INTO {table} ({', '.join(cols)}) SELECT {values} FROM {table} WHERE id = ?"

        copy_sub = copy("submissions", sub_cols, {"facility_code": "'99999'", "ma_gd": "'PREFILL-' || ?"})
        copy_doc = copy(
            "documents", doc_cols, {"facility_code": "'99999'", "submission_id": "?", "expectation_id": "NULL"}
        )
        done = 0
        while done < count:
            with con:
                for n in range(done, min(count, done + batch)):
                    new_sub = con.execute(copy_sub, (n, sub_id)).lastrowid
                    new_doc = con.execute(copy_doc, (new_sub, doc_id)).lastrowid
                    con.execute(
                        "INSERT INTO outbox (document_id, created_at, shared_at) VALUES (?, datetime('now'), "
                        "datetime('now'))",
                        (new_doc,),
                    )
            done = min(count, done + batch)
    finally:
        con.close()


TABLES = ("submissions", "documents")


# --------------------------------------------------------------------------- in-process reference
def trust_store(ca_pem: bytes, code: str, credential: Credential) -> TrustStore:
    """The trust store as `mock_portal.portal.service._trust_store` builds it from the database rows."""
    return TrustStore(
        cas=tuple(load_certificates(ca_pem)),
        crls=(),
        registrations={code: frozenset({fingerprint(credential.cert)})},
    )


def inprocess_rate(docs: list[bytes], facility: Facility, seconds: float) -> tuple[float, int]:
    """examine_xml calls per second on one pinned core, over the same documents; every one must pass."""
    settings = Settings()
    policy, trust = IntakePolicy.of(settings), trust_store(facility.ca_pem, facility.code, facility.credential)
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(previous)})
    try:

        def examine(doc: bytes) -> None:
            verdict = examine_xml(
                DocumentType.GCS,
                doc,
                facility_code=facility.code,
                received_at=datetime.now(UTC),
                trust=trust,
                policy=policy,
            )
            if verdict.result is not SubmitResult.OK:
                raise RuntimeError(f"in-process examination refused a pool document: {verdict.explain()}")

        for doc in docs[:5]:  # warm-up: XSD compilation, caches
            examine(doc)
        count, start = 0, time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            examine(docs[count % len(docs)])
            count += 1
        return count / (time.perf_counter() - start), count
    finally:
        os.sched_setaffinity(0, previous)


# --------------------------------------------------------------------------- main
def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/ingest.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the measured HTTP phase")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop at this offered rate (req/s); default: closed loop, unlimited",
    )
    parser.add_argument(
        "--db", choices=["sqlite", "postgresql"], default="sqlite", help="the portal's database (default sqlite)"
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (uvicorn --workers)")
    parser.add_argument("--port", type=int, default=0, help="the server's loopback port (default: a free one)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most")
    parser.add_argument(
        "--client",
        choices=["aiohttp", "httpx"],
        default="aiohttp",
        help="the HTTP client of the load phase (httpx: as the figures before 2026-12-01)",
    )
    parser.add_argument("--pool", type=int, default=500, help="distinct pre-signed GCS documents (cycled)")
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="store this many extra accepted documents (copies, facility 99999) before measuring, "
        "to see RSS and latency with a big database (e.g. 10000 vs 100000)",
    )
    parser.add_argument(
        "--inprocess-seconds",
        type=float,
        default=5.0,
        help="length of the in-process examine_xml measurement",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 600:
        parser.error("--seconds must be in (0, 600]")
    if args.rate is not None and not 0 < args.rate <= 5000:
        parser.error("--rate must be in (0, 5000]")
    if not 1 <= args.workers <= 16 or not 1 <= args.concurrency <= 256 or not 1 <= args.pool <= 99999:
        parser.error("--workers 1..16, --concurrency 1..256, --pool 1..99999")
    if not 0 <= args.port <= 65535:
        parser.error("--port 0..65535")
    if not 0 <= args.prefill <= 1_000_000:
        parser.error("--prefill 0..1000000")
    if args.prefill and args.db != "sqlite":
        parser.error("--prefill writes the SQLite file directly: only with --db sqlite")
    return args


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    mode = f"open loop at {args.rate:g} req/s" if args.rate else "closed loop (unlimited rate)"
    print(
        f"ingest bench: {args.seconds:g} s, {mode}, {args.concurrency} in flight max, "
        f"{args.workers} server workers, {os.cpu_count()} CPUs, {args.db}, {args.client} client",
        flush=True,
    )
    pki = TestPKI.create({FACILITY: "Bệnh viện Bench"})
    with (
        tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp,
        database(Path(tmp), args.db) as database_url,
        running_server(Path(tmp), args.workers, database_url, args.port) as srv,
    ):
        facility = provision(srv, pki, FACILITY)
        t0 = time.perf_counter()
        docs = sign_pool(facility.credential, facility.code, args.pool)
        print(
            f"signed {len(docs)} distinct GCS in {time.perf_counter() - t0:.1f} s "
            f"(~{sum(map(len, docs)) // len(docs)} bytes each)",
            flush=True,
        )
        facility.client.take_token()
        if args.prefill:
            t0 = time.perf_counter()
            facility.client.send("GCS", docs[0])  # the accepted submission the copies are made of
            prefill(Path(tmp) / "portal.sqlite3", args.prefill)
            print(f"prefilled {args.prefill} accepted documents in {time.perf_counter() - t0:.1f} s", flush=True)
        bodies = [urlencode(facility.client.form(LOAI_HS["GCS"], doc)).encode("ascii") for doc in docs]
        workers = worker_pids(srv)
        cpu_before = {pid: cpu_seconds(pid) for pid in workers}
        warm, load = run_load(
            srv.base_url,
            bodies,
            seconds=args.seconds,
            rate=args.rate,
            concurrency=args.concurrency,
            warmup=bodies[-2 * args.concurrency :],
            client=args.client,
        )
        worker_cpu = [cpu_seconds(pid) - cpu_before[pid] for pid in workers]
        server_cpu = sum(worker_cpu)
        stored, health_total = stored_accepted(srv, facility.code)
        rss = {pid: vm_hwm_mb(pid) for pid in processes(srv)}
        worker_rss = [rss[pid] for pid in workers]
    # the server is stopped here: the in-process measurement gets a quiet core
    acked = warm.ma_gd | load.ma_gd
    lost = acked - stored
    inproc_per_s, inproc_n = inprocess_rate(docs, facility, args.inprocess_seconds)

    accepted_per_s = load.accepted / load.elapsed_s if load.elapsed_s else 0.0
    lat = load.latencies_ms
    p50, p95, p99 = (percentile(lat, q) for q in (0.50, 0.95, 0.99))
    ratio = accepted_per_s / inproc_per_s if inproc_per_s else float("nan")
    rss_mb = max(worker_rss) if worker_rss else 0.0

    print(
        f"sent {load.sent} in {load.elapsed_s:.2f} s: accepted (MaKetQua 200) {load.accepted}, "
        f"other MaKetQua {load.other_results or 0}, transport/HTTP errors {load.errors or 0}"
    )
    if args.rate:
        print(f"offered {args.rate:g} req/s; starts later than 10 ms after schedule: {load.late_starts}")
    print(
        f"accepted/s {accepted_per_s:.1f}   latency ms p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  "
        f"max {max(lat) if lat else float('nan'):.1f}"
    )
    per_req = 1000 / load.accepted if load.accepted else float("nan")
    print(
        f"CPU during the phase: server workers {server_cpu:.1f} s ({server_cpu * per_req:.2f} ms/accepted), "
        f"bench client {load.client_cpu_s:.1f} s ({load.client_cpu_s * per_req:.2f} ms/accepted); "
        f"share per worker {' / '.join(f'{100 * c / server_cpu:.0f} %' for c in worker_cpu) if server_cpu else '-'} "
        "(each worker is one process with one GIL: a lopsided share caps throughput and latency)"
    )
    print(
        f"stored check: acknowledged 200 (incl. {warm.accepted} warm-up) {len(acked)}, stored 200 "
        f"{len(stored)}, missing {len(lost)}; health submissions {health_total}"
    )
    print(
        "peak RSS (VmHWM) MB: "
        + ", ".join(
            f"{'worker' if pid in workers else 'supervisor' if pid == srv.process.pid else 'helper'} {pid} {mb:.1f}"
            for pid, mb in rss.items()
        )
        + f"; workers total {sum(worker_rss):.1f}"
    )
    print(
        f"in-process examine_xml on one core: {inproc_per_s:.1f}/s ({inproc_n} calls, "
        f"{1000 / inproc_per_s:.2f} ms each); HTTP/in-process ratio {ratio:.2f}"
    )
    failed = bool(lost) or load.accepted == 0
    if failed:
        print(
            f"FAIL: {len(lost)} acknowledged submissions not stored" if lost else "FAIL: nothing accepted",
            flush=True,
        )
    print(
        f"accepted_per_s={accepted_per_s:.1f} p99_ms={p99:.1f} inprocess_per_s={inproc_per_s:.1f} "
        f"ratio={ratio:.2f} rss_mb={rss_mb:.1f}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        sys.exit(130)
