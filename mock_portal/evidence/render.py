"""A `RejudgeReport` as text (a person's summary), JSON (stable keys) or one HTML page (the reports' style).

All three show the same things in the same order: the counts, the matrix real code x sandbox code per
mode, the disagreements, what the sends say about each behaviour, the bad lines. None has a finding's
message or value in it: the report holds none (`rejudge.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from mock_portal import fidelity
from mock_portal.evidence.rejudge import COMPARABLE, MODES, Disagreement, RejudgeReport
from mock_portal.evidence.tally import BehaviourTally, Tally
from mock_portal.reports.page import REPORT_CSS

_BEHAVIOURS = {behaviour.key: behaviour for behaviour in fidelity.registry()}
_ACTION = {"warn": "warning", "refuse": "refusal"}


def render(report: RejudgeReport, form: str) -> str:
    """`report` in `form`: `text`, `json` or `html` (`mock-portal rejudge --format`)."""
    return {"text": as_text, "json": as_json, "html": as_html}[form](report)


def as_json(report: RejudgeReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"


def printable(text: str) -> str:
    """`text` as it is, or quoted with its escapes when it holds a control character (a newline, a
    terminal escape, a bidirectional override): a log's `id` must not forge lines of the report."""
    return text if text.isprintable() else repr(text)


def counted(count: int, thing: str) -> str:
    return f"{count} {thing}" + ("" if count == 1 else "s")


def files(count: int) -> str:
    return counted(count, "file")


def sentences(tally: BehaviourTally) -> list[str]:
    """What the real sends say about one behaviour, one sentence per kind of send that bears on it: the
    mode they support, and whether `strict` is stricter than the real portal."""
    portal = f"portal mode ({_ACTION.get(tally.portal_action, tally.portal_action)})"
    said = []
    if tally.accepted_warned:
        said.append(f"accepted {files(tally.accepted_warned)} where it failed: supports {portal}; strict is stricter")
    if tally.accepted_refused:
        said.append(f"accepted {files(tally.accepted_refused)} where it failed: contradicts {portal} and strict")
    if tally.refused_refused:
        said.append(f"refused {files(tally.refused_refused)} where only it failed: supports {portal} and strict")
    if tally.refused_warned:
        said.append(
            f"refused {files(tally.refused_warned)} where only it failed: contradicts {portal}; supports strict"
        )
    if tally.refused_with_others:
        said.append(f"refused {files(tally.refused_with_others)} where other checks failed too: not attributed")
    return said


def headline(tally: BehaviourTally) -> str:
    """The behaviour, its codes, its grade and the count of sends for and against `portal` mode:
    `schema.order (SCHEMA_ORDER; OBSERVED): portal mode 37 sends for, 0 against`."""
    behaviour = _BEHAVIOURS.get(tally.key)
    codes = ", ".join(behaviour.codes[:4]) if behaviour else ""
    return (
        f"{tally.key} ({codes + '; ' if codes else ''}{tally.grade}): "
        f"portal mode {counted(tally.supports, 'send')} for, {tally.contradicts} against"
    )


def _matrix(report: RejudgeReport, mode: str) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """The columns (sandbox codes) and rows (real code, counts) of one mode's matrix, as in the JSON."""
    matrix = report.matrix(mode)
    columns = sorted({code for row in matrix.values() for code in row}, key=int)
    return columns, [(real, [row.get(code, 0) for code in columns]) for real, row in matrix.items()]


def _cause(item: Disagreement, mode: str) -> str:
    return str(item.causes[mode] or "no error")


def as_text(report: RejudgeReport) -> str:
    """A person's summary: the counts, each mode's matrix, the disagreements, the behaviours, the bad lines."""
    lines = [
        f"mock-portal rejudge {printable(report.log)} (sandbox {report.version})",
        f"{report.lines} exchanges read: {report.judged} judged again, {counted(report.line_error_count, 'bad line')}; "
        f"{report.comparable} comparable (real {' or '.join(COMPARABLE)}), {report.not_comparable} not comparable "
        f"(another code or no reply: no verdict on the document)",
    ]
    for mode in MODES:
        lines += ["", *_text_matrix(report, mode)]
    lines += ["", *_text_disagreements(report), "", *_text_behaviours(report.tally)]
    lines += ["", f"Bad lines: {report.line_error_count}" + _listed(report.line_errors, report.line_error_count)]
    lines += [f"  line {error.line}: {error.code}: {error.message_en}" for error in report.line_errors]
    return "\n".join(lines) + "\n"


def _text_matrix(report: RejudgeReport, mode: str) -> list[str]:
    columns, rows = _matrix(report, mode)
    width = max([len("real \\ sandbox"), *(len(real) + 17 for real, _ in rows)])
    lines = [
        f"{mode} mode: agrees with the real portal on {report.agreements[mode]} of {report.comparable}",
        "  " + "real \\ sandbox".ljust(width) + "".join(f"{code:>7}" for code in columns),
    ]
    for real, counts in rows:
        label = real if real in COMPARABLE else f"{real} (not comparable)"
        lines.append("  " + label.ljust(width) + "".join(f"{count or '':>7}" for count in counts))
    return lines


def _text_disagreements(report: RejudgeReport) -> list[str]:
    lines = [f"Disagreements: {report.disagreement_count}" + _listed(report.disagreements, report.disagreement_count)]
    for item in report.disagreements:
        key = f" id {printable(item.id)}" if item.id else ""
        sandbox = ", ".join(f"{mode} {item.sandbox[mode]} ({_cause(item, mode)})" for mode in MODES)
        lines.append(f"  line {item.line}{key}: real {item.real}; {sandbox}")
        lines += [f"    {f.code} {f.path or '-'} (portal {f.portal}, strict {f.strict})" for f in item.findings]
    return lines


def _text_behaviours(tally: Tally) -> list[str]:
    lines = ["What the real sends say about each behaviour (docs/fidelity.md):"]
    for key in sorted(tally.behaviours):
        lines.append(f"  {headline(tally.behaviours[key])}")
        lines += [f"    the real portal {said}" for said in sentences(tally.behaviours[key])]
    if tally.unregistered:
        named = ", ".join(f"{code} x{count}" for code, count in sorted(tally.unregistered.items()))
        lines.append(f"  failed checks no behaviour names: {named}")
    if tally.unexplained_refusals:
        lines.append(
            f"  the real portal refused {files(tally.unexplained_refusals)} the sandbox finds nothing to refuse in "
            f"even in strict mode: a check the sandbox lacks"
        )
    if not tally.behaviours and not tally.unregistered and not tally.unexplained_refusals:
        lines.append("  nothing: no comparable send where a check failed")
    return lines


def _listed(listed: list[Any], count: int) -> str:
    return f" (the first {len(listed)} listed)" if len(listed) < count else ""


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def as_html(report: RejudgeReport) -> str:
    """One self-contained page (styles inline, no external resource), the six-monthly report's style."""
    tally = report.tally
    return _env.get_template("rejudge_page.html").render(
        css=REPORT_CSS,
        report=report,
        modes=MODES,
        comparable=COMPARABLE,
        matrices={mode: _matrix(report, mode) for mode in MODES},
        behaviours=[
            (headline(tally.behaviours[key]), sentences(tally.behaviours[key])) for key in sorted(tally.behaviours)
        ],
        cause=_cause,
        files=files,
    )
