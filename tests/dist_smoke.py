"""`make dist`: the wheel and the sdist a user installs, checked as a user meets them (issue 29).

    python -m tests.dist_smoke dist/

1. Every tracked file of the packages (`mock_portal/`, `conformance/`, `fixtures/`, `load/`) is in the wheel and
   in the sdist, and no test is in the sdist: a data file the package-data globs of pyproject.toml miss fails
   here, not at a user's (`tests/test_packaging.py` holds the globs to the same list in `make test`).
2. A fresh venv in a temporary folder outside the checkout gets the wheel with its `load` extra from pip, not
   editable; every command runs there from an empty working directory with no PYTHONPATH, so nothing of the
   checkout is importable (checked: the packages import from the venv's site-packages).
3. As a user: `mock-portal --version` and `conformance --version` print the wheel's version; `mock-portal serve
   --demo` on a free loopback port (the demo's seeding comes through its entry point) reports it at
   `/sandbox/health`; `conformance run --reference --portal URL` for a few cases ends CONFORMANT, exit 0, and
   its bundle records that version (a partial run: `conformance verify` would rightly refuse it as a
   certificate); `python -m load` runs a few seconds of hospitals with every certificate on time; the server stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path

import httpx

from fixtures.ports import free_port
from tests.live import demo_server

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "vn-civil-cert-sandbox"
CASES = "GCS-DOC-001,GCS-DOC-003,SIG-001,SIG-004,API-001"
"""A few cases from three areas: parsing and the XSDs, the signature profile, the token exchange."""
ADMIN_TOKEN = "dist-smoke-admin-token"


def packages() -> list[str]:
    """The top-level packages pyproject.toml's `packages.find` includes."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    names = [p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()]
    return sorted(n for n in names if any(fnmatchcase(n, pattern) for pattern in include["find"]["include"]))


def package_files() -> list[str]:
    """Every file git tracks in the packages, as `package/.../name`: what the wheel must carry."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", *packages()], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return sorted(name for name in listed.split("\0") if name)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    """`command`'s output; its exit status must be 0."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def check_archives(wheel: Path, sdist: Path) -> None:
    expected = set(package_files())
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as archive:
        in_sdist = {name.partition("/")[2] for name in archive.getnames()}
    for name, found in (("wheel", in_wheel), ("sdist", in_sdist)):
        missing = sorted(expected - found)
        if missing:
            raise SystemExit(f"{name} {wheel.name if name == 'wheel' else sdist.name} lacks: {', '.join(missing)}")
    stray = sorted(n for n in in_sdist if n.startswith("tests/"))
    if stray:
        raise SystemExit(f"sdist carries tests that cannot run outside the checkout: {', '.join(stray[:5])}")
    print(f"wheel and sdist carry all {len(expected)} files of {', '.join(packages())}")


def smoke(wheel: Path, version: str, home: Path) -> None:
    venv, work = home / "venv", home / "work"
    work.mkdir()
    _run([sys.executable, "-m", "venv", str(venv)], home, dict(os.environ))
    bin_dir = venv / "bin"
    unset = ("PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k not in unset}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    _run([str(bin_dir / "pip"), "install", "--quiet", f"{wheel}[load]"], work, env, timeout=600)
    print(f"installed {wheel.name}[load] into a fresh venv in {time.monotonic() - started:.0f} s")

    where = _run([str(bin_dir / "python"), "-c", "import mock_portal, conformance, fixtures, load\n"
                  "for m in (mock_portal, conformance, fixtures, load): print(m.__file__)"], work, env)  # fmt: skip
    outside = [line for line in where.split() if not Path(line).is_relative_to(venv)]
    if outside:
        raise SystemExit(f"imported from outside the venv: {outside}")

    for command, printed in (("mock-portal", f"mock-portal {version}"), ("conformance", f"conformance {version} ")):
        said = _run([str(bin_dir / command), "--version"], work, env)
        if not said.startswith(printed):
            raise SystemExit(f"{command} --version: {said.strip()!r}, the wheel is {version}")
    print(f"mock-portal --version and conformance --version: {version}")

    port = free_port()
    serving = {**env, "PORTAL_PORT": str(port), "PORTAL_ADMIN_TOKEN": ADMIN_TOKEN}
    with demo_server(work, [str(bin_dir / "mock-portal"), "serve", "--demo"], serving) as url:
        health = httpx.get(f"{url}/sandbox/health").json()
        if health["version"] != version:
            raise SystemExit(f"/sandbox/health: version {health['version']}, the wheel is {version}")
        log = (work / "serve.log").read_text(encoding="utf-8")
        if "demo facility 79001" not in log:
            raise SystemExit(f"serve --demo seeded no demo facility:\n{log[-3000:]}")
        print(f"mock-portal serve --demo on {url}: healthy, demo facility seeded")

        started = time.monotonic()
        ran = _run(
            [str(bin_dir / "conformance"), "run", "--reference", "--portal", url, "--admin-token", ADMIN_TOKEN,
             "--only", CASES, "--report-dir", "bundle", "--seed", "7"],
            work, env,
        )  # fmt: skip
        verdict = next((line for line in ran.splitlines() if "CONFORMANT" in line), "")
        report = json.loads((work / "bundle" / "report.json").read_text(encoding="utf-8"))
        versions = json.loads((work / "bundle" / "versions.json").read_text(encoding="utf-8"))
        if not verdict.startswith("CONFORMANT") or sorted(c["id"] for c in report["cases"]) != sorted(CASES.split(",")):
            raise SystemExit(f"conformance run --reference --only {CASES}: {verdict or 'no verdict'}\n{ran[-3000:]}")
        recorded = {report["tool_version"], versions["tool_version"], versions[DISTRIBUTION]}
        if recorded != {version}:
            raise SystemExit(f"the bundle records {sorted(recorded)}, the wheel is {version}")
        print(f"conformance run --reference --only {CASES}: {verdict} in {time.monotonic() - started:.0f} s")

        started = time.monotonic()
        _run(
            [str(bin_dir / "python"), "-m", "load", "--headless", "-u", "2", "-r", "2", "-t", "4s", "-H", url,
             "--admin-token", ADMIN_TOKEN, "--clock-rate", "600", "--issue-rate", "60", "--max-late", "0",
             "--deadline-report", "load-deadline", "--only-summary"],
            work, env,
        )  # fmt: skip
        summary = json.loads((work / "load-deadline.json").read_text(encoding="utf-8"))["summary"]
        if not summary["accepted"] or summary["late"]:
            raise SystemExit(f"python -m load: {summary}")
        print(f"python -m load: {summary['accepted']} accepted, none late, in {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.dist_smoke", description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder `python -m build` wrote the wheel and the sdist to")
    args = parser.parse_args(argv)
    wheels, sdists = sorted(args.dist.glob("*.whl")), sorted(args.dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise SystemExit(f"{args.dist}: expected one wheel and one sdist, found {[p.name for p in wheels + sdists]}")
    wheel = wheels[0].resolve()
    version = re.fullmatch(r"[^-]+-([^-]+)-.+\.whl", wheel.name)
    assert version, wheel.name
    check_archives(wheel, sdists[0])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dist-smoke-") as home:
        if Path(home).resolve().is_relative_to(ROOT):
            raise SystemExit(f"{home} is inside the checkout: set TMPDIR elsewhere")
        smoke(wheel, version.group(1), Path(home))
    print(f"dist smoke passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
