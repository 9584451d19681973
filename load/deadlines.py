"""Deadline book-keeping of a load run: one record per issued certificate, a summary, a picture.

Pure Python (no Locust import), so the pytest process can test it. Times are sandbox-clock instants
(aware); "working minutes" count the portal's working-time calendar (Decree 63/2024 Art. 25.1: the
data must reach the portal within 240 working minutes of issue).

A record is ACCEPTED (with the working minutes from issue to acceptance and ON_TIME / LATE),
REFUSED (MaKetQua 205 / 1001: a protocol or data failure, counted apart), or PENDING at the end of
the run — OVERDUE when its deadline had already passed by then, which counts as late.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from mock_portal.control.clock import VN_TZ
from mock_portal.deadline.working_time import DEADLINE_MINUTES, WorkingCalendar, deadline_for
from mock_portal.reports.charts import Key, legend

__all__ = ["DeadlineLedger", "DeadlineRecord", "Status", "Thresholds", "Verdicts", "judge_thresholds", "render_svg"]


class Status(StrEnum):
    ON_TIME = "ON_TIME"
    LATE = "LATE"
    REFUSED = "REFUSED"
    PENDING = "PENDING"
    OVERDUE = "OVERDUE"


@dataclass(frozen=True)
class DeadlineRecord:
    """One certificate: who issued it, when (sandbox), and what became of it."""

    persona: str
    """"hospital" (HospitalUser) or "desk" (IssuingDeskUser: the system under test)."""
    doc_type: str
    code: str
    facility: str
    issued_at: str
    """Sandbox instant of issue, ISO 8601."""
    status: Status
    accepted_at: str | None = None
    """Sandbox instant of acceptance (ThoiGianTiepNhan, or the portal's accepted_at), ISO 8601."""
    working_minutes: float | None = None
    """Issue → acceptance (or → end of run when pending), in working minutes."""
    attempts: int = 0
    """Submit requests made for it (HospitalUser only)."""

    @property
    def late(self) -> bool:
        return self.status in (Status.LATE, Status.OVERDUE)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeadlineRecord:
        return cls(**{**data, "status": Status(data["status"])})

    @classmethod
    def judged(
        cls,
        *,
        persona: str,
        doc_type: str,
        code: str,
        facility: str,
        issued_at: datetime,
        accepted_at: datetime | None,
        calendar: WorkingCalendar,
        end: datetime | None = None,
        attempts: int = 0,
        refused: bool = False,
        limit: float = DEADLINE_MINUTES,
    ) -> DeadlineRecord:
        """Judge one certificate: accepted (ON_TIME / LATE), refused, or still pending at `end`."""
        deadline = deadline_for(issued_at, calendar, limit)
        if accepted_at is not None:
            status = Status.LATE if accepted_at > deadline else Status.ON_TIME
            minutes: float | None = calendar.working_minutes_between(issued_at, accepted_at)
        elif refused:
            status, minutes = Status.REFUSED, None
        else:
            end = end or issued_at
            status = Status.OVERDUE if end > deadline else Status.PENDING
            minutes = calendar.working_minutes_between(issued_at, end)
        return cls(
            persona=persona,
            doc_type=doc_type,
            code=code,
            facility=facility,
            issued_at=issued_at.isoformat(),
            status=status,
            accepted_at=accepted_at.isoformat() if accepted_at else None,
            working_minutes=round(minutes, 2) if minutes is not None else None,
            attempts=attempts,
        )


@dataclass
class DeadlineLedger:
    """All records of a run (on the master: merged from the workers' reports)."""

    limit_minutes: float = DEADLINE_MINUTES
    records: list[DeadlineRecord] = field(default_factory=list)

    def add(self, record: DeadlineRecord) -> None:
        self.records.append(record)

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        self.records.extend(DeadlineRecord.from_dict(r) for r in records)

    def drain(self) -> list[dict[str, Any]]:
        """Take every record out as plain dicts (a worker's report to the master)."""
        out = [r.to_dict() for r in self.records]
        self.records.clear()
        return out

    def summary(self) -> dict[str, Any]:
        by_status = {s.value: 0 for s in Status}
        for r in self.records:
            by_status[r.status.value] += 1
        minutes = sorted(r.working_minutes for r in self.records if r.accepted_at and r.working_minutes is not None)
        personas: dict[str, dict[str, int]] = {}
        for r in self.records:
            counts = personas.setdefault(r.persona, {s.value: 0 for s in Status})
            counts[r.status.value] += 1
        return {
            "limit_working_minutes": self.limit_minutes,
            "issued": len(self.records),
            "accepted": by_status["ON_TIME"] + by_status["LATE"],
            "late": by_status["LATE"] + by_status["OVERDUE"],
            "by_status": by_status,
            "by_persona": personas,
            "working_minutes": {
                "p50": _pct(minutes, 0.50),
                "p95": _pct(minutes, 0.95),
                "p99": _pct(minutes, 0.99),
                "max": minutes[-1] if minutes else None,
            },
            "retries": sum(max(0, r.attempts - 1) for r in self.records),
        }

    def write(self, prefix: Path, extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
        """`<prefix>.json` (summary + every record) and `<prefix>.svg` (the picture)."""
        prefix.parent.mkdir(parents=True, exist_ok=True)
        json_path, svg_path = prefix.with_name(prefix.name + ".json"), prefix.with_name(prefix.name + ".svg")
        body = {"summary": self.summary(), **(extra or {}), "records": [r.to_dict() for r in self.records]}
        json_path.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
        svg_path.write_text(render_svg(self.records, self.limit_minutes), encoding="utf-8")
        return json_path, svg_path


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


# --- thresholds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """What makes a run fail (exit code 1); None = not checked."""

    max_late: int | None = None
    """Late (accepted after the deadline) plus overdue (still pending past it) certificates allowed."""
    max_fail_ratio: float | None = None
    """Share of failed HTTP requests allowed (deadline pseudo-requests excluded)."""
    p95_ms: float | None = None
    """95th percentile of HTTP response times allowed, ms."""


@dataclass(frozen=True)
class Verdicts:
    failures: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def judge_thresholds(
    thresholds: Thresholds, *, issued: int, late: int, fail_ratio: float, p95_ms: float | None
) -> Verdicts:
    """The threshold failures of a run; a deadline threshold with no certificate issued fails, since no
    evidence is not a pass (outside working hours without --clock-rate nothing is issued at all)."""
    failures = []
    if thresholds.max_late is not None and issued == 0:
        failures.append(
            f"no certificate was issued, so --max-late {thresholds.max_late} has no evidence "
            "(outside working hours? give --clock-rate, or more run time / --issue-rate)"
        )
    elif thresholds.max_late is not None and late > thresholds.max_late:
        failures.append(f"{late} certificate(s) late or overdue > --max-late {thresholds.max_late}")
    if thresholds.max_fail_ratio is not None and fail_ratio > thresholds.max_fail_ratio:
        failures.append(f"HTTP failure ratio {fail_ratio:.4f} > --max-fail-ratio {thresholds.max_fail_ratio}")
    if thresholds.p95_ms is not None and p95_ms is not None and p95_ms > thresholds.p95_ms:
        failures.append(f"HTTP p95 {p95_ms:.0f} ms > --p95-ms {thresholds.p95_ms:g}")
    return Verdicts(tuple(failures))


# --- picture ----------------------------------------------------------------------------------

_COLOURS = {
    Status.ON_TIME: "#2e7d32",
    Status.LATE: "#c62828",
    Status.OVERDUE: "#c62828",
    Status.PENDING: "#9e9e9e",
    Status.REFUSED: "#ef6c00",
}
_HOLLOW = (Status.PENDING, Status.OVERDUE)
"""Undelivered at the end of the run: their minutes run up to the end, not to an acceptance."""
_MEANING = {
    Status.ON_TIME: "accepted on time",
    Status.LATE: "accepted late",
    Status.OVERDUE: "undelivered at end, past the deadline",
    Status.PENDING: "undelivered at end, deadline ahead",
    Status.REFUSED: "refused",
}


def _dot(status: Status, x: float, y: float, r: float) -> str:
    """A circle's attributes: filled when the certificate was accepted or refused, hollow when undelivered."""
    colour = _COLOURS[status]
    fill = "none" if status in _HOLLOW else colour
    return f'cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" stroke="{colour}"'


def _swatch(status: Status, x: float, y: float) -> str:
    """The legend's marker of `status` in the 10×10 box at (x, y)."""
    return f"<circle {_dot(status, x + 5, y + 5, 4)}/>"


def render_svg(records: list[DeadlineRecord], limit: float = DEADLINE_MINUTES, width: int = 900) -> str:
    """Issue instant (x, sandbox time) against issue → acceptance in working minutes (y), with the
    limit as a red line; hollow marks are pending/overdue (minutes up to the end of the run); a legend
    names every kind of mark drawn."""
    left, right, top, plot_h = 70, 20, 30, 340
    points = [r for r in records if r.working_minutes is not None]
    issued = [datetime.fromisoformat(r.issued_at).timestamp() for r in points]
    x0, x1 = (min(issued), max(issued)) if issued else (0.0, 1.0)
    x1 = x1 if x1 > x0 else x0 + 1
    y_max = max([limit * 1.25, *(r.working_minutes or 0 for r in points)])
    plot_w, axis_y = width - left - right, top + plot_h

    def sx(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * plot_w

    def sy(m: float) -> float:
        return top + plot_h - m / y_max * plot_h

    parts = [
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#bbb"/>',
        f'<text x="{left}" y="18" font-size="13">Issue → acceptance (working minutes) against the '
        f"{limit:g}-minute deadline: {len(records)} certificates</text>",
    ]
    for i in range(5):
        m = y_max * i / 4
        parts.append(f'<text x="{left - 6}" y="{sy(m) + 4:.1f}" text-anchor="end">{m:.0f}</text>')
    parts.append(
        f'<line class="mark-deadline" x1="{left}" x2="{left + plot_w}" y1="{sy(limit):.1f}" y2="{sy(limit):.1f}" '
        f'stroke="#c62828" stroke-dasharray="6 3"/><text x="{left + plot_w - 4}" y="{sy(limit) - 4:.1f}" '
        f'text-anchor="end" fill="#c62828">deadline {limit:g}</text>'
    )
    for t, label in ((x0, "first issue"), (x1, "last issue")):
        stamp = escape(datetime.fromtimestamp(t, VN_TZ).strftime("%a %d/%m %H:%M") if issued else "")
        anchor = "start" if t == x0 else "end"
        parts.append(f'<text x="{sx(t):.1f}" y="{axis_y + 20}" text-anchor="{anchor}">{label} {stamp}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{axis_y + 40}" text-anchor="middle">'
        "issued at (sandbox time, Vietnam)</text>"
    )
    for r, t in zip(points, issued, strict=True):
        parts.append(
            f'<circle class="mark-{r.status.value}" {_dot(r.status, sx(t), sy(r.working_minutes or 0), 2.5)}>'
            f"<title>{escape(r.code)} {r.status.value} {r.working_minutes}</title></circle>"
        )
    drawn = {r.status for r in points}
    keys = [Key(s.value, _MEANING[s], partial(_swatch, s)) for s in Status if s in drawn]
    deadline = Key("deadline", f"deadline ({limit:g} working minutes)", _deadline_swatch)
    below, height = legend([*keys, deadline], x=left, y=axis_y + 50, width=width - right)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" font-family="sans-serif" font-size="11">'
    )
    return "\n".join([head, *parts, below, "</svg>"])


def _deadline_swatch(x: float, y: float) -> str:
    line = f'x1="{x:.1f}" x2="{x + 10:.1f}" y1="{y + 5:.1f}" y2="{y + 5:.1f}"'
    return f'<line {line} stroke="#c62828" stroke-dasharray="3 2"/>'
