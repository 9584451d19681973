"""Expectations: certificates the conformance harness asked a hospital to issue (docs/vendor-guide.md).

Registering one ties it to a matching document already accepted, if any; otherwise the first
matching document accepted later claims it (in `Portal.submit`). Its status says whether the
document arrived, when, and whether within 4 working hours of the recorded issue instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mock_portal import store
from mock_portal.deadline.accounting import matches
from mock_portal.deadline.working_time import deadline_for
from mock_portal.documents import DocumentType
from mock_portal.portal.service import Portal
from mock_portal.results.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class NewExpectation:
    doc_type: str
    facility_code: str
    issued_at: datetime
    match: dict[str, str]


def _naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def register(portal: Portal, new: NewExpectation) -> store.Expectation:
    if new.doc_type not in DocumentType.__members__:
        raise InvalidInput("EXPECTATION_TYPE_INVALID", "type phải là GCS hoặc GBT", "type must be GCS or GBT")
    if new.issued_at.tzinfo is None:
        raise InvalidInput(
            "EXPECTATION_TIME_INVALID", "issued_at phải có múi giờ", "issued_at must carry a time zone offset"
        )
    known = set(DocumentType[new.doc_type].field_names)
    unknown = sorted(set(new.match) - known)
    if unknown:
        raise InvalidInput(
            "EXPECTATION_MATCH_INVALID",
            f"Trường không tồn tại: {', '.join(unknown)}",
            f"Unknown fields in match: {', '.join(unknown)}",
        )
    deadline = deadline_for(new.issued_at, portal.calendar, portal.settings.deadline_working_minutes)
    expectation = portal.repo.add_expectation(
        store.Expectation(
            doc_type=new.doc_type,
            facility_code=new.facility_code,
            issued_at=_naive(new.issued_at),
            deadline=_naive(deadline),
            match=dict(new.match),
            created_at=_naive(portal.clock.now()),
            document_id=None,
        )
    )
    _claim_existing(portal, expectation)
    return expectation


def _claim_existing(portal: Portal, expectation: store.Expectation) -> None:
    for document in portal.repo.unclaimed_documents(expectation.facility_code, expectation.doc_type):
        if matches(expectation.match, document.fields):
            portal.account(document, expectation)
            if portal.repo.link_expectation(expectation.id, document):
                expectation.document_id = document.id
            return


def require(portal: Portal, expectation_id: int) -> store.Expectation:
    expectation = portal.repo.get_expectation(expectation_id)
    if expectation is None:
        raise NotFound(
            "EXPECTATION_NOT_FOUND", f"Không có kỳ vọng {expectation_id}", f"No expectation {expectation_id}"
        )
    return expectation


def status(portal: Portal, expectation: store.Expectation) -> dict[str, Any]:
    """PENDING (not yet, deadline ahead), OVERDUE (not yet, deadline passed), ARRIVED (with ON_TIME / LATE)."""
    document = portal.repo.get_document(expectation.document_id) if expectation.document_id else None
    now = _naive(portal.clock.now())
    if document is None:
        return {"status": "OVERDUE" if now > expectation.deadline else "PENDING", "document": None}
    return {"status": "ARRIVED", "document": document}
