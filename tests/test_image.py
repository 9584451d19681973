"""The container image (deploy/Containerfile) run as an operator runs it: port published on 127.0.0.1 only,
data on the one volume, configuration through PORTAL_*. Ready, healthy by its own health check, a real
signed submission accepted, `podman stop` drains and exits 0, and a new container on the same volume has
the submission and the attestation key. Runs only under `make image-test` (which builds the image and names
it in MOCK_PORTAL_IMAGE); skipped otherwise."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fixtures.pki import TestPKI
from fixtures.ports import free_port
from tests.conftest import provision, trust_root
from tests.live import ADMIN_TOKEN, IPSS_KEY
from tests.wire import sample

IMAGE = os.environ.get("MOCK_PORTAL_IMAGE", "")
PODMAN = shlex.split(os.environ.get("PODMAN", "podman"))
LIMITS = shlex.split(os.environ.get("CONTAINER_LIMITS", ""))
UID = 10001
"""The image's user (deploy/Containerfile), who must own the volume's folder."""

pytestmark = pytest.mark.skipif(not IMAGE, reason="`make image-test` builds the image and runs this")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=120, check=check)


@contextmanager
def container(data: Path, port: int) -> Iterator[tuple[str, str]]:
    """The image running on `data` as its volume, published on 127.0.0.1:`port`: (name, base URL) once ready."""
    name = f"mock-portal-test-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "--detach", "--name", name, *LIMITS,
        "--publish", f"127.0.0.1:{port}:8080",
        "--volume", f"{data}:/var/lib/mock-portal",
        "--env", f"PORTAL_ADMIN_TOKEN={ADMIN_TOKEN}", "--env", f"PORTAL_IPSS_API_KEY={IPSS_KEY}",
        IMAGE,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, name)
        yield name, base_url
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def _wait_ready(base_url: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{base_url}/sandbox/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    raise AssertionError(f"{name} never ready:\n{podman('logs', name, check=False).stdout[-2000:]}")


def test_the_image_serves_checks_itself_drains_and_keeps_its_data(tmp_path: Path, pki: TestPKI) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, UID, UID)
    with container(data, free_port()) as (name, base_url):
        health = podman("healthcheck", "run", name, check=False)
        assert health.returncode == 0, f"the image's HEALTHCHECK: {health.stdout} {health.stderr}"
        with _admin(base_url) as admin:
            trust_root(admin, pki)
            hospital = provision(admin, pki, base_url)
            reply = hospital.client.send("GCS", sample(hospital))
            assert reply.ma_ket_qua == "200", reply.explain
            keys = admin.get("/sandbox/attestation-keys").json()
        stopped = time.monotonic()
        podman("stop", "--time", "10", name)
        took = time.monotonic() - stopped
        exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert exit_code == "0" and took < 10, f"podman stop: exit {exit_code} after {took:.1f} s"
    assert (data / "portal.sqlite3").exists(), "the database is on the volume"
    with container(data, free_port()) as (_, base_url), _admin(base_url) as admin:
        stored = admin.get("/sandbox/submissions", params={"facility": hospital.code}).json()
        assert [row["ma_gd"] for row in stored] == [reply.ma_gd]
        assert admin.get("/sandbox/attestation-keys").json() == keys


def _admin(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
