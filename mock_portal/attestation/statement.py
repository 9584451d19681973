"""The attestation of one conformance run, built from the portal's own records and signed.

The harness names what the run covered — its facilities with their journal id ranges, the run id,
seed and suite version, the digest of the bundle's manifest — and the verdicts the suite claims (every
case, the summary). The portal reads the journal entries of those facilities in those ranges (only
requests that proved to be their account, as the journal lists by default) and the submissions they
stored, in its own database and in the requester's workspace only, digests each in the sandbox API's
shape (`canonical`), and signs the whole statement with the deployment's key (`keys`). It does not
judge: the verdicts are the suite's claim, attested as claimed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mock_portal.attestation import keys
from mock_portal.attestation.canonical import FORMAT, canonical, file_digest, journal_digest, submission_digest
from mock_portal.portal.facilities import require_facility
from mock_portal.portal.records import journal_view, submission_view
from mock_portal.portal.service import Portal
from mock_portal.results.errors import InvalidInput
from mock_portal.store.repository import Identity, JournalFilter

__all__ = ["Attestation", "FacilityRange", "RunClaim", "attest"]

Json = dict[str, Any]


@dataclass(frozen=True)
class FacilityRange:
    """A facility of the run and the journal ids that are the run's: above `after`, up to `until`."""

    code: str
    after: int
    until: int


@dataclass(frozen=True)
class RunClaim:
    """What the harness asks the portal to attest (the request body, parsed)."""

    run_id: str
    seed: int | None
    suite_version: str
    tool_version: str
    facilities: tuple[FacilityRange, ...]
    cases: tuple[Json, ...]
    """Every case as the suite judged it: `{"id", "verdict"}`, in the report's order."""
    summary: Json
    manifest_sha256: str
    """SHA-256 of the bundle's manifest.json: the files (report, evidence, HTML, JUnit …) it lists."""


@dataclass(frozen=True)
class Attestation:
    statement: Json
    signature: bytes

    def to_dict(self) -> Json:
        return {
            "key_id": self.statement["key_id"],
            "statement": self.statement,
            "signature": base64.b64encode(self.signature).decode(),
        }


def _observed(portal: Portal, facilities: tuple[FacilityRange, ...]) -> Json:
    """Digests of the run's journal entries and the submissions they stored, read from this workspace."""
    journal, stored = [], []
    for facility in facilities:
        require_facility(portal, facility.code)  # another workspace's facility does not exist here
        if facility.until < facility.after:
            raise InvalidInput(
                "ATTESTATION_RANGE_INVALID",
                f"Cơ sở {facility.code}: journal_until nhỏ hơn journal_after",
                f"Facility {facility.code}: journal_until is below journal_after",
            )
        filters = JournalFilter(facility=facility.code, after_id=facility.after, identity=Identity.AUTHENTICATED)
        entries = [e for e in portal.repo.journal(filters, oldest_first=True) if e.id <= facility.until]
        journal += [{"id": e.id, "sha256": journal_digest(journal_view(e))} for e in entries]
        stored += [e.submission_id for e in entries if e.submission_id]
    submissions = []
    for submission_id in sorted(set(stored)):
        row = portal.repo.get_submission(submission_id)
        if row is None:  # trimmed since (an unauthenticated submission): nothing to attest
            continue
        view = submission_view(row, portal.repo.document_of_submission(row.id))
        submissions.append({"id": row.id, "sha256": submission_digest(view), "file_sha256": file_digest(row.file)})
    ranges = [{"code": f.code, "journal_after": f.after, "journal_until": f.until} for f in facilities]
    return {"facilities": ranges, "journal": journal, "submissions": submissions}


def attest(portal: Portal, claim: RunClaim) -> Attestation:
    """The signed statement of what this workspace's portal observed of the run, and what the suite claimed."""
    observed = _observed(portal, claim.facilities)
    key = keys.signing_key(portal.repo)
    statement = {
        "format": FORMAT,
        "key_id": key.id,
        "signed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "sandbox_time": portal.clock.now().isoformat(),
        "workspace": portal.workspace_id,
        "run": {
            "run_id": claim.run_id,
            "seed": claim.seed,
            "suite_version": claim.suite_version,
            "tool_version": claim.tool_version,
        },
        "observed": observed,
        "claimed": {"cases": list(claim.cases), "summary": claim.summary, "manifest_sha256": claim.manifest_sha256},
    }
    try:
        data = canonical(statement)
    except UnicodeEncodeError as exc:  # JSON may carry a lone surrogate; UTF-8 (and so a signature) cannot
        raise InvalidInput(
            "ATTESTATION_TEXT_INVALID",
            "Yêu cầu chứa văn bản không phải Unicode hợp lệ (ký tự thay thế đơn lẻ)",
            "The claim holds text that is not valid Unicode (a lone surrogate): it has no UTF-8 form to sign",
        ) from exc
    return Attestation(statement, key.sign(data))
