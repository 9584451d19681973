"""`make contract`: the Schemathesis CLI against a served, seeded portal, exactly as a QA team runs it.

`python -m tests.contract_cli [--max-examples N]` starts `mock-portal serve` on a loopback port with a
database of its own, seeds it over HTTP with real data (a trusted test CA, a facility with a registered
signing certificate, accepted signed GCS and GBT documents shared to IPSS, a CRL), then runs

    schemathesis run <served>/openapi.json --checks all --phases examples,coverage,fuzzing,stateful

with the admin bearer and IPSS key as configured auth, and `tests/contract_hooks.py` (SCHEMATHESIS_HOOKS)
supplying what no JSON Schema can say: live wire tokens and signed files in the submission form, real
PEM certificates and CRLs for the `x509-*` formats. The exit code is the CLI's: any failure or error
fails CI.

Operations that change what every other operation relies on (the clock, the fault plans, the reset
that wipes the database) run in a second CLI run after the first, on the same server, so a fault plan
the fuzzer sets never turns a wire request into a deliberate 5xx, and a reset never removes the data
the first run draws on.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from fixtures.hospital.wire import LOAI_HS, HiapClient
from fixtures.pki import Credential, TestPKI, cert_pem, crl_der, crl_pem
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType
from tests.live import IPSS_KEY, LiveServer, start_server

REPO = Path(__file__).resolve().parents[1]
SEED = 20261201
GLOBAL_STATE = r"^/sandbox/(reset|clock(/advance)?|faults|facilities/[^/]+/faults)$"
SECOND_RUN = r"^/sandbox/(reset|clock(/advance)?|faults|facilities|facilities/[^/]+/faults)$"
"""The global-state operations, and the facility creation whose links lead the stateful phase to them."""
PEM = {"Content-Type": "application/x-pem-file"}
SUBMITTER = ("79001", "Bệnh viện Từ Dũ")
VICTIM = ("01002", "Bệnh viện Bạch Mai")


def _provision(admin: httpx.Client, pki: TestPKI, code: str, name: str) -> tuple[HiapClient, Credential]:
    """A facility with an account and a registered certificate; returns its wire client and signing credential."""
    password = f"Mk@{code}"
    created = admin.post(
        "/sandbox/facilities", json={"code": code, "name": name, "username": f"{code}_BV", "password": password}
    )
    created.raise_for_status()
    credential = pki.issue_facility_cert(code, "valid")
    registered = admin.post(f"/sandbox/facilities/{code}/certificates", content=cert_pem(credential.cert), headers=PEM)
    registered.raise_for_status()
    base_url = str(admin.base_url).rstrip("/")
    return HiapClient(base_url, facility_code=code, username=f"{code}_BV", password=password), credential


def _wait_shared(base_url: str, kind: str, code: str, timeout: float = 30.0) -> None:
    path = {"GCS": "birth-certificates", "GBT": "death-certificates"}[kind]
    deadline = time.monotonic() + timeout
    while httpx.get(f"{base_url}/ipss/v1/{path}/{code}", headers={"X-API-Key": IPSS_KEY}).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} {code} was not shared to IPSS within {timeout} s")
        time.sleep(0.2)


def seed(server: LiveServer) -> dict[str, Any]:
    """Real data in the served portal, and what the hooks need to draw realistic cases from it."""
    pki = TestPKI.create(dict([SUBMITTER, VICTIM]), now=datetime.now(UTC).replace(microsecond=0))
    crl = pki.crl()
    with server.admin() as admin:
        admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM).raise_for_status()
        admin.post("/sandbox/trust/crls", content=crl_pem(crl), headers=PEM).raise_for_status()
        submitter, credential = _provision(admin, pki, *SUBMITTER)
        _, victim = _provision(admin, pki, *VICTIM)
        token = submitter.take_token()
        forms, documents, submissions = [], [], []
        for serial, kind in enumerate(("GCS", "GBT", "GCS", "GBT"), start=1):
            xml = signed_sample(DocumentType[kind], credential, facility_code=SUBMITTER[0], serial=serial)
            form = submitter.form(LOAI_HS[kind], xml, token)
            forms.append(form)
            reply = submitter.send_form(form)
            if reply.ma_ket_qua != "200":
                raise RuntimeError(f"seed {kind} refused: {reply.explain}")
            found = admin.get(f"/sandbox/submissions/{reply.submission_id}").json()
            submissions.append(int(reply.submission_id or 0))
            documents.append({"type": kind, "code": found["document_code"], "fields": found["document"]["fields"]})
    for document in documents:
        _wait_shared(server.base_url, document["type"], document["code"])
    spare = pki.issue_facility_cert(VICTIM[0], "expired")
    return {
        "account": {"username": submitter.username, "password": submitter.password_md5},
        "forms": forms,
        "documents": documents,
        "submissions": submissions,
        "facilities": [SUBMITTER[0], VICTIM[0]],
        "cert_pems": [cert_pem(victim.cert).decode(), cert_pem(spare.cert).decode()],
        "ca_pems": [cert_pem(pki.root.cert).decode()],
        "crl_pem": crl_pem(crl).decode(),
        "crl_der": base64.b64encode(crl_der(crl)).decode(),
    }


def _config(server: LiveServer, seeded: dict[str, Any], max_examples: int, report: Path) -> str:
    """schemathesis.toml: auth for the two declared schemes (the wire token travels in the form, see the hooks)."""
    gcs, gbt = (next(d["code"] for d in seeded["documents"] if d["type"] == kind) for kind in ("GCS", "GBT"))
    return f"""
seed = {SEED}
[auth.openapi.adminBearer]
bearer = "{server.admin_token}"
[auth.openapi.ipssKey]
api_key = "{IPSS_KEY}"
[generation]
mode = "all"
max-examples = {max_examples}
database = "none"
[checks]
max_response_time = 10.0
[reports]
directory = "{report}"

# Identifiers of the seeded, shared documents: what a tester reads off the portal before the run.
[parameters]
"path.ma_gcs" = "{gcs}"
"path.ma_gbt" = "{gbt}"

# Refusals the contract declares for well-formed requests that it cannot express in a schema: an advance
# past the clock's range (depends on the clock), no period named (none, both forms, `to` before `from`:
# a cross-parameter rule), no shared, matching certificate (a business refusal).
[[operations]]
include-path = "/sandbox/clock/advance"
checks.positive_data_acceptance.expected-statuses = ["200", "400"]

[[operations]]
include-path = "/sandbox/reports/semiannual"
checks.positive_data_acceptance.expected-statuses = ["200", "400"]

[[operations]]
include-path-regex = "^/ipss/v1/(birth|death)-registrations$"
checks.positive_data_acceptance.expected-statuses = ["201", "422"]
"""


def run_cli(server: LiveServer, directory: Path, max_examples: int, *, only_global: bool) -> int:
    config = directory / "schemathesis.toml"
    seeded = json.loads((directory / "seed.json").read_text())
    config.write_text(_config(server, seeded, max_examples, directory / "report"))
    selector = ["--include-path-regex", SECOND_RUN] if only_global else ["--exclude-path-regex", GLOBAL_STATE]
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        *selector,
        "--workers",
        "1",
        "--no-color",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.contract_hooks",
        "CONTRACT_SEED": str(directory / "seed.json"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    print("$", " ".join(command), flush=True)
    # In the portal's directory: the CLI's cache and reports stay out of the work tree.
    return subprocess.run(command, env=env, cwd=directory, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25, help="cases per operation and phase")
    parser.add_argument("--keep", action="store_true", help="keep the portal's directory (kept anyway on failure)")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="contract-"))
    server = start_server(directory)
    try:
        (directory / "seed.json").write_text(json.dumps(seed(server), ensure_ascii=False))
        codes = [run_cli(server, directory, args.max_examples, only_global=flag) for flag in (False, True)]
    finally:
        server.stop()
    if max(codes) == 0 and not args.keep:
        shutil.rmtree(directory)
        print(f"contract: 0 failures, 0 errors (exit codes {codes})", flush=True)
    else:
        print(f"contract: exit codes {codes}; server log, database and reports in {directory}", flush=True)
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
