"""report.html: one self-contained page a vendor can send to a hospital.

No external assets (inline CSS, inline SVG, no scripts): a summary, pass/fail per case grouped by
area, the evidence of each case on demand (`<details>`), a picture of issue → acceptance against
the 4-working-hour deadline, and "reproduce with" commands under each failure.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from conformance.events import RunFinished
from conformance.evidence import Json
from conformance.model import CaseResult
from conformance.outcome import summary
from conformance.registry import AREAS
from conformance.report.common import case_evidence, details, reproduce, timeline, timing
from mock_portal.reports.charts import Key, clip, legend, text_width

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}
td,th{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.v{font-weight:bold;border-radius:3px;padding:1px 6px;color:#fff;font-size:12px}
.pass{background:#2e7d32}.fail{background:#c62828}.skip{background:#9e9e9e}
.omit{background:#bdbdbd}.error{background:#6a1b9a}.inconclusive{background:#ef6c00}
.big{font-size:1.3em;padding:4px 12px}pre{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap}
details{margin:4px 0}summary{cursor:pointer;color:#1565c0}.muted{color:#777}
"""


def _verdict(value: str, big: bool = False) -> str:
    return f'<span class="v {escape(value)}{" big" if big else ""}">{escape(value.upper())}</span>'


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_ON_TIME, _LATE, _WINDOW, _DEADLINE = "#2e7d32", "#c62828", "#cfd8dc", "#455a64"
_TIMELINE_KEYS = (
    Key(
        "window", "issue → deadline", lambda x, y: f'<rect x="{x}" y="{y + 2}" width="10" height="6" fill="{_WINDOW}"/>'
    ),
    Key("deadline", "deadline", lambda x, y: f'<rect x="{x + 4}" y="{y}" width="2" height="10" fill="{_DEADLINE}"/>'),
    Key("ON_TIME", "accepted on time", lambda x, y: f'<circle cx="{x + 5}" cy="{y + 5}" r="5" fill="{_ON_TIME}"/>'),
    Key("LATE", "accepted late", lambda x, y: f'<circle cx="{x + 5}" cy="{y + 5}" r="5" fill="{_LATE}"/>'),
    Key("missing", "not accepted (status at the right)", lambda x, y: f'<text x="{x}" y="{y + 9}" fill="red">!</text>'),
)
"""What each mark of the timeline means: one legend entry per `mark-<kind>` it can draw."""


def timeline_svg(rows: list[Json], width: int = 1000) -> str:
    """Each expected certificate: a bar from issue to deadline, a dot at acceptance (green on time, red
    late), the status written at the right when nothing was accepted; a legend below."""
    if not rows:
        return '<p class="muted">No expected certificate in this run.</p>'
    points = [t for r in rows for t in (_parse(r["issued_at"]), _parse(r["deadline"]), _parse(r["accepted_at"])) if t]
    low, high = min(points), max(points)
    span = max((high - low).total_seconds(), 60.0)
    left, right, row_h = 230, 20, 22

    def x(moment: datetime) -> float:
        return left + (moment - low).total_seconds() / span * (width - left - right)

    first, last = escape(f"{low.astimezone(VN_TZ):%a %d/%m %H:%M}"), escape(f"{high.astimezone(VN_TZ):%a %d/%m %H:%M}")
    parts = [
        f'<text x="{left}" y="14" font-size="11">{first} (Vietnam time)</text>',
        f'<text x="{width - right}" y="14" font-size="11" text-anchor="end">{last}</text>',
    ]
    drawn: set[str] = set()
    for index, row in enumerate(rows):
        y = 30 + index * row_h
        issued, deadline, accepted = _parse(row["issued_at"]), _parse(row["deadline"]), _parse(row["accepted_at"])
        scenario = clip(row["scenario"], 11, left - 12 - text_width(row["code"] + " ", 11))
        label = f'{escape(row["code"])} <tspan fill="#777">{escape(scenario)}</tspan>'
        parts.append(f'<text x="4" y="{y + 12}" font-size="11"><title>{escape(row["scenario"])}</title>{label}</text>')
        if issued and deadline:
            tip = f"issued {escape(row['issued_at'])} → deadline {escape(row['deadline'])}"
            start, end = x(issued), x(deadline)
            drawn.update(("window", "deadline"))
            parts.append(
                f'<rect class="mark-window" x="{start:.1f}" y="{y + 4}" width="{max(end - start, 1):.1f}" height="10" '
                f'fill="{_WINDOW}"><title>{tip}</title></rect>'
            )
            parts.append(
                f'<line class="mark-deadline" x1="{end:.1f}" x2="{end:.1f}" y1="{y}" y2="{y + 18}" '
                f'stroke="{_DEADLINE}" stroke-width="2"/>'
            )
        status = escape(row["status"])
        if accepted:
            kind = "ON_TIME" if row["status"] == "ON_TIME" else "LATE"
            drawn.add(kind)
            tip = f"accepted {escape(row['accepted_at'])} ({status})"
            parts.append(
                f'<circle class="mark-{kind}" cx="{x(accepted):.1f}" cy="{y + 9}" r="5" '
                f'fill="{_ON_TIME if kind == "ON_TIME" else _LATE}"><title>{tip}</title></circle>'
            )
        else:
            drawn.add("missing")
            parts.append(
                f'<text class="mark-missing" x="{width - right}" y="{y + 12}" font-size="11" text-anchor="end" '
                f'fill="red">{status}</text>'
            )
    keys, height = legend(
        [k for k in _TIMELINE_KEYS if k.kind in drawn], x=left, y=30 + len(rows) * row_h + 6, width=width - right
    )
    head = (
        f'<svg width="{width}" height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" role="img" '
        'aria-label="issue to acceptance timeline">'
    )
    return head + "".join(parts) + keys + "</svg>"


def _compact(kind: str, item: Json) -> Json:
    """The evidence in short, to keep the page small enough to mail; report.json has it in full."""
    if kind == "submissions":
        signature = item.get("signature") or {}
        return {
            **{k: item.get(k) for k in ("id", "received_at", "facility", "loai_hs", "result", "document_code")},
            "findings": [
                f"{f['code']} {f.get('path') or ''} {f.get('message_en', '')}".strip()
                for f in item.get("findings") or []
            ],
            "signature": {k: signature.get(k) for k in ("indication", "sub_indication", "profile", "signing_time")},
        }
    if kind == "expectations":
        document = item.get("document") or {}
        return {
            **{k: item.get(k) for k in ("id", "status", "issued_at", "deadline", "match")},
            "accepted_at": document.get("accepted_at"),
            "deadline_status": (document.get("deadline") or {}).get("status"),
        }
    return item


def _case_row(result: CaseResult, finished: RunFinished) -> str:
    evidence = case_evidence(result, finished.bundle)
    commands = reproduce(result, finished.bundle)
    findings = "".join(f"<li>{escape(line)}</li>" for line in details(result))
    body = [f"<p>{escape(result.message)}</p>"]
    if findings:
        body.append(f"<ul>{findings}</ul>")
    if commands:
        body.append("<p><b>Reproduce with:</b></p><pre>" + escape("\n".join(commands)) + "</pre>")
    shown = {k: [_compact(k, item) for item in v] for k, v in evidence.items() if k != "findings" and v}
    if shown:
        body.append(
            "<details><summary>evidence judged</summary><pre>"
            + escape(json.dumps(shown, ensure_ascii=False, indent=1))
            + "</pre></details>"
        )
    return (
        f"<tr><td>{_verdict(result.verdict.value)}</td><td><b>{escape(result.case_id)}</b></td>"
        f'<td>{escape(result.level.value)}<br><span class="muted">{escape(result.grade)}</span></td>'
        f'<td>{escape(result.title)}<br><span class="muted">{escape(result.basis)}</span>'
        f"<details><summary>details</summary>{''.join(body)}</details></td></tr>"
    )


def _calendar(mapping: Json | None) -> str | None:
    """The run's working calendar in one line (the one its scenarios were placed on)."""
    if not mapping:
        return None
    windows = ", ".join("–".join(pair) for pair in mapping.get("windows", ()))
    days, holidays = mapping.get("weekdays"), mapping.get("holidays")
    return f"{windows} {mapping.get('timezone')}, weekdays {days}, holidays {holidays}"


def _facts(meta: Json, seconds: float) -> str:
    facts = [
        ("Suite version", meta.get("suite_version")),
        ("Tool version", meta.get("tool_version")),
        ("Seed", meta.get("seed")),
        ("Mode", meta.get("mode")),
        ("Hospital", meta.get("trigger")),
        ("Clock", f"{meta.get('clock_start')} × {meta.get('clock_rate')}" if meta.get("clock_start") else None),
        ("Duration", f"{seconds:.1f} s"),
        ("Portal", meta.get("portal")),
        ("Working calendar", _calendar(meta.get("calendar"))),
        *(("Note", note) for note in meta.get("notes") or ()),
    ]
    cells = "".join(
        f"<tr><th>{name}</th><td>{escape(str(value))}</td></tr>" for name, value in facts if value is not None
    )
    return f"<table>{cells}</table>"


def render(finished: RunFinished) -> str:
    meta, info = finished.bundle.meta, summary(finished.results)
    counts = " · ".join(f"{n} {v}" for v, n in info["counts"].items() if n)
    headline = info["headline"]
    sections = []
    for area in AREAS:
        results = [r for r in finished.results if r.area == area]
        if results:
            rows = "".join(_case_row(r, finished) for r in results)
            sections.append(f'<h2 id="{area}">{escape(area.title())}</h2><table>{rows}</table>')
    plans = "".join(
        f"<li><b>{escape(s.name)}</b> (facility {escape(s.facility)}): {escape(s.description)}"
        f"<pre>{escape(json.dumps(s.fault_plan, ensure_ascii=False))}</pre></li>"
        for s in finished.bundle.scenarios
    )
    failed = ", ".join(info["must_failed"]) or "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Conformance report {escape(str(meta.get("run_id", "")))}</title>
<style>{CSS}</style></head>
<body>
<h1>GCS/GBT integration conformance report {_verdict(info["verdict"], big=True)}</h1>
<p><b>{headline}</b>: {escape(counts)}. MUST cases failed: {escape(failed)}.</p>
{_root_causes(info)}
{_two_results(info)}
{_facts(meta, finished.seconds)}
<h2>Deadline: issue → acceptance (Decree 63/2024 Art. 25.1, 4 working hours)</h2>
{timeline_svg(timeline(finished.bundle))}
<p class="muted">Grey bar: from issue to deadline; dark line: deadline; dot: accepted (green on time, red late).</p>
{"".join(sections)}
{_coverage(finished)}
<h2>Scenarios and fault plans</h2><ul>{plans or "<li>none (offline evidence)</li>"}</ul>
{_timing(finished)}
</body></html>
"""


def _root_causes(info: dict[str, Any]) -> str:
    """The failures grouped under the case that names their cause, before anything else."""
    if not info["root_causes"]:
        return ""
    items = "".join(
        f'<li id="root-{escape(g["case"])}"><b>{escape(g["case"])}</b> ({escape(g["level"])}): {escape(g["message"])}'
        + (
            "<ul>"
            + "".join(
                f"<li>{escape(c['case'])} ({escape(c['verdict'])}): {escape(c['message'])}</li>"
                for c in g["consequences"]
            )
            + "</ul>"
            if g["consequences"]
            else ""
        )
        + "</li>"
        for g in info["root_causes"]
    )
    return f"<h2>Root cause first</h2><ol>{items}</ol>"


def _coverage(finished: RunFinished) -> str:
    """Obligations → the cases of this run that check them (with their verdicts), and the unchecked ones."""
    from conformance.obligations import coverage

    verdicts = {r.case_id: r.verdict.value for r in finished.results}
    found = coverage([r.case_id for r in finished.results])
    rows = "".join(
        f"<tr><td>{escape(o['id'])}</td><td>{escape(o['source'])}</td><td>{escape(o['text'])}</td><td>"
        + (
            ", ".join(f"{escape(c)} ({escape(verdicts[c])})" for c in o["cases"])
            or f"<i>not checked: {escape(o['why_unchecked'] or 'no case in this run')}</i>"
        )
        + "</td></tr>"
        for o in found["obligations"]
    )
    return f'<h2 id="coverage">Coverage: obligations → cases</h2><table>{rows}</table>'


def _timing(finished: RunFinished) -> str:
    """Each scenario's timing resolution: lateness or disorder within it is the machine's, not the hospital's."""
    rows = "".join(
        f"<tr><td>{escape(t['scenario'])}</td><td>{t['rate']:g}×</td><td>{t['minutes']:.1f} min</td>"
        f"<td>{t['seconds']:.2f} s</td><td>{escape(_parts(t['parts']))}</td></tr>"
        for t in timing(finished.bundle)
    )
    if not rows:
        return ""
    head = "<tr><th>scenario</th><th>clock</th><th>resolution</th><th>real</th><th>measured delays</th></tr>"
    return (
        '<h2 id="timing">Timing resolution</h2><p class="muted">What the machine may have added (the test bed, '
        "not the hospital): a lateness or disorder within it is inconclusive, and the scenario runs again at a "
        f"slower clock.</p><table>{head}{rows}</table>"
    )


def _parts(parts: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in parts.items())


def _two_results(info: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr id="{key}"><th>{name} ({info[key]["level"]})</th><td>{_verdict(info[key]["verdict"])}</td>'
        f'<td>{escape(info[key]["statement"])}<br><span class="muted">judges {escape(info[key]["meaning"])}</span>'
        "</td></tr>"
        for key, name in (("portal_compatible", "Portal-compatible"), ("strict_clean", "Strict-clean"))
    )
    return f"<table>{rows}</table>"


def write_html(finished: RunFinished, path: Path) -> Path:
    path.write_text(render(finished), encoding="utf-8")
    return path
