"""How sure the sandbox is that the real portal behaves as it does: evidence grades and strictness modes.

Plain data shared by every check (documents, signature, auth) and by `fidelity`, which holds the
registry of graded behaviours. Nothing here imports another project module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Grade(StrEnum):
    """How a behaviour is known (issue 9): from official text, from real vendors, or not at all."""

    CONFIRMED = "CONFIRMED"
    """Official text (the portal's own field table, the PL02 appendix as summarised, a decree)."""
    OBSERVED = "OBSERVED"
    """Seen in real vendors' code or reports of real sends."""
    RECONSTRUCTED = "RECONSTRUCTED"
    """Our inference; nothing independent shows the real portal does it."""
    ADVISORY = "ADVISORY"
    """Good practice or a legal duty that the portal is not known to check."""


class Strictness(StrEnum):
    """`portal`: answer what the real portal most likely answers; `strict`: every check refuses."""

    PORTAL = "portal"
    STRICT = "strict"

    @classmethod
    def parse(cls, value: str) -> Strictness:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValueError(f"strictness must be 'portal' or 'strict', got {value!r}") from None


class Action(StrEnum):
    """What `portal` mode does when the check fails (`strict` always refuses)."""

    REFUSE = "refuse"
    WARN = "warn"


@dataclass(frozen=True)
class Evidence:
    """The grade of one behaviour, where it comes from, why, and what `portal` mode does about it."""

    grade: Grade
    source: str
    """R-numbers with titles, or a document name (e.g. "R1 portal GBT table 2023", "Decree 63 Art. 21")."""
    reason: str
    """One line: why this grade and this decision."""
    portal: Action = Action.WARN
