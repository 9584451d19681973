"""The JSON shapes the sandbox API serves stored records in: journal entries, submissions, documents.

One place for them, below the handlers, because two readers must agree byte for byte: the sandbox API
(`api/`) serves them and the attestation (`mock_portal.attestation`) digests exactly what a verifier
reads back from a bundle's evidence.jsonl. Only JSON types come out (times as RFC 3339 strings).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mock_portal import store

Json = dict[str, Any]


def iso(instant: datetime | None) -> str | None:
    """An instant (aware, as the store gives them) as RFC 3339 in UTC with a Z."""
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def document_view(row: store.Document) -> Json:
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


def journal_view(entry: store.JournalEntry) -> Json:
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "real_at": iso(entry.real_at),
        "facility": entry.facility_code,
        "username": entry.username,
        "operation": entry.operation,
        "outcome": entry.outcome,
        "http_status": entry.http_status,
        "ma_gd": entry.ma_gd,
        "submission_id": entry.submission_id,
        "document_code": entry.document_code,
        "loai_hs": entry.loai_hs,
        "faults": entry.faults,
        "findings": [f["code"] for f in entry.findings],
        "graded_findings": [
            {"code": f["code"], "grade": f.get("grade"), "source": f.get("source")} for f in entry.findings
        ],
        "duration_ms": entry.duration_ms,
        "authenticated": entry.authenticated,
        "file_sha256": entry.file_sha256,
    }


def submission_summary(row: store.Submission) -> Json:
    return {
        "id": row.id,
        "received_at": iso(row.received_at),
        "facility": row.facility_code,
        "username": row.username,
        "loai_hs": row.loai_hs,
        "result": row.result,
        "ma_gd": row.ma_gd,
        "document_code": row.document_code,
        "file_size": row.file_size,
        "file_sha256": row.file_sha256,
        "explain": row.explain,
    }


def submission_view(row: store.Submission, document: store.Document | None) -> Json:
    """`GET /sandbox/submissions/{id}`: the summary, its findings, the signature report and the document."""
    return {
        **submission_summary(row),
        "findings": row.findings,
        "signature": row.signature_report,
        "document": document_view(document) if document else None,
    }
