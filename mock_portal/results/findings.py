"""Findings: what a check says about a submitted document, as plain data.

Every check of the portal (parsing, schema, business rules, signature, authentication) reports
its problems as `Finding`s; the HTTP layer only renders them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem found in a submission.

    `code` is stable (UPPER_SNAKE with an area prefix: XML_, SCHEMA_, RULE_, SIG_, FILE_, AUTH_);
    `path` is the XPath of the offending node when there is one.
    """

    code: str
    severity: Severity
    message_vi: str
    message_en: str
    path: str | None = None
    expected: str | None = None
    received: str | None = None
    grade: str | None = None
    """Evidence grade of the check (`grades.Grade`): how sure we are the real portal does the same."""
    source: str | None = None
    """Where that evidence comes from (R-number and title, or a document)."""

    def to_dict(self) -> dict[str, str | None]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> Finding:
        return cls(**{**data, "severity": Severity(data["severity"])})  # type: ignore[arg-type]  # to_dict's keys and values


def has_errors(findings: list[Finding] | tuple[Finding, ...]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


EXPLAIN_CHARS = 512
"""The longest explanation line: a submission's stored `explain` and the `X-Sandbox-Explain` header cut at
this one length, so decoding the header gives exactly the stored text (a cause quoting two names, ~350)."""


def first_error(findings: Iterable[Finding]) -> Finding | None:
    """The headline of a refusal: the first error in the order the examination reported them, which is
    the order of causes (parsing, structure, schema, signature in `CheckName` order, rules). Every
    surface that names one reason (X-Sandbox-Explain, the journal, the dashboard, `conformance check`,
    the six-monthly report) takes it from here and never re-sorts."""
    return next((f for f in findings if f.severity is Severity.ERROR), None)
