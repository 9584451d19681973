"""JSON views of stored rows shared by several handler modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mock_portal import store


def iso(instant: datetime | None) -> str | None:
    """Stored times are naive UTC; render them as RFC 3339 with a Z."""
    if instant is None:
        return None
    return instant.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def document_view(row: store.Document) -> dict[str, Any]:
    return {
        "submission_id": row.submission_id,
        "type": row.doc_type,
        "code": row.code,
        "facility": row.facility_code,
        "ma_gd": row.ma_gd,
        "first_issue": row.first_issue,
        "issue_date": row.issue_date,
        "signing_time": iso(row.signing_time),
        "accepted_at": iso(row.accepted_at),
        "deadline": {
            "issued_at": iso(row.issue_instant),
            "source": row.issue_source,
            "deadline": iso(row.deadline),
            "status": row.deadline_status,
            "working_minutes_late": row.working_minutes_late,
            "expectation_id": row.expectation_id,
        },
        "fields": row.fields,
    }
