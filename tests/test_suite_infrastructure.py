"""Issue 26: the test suite's own infrastructure: one portal starter, one free_port, the shared fixtures
defined once (tests/conftest.py), and the `live` / `slow` markers that `make test-fast` selects on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import _group
from tests.live import LiveServer

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    p for d in ("mock_portal", "conformance", "fixtures", "load", "tests", "bench") for p in (ROOT / d).rglob("*.py")
]


def _definitions(name: str, *, fixture: bool = False) -> list[str]:
    """Where a function (with `fixture`: a pytest fixture) `name` is defined, as `path:line`."""
    found = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        if f"def {name}(" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef) or node.name != name:
                continue
            if not fixture or any("fixture" in ast.unparse(d) for d in node.decorator_list):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_one_free_port_and_one_portal_starter() -> None:
    assert _definitions("free_port") == ["fixtures/ports.py:9"]
    assert [d.partition(":")[0] for d in _definitions("start_local_portal")] == ["conformance/portal.py"]


@pytest.mark.parametrize("fixture", ["server", "portal", "admin", "trusted", "hospital"])
def test_the_shared_fixtures_are_defined_once_in_the_conftest(fixture: str) -> None:
    assert [d.partition(":")[0] for d in _definitions(fixture, fixture=True)] == ["tests/conftest.py"]


def test_a_test_on_a_portal_is_marked_live(request: pytest.FixtureRequest, server: LiveServer) -> None:
    assert request.node.get_closest_marker("live") is not None


def test_a_test_without_a_server_is_not_marked_live(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("live") is None


def test_xdist_hands_out_a_module_at_a_time_the_cpu_heavy_ones_as_one_and_spread_ones_test_by_test() -> None:
    assert _group("tests/test_ipss.py::test_a[1]") == _group("tests/test_ipss.py::test_b") == "tests/test_ipss.py"
    assert _group("tests/test_load.py::test_a") == _group("tests/test_dashboard_browser.py::test_b[x]") == "cpu-heavy"
    assert _group("tests/test_wire_submit.py::test_a[1]") == "tests/test_wire_submit.py::test_a[1]"
