"""The package map of docs/ARCHITECTURE.md is the code's: every import between packages of `mock_portal`
is listed there, every listed one exists, the map has no cycle, and only the HTTP layer imports the web
frameworks."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mock_portal"
HTTP_FRAMEWORKS = {"flask", "connexion", "starlette", "werkzeug", "a2wsgi", "uvicorn"}
HTTP_LAYER = {"api", "web", "app", "asgi", "serving", "cli"}


def documented() -> dict[str, set[str]]:
    """The table under "Inside `mock_portal/`": package -> what it may import."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Inside `mock_portal/`", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (m := re.fullmatch(r"`(\w+)(?:/|\.py)`", cells[0])):
            table[m.group(1)] = set(re.findall(r"`(\w+)`", cells[2]))
    return table


def unit_of(path: Path) -> str:
    """A top-level entry of mock_portal: a subpackage or a module."""
    first = path.relative_to(PACKAGE).parts[0]
    return first.removesuffix(".py")


def imported_modules(path: Path) -> Iterator[str]:
    dotted = ".".join(("mock_portal", *path.relative_to(PACKAGE).with_suffix("").parts))
    here = dotted.split(".") if path.name == "__init__.py" else dotted.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (
                ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                if node.level
                else node.module or ""
            )
            if base == "mock_portal":
                yield from (f"mock_portal.{alias.name}" for alias in node.names)
            else:
                yield base


def actual() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """unit -> units of mock_portal it imports; unit -> web frameworks it imports."""
    inner: dict[str, set[str]] = {}
    frameworks: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts == ("__init__.py",):
            continue
        unit = unit_of(path)
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "mock_portal" and len(parts) > 1 and parts[1] != unit:
                inner.setdefault(unit, set()).add(parts[1])
            elif parts[0] in HTTP_FRAMEWORKS:
                frameworks.setdefault(unit, set()).add(parts[0])
    return inner, frameworks


def test_every_package_is_on_the_map() -> None:
    entries = {
        p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert entries - {"__init__"} == set(documented())


def test_imports_between_packages_are_exactly_the_documented_ones() -> None:
    inner, _ = actual()
    table = documented()
    undocumented = {f"{u} -> {d}" for u, deps in inner.items() for d in deps - table.get(u, set())}
    stale = {f"{u} -> {d}" for u, deps in table.items() for d in deps - inner.get(u, set())}
    assert not undocumented, "imports missing from docs/ARCHITECTURE.md"
    assert not stale, "docs/ARCHITECTURE.md lists imports the code no longer has"


def test_the_map_has_no_cycle() -> None:
    table = documented()
    done: set[str] = set()

    def visit(unit: str, path: tuple[str, ...]) -> None:
        assert unit not in path, f"import cycle: {' -> '.join((*path, unit))}"
        if unit not in done:
            for dep in sorted(table.get(unit, ())):
                visit(dep, (*path, unit))
            done.add(unit)

    for unit in table:
        visit(unit, ())


@pytest.mark.parametrize(
    "unit",
    [
        "results",
        "store",
        "documents",
        "signature",
        "control",
        "deadline",
        "ipss",
        "portal",
        "reports",
        "fidelity",
        "config",
    ],
)
def test_domain_packages_know_no_http(unit: str) -> None:
    inner, frameworks = actual()
    assert not frameworks.get(unit), f"{unit} imports {frameworks.get(unit)}"
    assert not inner.get(unit, set()) & HTTP_LAYER, f"{unit} imports the HTTP layer"


def test_the_store_imports_no_domain_package() -> None:
    inner, _ = actual()
    assert not inner.get("store")


def test_every_package_says_what_it_owns() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{init.parent.name}/__init__.py has no docstring saying what it owns"
