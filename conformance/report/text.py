"""Console reporter: progress while scenarios run, one line per case, a summary at the end."""

from __future__ import annotations

import sys
from typing import TextIO

from conformance.events import CaseFinished, Event, RunFinished, RunStarted, ScenarioFinished, ScenarioStarted
from conformance.model import Verdict
from conformance.report.common import summary

MARK = {
    Verdict.PASS: "PASS ",
    Verdict.FAIL: "FAIL ",
    Verdict.SKIP: "skip ",
    Verdict.OMIT: "omit ",
    Verdict.ERROR: "ERROR",
}


class TextReporter:
    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            seed = f", seed {event.seed}" if event.seed is not None else ""
            self._print(f"conformance {event.mode}: suite {event.suite_version}, tool {event.tool_version}{seed}")
            if event.mode == "run":
                self._print(f"  portal {event.portal}; hospital via {event.trigger}")
                self._print(f"  scenarios: {', '.join(event.scenarios)}; {len(event.case_ids)} case(s)")
            for note in event.notes:
                self._print(f"  NOTE: {note}")
        elif isinstance(event, ScenarioStarted):
            self._print(f"  … {event.name} on facility {event.facility}: {event.description}")
        elif isinstance(event, ScenarioFinished):
            taken = sum(o.taken for o in event.orders)
            self._print(f"  ✓ {event.record.name}: {taken}/{len(event.orders)} order(s) taken, {event.seconds:.1f} s")
        elif isinstance(event, CaseFinished):
            result = event.result
            line = (
                f"{MARK[result.verdict]} {result.case_id:<12} {result.level.value:<6} {result.grade:<13} {result.title}"
            )
            if result.verdict is not Verdict.PASS or self.verbose:
                line += f"\n        {result.message}"
            self._print(line)
        elif isinstance(event, RunFinished):
            info = summary(event.results)
            counts = ", ".join(f"{n} {v}" for v, n in info["counts"].items() if n)
            verdict = "NOT CONFORMANT" if info["must_failed"] else "CONFORMANT"
            self._print(f"\n{verdict}: {counts} in {event.seconds:.1f} s")
            for key, name in (("portal_compatible", "portal-compatible"), ("strict_clean", "strict-clean")):
                part = info[key]
                self._print(f"  {name} ({part['level']}): {part['verdict'].upper()} — {part['meaning']}")
            for group in info["root_causes"]:
                then = ", ".join(f"{c['case']} ({c['verdict']})" for c in group["consequences"])
                self._print(f"  ROOT CAUSE {group['case']} ({group['level']}): {group['message']}")
                if then:
                    self._print(f"    and because of it: {then}")
            if info["must_failed"]:
                self._print(f"  MUST cases failed: {', '.join(info['must_failed'])}")
            if info["should_failed"]:
                self._print(f"  SHOULD cases failed: {', '.join(info['should_failed'])}")
