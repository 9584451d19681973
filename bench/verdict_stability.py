"""Issue 22: the same hospital gets the same verdict on a busy machine, two runs at a time.

    .venv/bin/python bench/verdict_stability.py [--runs 10] [--variant-runs 10] [--burners N] [--parallel 2]

Starts `mock-portal serve` (bench/ingest.py's `running_server`) and `--burners` processes that spin on
the CPU (one per core by default: both cores of the 2-core machine stay busy), then, two at a time
(`--parallel`), each run in a workspace of its own as `make workspaces` does:

* the correct reference hospital, every scenario (`conformance run --reference --portal URL`): it must
  end CONFORMANT every time (a timing verdict inside the run's timing resolution is no failure: the
  scenario runs again at a slower clock);
* the `fifo` variant (the backlog scenario and the cases it feeds, as `conformance selftest` runs it):
  its first failed MUST case must be DL-004 every time;
* the `late-sender` variant (the base scenario): its first failed MUST case must be DL-001 every time.

For each run it prints the verdict, the first failed MUST case, the scenarios run again and the
worst timing resolution (sandbox minutes at the run's clock rate); the last line is JSON with "ok";
exit status 1 when any run missed its target. `--runs 2 --variant-runs 2` is the short form CI runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import running_server

from conformance.cases import load_cases
from conformance.portal import LocalPortal
from conformance.selftest import Target, specs_for
from fixtures.hospital.worker import Variant
from fixtures.hostile import busy_cores

TARGETS = {
    "reference": Target(None, None, ("refusal", "retry", "relogin", "outage", "too-large", "lost-reply", "overload",
                                     "backlog")),
    "fifo": Target(Variant.FIFO, "DL-004", ("backlog",)),
    "late-sender": Target(Variant.LATE_SENDER, "DL-001"),
}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    kind: str
    number: int
    exit_code: int
    verdict: str
    first_failed: str | None
    reruns: list[str]
    should_failed: list[str]
    resolution: dict[str, Any]
    seconds: float
    tail: str

    @property
    def ok(self) -> bool:
        expected = TARGETS[self.kind].expected
        if expected is None:
            return self.exit_code == 0 and self.verdict == "pass"
        return self.exit_code == 1 and self.first_failed == expected

    def line(self) -> str:
        worst = self.resolution
        timing = f"{worst.get('minutes', 0):.1f} min at {worst.get('rate', 0):g}× ({worst.get('scenario', '-')})"
        again = f", ran again: {', '.join(self.reruns)}" if self.reruns else ""
        again += f", SHOULD failed: {', '.join(self.should_failed)}" if self.should_failed else ""
        return (
            f"{self.kind:<12} #{self.number:<2} {'ok ' if self.ok else 'BAD'} {self.verdict:<12} "
            f"first failed {self.first_failed or '-':<8} resolution {timing}{again}  ({self.seconds:.0f} s)"
        )


def one_run(server: LocalPortal, kind: str, number: int, workdir: Path) -> Outcome:
    target = TARGETS[kind]
    out = workdir / f"{kind}-{number}"
    command = [
        sys.executable, "-m", "conformance.cli", "run", "--reference", "--portal", server.base_url,
        f"--admin-token={server.admin_token}", "--report-dir", str(out),
        "--only", ",".join(spec.id for spec in specs_for(target, load_cases().all())),
    ]  # fmt: skip
    if target.variant is not None:
        command += ["--variant", str(target.variant)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)  # noqa: S603
    seconds = time.monotonic() - started
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        tail = (done.stdout + done.stderr)[-1500:]
        return Outcome(kind, number, done.returncode, "no report", None, [], [], {}, seconds, tail)
    blocking = next((c for c in report["cases"] if c["level"] == "MUST" and c["verdict"] in ("fail", "error")), None)
    timing = report.get("timing") or []
    worst = max(timing, key=lambda t: t["minutes"], default={})
    reruns = [f"{t['scenario']} at {t['rate']:g}×" for t in timing if t["attempt"] > 1]
    return Outcome(
        kind,
        number,
        done.returncode,
        report["summary"]["verdict"],
        blocking["id"] if blocking else None,
        reruns,
        report["summary"]["should_failed"],
        worst,
        seconds,
        (done.stdout + done.stderr)[-1500:],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="reference runs")
    parser.add_argument("--variant-runs", type=int, default=10, help="runs of each broken variant (fifo, late-sender)")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2, help="CPU-spinning processes")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time")
    args = parser.parse_args(argv)
    jobs = [("reference", n) for n in range(1, args.runs + 1)]
    jobs += [(kind, n) for n in range(1, args.variant_runs + 1) for kind in ("fifo", "late-sender")]
    outcomes: list[Outcome] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="verdict-stability-") as tmp:
        workdir = Path(tmp)
        with running_server(workdir, 1) as server, busy_cores(args.burners):
            print(f"{len(jobs)} runs, {args.parallel} at a time, {args.burners} CPU burner(s)", flush=True)
            with ThreadPoolExecutor(max_workers=args.parallel) as pool:
                for outcome in pool.map(lambda job: one_run(server, job[0], job[1], workdir), jobs):
                    print(outcome.line(), flush=True)
                    if not outcome.ok:
                        print(f"    {outcome.tail[-800:]}", flush=True)
                    outcomes.append(outcome)
    summary: dict[str, Any] = {"burners": args.burners, "parallel": args.parallel}
    for kind in TARGETS:
        mine = [o for o in outcomes if o.kind == kind]
        if not mine:
            continue
        resolutions = [o.resolution.get("minutes", 0.0) for o in mine]
        summary[kind] = {
            "runs": len(mine),
            "as_expected": sum(o.ok for o in mine),
            "ran_again": sum(bool(o.reruns) for o in mine),
            "should_failed": sorted({case for o in mine for case in o.should_failed}),
            "resolution_minutes": {"min": min(resolutions), "max": max(resolutions)},
        }
    summary["seconds"] = round(time.monotonic() - began, 1)
    summary["ok"] = all(o.ok for o in outcomes)
    for kind in TARGETS:
        if kind in summary:
            part = summary[kind]
            wanted = "CONFORMANT" if kind == "reference" else f"refused by {TARGETS[kind].expected}"
            print(f"{kind}: {part['as_expected']}/{part['runs']} {wanted}; {part['ran_again']} ran a scenario again")
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
