"""Issue 29: deploy/'s two-host layout, tested without containers (tests/deployment.py): a rolling restart of
both replicas under Locust load through HAProxy fails no request and loses no acknowledged submission; and
deploy/compose.yaml and deploy/haproxy.cfg describe the same deployment with real settings.

Marked `proof`: `make test` leaves it out, `make deploy-test` runs it (it needs HAProxy and PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
import sqlalchemy
import yaml

from mock_portal.config import Settings
from tests.deployment import HAPROXY_CFG, REPLICA_HOSTS, SHARING, Deployment, deployment, haproxy
from tests.test_load import LOCUST, SUBMIT, stats

pytestmark = pytest.mark.proof

COMPOSE = HAPROXY_CFG.with_name("compose.yaml")
IMAGE = "${PORTAL_IMAGE:-localhost/mock-portal:latest}"
"""The portal's image in compose.yaml: the one `make image` builds, unless PORTAL_IMAGE names another."""
USERS, SECONDS = 4, 45
"""Four simulated hospitals for 45 s: each issues 30 certificates a sandbox hour at 600x, ~5 a second, ~20
submissions a second in all; the two restarts take ~10-20 s of it."""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory.mktemp("deploy")) as layout:
        yield layout


def test_migrations_ran_once_before_the_replicas(deployed: Deployment) -> None:
    """`mock-portal migrate` brought the new database to head before any replica started (tests/deployment.py
    runs it first, as compose.yaml's `migrate` runs before the replicas)."""
    assert "database at revision" in deployed.migrate_output
    revision, head = deployed.migrate_output.split("revision ")[1].split(" (head ")
    assert revision == head.rstrip(")\n")


def test_rolling_restart_under_load_fails_nothing_and_loses_nothing(deployed: Deployment, tmp_path: Path) -> None:
    front = deployed.front
    command = [
        *LOCUST,
        *("-H", front.base_url, "--admin-token", front.admin_token, "--headless", "--only-summary"),
        *("-u", str(USERS), "-r", str(USERS), "-t", f"{SECONDS}s", "--stop-timeout", "10"),
        *("--clock-rate", "600", "--issue-rate", "30", "--facilities", "2", "--keep-workspace"),
        *("--csv", str(tmp_path / "run"), "--deadline-report", str(tmp_path / "deadline")),
        "HospitalUser",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (tmp_path / "locust.log").open("w") as log:
        locust = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        time.sleep(8)  # provisioning, then a few seconds of steady load through both replicas
        before = deployed.balancer.stats()
        steps = {name: deployed.restart(name) for name in REPLICA_HOSTS}
        after_restarts = deployed.balancer.stats()
        assert locust.poll() is None, "the restarts must happen while the load runs"
        locust.wait(timeout=SECONDS + 60)
    finally:
        if locust.poll() is None:
            locust.kill()
    output = (tmp_path / "locust.log").read_text()
    assert locust.returncode == 0, output[-3000:]
    end = deployed.balancer.stats()
    submit, token = stats(tmp_path)[("POST", SUBMIT)], stats(tmp_path)[("POST", "/api/token/take")]
    records = [r for r in json.loads((tmp_path / "deadline.json").read_text())["records"] if r["accepted_at"]]
    acknowledged = Counter((r["facility"], r["code"]) for r in records)
    expiries = re.search(r"(\d+) token\(s\) expired", output)  # the kit's summary, written after the run
    assert expiries, output[-3000:]
    expired = int(expiries[1])
    stored, shared, unshared = _stored(sqlalchemy.create_engine(deployed.database_url))
    print(
        f"\nrolling restart under load: {submit['Request Count']} submissions in Locust's CSV (written as the run "
        f"stops: a delivery finishing during the stop is in deadline.json only), {token['Request Count']} logins, "
        f"failures {submit['Failure Count']} + {token['Failure Count']}; {expired} re-sent after the token expired "
        f"(the sandbox clock runs 600x); HAProxy retries {end['BACKEND']['wretr']}, redispatches "
        f"{end['BACKEND']['wredis']}; acknowledged {len(acknowledged)}, stored {sum(stored.values())} "
        f"({len(set(stored) - set(acknowledged))} stored not acknowledged: in flight when the run stopped), shared "
        f"with IPSS {shared}; restart seconds {_rounded(steps)}"
    )
    assert int(submit["Failure Count"]) == 0 and int(token["Failure Count"]) == 0, output[-3000:]
    assert len(acknowledged) >= SECONDS * 5, "the load must be steady, not a trickle"
    assert sum(r["attempts"] - 1 for r in records) == expired, "no certificate sent again but after a token expiry"
    assert all(n == 1 for n in acknowledged.values()), "each certificate acknowledged once"
    lost = set(acknowledged) - set(stored)
    assert not lost, f"acknowledged but not in the database: {sorted(lost)[:10]}"
    assert all(n == 1 for n in stored.values()), "no retry stored a submission twice"
    assert unshared == 0 and shared == sum(stored.values()), "the sharing worker resumed after its replica's restart"
    for name in REPLICA_HOSTS:  # each served before its restart and again after both
        assert int(before[name]["stot"]) > 0 and end[name]["status"] == "UP"
        assert int(end[name]["stot"]) > int(after_restarts[name]["stot"])


def _stored(engine: sqlalchemy.Engine) -> tuple[Counter[tuple[str, str]], int, int]:
    """The accepted documents in PostgreSQL by (facility, code), those IPSS holds and the outbox rows not shared,
    once the outbox is empty or 30 s have passed."""
    deadline = time.monotonic() + 30
    with engine.connect() as db:
        while True:
            unshared = db.execute(sqlalchemy.text("SELECT count(*) FROM outbox WHERE shared_at IS NULL")).scalar_one()
            if unshared == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
            db.rollback()
        stored = Counter(
            (row.facility_code, row.code)
            for row in db.execute(sqlalchemy.text("SELECT facility_code, code FROM documents"))
        )
        shared = db.execute(sqlalchemy.text("SELECT count(*) FROM ipss_documents")).scalar_one()
    return stored, int(shared), int(unshared)


def _rounded(steps: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {name: {step: round(seconds, 1) for step, seconds in took.items()} for name, took in steps.items()}


# --- the description: compose.yaml and haproxy.cfg ------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_names_only_real_settings_and_runs_each_part_as_the_test_does() -> None:
    services = _compose()["services"]
    settings = {f"PORTAL_{f.name.upper()}" for f in fields(Settings)}
    for name, service in services.items():
        for variable in service.get("environment", {}):
            assert not variable.startswith("PORTAL_") or variable in settings, f"{name}: {variable} is no setting"
    replicas = {name for name, s in services.items() if s.get("command", [None])[0:1] == ["serve"]}
    assert replicas == set(REPLICA_HOSTS)
    sharing = {name for name in replicas if services[name]["environment"]["PORTAL_SHARING_ENABLED"] == "true"}
    assert sharing == {SHARING}, "the IPSS sharing worker runs in exactly one replica"
    assert services["migrate"]["command"] == ["migrate"]
    for name in replicas:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["image"] == services["migrate"]["image"] == IMAGE
    published = [port for s in services.values() for port in s.get("ports", [])]
    assert published and all(str(port).startswith("127.0.0.1:") for port in published), published
    haproxy_env = services["haproxy"]["environment"]
    assert {haproxy_env[f"REPLICA_{n[-1].upper()}"].split(":")[0] for n in REPLICA_HOSTS} == set(REPLICA_HOSTS)


def test_haproxy_cfg_is_valid() -> None:
    env = {
        **os.environ,
        **{"LB_BIND": "127.0.0.1:8080", "LB_STATS": "127.0.0.1:8404"},
        **{"REPLICA_A": "127.0.0.2:8080", "REPLICA_B": "127.0.0.3:8080"},
    }
    done = subprocess.run(
        [haproxy(), "-c", "-f", str(HAPROXY_CFG)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "WARNING" not in done.stdout + done.stderr, done.stdout + done.stderr
