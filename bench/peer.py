"""The portal next to a peer that only validates: the same signed GCS form, the same client, one run.

    .venv/bin/python bench/peer.py [--seconds N] [--prism PATH] [--wrk PATH] [--ingest-seconds N]

`make bench-peer` installs Stoplight Prism with npm into `.bench/` and wrk with apt, then runs this. On
127.0.0.1 it measures, one after the other so they do not share the 2 cores:

1. this portal, `mock-portal serve --workers 2` on a fresh SQLite file (every check, every accepted
   submission stored), driven by `wrk -t1 -c16 -d N` posting one facility's signed GCS form with a
   fresh token, URL-encoded as the hospital sends it, again and again (the portal accepts a document
   again: each submission is its own): accepted/s (replies with MaKetQua 200, counted by wrk's script
   and checked against what the portal stored), p99, and the workers' CPU per accepted submission;
2. Prism mocking the wire API from `openapi.yaml` (`prism mock`: it validates each request against the
   spec and answers with a body made from the reply's schema, then checks that reply too — its made-up
   `ThoiGianTiepNhan` does not match the pattern — no signature, no storage), under the same wrk
   command and form: req/s and p99;
3. `bench/ingest.py --seconds N` (its own portal, 500 distinct documents, 8 in flight).

The last line is machine-readable JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from ingest import (  # noqa: E402
    FACILITY,
    HOST,
    cpu_seconds,
    provision,
    running_server,
    sign_pool,
    stored_accepted,
    worker_pids,
)

from conformance.portal import stop_process  # noqa: E402
from fixtures.hospital import LOAI_HS, SUBMIT_PATH  # noqa: E402
from fixtures.pki import TestPKI  # noqa: E402
from fixtures.ports import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "openapi.yaml"
CONNECTIONS = 16
RESULT = re.compile(r"^PEER (\{.*\})$", re.MULTILINE)
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local f = assert(io.open(os.getenv("PEER_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) accepted = 0; other = 0 end
function response(status, headers, body)
  local portal_ok = string.find(body, '"MaKetQua":"200"', 1, true)
  if status == 200 and (portal_ok or not string.find(body, "MaKetQua", 1, true)) then
    accepted = accepted + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do ok = ok + t:get("accepted"); bad = bad + t:get("other") end
  local e = summary.errors
  io.write(string.format(
    'PEER {"requests":%d,"seconds":%.3f,"accepted":%d,"other":%d,"socket_errors":%d,"p50_ms":%.2f,"p99_ms":%.2f}\\n',
    summary.requests, summary.duration / 1e6, ok, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""
"""wrk's script: the form from the file PEER_BODY names; a reply counts as accepted when it is the
portal's MaKetQua 200 (or any 200 of a peer that sends no MaKetQua, Prism's example does)."""


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    accepted: int
    other: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def run_wrk(wrk: str, url: str, body_file: Path, seconds: int, workdir: Path) -> WrkRun:
    """`wrk -t1 -c16 -dN` posting the form in `body_file` to `url`, after a 2 s warm-up."""
    script = workdir / "post-form.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    env = {"PEER_BODY": str(body_file), "PATH": "/usr/bin:/bin"}
    command = [wrk, "-t1", f"-c{CONNECTIONS}", "-s", str(script), url]
    subprocess.run([*command[:3], "-d2s", *command[3:]], env=env, check=True, capture_output=True, timeout=60)
    done = subprocess.run(
        [*command[:3], f"-d{seconds}s", "--timeout", "10s", *command[3:]],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    found = RESULT.search(done.stdout)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    return WrkRun(**json.loads(found.group(1)))


def run_prism(prism: str, wrk: str, body_file: Path, seconds: int, workdir: Path) -> WrkRun:
    """Prism mocking `openapi.yaml` on a free loopback port (static examples; only fatal errors logged: at
    the error level it writes a line per request, its own reply's violation: 759 req/s against 1,014 in one run)."""
    port = free_port()
    command = [prism, "mock", "-h", HOST, "-p", str(port), "-d", "false", "-v", "fatal", str(SPEC)]
    return serve_and_wrk(command, workdir / "prism.log", wrk, f"http://{HOST}:{port}{SUBMIT_PATH}", body_file, seconds)


def serve_and_wrk(
    command: list[str],
    log_path: Path,
    wrk: str,
    url: str,
    body_file: Path,
    seconds: int,
    env: dict[str, str] | None = None,
) -> WrkRun:
    """Start a server (`command`, its output to `log_path`), wait until `url` answers, run wrk against it
    (`run_wrk`), stop the server."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    try:
        _wait_listening(url, process, log_path)
        return run_wrk(wrk, url, body_file, seconds, log_path.parent)
    finally:
        stop_process(process)


def _wait_listening(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prism exited {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            httpx.post(url, content=b"", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"prism did not listen within 60 s:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass(frozen=True)
class PortalRun:
    wrk: WrkRun
    stored: int
    """Accepted submissions the portal stored (the warm-up's too)."""
    cpu_ms_per_accepted: float
    """The workers' CPU time during the measured run per accepted submission: steadier than accepted/s on a
    machine shared with other work."""


def run_portal(wrk: str, seconds: int, workdir: Path) -> PortalRun:
    """The portal (2 workers, fresh SQLite) under wrk with one facility's signed GCS form, which it leaves in
    `workdir/form.txt` for the peer."""
    pki = TestPKI.create({FACILITY: "Bệnh viện Bench"})
    with running_server(workdir, workers=2) as server:
        facility = provision(server, pki, FACILITY)
        [document] = sign_pool(facility.credential, facility.code, 1)
        facility.client.take_token()
        body = urlencode(facility.client.form(LOAI_HS["GCS"], document)).encode("ascii")
        body_file = workdir / "form.txt"
        body_file.write_bytes(body)
        workers = worker_pids(server)
        cpu = sum(map(cpu_seconds, workers))
        run = run_wrk(wrk, f"{server.base_url}{SUBMIT_PATH}", body_file, seconds, workdir)
        cpu = sum(map(cpu_seconds, workers)) - cpu
        stored, _total = stored_accepted(server, facility.code)
    return PortalRun(run, len(stored), 1000 * cpu / run.accepted if run.accepted else float("nan"))


def run_ingest(seconds: int) -> dict[str, float]:
    """`bench/ingest.py --seconds N` as it is; its machine-readable last line (`key=value ...`)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("ingest.py")), "--seconds", str(seconds)],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 600,
    )
    last = done.stdout.strip().splitlines()[-1]
    return {key: float(value) for key, value in (pair.split("=", 1) for pair in last.split())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/peer.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="each wrk run's length")
    parser.add_argument("--ingest-seconds", type=int, default=20, help="bench/ingest.py --seconds (0: skip it)")
    parser.add_argument("--prism", default=str(ROOT / ".bench/node_modules/.bin/prism"), help="the prism command")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk command")
    parser.add_argument("--skip-prism", action="store_true", help="measure the portal only")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300 or not 0 <= args.ingest_seconds <= 300:
        parser.error("--seconds 1..300, --ingest-seconds 0..300")
    with tempfile.TemporaryDirectory(prefix="peer-bench-") as tmp:
        workdir = Path(tmp)
        served = run_portal(args.wrk, args.seconds, workdir)
        portal = served.wrk
        lost = served.stored < portal.accepted  # stored counts the warm-up's too
        print(
            f"portal, wrk -t1 -c{CONNECTIONS} {args.seconds} s: {portal.per_second:.0f} accepted/s "
            f"({portal.accepted} accepted, {portal.other} other, {portal.socket_errors} socket errors; "
            f"{served.stored} stored with the warm-up's), p50 {portal.p50_ms:.1f} ms, p99 {portal.p99_ms:.1f} ms; "
            f"workers' CPU {served.cpu_ms_per_accepted:.2f} ms/accepted",
            flush=True,
        )
        prism = None
        if not args.skip_prism:
            prism = run_prism(args.prism, args.wrk, workdir / "form.txt", args.seconds, workdir)
            print(
                f"Prism mock (validation only), same wrk and form: {prism.requests / prism.seconds:.0f} req/s "
                f"({prism.accepted} 200, {prism.other} other, {prism.socket_errors} socket errors), "
                f"p50 {prism.p50_ms:.1f} ms, p99 {prism.p99_ms:.1f} ms",
                flush=True,
            )
    ingest = run_ingest(args.ingest_seconds) if args.ingest_seconds else None
    if ingest is not None:
        print(
            f"bench/ingest.py --seconds {args.ingest_seconds}: {ingest.get('accepted_per_s')} accepted/s, "
            f"p99 {ingest.get('p99_ms')} ms",
            flush=True,
        )
    result = {
        "portal_wrk": {
            **asdict(portal),
            "accepted_per_s": round(portal.per_second, 1),
            "stored": served.stored,
            "cpu_ms_per_accepted": round(served.cpu_ms_per_accepted, 2),
        },
        "prism_wrk": {**asdict(prism), "req_per_s": round(prism.requests / prism.seconds, 1)} if prism else None,
        "ingest": ingest,
    }
    print(json.dumps(result, separators=(",", ":")))
    return 1 if lost or portal.socket_errors or not portal.accepted else 0


if __name__ == "__main__":
    sys.exit(main())
