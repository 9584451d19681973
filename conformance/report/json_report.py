"""report.json: the whole run as data — versions, seed, clock timeline, fault plans, and each case
with its verdict, reason, the evidence it judged (journal entries, submissions with findings,
orders, expectations) and how to reproduce a failure.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from conformance.events import RunFinished
from conformance.outcome import summary
from conformance.report.common import case_evidence, reproduce, timeline, timing

KEYS = (
    "suite_version",
    "tool_version",
    "seed",
    "mode",
    "portal",
    "trigger",
    "duration_s",
    "summary",
    "clock",
    "calendar",
    "notes",
    "fault_plans",
    "scenarios",
    "timing",
    "timeline",
    "cases",
)


def build(finished: RunFinished) -> dict[str, Any]:
    bundle, meta = finished.bundle, finished.bundle.meta
    return {
        "suite_version": meta.get("suite_version"),
        "tool_version": meta.get("tool_version"),
        "seed": meta.get("seed"),
        "mode": meta.get("mode"),
        "portal": meta.get("portal"),
        "trigger": meta.get("trigger"),
        "duration_s": round(finished.seconds, 3),
        "summary": summary(finished.results),
        "clock": {"rate": meta.get("clock_rate"), "start": meta.get("clock_start"), "events": list(bundle.clock)},
        "calendar": meta.get("calendar"),
        "notes": list(meta.get("notes") or ()),
        "fault_plans": {s.name: {"facility": s.facility, "plan": s.fault_plan} for s in bundle.scenarios},
        "scenarios": [
            {**asdict(s), "orders": [o.request_id for o in bundle.orders if o.scenario == s.name]}
            for s in bundle.scenarios
        ],
        "timing": timing(bundle),
        "timeline": timeline(bundle),
        "cases": [
            {
                **r.to_dict(),
                "evidence": {**r.evidence.to_dict(), **case_evidence(r, bundle)},
                "reproduce": reproduce(r, bundle),
            }
            for r in finished.results
        ],
    }


def write_json(finished: RunFinished, path: Path) -> Path:
    path.write_text(json.dumps(build(finished), ensure_ascii=False, indent=2), encoding="utf-8")
    return path
