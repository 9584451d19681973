"""Judge an exchange log again and say where the sandbox and the real portal disagree (`mock-portal rejudge`).

Each logged send is judged in both modes at the instant it was sent (`judge.py`) with the trust store
the user gives, so a certificate is judged valid or expired as it was then. The report is data: per mode
the matrix real code x sandbox code; each disagreement with the codes and field paths of the sandbox's
findings (never a message, an expected or a received value: they quote names and ID numbers); the bad
lines; and what the sends say about each graded behaviour (`tally.py`). Only a real 200 or 205 is a
verdict on the document: a 401, 500, 1001 or no reply is counted in the matrix, "not comparable".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mock_portal import sandbox_version
from mock_portal.evidence.judge import Cause, Judged, judge
from mock_portal.evidence.log import LineError, LoggedSend
from mock_portal.evidence.record import EvidenceRecord, FindingRecord, record_of
from mock_portal.evidence.tally import ACCEPTED, REFUSED, Tally
from mock_portal.portal.intake import IntakePolicy
from mock_portal.results.grades import Strictness
from mock_portal.signature.trust import TrustStore

MODES = tuple(mode.value for mode in Strictness)
COMPARABLE = (ACCEPTED, REFUSED)
"""The real codes that are a verdict on the document; the others say nothing about its checks."""
MAX_LISTED = 10_000
"""Most disagreements and bad lines listed one by one (all are counted): a report stays readable and
its memory bounded whatever the log's length."""

logger = logging.getLogger(__name__)
"""Where a send the sandbox failed on leaves its traceback (the report says only the exception's type: its
text may quote the file)."""


@dataclass(frozen=True)
class Disagreement:
    """A send where the real portal's verdict on the document is not what the sandbox answers in a mode."""

    line: int
    id: str | None
    real: str
    sandbox: dict[str, str]
    """MaKetQua the sandbox answers, per mode."""
    causes: dict[str, Cause | None]
    """The first error finding per mode (None: that mode accepted)."""
    findings: tuple[FindingRecord, ...]

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes that disagree with the real portal."""
        return tuple(mode for mode in MODES if self.sandbox[mode] != self.real)

    def to_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "id": self.id,
            "real": self.real,
            "sandbox": self.sandbox,
            "disagree_in": list(self.modes),
            "first_error": {mode: cause.to_dict() if cause else None for mode, cause in self.causes.items()},
            "findings": [finding.to_dict() for finding in self.findings],
        }


@dataclass
class RejudgeReport:
    """What a log says, built one line at a time."""

    log: str
    version: str = field(default_factory=sandbox_version)
    """The sandbox that judged, said in every report: a later version may judge otherwise."""
    lines: int = 0
    """Non-blank lines read."""
    judged: int = 0
    not_comparable: int = 0
    agreements: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODES, 0))
    matrices: dict[str, dict[str, dict[str, int]]] = field(default_factory=lambda: {mode: {} for mode in MODES})
    """Per mode: {real code: {sandbox code: sends}}."""
    disagreements: list[Disagreement] = field(default_factory=list)
    disagreement_count: int = 0
    line_errors: list[LineError] = field(default_factory=list)
    line_error_count: int = 0
    unjudgeable: int = 0
    """Sends the sandbox itself failed on (among the bad lines): a bug of the sandbox, not of the log."""
    tally: Tally = field(default_factory=Tally)
    sink: Callable[[EvidenceRecord], None] | None = field(default=None, repr=False, compare=False)
    """Takes each send's record without personal data (`rejudge --export`)."""

    @property
    def comparable(self) -> int:
        return self.judged - self.not_comparable

    def add(self, logged: LoggedSend, judged: Judged, record: EvidenceRecord) -> None:
        """A judged send, and its record (`record_of(judged)`)."""
        self.lines += 1
        self.judged += 1
        for mode in MODES:
            row = self.matrices[mode].setdefault(logged.real, {})
            code = judged.code(Strictness(mode))
            row[code] = row.get(code, 0) + 1
        self.tally.add(record)
        if self.sink is not None:
            self.sink(record)
        if logged.real not in COMPARABLE:
            self.not_comparable += 1
            return
        sandbox = {mode: judged.code(Strictness(mode)) for mode in MODES}
        for mode in MODES:
            self.agreements[mode] += sandbox[mode] == logged.real
        if all(code == logged.real for code in sandbox.values()):
            return
        self.disagreement_count += 1
        if len(self.disagreements) < MAX_LISTED:
            causes = {mode: judged.cause(Strictness(mode)) for mode in MODES}
            self.disagreements.append(
                Disagreement(logged.line, logged.id, logged.real, sandbox, causes, record.findings)
            )

    def matrix(self, mode: str) -> dict[str, dict[str, int]]:
        """`mode`'s matrix in reading order: numeric real codes first, then timeout, reset, HTTP failures."""
        return {real: dict(sorted(row.items())) for real, row in sorted(self.matrices[mode].items(), key=_real_order)}

    def add_error(self, error: LineError) -> None:
        self.lines += 1
        self.line_error_count += 1
        if len(self.line_errors) < MAX_LISTED:
            self.line_errors.append(error)

    def to_dict(self) -> dict[str, object]:
        return {
            "log": self.log,
            "sandbox_version": self.version,
            "counts": {
                "lines": self.lines,
                "judged": self.judged,
                "comparable": self.comparable,
                "not_comparable": self.not_comparable,
                "line_errors": self.line_error_count,
                "unjudgeable": self.unjudgeable,
                "disagreements": self.disagreement_count,
                "agreements": self.agreements,
            },
            "matrices": {mode: self.matrix(mode) for mode in MODES},
            "comparable_codes": list(COMPARABLE),
            "disagreements": [d.to_dict() for d in self.disagreements],
            "disagreements_listed": len(self.disagreements),
            "behaviours": self.tally.to_dict(),
            "line_errors": [e.to_dict() for e in self.line_errors],
            "line_errors_listed": len(self.line_errors),
        }


def _real_order(item: tuple[str, object]) -> tuple[bool, int, str]:
    real = item[0]
    return (not real.isdigit(), int(real) if real.isdigit() else 0, real)


def rejudge(
    entries: Iterable[LoggedSend | LineError],
    *,
    trust: TrustStore,
    policy: IntakePolicy,
    log: str = "",
    sink: Callable[[EvidenceRecord], None] | None = None,
) -> RejudgeReport:
    """Judge each send of `entries` (`log.read_log`) again; `log` names the log in the report, `sink` takes
    each send's record."""
    report = RejudgeReport(log, sink=sink)
    for entry in entries:
        if isinstance(entry, LineError):
            report.add_error(entry)
            continue
        try:
            judged = judge(entry.sent, trust=trust, policy=policy)
            record = record_of(judged)
        except Exception as exc:  # a send the sandbox trips on is one bad line, never the end of the run
            logger.exception("rejudge: line %d could not be judged", entry.line)
            report.unjudgeable += 1
            report.add_error(unjudgeable(entry.line, exc))
            continue
        report.add(entry, judged, record)
    return report


def unjudgeable(line: int, exc: Exception) -> LineError:
    """LOG_UNJUDGEABLE: the sandbox failed on this send. Only the exception's type is said: its text
    may quote the file."""
    kind = type(exc).__name__
    return LineError(
        line,
        "LOG_UNJUDGEABLE",
        f"Sandbox không chấm được dòng này ({kind}): xin báo lỗi cho dự án.",
        f"The sandbox failed to judge this line ({kind}): please report it to the project.",
    )
