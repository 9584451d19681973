"""Abuse targets of issue 10: slow uploads, the 50,000-attribute document, IPSS `issue_kinds` growth.

    .venv/bin/python bench/abuse.py [--uploads 40] [--attributes 50000] [--sizes 1000,4000,8000]

Starts `mock-portal serve --workers 2` (bench/ingest.py's `running_server`: free loopback port, fresh
SQLite file in a temp dir, default settings), provisions a facility, then measures:

1. slow uploads — opens `--uploads` connections that announce a 100,000-byte body on
   `--stall-path` (default `/sandbox/ui/login`, a Flask view) and send 3 bytes
   (`fixtures.hostile.slow_uploads`); while they are held open: `/sandbox/health` latency over
   `--health-samples` requests (p50/max) and one valid signed GCS (its MaKetQua and latency).
   Target: health max < `--health-target` s, all 200, MaKetQua 200, and every upload still open
   at the end (measured while they stalled, not after the server cut them).
2. the hostile document — a valid signed GCS with `--attributes` extra attributes on GIAYCHUNGSINH
   (`fixtures.hostile.with_attributes`), sent `--refusals` times: time until the reply, MaKetQua and
   the finding codes. Target: every reply MaKetQua 205 with XML_TOO_MANY_ATTRIBUTES, max <
   `--refuse-target` s.
3. `mock_portal.ipss.registration.issue_kinds` in this process (server stopped) over `fixtures.hostile.one_code_history`
   of each size (half of the copies resends), best of `--repeat` (`timeit`, GC off). Target: linear —
   the cost per copy at the largest size is at most `--growth-limit` (3) times the cost per copy at the
   smallest: linear is ~1 (measured 1.0-1.4 quiet, up to 2.1 with the 2 cores shared), quadratic would
   be largest/smallest, 8 for 8,000 vs 1,000. `exponent` is the fitted k of time ~ copies^k.

Human-readable lines first; the last line is JSON with `"ok"`; exit status 1 when a target is missed.
See bench/README.md, "Abuse targets (issue numbers)".
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from ingest import Facility, percentile, provision, running_server, sign_pool

from conformance.portal import LocalPortal
from fixtures.hostile import held_open, one_code_history, slow_uploads, with_attributes
from fixtures.pki import TestPKI
from mock_portal.ipss import registration as ipss

FACILITY = "79903"


def _timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def under_slow_uploads(server: LocalPortal, facility: Facility, doc: bytes, args: argparse.Namespace) -> dict[str, Any]:
    with server.admin() as admin:
        baseline = [_timed(lambda: admin.get("/sandbox/health"))[1] for _ in range(5)]
        with slow_uploads(server.base_url, args.stall_path, args.uploads) as socks:
            time.sleep(0.3)
            health: list[float] = []
            statuses: set[int] = set()
            for _ in range(args.health_samples):
                reply, seconds = _timed(lambda: admin.get("/sandbox/health"))
                health.append(seconds)
                statuses.add(reply.status_code)
                time.sleep(0.05)
            submitted, submit_s = _timed(lambda: facility.client.send("GCS", doc))
            held = held_open(socks)
    return {
        "uploads": args.uploads,
        "held_open_at_end": held,
        "health_baseline_p50_ms": round(statistics.median(baseline) * 1000, 1),
        "health_statuses": sorted(statuses),
        "health_p50_ms": round(statistics.median(health) * 1000, 1),
        "health_p95_ms": round(percentile(health, 0.95) * 1000, 1),
        "health_max_ms": round(max(health) * 1000, 1),
        "submit_result": submitted.ma_ket_qua,
        "submit_ms": round(submit_s * 1000, 1),
    }


def hostile_document(
    server: LocalPortal, facility: Facility, docs: list[bytes], args: argparse.Namespace
) -> dict[str, Any]:
    seconds: list[float] = []
    results: set[str] = set()
    findings: set[str] = set()
    with server.admin() as admin:
        for doc in docs:
            hostile = with_attributes(doc, args.attributes)
            reply, elapsed = _timed(lambda hostile=hostile: facility.client.send("GCS", hostile))
            seconds.append(elapsed)
            results.add(reply.ma_ket_qua)
            stored = admin.get(f"/sandbox/submissions/{reply.submission_id}")
            stored.raise_for_status()
            findings.update(finding["code"] for finding in stored.json()["findings"])
    return {
        "attributes": args.attributes,
        "bytes": len(hostile),
        "refusals": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "results": sorted(results),
        "findings": sorted(findings),
    }


def issue_kinds_growth(sizes: list[int], repeat: int) -> dict[str, Any]:
    rows = []
    for size in sizes:
        history = one_code_history(size)
        best = min(timeit.repeat(lambda history=history: ipss.issue_kinds(history), number=1, repeat=repeat))
        resends = ipss.issue_kinds(history).count(ipss.IssueKind.RESEND)
        if resends != size // 2:
            raise RuntimeError(f"issue_kinds found {resends} resends in {size} copies, expected {size // 2}")
        rows.append({"copies": size, "ms": round(best * 1000, 2), "us_per_copy": round(best / size * 1e6, 2)})
    small, large = rows[0], rows[-1]
    return {
        "rows": rows,
        "per_copy_growth": round(large["us_per_copy"] / small["us_per_copy"], 2),
        "quadratic_would_be": round(large["copies"] / small["copies"], 2),
        "exponent": round(math.log(large["ms"] / small["ms"]) / math.log(large["copies"] / small["copies"]), 2),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/abuse.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=40, help="slow uploads held open")
    parser.add_argument("--stall-path", default="/sandbox/ui/login", help="path the slow uploads POST to")
    parser.add_argument("--health-samples", type=int, default=20, help="health requests while they are open")
    parser.add_argument("--health-target", type=float, default=2.0, help="seconds; health max must stay below")
    parser.add_argument("--attributes", type=int, default=50_000, help="extra attributes on GIAYCHUNGSINH")
    parser.add_argument("--refusals", type=int, default=3, help="how often the hostile document is sent")
    parser.add_argument("--refuse-target", type=float, default=2.0, help="seconds; every refusal must be faster")
    parser.add_argument("--sizes", default="1000,4000,8000", help="issue_kinds history sizes, ascending")
    parser.add_argument("--repeat", type=int, default=15, help="issue_kinds runs per size (best is kept)")
    parser.add_argument("--growth-limit", type=float, default=3.0, help="max per-copy cost, largest/smallest")
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if not 1 <= args.uploads <= 1000 or not 1 <= args.health_samples <= 1000 or not 1 <= args.refusals <= 100:
        parser.error("--uploads 1..1000, --health-samples 1..1000, --refusals 1..100")
    if len(args.sizes) < 2 or args.sizes != sorted(args.sizes) or args.sizes[0] < 2 or args.repeat < 1:
        parser.error("--sizes: at least two ascending sizes >= 2; --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="abuse-bench-") as tmp, running_server(Path(tmp), 2) as server:
        facility = provision(server, TestPKI.create(), FACILITY)
        docs = sign_pool(facility.credential, FACILITY, 1 + args.refusals)
        facility.client.take_token()
        uploads = under_slow_uploads(server, facility, docs[0], args)
        print(f"slow uploads: {json.dumps(uploads)}", flush=True)
        hostile = hostile_document(server, facility, docs[1:], args)
        print(f"hostile document: {json.dumps(hostile)}", flush=True)
    growth = issue_kinds_growth(args.sizes, args.repeat)
    print(f"issue_kinds: {json.dumps(growth)}", flush=True)
    targets = {
        "health_under_target": uploads["health_max_ms"] < args.health_target * 1000
        and uploads["health_statuses"] == [200],
        "submission_accepted": uploads["submit_result"] == "200",
        "uploads_held_open": uploads["held_open_at_end"] == args.uploads,
        "refused_under_target": hostile["max_ms"] < args.refuse_target * 1000,
        "refused_as_too_many_attributes": hostile["results"] == ["205"]
        and "XML_TOO_MANY_ATTRIBUTES" in hostile["findings"],
        "issue_kinds_linear": growth["per_copy_growth"] <= args.growth_limit,
    }
    for name, met in targets.items():
        if not met:
            print(f"MISSED: {name}", file=sys.stderr)
    summary = {"ok": all(targets.values()), "targets": targets, "slow_uploads": uploads, "hostile": hostile}
    print(json.dumps({**summary, "issue_kinds": growth}, ensure_ascii=False))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
