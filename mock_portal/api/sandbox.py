"""[sandbox] handlers: explain verdicts and control the sandbox. Thin: parse, call the domain, render."""

from __future__ import annotations

from typing import Any

from flask import Response

from mock_portal import fidelity, sandbox_version, store
from mock_portal.api.context import field_evidence, request_portal
from mock_portal.api.draining import DRAINING
from mock_portal.api.render import Reply, empty, reply
from mock_portal.documents import list_rules as domain_rules
from mock_portal.portal import facilities as ops
from mock_portal.portal import workspaces
from mock_portal.portal.records import document_view, iso, submission_summary, submission_view
from mock_portal.portal.service import Portal
from mock_portal.results.errors import NotFound, Unavailable
from mock_portal.results.findings import Finding

Json = dict[str, Any]


def _portal() -> Portal:
    return request_portal()


def _bytes(body: Any) -> bytes:
    return body if isinstance(body, bytes) else str(body or "").encode()


# views
def _certificate(row: store.RegisteredCertificate) -> Json:
    return {
        "facility": row.facility_code,
        "fingerprint": row.fingerprint,
        "subject": row.subject,
        "serial": row.serial,
        "not_before": iso(row.not_before),
        "not_after": iso(row.not_after),
        "registered_at": iso(row.registered_at),
    }


def _facility(portal: Portal, row: store.Facility) -> Json:
    return {
        "code": row.code,
        "name": row.name,
        "strictness": portal.strictness(row.strictness).value,
        "strictness_override": row.strictness,
        "created_at": iso(row.created_at),
        "accounts": [{"username": a.username, "locked": a.locked} for a in portal.repo.accounts_of(row.code)],
        "certificates": [_certificate(c) for c in portal.repo.certificates_of(row.code)],
    }


def _authority(row: store.CertificateAuthority) -> Json:
    return {"fingerprint": row.fingerprint, "subject": row.subject, "added_at": iso(row.added_at)}


# handlers
def get_health() -> Reply:
    portal = _portal()
    return reply(
        {
            "status": "ok",
            "version": sandbox_version(),
            "time": portal.clock.now().isoformat(),
            "submissions": portal.repo.count_submissions(),
        }
    )


def get_ready() -> Reply:
    """Whether to send this process traffic: not while it stops, nor while its database cannot serve it."""
    if DRAINING.is_set():
        raise Unavailable("DRAINING", "Máy chủ đang dừng", "This server process is stopping; send to another")
    problem = _portal().repo.schema_problem()
    if problem:
        raise Unavailable("DATABASE_NOT_READY", "Cơ sở dữ liệu chưa sẵn sàng", problem)
    return reply({"status": "ready", "version": sandbox_version()})


def list_facilities() -> Reply:
    portal = _portal()
    return reply([_facility(portal, row) for row in portal.repo.list_facilities()])


def create_facility(body: Json) -> Reply:
    portal = _portal()
    row = ops.create_facility(
        portal,
        ops.NewFacility(code=body["code"], name=body["name"], username=body["username"], password=body["password"]),
    )
    return reply(_facility(portal, row), 201)


def get_facility(code: str) -> Reply:
    portal = _portal()
    return reply(_facility(portal, ops.require_facility(portal, code)))


def lock_facility(code: str) -> Reply:
    portal = _portal()
    ops.set_locked(portal, code, True)
    return get_facility(code)


def unlock_facility(code: str) -> Reply:
    portal = _portal()
    ops.set_locked(portal, code, False)
    return get_facility(code)


def set_strictness(code: str, body: Json) -> Reply:
    ops.set_strictness(_portal(), code, body.get("strictness"))
    return get_facility(code)


def _with_warnings(view: Json, warnings: tuple[Finding, ...]) -> Json:
    """A registration's reply carries what the sandbox warns about, as findings (empty when nothing)."""
    return {**view, "warnings": [w.to_dict() for w in warnings]}


def register_certificate(code: str, body: Any) -> Reply:
    done = ops.register_certificate(_portal(), code, _bytes(body))
    return reply(_with_warnings(_certificate(done.row), done.warnings), 201)


def unregister_certificate(code: str, fingerprint: str) -> tuple[str, int]:
    ops.unregister_certificate(_portal(), code, fingerprint)
    return empty()


def list_cas() -> Reply:
    return reply([_authority(row) for row in _portal().repo.list_cas()])


def add_ca(body: Any) -> Reply:
    done = ops.add_ca(_portal(), _bytes(body))
    return reply(_with_warnings(_authority(done.row), done.warnings), 201)


def add_crl(body: Any) -> Reply:
    row = ops.add_crl(_portal(), _bytes(body))
    return reply(
        {
            "id": row.id,
            "issuer": row.issuer,
            "revoked_count": row.revoked_count,
            "this_update": iso(row.this_update),
            "next_update": iso(row.next_update),
        },
        201,
    )


def list_submissions(
    facility: str | None = None, result: str | None = None, limit: int = 50, before: int | None = None
) -> Reply:
    rows = _portal().repo.list_submissions(facility=facility, result=result, limit=limit, before_id=before)
    return reply([submission_summary(row) for row in rows])


def _require_submission(portal: Portal, submission_id: int) -> store.Submission:
    row = portal.repo.get_submission(submission_id)
    if row is None:
        raise NotFound("SUBMISSION_NOT_FOUND", f"Không có lần gửi {submission_id}", f"No submission {submission_id}")
    return row


def get_submission(id: int) -> Reply:  # noqa: A002 - the spec's parameter name
    portal = _portal()
    row = _require_submission(portal, id)
    return reply(submission_view(row, portal.repo.document_of_submission(row.id)))


def get_submission_file(id: int) -> Response:  # noqa: A002 - the spec's parameter name
    row = _require_submission(_portal(), id)
    if row.file is None:
        raise NotFound(
            "FILE_NOT_STORED",
            "Lần gửi này không có tệp giải mã được",
            "This submission has no decodable file (bad base64, too large or refused before decoding)",
        )
    return Response(row.file, status=200, mimetype="application/xml")


def get_document(code: str) -> Reply:
    rows = _portal().repo.documents_by_code(code)
    if not rows:
        raise NotFound(
            "DOCUMENT_NOT_FOUND", f"Chưa có giấy tờ {code} được tiếp nhận", f"No accepted document has the code {code}"
        )
    return reply([document_view(row) for row in rows])


def list_rules() -> Reply:
    graded = {b.codes[0]: b.to_dict() for b in fidelity.registry() if b.area == "rule"}
    keep = ("grade", "source", "reason", "portal_mode", "strict_mode")
    return reply([{**rule.to_dict(), **{k: graded[rule.code][k] for k in keep}} for rule in domain_rules()])


def list_behaviours() -> Reply:
    """Every graded behaviour; with field evidence loaded, the counts of the sends that bear on it."""
    loaded = field_evidence()
    reviewed = loaded.behaviours if loaded else {}

    def view(behaviour: fidelity.Behaviour) -> Json:
        found = reviewed.get(behaviour.key)
        return {**behaviour.to_dict(), "field_evidence": found.to_dict()} if found else behaviour.to_dict()

    return reply([view(b) for b in fidelity.registry()])


def reset() -> tuple[str, int]:
    workspaces.reset(_portal())
    return empty()
