"""The shadow proxy's cost: the latency it adds and its throughput, against a direct connection.

.venv/bin/python bench/shadow.py                      # 200 sequential sends, then 10 s at 8 in flight
.venv/bin/python bench/shadow.py --sequential 400 --seconds 20 --concurrency 16

One portal (`mock-portal serve`, one worker, a fresh SQLite file) is the upstream; `mock-portal shadow` in
front of it judges on the side with the test CA as `--trust` (the full signature check). Latency: one
submission at a time, in blocks of 50 alternately direct and through the proxy (so both see the same
machine; a direct block starts once the proxy has judged the last block), the reply's wall time at the
client. Throughput: a closed loop of `--concurrency` clients for `--seconds`,
direct, then through the proxy; the proxy's counts say how many submissions it judged and how many it
dropped (no room in its queue) meanwhile. The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from fixtures.hospital import LOAI_HS, SUBMIT_PATH
from fixtures.pki import TestPKI

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest import (  # noqa: E402  (the ingest bench's server, documents and load)
    FORM_TYPE,
    cpu_seconds,
    percentile,
    provision,
    run_load,
    running_server,
    sign_pool,
)

from tests.shadow import Shadow, start_shadow  # noqa: E402  (the tests' starter of `mock-portal shadow`)

FACILITY = "79902"


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (the proxy judges in a child process of its own)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(child) for child in task.read_text().split()]
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in children)


def sequential(url: str, bodies: list[bytes], gap: float = 0.0) -> list[float]:
    """Each body sent once, one at a time, `gap` seconds apart; the wall time of every reply (ms)."""
    times: list[float] = []
    with httpx.Client(timeout=30) as client:
        for body in bodies:
            time.sleep(gap)
            started = time.perf_counter()
            reply = client.post(url + SUBMIT_PATH, content=body, headers=FORM_TYPE)
            times.append((time.perf_counter() - started) * 1000)
            if reply.json().get("MaKetQua") != "200":
                raise RuntimeError(f"not accepted: {reply.text}")
    return times


def alternating(
    server: str, shadow: Shadow, bodies: list[bytes], block: int = 50, gap: float = 0.0
) -> tuple[list[float], list[float]]:
    """Blocks of `block` sends direct, then through the proxy, until `bodies` are sent; each direct block
    starts once the proxy has judged everything (its judging belongs to the proxied sends' cost)."""
    direct: list[float] = []
    through: list[float] = []
    for start in range(0, len(bodies), 2 * block):
        shadow.wait_judged(shadow.comparisons()["counts"].get("submit", 0))
        direct += sequential(server, bodies[start : start + block], gap)
        through += sequential(shadow.base_url, bodies[start + block : start + 2 * block], gap)
    return direct, through


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=200, help="sequential sends, half through the proxy")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="pause between sequential sends")
    parser.add_argument("--seconds", type=float, default=10.0, help="each throughput phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool", type=int, default=300, help="distinct signed documents")
    parser.add_argument("--queue", type=int, default=64, help="the proxy's --queue (1: judge almost nothing)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp, running_server(Path(temp), workers=1) as server:
        pki = TestPKI.create({FACILITY: "Bệnh viện bench"})
        facility = provision(server, pki, FACILITY)
        (Path(temp) / "ca.pem").write_bytes(facility.ca_pem)
        token = facility.client.take_token()
        docs = sign_pool(facility.credential, FACILITY, args.pool)
        bodies = [urlencode(facility.client.form(LOAI_HS["GCS"], doc, token)).encode() for doc in docs]
        shadow = start_shadow(
            Path(temp), server.base_url, "--trust", str(Path(temp) / "ca.pem"), "--queue", str(args.queue)
        )
        try:
            alternating(server.base_url, shadow, bodies[:20], block=10)  # warm-up: connections, caches
            direct, through = alternating(
                server.base_url,
                shadow,
                [bodies[i % len(bodies)] for i in range(args.sequential)],
                gap=args.gap_ms / 1000,
            )
            shadow.wait_judged(shadow.comparisons()["counts"].get("submit", 0))
            flat = {"seconds": args.seconds, "rate": None, "concurrency": args.concurrency, "warmup": []}
            portal0 = cpu_seconds(server.process.pid)
            _, alone = run_load(server.base_url, bodies, **flat)  # type: ignore[arg-type]
            portal1, proxy1 = cpu_seconds(server.process.pid), tree_cpu_seconds(shadow.process.pid)
            before = shadow.comparisons()["counts"]
            _, proxied = run_load(shadow.base_url, bodies, **flat)  # type: ignore[arg-type]
            counts = shadow.comparisons()["counts"]
            portal2, proxy2 = cpu_seconds(server.process.pid), tree_cpu_seconds(shadow.process.pid)
        finally:
            shadow.stop()
    judged = counts.get("judged", 0) - before.get("judged", 0)
    dropped = counts.get("dropped", 0) - before.get("dropped", 0)
    for name, times in (("direct", direct), ("shadow", through)):
        print(
            f"{name}: {len(times)} sequential, "
            f"p50 {percentile(times, 0.5):.1f} ms, p99 {percentile(times, 0.99):.1f} ms"
        )
    for name, result in (("direct", alone), ("shadow", proxied)):
        print(
            f"{name}: {result.accepted / result.elapsed_s:.1f} accepted/s at {args.concurrency} in flight, "
            f"p99 {percentile(result.latencies_ms, 0.99):.1f} ms, errors {result.errors or 'none'}"
        )
    print(f"shadow during the throughput phase: {judged} judged, {dropped} dropped (queue full)")
    per = 1000 / max(proxied.sent, 1)
    print(
        f"CPU per submission: portal {1000 * (portal1 - portal0) / max(alone.sent, 1):.1f} ms direct, "
        f"{(portal2 - portal1) * per:.1f} ms behind the proxy; the proxy {(proxy2 - proxy1) * per:.1f} ms "
        "(passing on, and judging in its child process)"
    )
    added50 = percentile(through, 0.5) - percentile(direct, 0.5)
    added99 = percentile(through, 0.99) - percentile(direct, 0.99)
    print(
        f"added_p50_ms={added50:.1f} added_p99_ms={added99:.1f} direct_per_s={alone.accepted / alone.elapsed_s:.1f} "
        f"shadow_per_s={proxied.accepted / proxied.elapsed_s:.1f} judged={judged} dropped={dropped}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
