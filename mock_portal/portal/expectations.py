"""Expectations: certificates the conformance harness asked a hospital to issue (docs/vendor-guide.md).

Registering one ties it to a matching document already accepted, if any; otherwise the first
matching document accepted later claims it (in `Portal.submit`). Its status says whether the
document arrived, when, and whether within 4 working hours of the recorded issue instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mock_portal import store
from mock_portal.deadline.accounting import matches
from mock_portal.deadline.working_time import deadline_for
from mock_portal.documents import DocumentType
from mock_portal.portal.records import iso
from mock_portal.portal.service import Portal
from mock_portal.results.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class NewExpectation:
    doc_type: str
    facility_code: str
    issued_at: datetime
    match: dict[str, str]


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
            issued_at=new.issued_at,
            deadline=deadline,
            match=dict(new.match),
            created_at=portal.clock.now(),
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
    now = portal.clock.now()
    if document is None:
        return {"status": "OVERDUE" if now > expectation.deadline else "PENDING", "document": None}
    return {"status": "ARRIVED", "document": document}


# the deadline of each certificate (the dashboard's per-document view) ------------------------------
STATUSES = ("ON_TIME", "LATE", "PENDING", "OVERDUE")
"""ON_TIME / LATE: an accepted document; PENDING / OVERDUE: an expectation no document has met yet."""
PAGE, MAX_PAGE = 50, 200
_FACILITY = re.compile(r"[0-9]{5}")


@dataclass(frozen=True)
class DeadlineLine:
    """One certificate and its 4-working-hour deadline; times are RFC 3339 UTC (`records.iso`)."""

    doc_type: str
    code: str | None
    facility: str
    issued_at: str | None
    accepted_at: str | None
    deadline: str | None
    status: str | None
    """One of STATUSES; None for a document whose issue instant could not be read."""
    working_minutes_late: int = 0
    submission_id: int | None = None
    expectation_id: int | None = None


@dataclass(frozen=True)
class DeadlineBook:
    awaited: list[DeadlineLine]
    """Expectations still awaited, newest first, at most PAGE."""
    documents: list[DeadlineLine]
    """A page of accepted documents, newest first."""
    next_before: int | None
    """`before` of the next page of documents; None on the last page."""


def deadline_book(
    portal: Portal, *, facility: str | None, status: str | None, before: int | None, limit: int = PAGE
) -> DeadlineBook:
    """The certificates of the workspace (of one facility) with their deadlines, read through the
    repository's scoped reads; a `status` shows only the lines that have it. Bad filters are InvalidInput."""
    if facility and not _FACILITY.fullmatch(facility):
        raise InvalidInput("FACILITY_INVALID", "Mã CSKCB gồm 5 chữ số", "A facility code is 5 digits")
    if status and status not in STATUSES:
        raise InvalidInput(
            "STATUS_INVALID",
            f"Trạng thái là một trong {', '.join(STATUSES)}",
            f"status is one of {', '.join(STATUSES)}",
        )
    if before is not None and before < 1:
        raise InvalidInput("BEFORE_INVALID", "before phải là số dương", "before must be a positive number")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("LIMIT_INVALID", f"limit trong 1–{MAX_PAGE}", f"limit must lie in 1–{MAX_PAGE}")
    portal.clock.refresh()
    now = portal.clock.now()
    awaited: list[DeadlineLine] = []
    if status in (None, "PENDING", "OVERDUE") and before is None:
        rows = portal.repo.awaited_expectations(
            facility=facility,
            due_before=now if status == "OVERDUE" else None,
            due_after=now if status == "PENDING" else None,
            limit=limit,
        )
        awaited = [_awaited(row, now) for row in rows]
    documents: list[store.Document] = []
    if status in (None, "ON_TIME", "LATE"):
        documents = list(
            portal.repo.list_documents(facility=facility, deadline_status=status, limit=limit + 1, before_id=before)
        )
    more = len(documents) > limit
    documents = documents[:limit]
    return DeadlineBook(awaited, [_accepted(row) for row in documents], documents[-1].id if more else None)


def _awaited(row: store.Expectation, now: datetime) -> DeadlineLine:
    return DeadlineLine(
        doc_type=row.doc_type,
        code=row.match.get(DocumentType[row.doc_type].code_field),
        facility=row.facility_code,
        issued_at=iso(row.issued_at),
        accepted_at=None,
        deadline=iso(row.deadline),
        status="OVERDUE" if now > row.deadline else "PENDING",
        expectation_id=row.id,
    )


def _accepted(row: store.Document) -> DeadlineLine:
    return DeadlineLine(
        doc_type=row.doc_type,
        code=row.code,
        facility=row.facility_code,
        issued_at=iso(row.issue_instant),
        accepted_at=iso(row.accepted_at),
        deadline=iso(row.deadline),
        status=row.deadline_status,
        working_minutes_late=row.working_minutes_late,
        submission_id=row.submission_id,
        expectation_id=row.expectation_id,
    )
