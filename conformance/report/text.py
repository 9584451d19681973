"""Console reporter: progress while scenarios run, one line per case, a summary at the end."""

from __future__ import annotations

import sys
from typing import TextIO

from conformance.events import CaseFinished, Event, RunFinished, RunStarted, ScenarioFinished, ScenarioStarted
from conformance.model import CaseVerdict
from conformance.outcome import summary
from conformance.report.common import timing

MARK = {
    CaseVerdict.PASS: "PASS ",
    CaseVerdict.FAIL: "FAIL ",
    CaseVerdict.SKIP: "skip ",
    CaseVerdict.OMIT: "omit ",
    CaseVerdict.ERROR: "ERROR",
    CaseVerdict.INCONCLUSIVE: "INCON",
}


class TextReporter:
    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self._said: tuple[str, ...] = ()

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
            self._said = event.notes
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
            if result.verdict is not CaseVerdict.PASS or self.verbose:
                line += f"\n        {result.message}"
            self._print(line)
        elif isinstance(event, RunFinished):
            info = summary(event.results)
            counts = ", ".join(f"{n} {v}" for v, n in info["counts"].items() if n)
            for note in event.bundle.meta.get("notes") or ():
                if note not in self._said:
                    self._print(f"  NOTE: {note}")
            self._timing(event)
            self._print(f"\n{info['headline']}: {counts} in {event.seconds:.1f} s")
            for key, name in (("portal_compatible", "portal-compatible"), ("strict_clean", "strict-clean")):
                part = info[key]
                self._print(f"  {name} ({part['level']}): {part['verdict'].upper()} — {part['statement']}")
            for group in info["root_causes"]:
                then = ", ".join(f"{c['case']} ({c['verdict']})" for c in group["consequences"])
                self._print(f"  ROOT CAUSE {group['case']} ({group['level']}): {group['message']}")
                if then:
                    self._print(f"    and because of it: {then}")
            if info["must_failed"]:
                self._print(f"  MUST cases failed: {', '.join(info['must_failed'])}")
            if info["must_inconclusive"]:
                self._print(
                    f"  MUST cases inconclusive: {', '.join(info['must_inconclusive'])}: a lateness or disorder inside "
                    "the machine's timing resolution, also at a slower clock; run again on a quieter machine"
                )
            if info["should_failed"]:
                self._print(f"  SHOULD cases failed: {', '.join(info['should_failed'])}")

    def _timing(self, event: RunFinished) -> None:
        """The run's worst timing resolution, the one that matters for its verdicts (all in report.json)."""
        rows = timing(event.bundle)
        if rows:
            worst = max(rows, key=lambda row: row["minutes"])
            self._print(
                f"  timing resolution: up to {worst['minutes']:.1f} sandbox min ({worst['seconds']:.2f} s real at "
                f"{worst['rate']:g}×, {worst['scenario']}); lateness or disorder within it is no failure"
            )
