"""CPU per accepted submission in the portal's own ASGI stack, in-process (no sockets, no client).

    .venv/bin/python bench/stack.py [--requests N] [--concurrency C] [--db URL] [--profile FILE]

`bench/ingest.py` measures the whole service through real HTTP, but on a 2-core machine shared with
its client (and often with other work) its figures move by ±20 % from run to run. This benchmark
calls the ASGI application `mock-portal serve` runs (`mock_portal.app.create_asgi`: guard, wire
gateway, Connexion, handlers, the store, the IPSS sharing thread) directly from one event loop, C
requests at a time, and divides the process's CPU time by the accepted submissions: what a change
to the server's own code saves, without uvicorn, the kernel's socket work or the client. It runs on
a fresh SQLite file (or `--db`), provisioned through the sandbox API of the same app, with N
pre-signed distinct GCS; every reply must be MaKetQua 200 and every one must be stored.
`--profile FILE` writes a cProfile of the measured phase (all threads are not covered: the
blocking work runs on worker threads; use py-spy on `bench/ingest.py` for those).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from fixtures.hospital import LOAI_HS, SUBMIT_PATH, TOKEN_PATH
from fixtures.pki import TestPKI, cert_pem
from mock_portal.app import create_asgi
from mock_portal.config import Settings

sys.path.insert(0, str(Path(__file__).parent))
from ingest import FACILITY, sign_pool  # noqa: E402  (the same documents as the HTTP benchmark)

PEM = {"Content-Type": "application/x-pem-file"}
FORM = (b"content-type", b"application/x-www-form-urlencoded")


def _scope(path: str, body: bytes) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it for a form POST from a loopback client."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), FORM, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def _post(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect while the app works
        return {"type": "http.disconnect"}

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(_scope(path, body), receive, send)
    return status, b"".join(chunks)


async def _provision(app: Any, admin_token: str, pki: TestPKI) -> dict[str, str]:
    password = secrets.token_urlsafe(12)
    username = f"{FACILITY}_BV"
    credential = pki.issue_facility_cert(FACILITY)
    headers = {"Authorization": f"Bearer {admin_token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as admin:
        for reply in (
            await admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM),
            await admin.post(
                "/sandbox/facilities",
                json={"code": FACILITY, "name": "Bệnh viện", "username": username, "password": password},
            ),
            await admin.post(
                f"/sandbox/facilities/{FACILITY}/certificates", content=cert_pem(credential.cert), headers=PEM
            ),
        ):
            if reply.status_code != 201:
                raise RuntimeError(f"{reply.request.url.path}: {reply.status_code} {reply.text}")
    import hashlib

    password_md5 = hashlib.md5(password.encode()).hexdigest()  # noqa: S324 (the wire's own scheme)
    status, raw = await _post(app, TOKEN_PATH, urlencode({"username": username, "password": password_md5}).encode())
    token = json.loads(raw)["APIKey"]
    return {
        "maCskcb": FACILITY,
        "token": token["access_token"],
        "id_token": token["id_token"],
        "username": username,
        "password": password_md5,
        "loaiHs": LOAI_HS["GCS"],
        "_cred": credential,  # type: ignore[dict-item]
    }


async def _run(app: Any, bodies: list[bytes], concurrency: int) -> tuple[int, dict[str, int]]:
    queue = iter(bodies)
    accepted, other = 0, {}

    async def user() -> None:
        nonlocal accepted
        for body in queue:
            status, raw = await _post(app, SUBMIT_PATH, body)
            code = json.loads(raw).get("MaKetQua") if status == 200 else f"HTTP {status}"
            if code == "200":
                accepted += 1
            else:
                other[str(code)] = other.get(str(code), 0) + 1

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return accepted, other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="measured submissions (distinct documents)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured phase here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stack-bench-") as tmp:
        admin_token = secrets.token_urlsafe(24)
        url = args.db or f"sqlite:///{tmp}/bench.sqlite3"
        settings = Settings.from_env({}, database_url=url, admin_token=admin_token)
        app = create_asgi(settings)
        loop = asyncio.new_event_loop()
        pki = TestPKI.create({FACILITY: "Bệnh viện Bench"})
        form = loop.run_until_complete(_provision(app, admin_token, pki))
        credential = form.pop("_cred")
        warm = 100
        signing = time.perf_counter()
        import base64

        docs = sign_pool(credential, FACILITY, args.requests + warm)  # type: ignore[arg-type]
        bodies = [urlencode({**form, "fileBase64Str": base64.b64encode(d).decode()}).encode() for d in docs]
        print(f"signed {len(docs)} GCS in {time.perf_counter() - signing:.1f} s", file=sys.stderr)
        loop.run_until_complete(_run(app, bodies[:warm], args.concurrency))
        profile = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        accepted, other = loop.run_until_complete(_run(app, bodies[warm:], args.concurrency))
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"accepted {accepted} of {len(bodies) - warm}, other {other}; "
            f"{1000 * cpu / max(accepted, 1):.2f} ms CPU/accepted, {accepted / wall:.0f}/s on one loop"
        )
        return 0 if accepted == len(bodies) - warm and not other else 1


if __name__ == "__main__":
    sys.exit(main())
