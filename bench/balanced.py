"""Accepted submissions per second through HAProxy with two replicas versus one, on PostgreSQL.

    .venv/bin/python bench/balanced.py [--seconds N] [--rounds R] [--concurrency C]

Starts deploy/'s layout without containers (tests/deployment.py: PostgreSQL with fsync on, `mock-portal
migrate`, `mock-portal serve` on 127.0.0.2 and 127.0.0.3, HAProxy on 127.0.0.1), provisions one facility
through the balancer, pre-signs distinct GCS documents, and sends them closed loop (bench/ingest.py's
client) for N seconds in each of three set-ups, alternating, R rounds: both replicas behind HAProxy;
replica B stopped (SIGTERM) so HAProxy has one; and replica A directly, without HAProxy (what the balancer
costs). Afterwards every acknowledged MaKetQua 200 must be stored. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest import (  # noqa: E402
    FACILITY,
    LoadResult,
    cpu_seconds,
    percentile,
    provision,
    run_load,
    sign_pool,
    stored_accepted,
)

from fixtures.hospital import LOAI_HS  # noqa: E402
from fixtures.pki import TestPKI  # noqa: E402
from tests.deployment import Deployment, deployment  # noqa: E402

SETUPS = ("2 replicas via HAProxy", "1 replica via HAProxy", "1 replica direct")


def arrange(layout: Deployment, setup: str) -> str:
    """Start or stop replica B for `setup`; the base URL to load."""
    b = layout.replicas["portal-b"]
    if setup.startswith("2"):
        if b.server is None:
            b.start()
        layout.balancer.wait_status("portal-b", "UP")
        return layout.balancer.base_url
    if b.server is not None:
        b.stop()
    layout.balancer.wait_status("portal-b", "DOWN")
    a = layout.replicas["portal-a"].server
    assert a is not None
    return layout.balancer.base_url if "HAProxy" in setup else a.base_url


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/balanced.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each set-up, alternating")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at most")
    parser.add_argument("--pool", type=int, default=500, help="distinct pre-signed GCS documents (cycled)")
    args = parser.parse_args()
    print(
        f"balanced bench: {args.rounds} x {args.seconds:g} s per set-up, closed loop, {args.concurrency} in flight, "
        f"{os.cpu_count()} CPUs, PostgreSQL (fsync on), one `mock-portal serve` worker per replica",
        flush=True,
    )
    pki = TestPKI.create({FACILITY: "Bệnh viện Bench"})
    runs: dict[str, list[float]] = {setup: [] for setup in SETUPS}
    acked: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="balanced-bench-") as tmp, deployment(Path(tmp)) as layout:
        front = layout.front
        facility = provision(front, pki, FACILITY)
        docs = sign_pool(facility.credential, facility.code, args.pool)
        facility.client.take_token()
        bodies = [urlencode(facility.client.form(LOAI_HS["GCS"], doc)).encode("ascii") for doc in docs]
        for _ in range(args.rounds):
            for setup in SETUPS:
                base_url = arrange(layout, setup)
                pids = {name: r.server.process.pid for name, r in layout.replicas.items() if r.server is not None}
                pids["haproxy"] = layout.balancer.process.pid
                cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                warm, load = run_load(
                    base_url, bodies, seconds=args.seconds, rate=None, concurrency=args.concurrency, warmup=bodies[:8]
                )
                used = {name: cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
                acked |= warm.ma_gd | load.ma_gd
                runs[setup].append(report(setup, load, used))
        stored, _ = stored_accepted(front, facility.code)
    lost = acked - stored
    print(f"stored check: acknowledged 200 {len(acked)}, stored {len(stored)}, missing {len(lost)}")
    for setup, rates in runs.items():
        print(f"{setup}: accepted/s {' / '.join(f'{r:.1f}' for r in rates)} (median {statistics.median(rates):.1f})")
    return 1 if lost else 0


def report(setup: str, load: LoadResult, used: dict[str, float]) -> float:
    """One run's line (with the CPU seconds each replica and HAProxy used, warm-up included); its accepted/s."""
    rate = load.accepted / load.elapsed_s if load.elapsed_s else 0.0
    lat = load.latencies_ms
    print(
        f"  {setup:<24} accepted/s {rate:6.1f}  p50 {percentile(lat, 0.5):6.1f} ms  p99 {percentile(lat, 0.99):6.1f}"
        f" ms  other {load.other_results or 0}  errors {load.errors or 0}  CPU s "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in used.items()),
        flush=True,
    )
    return rate


if __name__ == "__main__":
    sys.exit(main())
