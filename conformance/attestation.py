"""The run's side of the portal's attestation (`mock_portal.attestation`): what the harness asks the
portal to sign at the end of a run, and the comparison of what it signed with a bundle's evidence.

The harness names the run — its facilities and their journal id ranges, run id, seed, suite version,
every case's verdict and the summary, and the digest of the bundle's manifest — and the portal answers
with a statement of the digests of the journal entries and submissions it holds for that run, read
from its own database, signed with its deployment key. `conformance verify` recomputes those digests
from evidence.jsonl (`evidence_problems`): an entry added, dropped or edited names itself.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from conformance.evidence import Bundle, Json
from conformance.model import CaseResult
from conformance.outcome import summary
from conformance.portal import PortalCallError, SandboxAdmin, published_keys
from mock_portal.attestation.canonical import (
    canonical,
    file_digest,
    journal_digest,
    signature_valid,
    submission_digest,
)

__all__ = ["PortalWitness", "SignedAttestation", "claim_for", "evidence_problems", "facility_ranges"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedAttestation:
    """A statement, its detached signature and the public key the portal published for it (unpinned)."""

    statement: Json
    signature: bytes
    public_pem: bytes

    @property
    def data(self) -> bytes:
        """The signed bytes: the statement's canonical JSON (attestation.json)."""
        return canonical(self.statement)


def facility_ranges(bundle: Bundle) -> list[Json]:
    """Each facility of the run with the journal ids the evidence holds for it: above the first scenario's
    start, up to the newest entry collected (an entry that came after the collection is not the run's)."""
    ranges = []
    for facility in bundle.facilities():
        after = min((s.journal_after for s in bundle.scenarios if s.facility == facility), default=0)
        ids = [e["id"] for e in bundle.journal if e["facility"] == facility]
        ranges.append({"code": facility, "journal_after": after, "journal_until": max([after, *ids])})
    return ranges


def claim_for(bundle: Bundle, results: tuple[CaseResult, ...], manifest: bytes) -> Json:
    """The body of `POST /sandbox/attestations` for a run judged on `bundle`."""
    meta = bundle.meta
    return {
        "run_id": str(meta.get("run_id") or ""),
        "seed": meta.get("seed"),
        "suite_version": str(meta.get("suite_version") or ""),
        "tool_version": str(meta.get("tool_version") or ""),
        "facilities": facility_ranges(bundle),
        "cases": [{"id": r.case_id, "verdict": r.verdict.value} for r in results],
        "summary": summary(results),
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
    }


def _file_of(submission: Json) -> bytes | None:
    encoded = submission.get("file_b64")
    return base64.b64decode(encoded) if encoded else None


def evidence_problems(statement: Json, bundle: Bundle) -> list[str]:
    """Where the evidence's journal entries and submissions differ from the digests the portal signed."""
    observed: dict[str, Any] = statement.get("observed") or {}
    ranges = {f["code"]: (f["journal_after"], f["journal_until"]) for f in observed.get("facilities", [])}
    attested = {e["id"]: e["sha256"] for e in observed.get("journal", [])}
    problems, seen = [], set()
    for entry in bundle.journal:
        number, facility = entry.get("id"), entry.get("facility")
        low, high = ranges.get(facility, (0, -1))
        seen.add(number)
        if not (low < number <= high) or number not in attested:
            problems.append(
                f"evidence.jsonl: journal entry {number} ({facility}) not observed by the portal in this run (added)"
            )
        elif journal_digest(entry) != attested[number]:
            problems.append(f"evidence.jsonl: journal entry {number} differs from the one the portal observed (edited)")
    dropped = sorted(set(attested) - seen)
    if dropped:
        problems.append(f"evidence.jsonl: journal entries the portal observed are missing (dropped): {_ids(dropped)}")
    stored = {s["id"]: s for s in observed.get("submissions", [])}
    held = set()
    for submission in bundle.submissions:
        number = submission.get("id")
        held.add(number)
        signed = stored.get(number)
        if signed is None:
            problems.append(f"evidence.jsonl: submission {number} was not stored by the portal in this run (added)")
        elif submission_digest(submission) != signed["sha256"]:
            problems.append(f"evidence.jsonl: submission {number} differs from the one the portal stored (edited)")
        elif file_digest(_file_of(submission)) != signed["file_sha256"]:
            problems.append(f"evidence.jsonl: the file of submission {number} differs from the one the portal stored")
    missing = sorted(set(stored) - held)
    if missing:
        problems.append(f"evidence.jsonl: submissions the portal stored are missing (dropped): {_ids(missing)}")
    return problems


def _ids(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return shown + (f" … ({len(numbers)} in all)" if len(numbers) > 10 else "")


class PortalWitness:
    """The portal that served a run, asked to attest it once the bundle's manifest is written
    (`conformance.report.FileReports` calls `attest`)."""

    def __init__(self, admin: SandboxAdmin, bundle: Bundle, results: tuple[CaseResult, ...]) -> None:
        self.admin, self.bundle, self.results = admin, bundle, results

    def attest(self, manifest: bytes) -> SignedAttestation:
        """The portal's signed statement, checked against the key it publishes; a statement whose digests
        differ from the evidence (the portal's records changed since they were collected) is kept, and said."""
        reply = self.admin.attest(claim_for(self.bundle, self.results, manifest))
        statement, signature = reply["statement"], base64.b64decode(reply["signature"])
        published = {k["id"]: k for k in published_keys(self.admin.base_url)}
        key = published.get(statement.get("key_id"))
        if key is None or not signature_valid(key["public_pem"].encode(), canonical(statement), signature):
            raise PortalCallError(
                f"the portal's attestation does not verify under its published key {reply.get('key_id')}"
            )
        for problem in evidence_problems(statement, self.bundle):
            log.warning("attestation: %s", problem)
        return SignedAttestation(statement, signature, key["public_pem"].encode())
