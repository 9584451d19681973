"""deploy/'s two-host layout on one machine, without containers: one PostgreSQL on loopback, `mock-portal
migrate` once, `mock-portal serve` on 127.0.0.2 and 127.0.0.3 (the same port; the IPSS sharing worker in the
first only), HAProxy on 127.0.0.1 with deploy/haproxy.cfg. For tests/test_deploy.py and bench/balanced.py."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from conformance.portal import LocalPortal, start_local_portal, stop_process, wait_until_up
from fixtures.ports import free_port
from fixtures.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
REPLICA_HOSTS = {"portal-a": "127.0.0.2", "portal-b": "127.0.0.3"}
"""The replicas by their names in deploy/haproxy.cfg and deploy/compose.yaml, and their loopback addresses here."""
SHARING = "portal-a"
"""The one replica that runs the IPSS sharing worker (deploy/README.md says why)."""


def haproxy() -> str:
    """Debian's HAProxy (`make haproxy`)."""
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        raise RuntimeError("HAProxy is not installed (make haproxy)")
    return found


def free_port_on_both() -> int:
    """A port free on 127.0.0.2 and 127.0.0.3 alike: both replicas listen on it."""
    for _ in range(50):
        port = free_port(REPLICA_HOSTS["portal-a"])
        with contextlib.suppress(OSError), socket.socket() as probe:
            probe.bind((REPLICA_HOSTS["portal-b"], port))
            return port
    raise RuntimeError("no port free on both replica addresses")


@dataclass
class Replica:
    """One `mock-portal serve` of the deployment: started, stopped (SIGTERM) and started again by name."""

    name: str
    host: str
    port: int
    directory: Path
    database_url: str
    admin_token: str
    env: dict[str, str]
    server: LocalPortal | None = None

    def start(self) -> None:
        """Started and answering `/sandbox/health` on its own address."""
        self.server = start_local_portal(
            self.directory,
            host=self.host,
            port=self.port,
            database_url=self.database_url,
            admin_token=self.admin_token,
            env=self.env,
            timeout=60,
        )

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops a container: it finishes the requests it holds, then exits."""
        if self.server is not None:
            self.server.stop()
            self.server = None


@dataclass
class Balancer:
    """HAProxy with deploy/haproxy.cfg, in the foreground."""

    base_url: str
    stats_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, directory: Path, replicas: list[Replica]) -> Balancer:
        port, stats = free_port(), free_port()
        env = {
            **os.environ,
            "LB_BIND": f"127.0.0.1:{port}",
            "LB_STATS": f"127.0.0.1:{stats}",
            **{r.name.replace("portal-", "REPLICA_").upper(): f"{r.host}:{r.port}" for r in replicas},
        }
        log = directory / "haproxy.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603
                [haproxy(), "-db", "-f", str(HAPROXY_CFG)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: `front.stop()` (LocalPortal) ends HAProxy only
            )
        balancer = cls(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats}/stats;csv", process, log)
        try:
            wait_until_up(f"{balancer.base_url}/sandbox/health", process, log, timeout=30)
        except BaseException:
            balancer.stop()
            raise
        return balancer

    def stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's counters of the `replicas` backend: one row per server and `BACKEND` (status, stot, wretr,
        wredis, ...)."""
        text = httpx.get(self.stats_url, timeout=5).text.removeprefix("# ")
        return {row["svname"]: row for row in csv.DictReader(io.StringIO(text)) if row["pxname"] == "replicas"}

    def wait_status(self, name: str, status: str, timeout: float = 30.0) -> float:
        """Seconds until HAProxy's health checks call the replica `name` `status` (UP or DOWN)."""
        started = time.monotonic()
        while (seen := self.stats()[name]["status"]) != status:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"HAProxy still calls {name} {seen} after {timeout:g} s, not {status}")
            time.sleep(0.1)
        return time.monotonic() - started

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Deployment:
    """The whole layout; `front` is what a hospital or an operator's client is given: the balancer's URL."""

    postgres: PostgresServer
    database_url: str
    admin_token: str
    ipss_api_key: str
    replicas: dict[str, Replica]
    balancer: Balancer
    migrate_output: str = ""

    @property
    def front(self) -> LocalPortal:
        """The balancer as a portal: its URL with the operator's token (for the sandbox API through it)."""
        return LocalPortal(
            self.balancer.base_url, self.admin_token, self.database_url, 1, self.balancer.process, Path()
        )

    def restart(self, name: str) -> dict[str, float]:
        """The rolling restart of one replica: SIGTERM, start again, wait until HAProxy sees it UP; the seconds
        each step took."""
        replica = self.replicas[name]
        took: dict[str, float] = {}
        t0 = time.monotonic()
        replica.stop()
        took["stop"] = time.monotonic() - t0
        took["seen_down"] = self.balancer.wait_status(name, "DOWN")
        t0 = time.monotonic()
        replica.start()
        took["start"] = time.monotonic() - t0
        took["seen_up"] = self.balancer.wait_status(name, "UP")
        return took


def migrate(database_url: str) -> str:
    """`mock-portal migrate`, the deployment's one-shot step: its output."""
    env = {**os.environ, "PORTAL_DATABASE_URL": database_url}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "mock_portal.cli", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"mock-portal migrate failed ({done.returncode}): {done.stderr}")
    return done.stdout


@contextlib.contextmanager
def deployment(directory: Path, *, durable: bool = True) -> Iterator[Deployment]:
    """PostgreSQL, the migration, both replicas (every one started before HAProxy), HAProxy; all stopped after."""
    postgres = PostgresServer.start(durable=durable)
    replicas: dict[str, Replica] = {}
    balancer: Balancer | None = None
    try:
        database_url = postgres.new_database("deploy")
        migrated = migrate(database_url)
        token, ipss_key, port = secrets.token_hex(16), secrets.token_hex(16), free_port_on_both()
        for name, host in REPLICA_HOSTS.items():
            (directory / name).mkdir()
            env = {
                "PORTAL_IPSS_API_KEY": ipss_key,
                "PORTAL_SHARING_ENABLED": str(name == SHARING).lower(),
                "PORTAL_DRAIN_DELAY_SECONDS": "2",  # as deploy/compose.yaml: out of HAProxy before it stops listening
            }
            replicas[name] = Replica(name, host, port, directory / name, database_url, token, env)
            replicas[name].start()
        balancer = Balancer.start(directory, list(replicas.values()))
        for name in replicas:
            balancer.wait_status(name, "UP")
        yield Deployment(postgres, database_url, token, ipss_key, replicas, balancer, migrated)
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in replicas.values():
            replica.stop()
        postgres.stop()
