"""[sandbox] handlers of the simulated IPSS (`/ipss/v1`): certificates, the feed, registrations. Thin."""

from __future__ import annotations

from typing import Any

from mock_portal.api.context import request_portal
from mock_portal.api.errors import problem_body
from mock_portal.api.render import Reply, reply
from mock_portal.ipss import registration
from mock_portal.portal.records import iso
from mock_portal.portal.service import Portal
from mock_portal.store import SharedDocument
from mock_portal.store import ipss as ipss_store

Json = dict[str, Any]
PROBLEM = {"Content-Type": "application/problem+json"}


def _portal() -> Portal:
    return request_portal()


def _issue(row: SharedDocument, kind: registration.IssueKind | None = None) -> Json:
    view: Json = {
        "feed_id": row.id,
        "type": row.doc_type,
        "code": row.code,
        "facility": row.facility_code,
        "ma_gd": row.ma_gd,
        "first_issue": row.first_issue,
        "issue_date": row.issue_date,
        "signing_time": iso(row.signing_time),
        "accepted_at": iso(row.accepted_at),
        "shared_at": iso(row.shared_at),
        "lag_ms": row.lag_ms,
        "fields": row.fields,
    }
    if kind is not None:
        view["kind"] = kind.value
    return view


def _certificate(doc_type: str, code: str) -> Reply:
    history = registration.certificate_history(_portal().repo, doc_type, code)
    kinds = registration.issue_kinds(history)
    issues = [_issue(row, kind) for row, kind in zip(history, kinds, strict=True)]
    current = registration.current_issue(history, kinds)
    latest = issues[history.index(current.issue)]
    findings = [f.to_dict() for f in current.findings]
    return reply({"type": doc_type, "code": code, "latest": latest, "history": issues, "findings": findings})


def get_birth_certificate(ma_gcs: str) -> Reply:
    return _certificate("GCS", ma_gcs)


def get_death_certificate(ma_gbt: str) -> Reply:
    return _certificate("GBT", ma_gbt)


def get_feed(after: int = 0, limit: int = 100) -> Reply:
    rows = ipss_store.feed(_portal().repo, after, limit)
    return reply({"items": [_issue(row) for row in rows], "next_after": rows[-1].id if rows else after})


def _decision(decision: registration.RegistrationDecision, what_vi: str, what_en: str) -> Reply:
    application = decision.application
    if decision.accepted and decision.certificate is not None:
        return reply(
            {
                "id": application.id,
                "kind": application.kind,
                "status": application.status,
                "created_at": iso(application.created_at),
                "certificate": _issue(decision.certificate),
            },
            201,
        )
    body = problem_body(
        422,
        "REGISTRATION_REFUSED",
        f"Hồ sơ đăng ký {what_vi} bị từ chối: " + "; ".join(r.message_vi for r in decision.reasons),
        f"The {what_en} registration was refused: " + "; ".join(r.message_en for r in decision.reasons),
        "Registration refused",
    )
    body["application_id"] = application.id
    body["reasons"] = [r.to_dict() for r in decision.reasons]
    return reply(body, 422, PROBLEM)


def create_birth_registration(body: Json) -> Reply:
    portal = _portal()
    decision = registration.register_birth(
        portal.repo, portal.clock.now(), body["ma_gcs"], body["mother_id_number"], body["child_name"]
    )
    return _decision(decision, "khai sinh", "birth")


def create_death_registration(body: Json) -> Reply:
    portal = _portal()
    decision = registration.register_death(portal.repo, portal.clock.now(), body["ma_gbt"], body["deceased_id_number"])
    return _decision(decision, "khai tử", "death")
