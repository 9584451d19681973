"""The floor under the wire path: what this machine serves with nothing of the portal but its HTTP server
and, then, its examination — next to the portal itself, under the same wrk and the same signed GCS form.

    .venv/bin/python bench/floor.py [--seconds N] [--wrk PATH] [--skip-portal]

Three servers on 127.0.0.1, one after the other so they do not share the 2 cores, each under
`wrk -t1 -c16 -d N` (`bench/peer.py`'s command and script) posting one facility's signed GCS form:

1. `http`: uvicorn (`--workers 2`, the portal's server and its defaults) and a bare ASGI app that reads
   the body and answers a constant reply of the portal's shape: the HTTP floor, no Python of the portal;
2. `examine`: the same app, which also parses the form (`urllib.parse.parse_qs`) and runs
   `mock_portal.portal.intake.examine` on the file (base64, parsing, structure, XSD, signature, rules)
   against the trust store that accepts it, and answers 200 only on its acceptance: every check the
   portal makes of a document, nothing it stores, journals, shares or accounts;
3. the portal (`mock-portal serve --workers 2` on a fresh SQLite file: `bench/peer.py`'s run).

What the gap between 2 and 3 is made of (the ASGI stack, Connexion, the identity and context reads, the
journal, the stored rows and their commit, the IPSS copy) is `bench/README.md`'s per-stage profile.
The last line is machine-readable JSON.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

sys.path.insert(0, str(Path(__file__).parent))
from ingest import FACILITY, HOST, sign_pool  # noqa: E402
from peer import CONNECTIONS, WrkRun, run_portal, serve_and_wrk  # noqa: E402

from fixtures.hospital import LOAI_HS, SUBMIT_PATH  # noqa: E402
from fixtures.pki import TestPKI, cert_pem  # noqa: E402
from fixtures.ports import free_port  # noqa: E402
from mock_portal.config import Settings  # noqa: E402
from mock_portal.portal.intake import IntakePolicy, examine, prepare  # noqa: E402
from mock_portal.signature.trust import TrustStore, fingerprint, load_certificates  # noqa: E402

STAGES = ("http", "examine")
REPLY = json.dumps(
    {"MaKetQua": "200", "MaGD": "0" * 36, "ThoiGianTiepNhan": "20261208101010"}, separators=(",", ":")
).encode()
REFUSED = REPLY.replace(b'"200"', b'"205"')
"""A reply of the wire's shape and about its size (the floor's answer whatever it was sent)."""


class FloorApp:
    """The bare ASGI app uvicorn serves (`bench.floor:app`): `FLOOR_STAGE` says how much it does, `FLOOR_DIR`
    holds the trust material written by `main` (the CA's and the facility's certificates)."""

    def __init__(self) -> None:
        self.stage = os.environ.get("FLOOR_STAGE", "http")
        self.examine: Any = None
        if self.stage == "examine":
            directory = Path(os.environ["FLOOR_DIR"])
            [facility] = load_certificates((directory / "facility.pem").read_bytes())
            trust = TrustStore(
                cas=load_certificates((directory / "ca.pem").read_bytes()),
                crls=(),
                registrations={FACILITY: frozenset({fingerprint(facility)})},
            )
            policy = IntakePolicy.of(Settings())
            prepare()

            def examined(form: dict[str, list[str]]) -> bool:
                verdict = examine(
                    form["loaiHs"][0],
                    form["fileBase64Str"][0],
                    facility_code=FACILITY,
                    received_at=datetime.now(UTC),
                    trust=trust,
                    policy=policy,
                )
                return verdict.result.value == "200"

            self.examine = examined

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        reply = REPLY
        if self.examine is not None:
            form = parse_qs(b"".join(chunks).decode("utf-8"), keep_blank_values=True)
            reply = REPLY if self.examine(form) else REFUSED
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(reply)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": reply})


def app() -> FloorApp:
    """uvicorn's `--factory` entry: each worker builds its own."""
    return FloorApp()


def run_floor(stage: str, wrk: str, workdir: Path, seconds: int) -> WrkRun:
    port = free_port()
    env = {**os.environ, "FLOOR_STAGE": stage, "FLOOR_DIR": str(workdir), "PYTHONPATH": str(Path(__file__).parent)}
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "floor:app", "--host", HOST, "--port", str(port),
        "--workers", "2", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    url = f"http://{HOST}:{port}{SUBMIT_PATH}"
    return serve_and_wrk(command, workdir / f"floor-{stage}.log", wrk, url, workdir / "form.txt", seconds, env)


def write_material(workdir: Path) -> None:
    """The form (one signed GCS, the seven fields as a hospital sends them) and the trust material."""
    pki = TestPKI.create({FACILITY: "Bệnh viện Bench"})
    credential = pki.issue_facility_cert(FACILITY)
    [document] = sign_pool(credential, FACILITY, 1)
    form = {
        "maCskcb": FACILITY,
        "token": "t" * 64,
        "id_token": "i" * 64,
        "username": f"{FACILITY}_BV",
        "password": "0" * 32,
        "loaiHs": LOAI_HS["GCS"],
        "fileBase64Str": base64.b64encode(document).decode("ascii"),
    }
    (workdir / "form.txt").write_bytes(urlencode(form).encode("ascii"))
    (workdir / "ca.pem").write_bytes(cert_pem(*pki.ca_certs))
    (workdir / "facility.pem").write_bytes(cert_pem(credential.cert))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/floor.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="each wrk run's length")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk command")
    parser.add_argument("--skip-portal", action="store_true", help="measure the floors only")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300:
        parser.error("--seconds 1..300")
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="floor-bench-") as tmp:
        workdir = Path(tmp)
        write_material(workdir)
        for stage in STAGES:
            run = run_floor(stage, args.wrk, workdir, args.seconds)
            result[stage] = {"ok_per_s": round(run.per_second, 1), "p99_ms": run.p99_ms, "other": run.other}
            print(f"floor {stage}, wrk -t1 -c{CONNECTIONS}: {run.per_second:.0f}/s answered 200 "
                  f"({run.other} other), p99 {run.p99_ms:.1f} ms", flush=True)  # fmt: skip
        if not args.skip_portal:
            served = run_portal(args.wrk, args.seconds, workdir)
            result["portal"] = {
                "accepted_per_s": round(served.wrk.per_second, 1),
                "p99_ms": served.wrk.p99_ms,
                "cpu_ms_per_accepted": round(served.cpu_ms_per_accepted, 2),
            }
            print(f"portal: {served.wrk.per_second:.0f} accepted/s, p99 {served.wrk.p99_ms:.1f} ms", flush=True)
    print(json.dumps(result, separators=(",", ":")))
    return 0 if all(r.get("other", 0) == 0 for r in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
