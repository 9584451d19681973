"""The README, run as a newcomer runs it: every `sh` block not marked `<!-- not run: … -->`, in order, in
one bash session, against a portal served by `mock-portal serve --demo`, then every link to the portal.

The server and the commands run in a scratch directory that holds links to `.venv`, `examples/` and
`load/` (so `var/demo/` and the database are the test's own) and to the sources and `pyproject.toml`, so
the CI block's `pip install -e "$R"` installs the sandbox into the CI job's own venv as in a checkout;
`127.0.0.1:8080` becomes the test's port and `/tmp/` its scratch directory, so parallel runs do not meet.

The commands run with `PIP_COMPILE=0` (pip's `--no-compile`; `PIP_NO_COMPILE=1` would mean `--compile` to
pip), as a CI job that throws its venv away after one run would set: pip then skips byte-compiling the ~50
packages it installs (Faker's and holidays' hundreds of locale modules, Pygments' lexers) that the job never
imports; what is imported is compiled on import as usual. The same packages are installed from the same
requirements, so the CI example still proves that `pip install -e <checkout> pytest` alone gives a venv whose
pytest runs the conformance plugin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest

from fixtures.ports import free_port
from tests.live import demo_server
from tests.markdown_blocks import blocks, shell_script

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEFAULT = "127.0.0.1:8080"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A scratch checkout (links to the venv and the data the README uses) and the demo portal on a free port."""
    work = tmp_path_factory.mktemp("readme")
    (work / ".venv").symlink_to(Path(sys.prefix))
    for name in ("examples", "load", "mock_portal", "fixtures", "conformance", "pyproject.toml", "README.md"):
        (work / name).symlink_to(ROOT / name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")} | {"PORTAL_PORT": str(port)}
    with demo_server(
        work, [str(work / ".venv" / "bin" / "mock-portal"), "serve", "--demo", "--log-level", "warning"], env
    ) as base:
        yield base, work


def test_every_not_run_block_says_why() -> None:
    skipped = [b for b in blocks(README) if b.lang == "sh" and b.not_run is not None]
    assert skipped and all(len(b.not_run or "") > 10 for b in skipped)
    assert len([b for b in blocks(README) if b.lang == "sh" and b.not_run is None]) >= 15


def test_readme_commands_run_end_to_end(served: tuple[str, Path]) -> None:
    base, work = served
    scratch = work / "tmp"
    scratch.mkdir()
    script = shell_script(README, {DEFAULT: base.removeprefix("http://"), "/tmp/": f"{scratch}/"})
    (work / "walkthrough.sh").write_text(script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")} | {"PIP_COMPILE": "0"}
    run = subprocess.run(
        ["bash", "walkthrough.sh"], cwd=work, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    out = run.stdout + run.stderr
    (work / "walkthrough.out").write_text(out, encoding="utf-8")
    last = [line for line in out.splitlines() if line.startswith(">>> ")][-1:]
    assert run.returncode == 0, f"README block {last} failed:\n{out[-4000:]}"
    # the walk-through: accepted, then a tampered file explained
    assert out.count("x-sandbox-explain: ACCEPTED") >= 2, out[-3000:]
    assert "SIG_DIGEST_MISMATCH" in out
    # controlling time: a sample made at sandbox time arrives on time against its expectation
    assert re.search(r'"status":\s*"ARRIVED"', out) and "ON_TIME" in out, out[-3000:]
    # (issue 25) the deadline's paths the README names: document.deadline of a submission, a list of documents
    assert re.search(r"\{'issued_at': '[^']+', 'source': '\w+', 'deadline': '[^']+', 'status': 'ON_TIME'", out), out
    assert re.search(r"^\['(ON_TIME|LATE)'\]$", out, re.M), out  # LATE when the send took over 24 s at 600x
    # the fault example drops one reply and the walk-through goes on
    assert "no reply: the document was stored" in out and "FAULT slow" in out
    assert "REPORT_PERIOD_INVALID" in out and "drained: 1 order(s) handled" in out
    # the CI example: its own venv (the sandbox and pytest only), pytest through the plugin (no -p), one case, passed
    ci_venv = scratch / "his-ci" / "venv"
    assert (ci_venv / "bin" / "pytest").is_file() and not (ci_venv / "bin" / "locust").exists()
    junit = ET.parse(scratch / "his-ci" / "conformance.xml").getroot()
    cases = junit.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["API-001"]
    assert all(c.find("failure") is None and c.find("error") is None and c.find("skipped") is None for c in cases)
    # every tool put the clock and the fault plans back
    token = (work / "var" / "demo" / "admin-token").read_text().strip()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as admin:
        assert admin.get("/sandbox/clock").json()["mode"] == "real"
        assert admin.get("/sandbox/faults").json()["plan"]["faults"] == []


def test_readme_links_to_the_portal_open(served: tuple[str, Path]) -> None:
    """The dashboard link (`/sandbox/ui`, no trailing slash) and the others lead to a page, not an error."""
    base, _ = served
    links = set(re.findall(r"<http://127\.0\.0\.1:8080(/[^>]*)>", README.read_text(encoding="utf-8")))
    assert "/sandbox/ui" in links and "/ui" in links
    for path in sorted(links | {"/"}):
        reply = httpx.get(base + path, follow_redirects=True, timeout=10)
        assert reply.status_code == 200, (path, reply.status_code, reply.text[:300])
        assert "problem+json" not in reply.headers["content-type"], path
