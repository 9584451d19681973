"""Issue 24: can attackers stall the portal for a well-behaved hospital? Health and valid-submission latency
under five attacks.

    .venv/bin/python bench/stall.py [--seconds 6] [--attackers 4,8] [--reset-rows 10000] [--attacks ...]

Starts `mock-portal serve --workers 2` (bench/ingest.py's `running_server`: free loopback port, fresh
SQLite file in a temp dir, default settings), provisions the legit facility 79901 (bench/ingest.py's
`provision`), pre-signs its valid GCS (`sign_pool`) and takes its token; the attackers hold an
account of their own in the same workspace (facility 79902, `attacker_client`: any tenant could) and
send with its token. Then, per attack and per attacker count N,
N attacking connections run in a separate process (closed loop: each sends again on its reply)
while the legit client in this process sends, on a fixed schedule, `GET /sandbox/health` every
100 ms and `--submit-rate` valid signed GCS a second for `--seconds`; a latency is counted from the
scheduled instant to the reply (so queueing in the client is not hidden). The attacks:

- `none`: nobody attacks (the baseline; no attackers).
- `wrong-password`: a ~213-byte submission of the attackers' account, with its valid token and a
  random password MD5 each time (the portal checks the password with scrypt), from the legit
  hospital's own address (loopback).
- `wrong-password-token`: `/api/token/take` for the legit account with a random password each time.
- `inline-worst`: a ~32.7 KB form, just under `Settings.inline_limit`, authenticated: a signed GCS
  with ~4,200 empty elements inside GIAYCHUNGSINH (~22 KB), served on the worker's event loop.
- `many-elements`: an authenticated ~5 MiB file of empty elements (refused with XML_TOO_MANY_ELEMENTS).
- `reset`: another workspace (created through `POST /sandbox/workspaces`) gets `--reset-rows` journal
  rows first (tiny authenticated submissions, 8 at a time; `--reset-fill journal`, the default: each
  answered at the gateway by a fault plan's portal error, a journal row only; `submissions`: each
  refused as not XML and stored, a submission row too; the prefill's time is printed), then one
  `POST /sandbox/reset` in that workspace a third into the window (one attacker, whatever N).

Per row: health p50/p99 and its statuses; valid submissions p50/p99, their count and the set of
their MaKetQua; what the attackers got (MaKetQua and first `X-Sandbox-Explain` code, counted); the
CPU seconds of the server workers, the legit client and the attacking process during the window; how
long after the window the attackers' last replies came (`drain_s`: the backlog the server still
worked off; the next row waits for it).
Targets, per row: health p99 < `--health-target-ms` (100) and every health reply 200; valid
submission p99 < `--submit-target-ms` (250) and every one MaKetQua 200.

Human-readable lines first; the last line is JSON with `"ok"`; exit status 1 when a target is missed.
See bench/README.md, "Stall targets (issue 24)".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from ingest import FORM_TYPE, Facility, cpu_seconds, percentile, provision, running_server, sign_pool, worker_pids

from conformance.portal import LocalPortal
from fixtures.hospital import LOAI_HS, SUBMIT_PATH, TOKEN_PATH, HiapClient
from fixtures.pki import TestPKI
from mock_portal.config import Settings

LEGIT, ATTACKER, RESET_FACILITY = "79901", "79902", "79903"
ATTACKS = ("none", "wrong-password", "wrong-password-token", "inline-worst", "many-elements", "reset")
FLOODS = ("wrong-password", "wrong-password-token", "inline-worst", "many-elements")
"""The attacks run with each attacker count; `none` has no attacker, `reset` is one request."""
HEALTH_EVERY = 0.1  # seconds
RAMP = 0.5  # seconds the attackers run before the window opens
REQUEST_TIMEOUT = 30.0
PREFILL_CONNECTIONS = 8
WARM_UP = 6  # valid submissions before the first window
SETTINGS = Settings()  # the server runs with the defaults too


# --------------------------------------------------------------------------- requests
async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[str, str]:
    """The reply's MaKetQua (`maKetQua` for a token) and the code `X-Sandbox-Explain` starts with; for
    anything but an HTTP 200, "HTTP <status>" or the transport error's name."""
    try:
        async with session.post(url, data=body, headers=FORM_TYPE) as reply:
            raw = await reply.read()
            status, explain = reply.status, reply.headers.get("X-Sandbox-Explain", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__, ""
    if status != 200:
        return f"HTTP {status}", ""
    payload = json.loads(raw)
    return str(payload.get("MaKetQua", payload.get("maKetQua"))), explain.split(":", 1)[0]


def session(connections: int, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers)


# --------------------------------------------------------------------------- attacks
@dataclass(frozen=True)
class Attack:
    name: str
    path: str
    body: Callable[[], bytes]
    """The next request's url-encoded form (called for every request)."""


def with_empty_elements(xml: bytes, count: int, tag: bytes = b"GIAYCHUNGSINH") -> bytes:
    """`xml` with `count` empty elements at the start of its first `tag` element."""
    start = xml.index(b"<" + tag)
    end = xml.index(b">", start) + 1
    return xml[:end] + b"<a/>" * count + xml[end:]


def inline_worst(client: HiapClient, doc: bytes, limit: int) -> bytes:
    """The form of `doc` with as many empty elements as fit in a body of at most `limit` bytes."""

    def body(count: int) -> bytes:
        return urlencode(client.form(LOAI_HS["GCS"], with_empty_elements(doc, count))).encode("ascii")

    low, high = 0, limit
    while low < high:  # the largest count whose body fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if len(body(middle)) <= limit else (low, middle - 1)
    return body(low)


def many_elements(client: HiapClient, file_bytes: int) -> bytes:
    """A form with a file of `file_bytes` at most, all empty elements in one root. Each element is
    `<a/> \\n`: 6 bytes whose base64 holds no `+` or `/`, so url-encoding adds nothing and the body
    stays under the portal's body cap."""
    head, tail, unit = b'<?xml version="1.0" encoding="utf-8"?><HSDLGCS>', b"</HSDLGCS>", b"<a/> \n"
    head += b" " * (-len(head) % 3)  # the elements start on a base64 group
    xml = head + unit * ((file_bytes - len(head) - len(tail)) // len(unit)) + tail
    return urlencode(client.form(LOAI_HS["GCS"], xml)).encode("ascii")


def attacker_client(server: LocalPortal) -> HiapClient:
    """The attackers' own account (no certificate: their files need none to cost the portal work), its
    token taken."""
    username = f"{ATTACKER}_BV"
    with server.admin() as operator:
        operator.post(
            "/sandbox/facilities",
            json={"code": ATTACKER, "name": "BV attacker", "username": username, "password": "pw"},
        ).raise_for_status()
    client = HiapClient(server.base_url, facility_code=ATTACKER, username=username, password="pw")
    client.take_token()
    return client


def attacks(legit: Facility, attacker: HiapClient, doc: bytes) -> dict[str, Attack]:
    """The flooding attacks (`none` and `reset` have no attacking connections); a token request names the
    legit account (the lock-out attempt), a submission the attackers' own."""
    tiny = attacker.form(LOAI_HS["GCS"], b"<a/>")
    inline = inline_worst(attacker, doc, SETTINGS.inline_limit)
    huge = many_elements(attacker, SETTINGS.max_file_bytes)
    if len(huge) > SETTINGS.max_body_bytes:
        raise RuntimeError(f"the many-elements body ({len(huge)} bytes) is over the portal's cap")

    def wrong_password() -> bytes:
        return urlencode({**tiny, "password": secrets.token_hex(16).upper()}).encode("ascii")

    def wrong_token_password() -> bytes:
        return urlencode({"username": legit.client.username, "password": secrets.token_hex(16).upper()}).encode()

    return {
        "wrong-password": Attack("wrong-password", SUBMIT_PATH, wrong_password),
        "wrong-password-token": Attack("wrong-password-token", TOKEN_PATH, wrong_token_password),
        "inline-worst": Attack("inline-worst", SUBMIT_PATH, lambda: inline),
        "many-elements": Attack("many-elements", SUBMIT_PATH, lambda: huge),
    }


def flood(
    base_url: str,
    attack: Attack,
    connections: int,
    deadline: float,
    started: Event,
    stop: Event,
    results: Queue[dict[str, Any]],
) -> None:
    """An attacking process: `connections` closed loops until `stop` (or the hard `deadline`); puts what
    they got and this process's CPU seconds on `results`."""
    cpu = time.process_time()
    outcomes: Counter[str] = Counter()

    async def main() -> None:
        async with session(connections) as http:

            async def connection() -> None:
                while not stop.is_set() and time.monotonic() < deadline:
                    outcomes[" ".join(filter(None, await post(http, base_url + attack.path, attack.body())))] += 1

            started.set()
            await asyncio.gather(*(connection() for _ in range(connections)))

    asyncio.run(main())
    results.put({"outcomes": dict(outcomes), "cpu_s": time.process_time() - cpu})


# --------------------------------------------------------------------------- the legit client
@dataclass
class Probe:
    latencies_ms: list[float]
    outcomes: Counter[str]

    def summary(self) -> dict[str, Any]:
        return {
            "count": len(self.latencies_ms),
            "p50_ms": round(percentile(self.latencies_ms, 0.50), 1),
            "p99_ms": round(percentile(self.latencies_ms, 0.99), 1),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 1),
            "results": sorted(self.outcomes),
        }


async def scheduled(count: int, every: float, start: float, send: Callable[[], Any]) -> Probe:
    """`send()` at start, start + every, ...: each on its own, so a slow reply delays no later one."""
    probe = Probe([], Counter())

    async def one(index: int) -> None:
        at = start + index * every
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        probe.outcomes[await send()] += 1
        probe.latencies_ms.append((time.perf_counter() - at) * 1000)

    await asyncio.gather(*(one(index) for index in range(count)))
    return probe


async def health(http: aiohttp.ClientSession, url: str) -> str:
    try:
        async with http.get(url) as reply:
            await reply.read()
            return str(reply.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


@dataclass(frozen=True)
class Reset:
    """The reset attack: a workspace's key and the moment into the window its reset is sent."""

    key: str
    after: float


async def legit_window(
    base_url: str, bodies: Iterator[bytes], seconds: float, rate: float, reset: Reset | None
) -> tuple[Probe, Probe, dict[str, Any]]:
    """Health every HEALTH_EVERY s and `rate` valid submissions a second for `seconds`; with `reset`,
    that workspace's `POST /sandbox/reset` too (its status and time)."""
    submissions = [next(bodies) for _ in range(int(seconds * rate))]
    pending = iter(submissions)
    async with session(64) as http:

        async def submit() -> str:
            return (await post(http, base_url + SUBMIT_PATH, next(pending)))[0]

        async def do_reset(plan: Reset) -> dict[str, Any]:
            await asyncio.sleep(plan.after)
            started = time.perf_counter()
            headers = {"Authorization": f"Bearer {plan.key}"}
            async with http.post(f"{base_url}/sandbox/reset", headers=headers) as reply:
                status = reply.status
            return {"status": status, "ms": round((time.perf_counter() - started) * 1000, 1)}

        start = time.perf_counter() + 0.05
        health_url = base_url + "/sandbox/health"
        probes = asyncio.gather(
            scheduled(int(seconds / HEALTH_EVERY), HEALTH_EVERY, start, lambda: health(http, health_url)),
            scheduled(len(submissions), 1 / rate, start, submit),
        )
        if reset is None:
            health_probe, submit_probe = await probes
            return health_probe, submit_probe, {}
        (health_probe, submit_probe), reset_reply = await asyncio.gather(probes, do_reset(reset))
        return health_probe, submit_probe, reset_reply


# --------------------------------------------------------------------------- the reset workspace
def reset_workspace(server: LocalPortal, fill: str) -> tuple[str, str, HiapClient]:
    """A new workspace without a submission quota, with one facility and its token: id, key, client. For
    the `journal` fill, with a fault plan that answers every submission at the gateway: a journal row and
    nothing else, twice as fast to send as examined submissions (each a submission row too)."""
    with server.admin() as operator:
        created = operator.post(
            "/sandbox/workspaces", json={"name": "stall-reset", "quotas": {"max_submissions_per_minute": None}}
        )
    created.raise_for_status()
    workspace, key = created.json()["id"], created.json()["key"]
    username = f"{RESET_FACILITY}_{workspace}"
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
        facility = api.post(
            "/sandbox/facilities",
            json={"code": RESET_FACILITY, "name": "BV reset", "username": username, "password": "pw"},
        )
        facility.raise_for_status()
        if fill == "journal":
            plan = {"faults": [{"effect": "portal_error", "operations": ["submit"]}]}
            api.put("/sandbox/faults", json=plan).raise_for_status()
    client = HiapClient(server.base_url, facility_code=RESET_FACILITY, username=username, password="pw")
    client.take_token()
    return workspace, key, client


def prefill(server: LocalPortal, client: HiapClient, rows: int) -> dict[str, Any]:
    """`rows` tiny authenticated submissions in the workspace (each journalled; refused and stored, or
    answered by the fault plan)."""
    body = urlencode(client.form(LOAI_HS["GCS"], b"x")).encode("ascii")
    remaining = iter(range(rows))
    outcomes: Counter[str] = Counter()

    async def main() -> None:
        async with session(PREFILL_CONNECTIONS) as http:

            async def connection() -> None:
                for _ in remaining:
                    outcomes[" ".join(filter(None, await post(http, server.base_url + SUBMIT_PATH, body)))] += 1

            await asyncio.gather(*(connection() for _ in range(PREFILL_CONNECTIONS)))

    started = time.perf_counter()
    asyncio.run(main())
    return {"requests": rows, "seconds": round(time.perf_counter() - started, 1), "outcomes": dict(outcomes)}


def workspace_rows(database: Path, workspace: str) -> dict[str, int]:
    """The workspace's journal and submission rows, read from the SQLite file."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as con:
        return {
            table: con.execute(f"SELECT count(*) FROM {table} WHERE workspace_id = ?", (workspace,)).fetchone()[0]
            for table in ("journal", "submissions")
        }


# --------------------------------------------------------------------------- one row
def measure(
    server: LocalPortal,
    bodies: Iterator[bytes],
    args: argparse.Namespace,
    attack: Attack | None,
    attackers: int,
    reset: Reset | None = None,
) -> dict[str, Any]:
    """One window: the legit client's measurements with `attackers` connections of `attack` (or none)."""
    workers = worker_pids(server)
    context = multiprocessing.get_context("fork")
    started, stop, results = context.Event(), context.Event(), context.Queue()
    process = None
    if attack is not None:
        deadline = time.monotonic() + RAMP + args.seconds + REQUEST_TIMEOUT
        process = context.Process(
            target=flood, args=(server.base_url, attack, attackers, deadline, started, stop, results), daemon=True
        )
        process.start()
        if not started.wait(10):
            raise RuntimeError("the attacking process did not start")
        time.sleep(RAMP)
    cpu_before = {pid: cpu_seconds(pid) for pid in workers}
    client_cpu = time.process_time()
    health_probe, submit_probe, reset_reply = asyncio.run(
        legit_window(server.base_url, bodies, args.seconds, args.submit_rate, reset)
    )
    client_cpu = time.process_time() - client_cpu
    server_cpu = sum(cpu_seconds(pid) - cpu_before[pid] for pid in workers)
    flooded: dict[str, Any] = {"outcomes": {}, "cpu_s": 0.0}
    drain = time.perf_counter()
    if process is not None:
        stop.set()
        flooded = results.get(timeout=REQUEST_TIMEOUT + 10)
        process.join(10)
    drain = time.perf_counter() - drain
    name = attack.name if attack else ("reset" if reset else "none")
    row = {
        "attack": name,
        "attackers": attackers,
        "health": health_probe.summary(),
        "submit": submit_probe.summary(),
        "attacker_replies": flooded["outcomes"],
        "drain_s": round(drain, 1),
        "cpu_s": {
            "server_workers": round(server_cpu, 2),
            "legit_client": round(client_cpu, 2),
            "attackers": round(flooded["cpu_s"], 2),
        },
        **({"reset": reset_reply} if reset else {}),
    }
    row["targets"] = {
        "health_p99": row["health"]["p99_ms"] < args.health_target_ms and row["health"]["results"] == ["200"],
        "submit_p99": row["submit"]["p99_ms"] < args.submit_target_ms and row["submit"]["results"] == ["200"],
    }
    row["ok"] = all(row["targets"].values())
    return row


def describe(row: dict[str, Any]) -> str:
    health, submit, cpu = row["health"], row["submit"], row["cpu_s"]
    missed = [name for name, met in row["targets"].items() if not met]
    replies = sum(row["attacker_replies"].values())
    reset = f" | reset {row['reset']['status']} in {row['reset']['ms']:.0f} ms" if "reset" in row else ""
    return (
        f"{row['attack']:<21} x{row['attackers']:<2} health p50 {health['p50_ms']:7.1f} p99 {health['p99_ms']:7.1f} ms "
        f"({health['count']}, {'/'.join(health['results'])}) | valid GCS p50 {submit['p50_ms']:7.1f} "
        f"p99 {submit['p99_ms']:7.1f} ms ({submit['count']}, MaKetQua {'/'.join(submit['results'])}) | "
        f"attackers got {replies} replies {json.dumps(row['attacker_replies'])}, the last {row['drain_s']:.1f} s "
        f"after the window{reset} | CPU s: workers "
        f"{cpu['server_workers']:.1f}, legit client {cpu['legit_client']:.2f}, attackers {cpu['attackers']:.2f} | "
        + ("PASS" if row["ok"] else f"FAIL ({', '.join(missed)})")
    )


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/stall.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured window per attack and attacker count")
    parser.add_argument("--attackers", default="4,8", help="attacking connections, comma-separated counts")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help=f"comma-separated, of {', '.join(ATTACKS)}")
    parser.add_argument("--submit-rate", type=float, default=4.0, help="valid legit submissions per second")
    parser.add_argument("--reset-rows", type=int, default=10_000, help="journal rows of the workspace reset")
    parser.add_argument(
        "--reset-fill",
        choices=["submissions", "journal"],
        default="journal",
        help="what fills the reset workspace: journal rows only, or stored refused submissions (2x slower to send)",
    )
    parser.add_argument("--health-target-ms", type=float, default=100.0, help="health p99 must stay below")
    parser.add_argument("--submit-target-ms", type=float, default=250.0, help="valid submission p99 must stay below")
    args = parser.parse_args(argv)
    args.attackers = [int(count) for count in args.attackers.split(",")]
    args.attacks = args.attacks.split(",")
    if not 0 < args.seconds <= 60 or not 0 < args.submit_rate <= 20:
        parser.error("--seconds in (0, 60], --submit-rate in (0, 20]")
    if not all(1 <= count <= 32 for count in args.attackers) or not 1 <= args.reset_rows <= 50_000:
        parser.error("--attackers each 1..32, --reset-rows 1..50000")
    if unknown := set(args.attacks) - set(ATTACKS):
        parser.error(f"unknown attacks: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"stall bench: {args.seconds:g} s per row, attackers {args.attackers}, {args.submit_rate:g} valid GCS/s, "
        f"health every {HEALTH_EVERY * 1000:.0f} ms; {os.cpu_count()} CPUs, load average {load}",
        flush=True,
    )
    windows = sum(len(args.attackers) if name in FLOODS else 1 for name in args.attacks)
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stall-bench-") as tmp:
        database = Path(tmp) / "portal.sqlite3"
        with running_server(Path(tmp), 2, f"sqlite:///{database}") as server:
            legit = provision(server, TestPKI.create({LEGIT: "Bệnh viện Bench"}), LEGIT)
            docs = sign_pool(legit.credential, LEGIT, windows * int(args.seconds * args.submit_rate) + WARM_UP)
            legit.client.take_token()
            forms = [legit.client.form(LOAI_HS["GCS"], doc) for doc in docs]
            for form in forms[:WARM_UP]:  # not measured: both workers' first submissions (XSD, caches)
                legit.client.send_form(form)
            bodies = iter([urlencode(form).encode("ascii") for form in forms[WARM_UP:]])
            floods = attacks(legit, attacker_client(server), docs[0])
            summary["bodies"] = {name: len(attack.body()) for name, attack in floods.items()}
            print(f"attack bodies (bytes): {json.dumps(summary['bodies'])}", flush=True)
            for name in args.attacks:
                if name == "none":
                    rows.append(measure(server, bodies, args, None, 0))
                elif name == "reset":
                    workspace, key, client = reset_workspace(server, args.reset_fill)
                    summary["reset_prefill"] = prefill(server, client, args.reset_rows)
                    summary["reset_prefill"] |= {"fill": args.reset_fill, "rows": workspace_rows(database, workspace)}
                    print(f"reset prefill: {json.dumps(summary['reset_prefill'])}", flush=True)
                    rows.append(measure(server, bodies, args, None, 1, Reset(key, args.seconds / 3)))
                else:
                    for count in args.attackers:
                        rows.append(measure(server, bodies, args, floods[name], count))
                        print(describe(rows[-1]), flush=True)
                    continue
                print(describe(rows[-1]), flush=True)
    ok = all(row["ok"] for row in rows)
    targets = {"health_p99_ms": args.health_target_ms, "submit_p99_ms": args.submit_target_ms}
    elapsed = round(time.perf_counter() - began, 1)
    print(
        json.dumps({"ok": ok, "targets": targets, "load_average": load, "elapsed_s": elapsed, **summary, "rows": rows})
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
