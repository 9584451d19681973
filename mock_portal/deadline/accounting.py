"""Deadline accounting of accepted documents (Decree 63/2024 Art. 25.1).

The issue instant is the one the conformance harness recorded when it asked for the certificate
(an expectation), else the signature's SigningTime, else the start of the issue date (NGAY_CT /
NGAY_CAPGIAYBT) in Vietnam time. Pure functions; the portal stores what they return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from mock_portal.control.clock import VN_TZ
from mock_portal.documents import DocumentType
from mock_portal.store import Expectation


@dataclass(frozen=True)
class IssueInstant:
    at: datetime
    source: str
    """expectation, signing_time or issue_date."""


def issue_instant(
    doc_type: DocumentType, fields: Mapping[str, str], signing_time: datetime | None, expected: datetime | None
) -> IssueInstant | None:
    if expected is not None:
        return IssueInstant(expected, "expectation")
    if signing_time is not None:
        return IssueInstant(signing_time, "signing_time")
    try:
        day = datetime.strptime(fields.get(doc_type.issue_date_field, ""), "%Y%m%d")
    except ValueError:
        return None
    return IssueInstant(day.replace(tzinfo=VN_TZ), "issue_date")


def matches(match: Mapping[str, str], fields: Mapping[str, str]) -> bool:
    """An expectation matches a document when every field it names has that exact value."""
    return all(fields.get(name) == value for name, value in match.items())


def first_match(expectations: Iterable[Expectation], fields: Mapping[str, str]) -> Expectation | None:
    return next((e for e in expectations if matches(e.match, fields)), None)
