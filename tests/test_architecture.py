"""The package maps of docs/ARCHITECTURE.md are the code's: every import between the top-level packages and
between the packages of `mock_portal` is listed there, every listed one exists, neither map has a cycle, and
only the HTTP layer imports the web frameworks."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mock_portal"
HTTP_FRAMEWORKS = {"flask", "connexion", "starlette", "werkzeug", "a2wsgi", "uvicorn"}
HTTP_LAYER = {"api", "web", "app", "asgi", "serving", "cli"}
TOP_LEVEL = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.py"))}
"""Folders with Python modules of their own: a build's `build/lib/...` copies or a venv's `lib/` are not one."""


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
    dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
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
            if base in TOP_LEVEL:  # `from mock_portal import app`: the module mock_portal.app; a name of
                # the package's own `__init__.py` (`sandbox_version`) is the package itself, no unit of it
                yield from (f"{base}.{alias.name}" if _is_module(base, alias.name) else base for alias in node.names)
            else:
                yield base


def _is_module(package: str, name: str) -> bool:
    folder = ROOT / package
    return (folder / name).is_dir() or (folder / f"{name}.py").is_file()


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
    assert_acyclic(documented())


def assert_acyclic(table: dict[str, set[str]]) -> None:
    """Fails naming the first cycle found in `table` (unit -> the units it imports)."""
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
        "wire",
        "faults",
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


# Issue 26: one vocabulary

VOCABULARY = ("mock_portal", "conformance", "fixtures", "load")
SHARED_CLASS_NAMES: dict[str, str] = {}
"""Class names two top-level classes may share, each with the reason; none needs it today."""


def top_level_classes() -> dict[str, list[str]]:
    """Class name -> the files of `VOCABULARY` that define a top-level class of that name."""
    found: dict[str, list[str]] = {}
    for package in VOCABULARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.ClassDef):
                    found.setdefault(node.name, []).append(path.relative_to(ROOT).as_posix())
    return found


@pytest.fixture(scope="module")
def classes() -> dict[str, list[str]]:
    return top_level_classes()


def test_each_class_name_means_one_thing(classes: dict[str, list[str]]) -> None:
    """Two classes of one name are two concepts a reader must tell apart by their import (four `Outcome`s
    once): the same concept is one class, reused; different concepts get different names."""
    twins = {name: files for name, files in classes.items() if len(files) > 1 and name not in SHARED_CLASS_NAMES}
    assert not twins, f"one name, several classes: rename one, or allow it in SHARED_CLASS_NAMES with a reason: {twins}"


def test_the_result_types_glossary_names_real_classes(classes: dict[str, list[str]]) -> None:
    """Each row of "## Result types" in docs/ARCHITECTURE.md names a top-level class of the file it gives."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("\n## Result types", 1)[1].split("\n## ", 1)[0]
    rows = [
        (m.group(1), m.group(2))
        for line in section.splitlines()
        if (m := re.match(r"\| `(\w+)` \| `([\w/]+\.py)` \|", line))
    ]
    assert len(rows) >= 20
    wrong = [(name, path) for name, path in rows if path not in classes.get(name, [])]
    assert not wrong, f"the glossary names classes that are not there: {wrong}"


# Issue 26: no cycle between modules ---------------------------------------------------------------
@functools.cache
def syntax_tree(path: Path) -> ast.Module:
    """A module's parsed source, read once for the checks below."""
    return ast.parse(path.read_text(encoding="utf-8"))


def module_name(path: Path) -> str:
    """The dotted name of a module of mock_portal (a package by its `__init__.py`)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_imported(path: Path, modules: set[str]) -> set[str]:
    """The modules of `modules` that `path` imports, at module level or inside a function: `from a.b
    import c` imports a.b.c when that is a module, else a.b."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(syntax_tree(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return found & modules - {name}


def test_no_modules_import_each_other_in_a_cycle() -> None:
    """Inside a package too (`store/ipss.py` and `store/repository.py` once did): a module's imports
    form no loop back to it, whether at the top of the file or inside a function."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: modules_imported(path, set(paths)) for name, path in paths.items()}
    cycles: list[str] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycles.append(" -> ".join([*path[path.index(name) :], name]))
        elif name not in done:
            for imported in sorted(graph[name]):
                visit(imported, [*path, name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert not cycles, f"modules import each other: {cycles}"


# Issue 26: workspace scoping only through the repository ------------------------------------------
def compares_workspace_column(node: ast.AST) -> bool:
    """`Model.workspace_id` or `store.Model.workspace_id` in a comparison: a query choosing a workspace."""
    if not isinstance(node, ast.Compare):
        return False
    for side in (node.left, *node.comparators):
        if isinstance(side, ast.Attribute) and side.attr == "workspace_id":
            owner = side.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name[:1].isupper():
                return True
    return False


def test_only_the_repository_limits_a_query_to_a_workspace() -> None:
    """Reads of a workspace's rows start from the repository (`Repository.query` and its scoped reads),
    so no query elsewhere can forget the workspace, or name another one."""
    repository = PACKAGE / "store" / "repository.py"
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        if path != repository and "migrations" not in path.parts
        for node in ast.walk(syntax_tree(path))
        if compares_workspace_column(node)
    ]
    assert not found, "compare workspace_id through Repository.query instead"


# Issue 26: the top-level packages ------------------------------------------------------------------
def documented_top_level() -> dict[str, set[str] | None]:
    """The table under "## Packages": package -> the modules of the others it may import, each a dotted
    prefix (`mock_portal` allows all of it, `conformance.portal` that module); None for "all"."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str] | None] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (names := re.findall(r"`(\w+)/`", cells[0])):
            allowed = None if cells[2] == "all" else set(re.findall(r"`([\w.]+)`", cells[2]))
            table.update(dict.fromkeys(names, allowed))
    return table


def top_level_imports(packages: set[str]) -> dict[str, set[str]]:
    """package -> every module of another top-level package it imports, at module level or in a function."""
    found: dict[str, set[str]] = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for module in imported_modules(path):
                if module.split(".")[0] in TOP_LEVEL - {package}:
                    found.setdefault(package, set()).add(module)
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(f"{prefix}.")


def test_every_top_level_package_is_on_the_map() -> None:
    assert set(documented_top_level()) == TOP_LEVEL


def test_imports_between_top_level_packages_are_exactly_the_documented_ones() -> None:
    limited = {package: allowed for package, allowed in documented_top_level().items() if allowed is not None}
    found = top_level_imports(set(limited))
    undocumented = {
        f"{package} -> {module}"
        for package, allowed in limited.items()
        for module in found.get(package, set())
        if not any(_within(module, prefix) for prefix in allowed)
    }
    stale = {
        f"{package} -> {prefix}"
        for package, allowed in limited.items()
        for prefix in allowed
        if not any(_within(module, prefix) for module in found.get(package, set()))
    }
    assert not undocumented, "imports missing from the table of docs/ARCHITECTURE.md's Packages"
    assert not stale, "docs/ARCHITECTURE.md's Packages table lists imports the code no longer has"


def test_the_top_level_map_has_no_cycle() -> None:
    """ "all" (tests, benches) may import every package with a list, so one listing them makes a cycle."""
    table = documented_top_level()
    limited = {
        package: {prefix.split(".")[0] for prefix in allowed}
        for package, allowed in table.items()
        if allowed is not None
    }
    assert_acyclic({package: limited.get(package, set(limited)) for package in table})


# Issue 26: the map names the commands there are


def test_the_map_names_the_mock_portal_commands_there_are(capsys: pytest.CaptureFixture[str]) -> None:
    from mock_portal import cli

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    usage = re.search(r"\{([\w,-]+)\}", capsys.readouterr().out)
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `cli.py` |"))
    listed = re.search(r"command: ([\w, -]+?);", row)
    assert usage and listed and set(listed.group(1).split(", ")) == set(usage.group(1).split(","))
