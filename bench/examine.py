"""In-process examination bench: what `mock_portal.portal.intake.examine` costs per signed document.

    .venv/bin/python bench/examine.py [--docs N] [--rounds R] [--profile [--top K]]

Signs N distinct valid documents with the reference signer and a fresh test PKI (half GCS, half GBT;
as `bench/ingest.py`'s `sign_pool`), base64-encodes them as the wire form carries them, and times
`examine` — what the wire path calls: base64, parsing, structure, XSD, signature, rules — on each
document, R rounds over the pool after a warm-up, pinned to one core. Every verdict must be MaKetQua
200 (a refusal stops the bench). It prints the median and p90 of the per-document times (all rounds
together), each round's median and each type's median, so the spread between rounds shows the machine's
noise, and the median and p90 of the thread's CPU time per document, which a busy neighbour disturbs less. With
`--profile` the rounds run under cProfile and it prints the top functions by cumulative time instead
(the times then include the profiler's overhead). The last line is machine-readable JSON.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from mock_portal.config import Settings
from mock_portal.documents import DocumentType
from mock_portal.portal.intake import IntakePolicy, examine, prepare
from mock_portal.results.codes import SubmitResult
from mock_portal.signature.trust import TrustStore, fingerprint

FACILITY = "79001"
LOAI_HS = {DocumentType.GCS: "61", DocumentType.GBT: "60"}


def sign_documents(count: int) -> tuple[list[tuple[DocumentType, str]], TrustStore]:
    """`count` distinct valid documents (alternately GCS and GBT, signed a minute ago) as base64, and the
    trust store that accepts them (the test root, the facility's certificate registered)."""
    pki = TestPKI.create({FACILITY: "Bệnh viện Bench"})
    credential = pki.issue_facility_cert(FACILITY)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    docs = []
    for i in range(1, count + 1):
        kind = (DocumentType.GCS, DocumentType.GBT)[i % 2]
        xml = signed_sample(
            kind, credential, facility_code=FACILITY, serial=i, seed=i, issued_at=when, signing_time=when
        )
        docs.append((kind, base64.b64encode(xml).decode("ascii")))
    trust = TrustStore(cas=pki.ca_certs, crls=(), registrations={FACILITY: frozenset({fingerprint(credential.cert)})})
    return docs, trust


def examine_all(
    docs: list[tuple[DocumentType, str]], trust: TrustStore, policy: IntakePolicy
) -> list[tuple[float, float]]:
    """One pass over the pool: each document's examination time in milliseconds, wall-clock and this
    thread's CPU (on a shared machine the CPU time is the steadier of the two)."""
    times = []
    for kind, file_b64 in docs:
        received_at = datetime.now(UTC)
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        verdict = examine(
            LOAI_HS[kind], file_b64, facility_code=FACILITY, received_at=received_at, trust=trust, policy=policy
        )
        times.append(((time.perf_counter_ns() - wall) / 1e6, (time.thread_time_ns() - cpu) / 1e6))
        if verdict.result is not SubmitResult.OK:
            raise RuntimeError(f"a valid {kind.name} was refused: {verdict.explain()}")
    return times


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/examine.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200, help="distinct signed documents (half GCS, half GBT)")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the documents, after one warm-up")
    parser.add_argument("--profile", action="store_true", help="run the rounds under cProfile, print its top list")
    parser.add_argument("--top", type=int, default=25, help="with --profile: how many functions to list")
    args = parser.parse_args(argv)
    if not 2 <= args.docs <= 10000 or not 1 <= args.rounds <= 100 or not 1 <= args.top <= 500:
        parser.error("--docs 2..10000, --rounds 1..100, --top 1..500")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    docs, trust = sign_documents(args.docs)
    print(f"signed {len(docs)} documents (GCS and GBT) in {time.perf_counter() - t0:.1f} s", flush=True)
    policy = IntakePolicy.of(Settings())
    prepare()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    examine_all(docs, trust, policy)  # warm-up: caches (certificates, chains), allocator
    profiler = cProfile.Profile() if args.profile else None
    rounds = []
    for _ in range(args.rounds):
        if profiler is not None:
            profiler.enable()
        rounds.append(examine_all(docs, trust, policy))
        if profiler is not None:
            profiler.disable()
    every = [t for r in rounds for t, _ in r]
    cpu = [c for r in rounds for _, c in r]
    by_kind = {
        kind.name: round(
            statistics.median(t for r in rounds for (k, _), (t, _) in zip(docs, r, strict=True) if k is kind), 3
        )
        for kind in LOAI_HS
    }
    summary = {
        "docs": len(docs),
        "rounds": args.rounds,
        "median_ms": round(statistics.median(every), 3),
        "p90_ms": round(percentile(every, 0.90), 3),
        "round_medians_ms": [round(statistics.median(t for t, _ in r), 3) for r in rounds],
        "median_ms_by_type": by_kind,
        "cpu_median_ms": round(statistics.median(cpu), 3),
        "cpu_p90_ms": round(percentile(cpu, 0.90), 3),
        "profiled": args.profile,
    }
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    print(
        f"examine: median {summary['median_ms']} ms, p90 {summary['p90_ms']} ms per document "
        f"({len(every)} examinations); round medians {summary['round_medians_ms']} ms; "
        f"by type {by_kind} ms; CPU median {summary['cpu_median_ms']} ms, p90 {summary['cpu_p90_ms']} ms"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
