"""The conformance cases as pytest items, so a QA team gets them from its usual pytest + JUnit tooling.

    pytest --conformance-trigger-cmd 'CMD' --conformance-portal URL --junitxml=conformance.xml ...

The installed package registers the plugin (`pytest11` entry point); adding `-p conformance.pytest_plugin`
as well registers it twice, which pytest refuses ("Plugin already registered").

Inert unless `--conformance-trigger-cmd` or `--conformance-trigger-url` is given. Then one item per
case ID is added to the session; the live run happens once, on the first item, and every item
reports its own case: MUST failures fail, SHOULD failures are xfail, skipped cases skip, a harness
error is an error. Each item carries the case's ID, level, basis, grade and result as JUnit properties, and
the classname `conformance.<area>` (documents, signature, api, deadline, flows), as in the suite's junit.xml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.cases import load_cases
from conformance.harness import DEFAULT_FACILITY, LiveOptions, run_live
from conformance.model import CaseResult, CaseVerdict, Level
from conformance.registry import CaseSpec
from conformance.report import FileReports
from conformance.report.common import details, reproduce

OPTIONS = (
    ("trigger-cmd", "command that takes one order as JSON on stdin (exit 0 = taken)", str),
    ("trigger-url", "URL that takes one order as a JSON POST (2xx = taken)", str),
    ("portal", "base URL of the portal the hospital system sends to (required)", str),
    ("admin-token", "the portal's admin token (default: $PORTAL_ADMIN_TOKEN)", str),
    ("facility", f"the hospital's MA_CSKCB (default {DEFAULT_FACILITY})", str),
    ("username", "its portal account (default <facility>_BV)", str),
    ("password", "its portal password (default 'conformance')", str),
    ("cert", "signing certificate PEM registered for the facility", Path),
    ("trust", "CA certificate PEM to trust (repeatable)", Path),
    ("crl", "CRL PEM to load (repeatable)", Path),
    ("clock-rate", "sandbox clock speed (default 600)", float),
    ("only", "comma-separated case IDs (trailing * = prefix)", str),
    ("report-dir", "also write junit.xml, report.json, report.html, evidence.jsonl here", Path),
    ("seed", "seed of generated data and fault plans", int),
)
REPEATABLE = {"trust", "crl"}
FLAGS = (("order-portal", "add the optional `portal` object (base URL, clock rate, sandbox time) to every order"),)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "GCS/GBT integration conformance (vn-civil-cert-sandbox)")
    for name, help_text, kind in OPTIONS:
        dest = "conformance_" + name.replace("-", "_")
        if name in REPEATABLE:
            group.addoption(f"--conformance-{name}", dest=dest, action="append", type=kind, default=[], help=help_text)
        else:
            group.addoption(f"--conformance-{name}", dest=dest, type=kind, default=None, help=help_text)
    for name, help_text in FLAGS:
        group.addoption(
            f"--conformance-{name}", dest="conformance_" + name.replace("-", "_"), action="store_true", help=help_text
        )


def _option(config: pytest.Config, name: str) -> Any:
    return config.getoption("conformance_" + name.replace("-", "_"))


def _active(config: pytest.Config) -> bool:
    return bool(_option(config, "trigger-cmd") or _option(config, "trigger-url"))


class LiveSession:
    """Runs the suite once for the whole pytest session and hands each item its case result."""

    def __init__(self, config: pytest.Config, specs: list[CaseSpec]) -> None:
        self.config, self.specs = config, specs
        self.results: dict[str, CaseResult] | None = None
        self.finished: Any = None

    def result(self, case_id: str) -> CaseResult:
        if self.results is None:
            config = self.config
            options = LiveOptions(
                trigger_cmd=_option(config, "trigger-cmd"),
                trigger_url=_option(config, "trigger-url"),
                portal=_option(config, "portal"),
                admin_token=_option(config, "admin-token"),
                facility=_option(config, "facility") or DEFAULT_FACILITY,
                username=_option(config, "username"),
                password=_option(config, "password") or "conformance",
                cert=_option(config, "cert"),
                trust=tuple(_option(config, "trust")),
                crl=tuple(_option(config, "crl")),
                clock_rate=_option(config, "clock-rate") or 600.0,
                seed=_option(config, "seed"),
                order_portal=_option(config, "order-portal"),
            )
            report_dir = _option(config, "report-dir")
            listeners = [FileReports(report_dir)] if report_dir else []
            self.finished = run_live(options, self.specs, listeners)
            self.results = {r.case_id: r for r in self.finished.results}
        return self.results[case_id]


class CaseFailed(Exception):
    """A MUST case failed: the message, its findings and how to reproduce it."""


class CaseItem(pytest.Item):
    def __init__(self, *, spec: CaseSpec, live: LiveSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec, self.live = spec, live
        self.user_properties += [
            ("id", spec.id),
            ("level", spec.level.value),
            ("basis", spec.basis),
            ("grade", spec.grade.value),
            ("result", spec.result),
        ]

    def runtest(self) -> None:
        result = self.live.result(self.spec.id)
        if result.verdict in (CaseVerdict.SKIP, CaseVerdict.OMIT):
            pytest.skip(result.message)
        if result.verdict is CaseVerdict.INCONCLUSIVE:
            pytest.skip(f"inconclusive (inside the machine's timing resolution): {result.message}")
        if result.verdict is CaseVerdict.ERROR:
            raise RuntimeError(f"harness error: {result.message}")
        if result.verdict is CaseVerdict.FAIL:
            if result.level is Level.SHOULD:
                pytest.xfail(f"SHOULD: {result.message}")
            lines = [result.message, *details(result)]
            lines += ["reproduce with:", *reproduce(result, self.live.finished.bundle)]
            raise CaseFailed("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return f"{self.spec.id} ({self.spec.level.value}, {self.spec.basis}): {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int, str]:
        return "conformance", 0, f"{self.spec.id}: {self.spec.title}"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _active(config):
        return
    registry = load_cases()
    ids = [part.strip() for part in (_option(config, "only") or "").split(",") if part.strip()]
    specs = registry.select(ids=ids)
    live = LiveSession(config, specs)
    # the node ID `conformance.<area>::<ID>` gives JUnit the classname `conformance.<area>` (as in our junit.xml)
    items.extend(
        CaseItem.from_parent(session, name=spec.id, nodeid=f"conformance.{spec.area}::{spec.id}", spec=spec, live=live)
        for spec in specs
    )
