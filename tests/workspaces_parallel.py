"""`make workspaces`: two `conformance run --reference --portal URL` at once against one served portal.

Issue 17's proof that tenants do not collide: each run opens a workspace of its own with the operator
key (its clock accelerated, its fault plans, its facilities — the same facility codes in both — its
journal), both must end CONFORMANT, both workspaces are gone afterwards, and the `default`
workspace's clock, fault plans and journal are exactly as before. ~45 s on 2 cores, hence a make
target of its own (called from .ci/run) rather than part of `make test`.

    python -m tests.workspaces_parallel
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.live import start_server


def _default_state(admin: Any) -> dict[str, Any]:
    clock = admin.get("/sandbox/clock").json()
    return {
        "clock": (clock["mode"], clock["rate"]),
        "faults": admin.get("/sandbox/faults").json(),
        "journal": admin.get("/sandbox/journal/count").json()["count"],
        "facilities": admin.get("/sandbox/facilities").json(),
        "workspaces": [w["id"] for w in admin.get("/sandbox/workspaces").json()],
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="workspaces-") as tmp:
        server = start_server(Path(tmp))
        try:
            with server.admin() as admin:
                before = _default_state(admin)
                started = time.monotonic()
                command = [
                    sys.executable, "-m", "conformance.cli", "run", "--reference",
                    "--portal", server.base_url, "--admin-token", server.admin_token,
                ]  # fmt: skip
                runs = [
                    subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    for _ in range(2)
                ]
                outputs = [run.communicate(timeout=600)[0] for run in runs]
                elapsed = time.monotonic() - started
                after = _default_state(admin)
        finally:
            server.stop()
    failures = []
    for index, (run, output) in enumerate(zip(runs, outputs, strict=True), 1):
        verdict = next((line for line in output.splitlines() if "CONFORMANT" in line), "no verdict")
        print(f"run {index}: exit {run.returncode}: {verdict}")
        if run.returncode != 0 or not verdict.startswith("CONFORMANT"):
            failures.append(f"run {index} did not end CONFORMANT:\n{output[-4000:]}")
    if after != before:
        failures.append(f"the default workspace changed:\nbefore {before}\nafter  {after}")
    print(f"two reference runs side by side in {elapsed:.1f} s; default workspace unchanged: {after == before}")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
