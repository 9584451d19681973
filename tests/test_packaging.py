"""Issue 29: what the wheel carries, cheaply. `make dist` builds the wheel and the sdist, checks their contents
and runs them in a fresh venv (tests/dist_smoke.py); here the package-data globs of pyproject.toml are held to
the files the packages track, so a data file the wheel would lack fails `make test` already."""

from __future__ import annotations

import json
import tomllib
from fnmatch import fnmatchcase
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from conformance import SUITE_VERSION
from conformance.cli import main as conformance_main
from fixtures.pki import TestPKI, cert_pem
from fixtures.samples import signed_sample
from mock_portal.cli import main as portal_main
from mock_portal.documents import DocumentType
from tests.dist_smoke import DISTRIBUTION, ROOT, package_files, packages


def _setuptools() -> dict[str, Any]:
    tool: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    return tool["setuptools"]


def _matches(name: str, package: str, pattern: str) -> bool:
    """setuptools' reading of a package-data glob: relative to the package's folder, `*` within one name."""
    path, folder = PurePosixPath(name), PurePosixPath(*package.split("."))
    if not path.is_relative_to(folder):
        return False
    parts, wanted = path.relative_to(folder).parts, PurePosixPath(pattern).parts
    return len(parts) == len(wanted) and all(fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True))


def test_the_wheel_holds_the_four_packages_of_the_map() -> None:
    """docs/ARCHITECTURE.md's packages: the portal, the suite, the hospital side the suite and the demo run,
    the load kit."""
    assert packages() == ["conformance", "fixtures", "load", "mock_portal"]


def test_every_file_of_the_packages_ships_with_them() -> None:
    """A module ships when every folder up to its package has an `__init__.py` (`packages.find` finds no
    namespace packages); any other file only when a package-data glob names it: conformance's
    trigger.schema.json, read by every run, was missing from the wheel."""
    globs = _setuptools()["package-data"]
    unshipped = []
    for name in package_files():
        path = PurePosixPath(name)
        if path.suffix == ".py":
            shipped = all((ROOT / folder / "__init__.py").is_file() for folder in path.parents[:-1])
        else:
            shipped = any(_matches(name, package, glob) for package, patterns in globs.items() for glob in patterns)
        if not shipped:
            unshipped.append(name)
    assert unshipped == []


def test_every_package_data_glob_names_a_file() -> None:
    """A glob that matches nothing is a misspelt one (the file it meant does not ship) or a dead one."""
    files = package_files()
    globs = _setuptools()["package-data"]
    dead = [f"{package}: {glob}" for package, patterns in globs.items() for glob in patterns]
    dead = [entry for entry in dead if not any(_matches(f, *entry.split(": ")) for f in files)]
    assert dead == []


def test_the_commands_print_the_version_a_report_records(
    tmp_path: Path, pki: TestPKI, capsys: pytest.CaptureFixture[str]
) -> None:
    """One version, the installed distribution's: both `--version`s, and a bundle's report.json and versions.json."""
    version = metadata.version(DISTRIBUTION)
    printed = {
        portal_main: f"mock-portal {version}\n",
        conformance_main: f"conformance {version} (suite {SUITE_VERSION})\n",
    }
    for main, line in printed.items():
        with pytest.raises(SystemExit) as done:
            main(["--version"])
        assert done.value.code == 0 and capsys.readouterr().out == line
    sample, ca = tmp_path / "gcs.xml", tmp_path / "ca.pem"
    sample.write_bytes(signed_sample(DocumentType.GCS, pki.issue_facility_cert("79001"), facility_code="79001"))
    ca.write_bytes(cert_pem(pki.root.cert))
    out = tmp_path / "bundle"
    assert conformance_main(["check", str(sample), "--trust", str(ca), "--cases", "--report-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    versions = json.loads((out / "versions.json").read_text(encoding="utf-8"))
    assert report["tool_version"] == versions["tool_version"] == versions[DISTRIBUTION] == version
    assert report["suite_version"] == versions["suite_version"] == SUITE_VERSION
