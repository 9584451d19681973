"""Issue 26: one wire exchange, derived once. The wire paths are spelled in one place, and the gateway,
which only moves a wire exchange's bytes, does not reach into a handler module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mock_portal"
WIRE_PATHS = ("/api/token/take", "/api/hososuckhoe/guiGiayToDienTu")


def _strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_the_wire_paths_are_spelled_once() -> None:
    spelled = {
        str(path.relative_to(ROOT)): sorted(set(WIRE_PATHS) & _strings(path))
        for path in ROOT.rglob("*.py")
        if set(WIRE_PATHS) & _strings(path)
    }
    assert spelled == {"wire/reply.py": sorted(WIRE_PATHS)}


def _imported(path: Path) -> set[str]:
    """Every dotted name `path` imports, a `from package import module`'s module included."""
    package = ["mock_portal", *path.relative_to(ROOT).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parent, node.module or ""]).strip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_gateway_imports_no_handler() -> None:
    imported = _imported(ROOT / "api" / "gateway.py")
    assert not {name for name in imported if name.startswith("mock_portal.api.hiap")}
