"""[sandbox] handlers of attestations: the portal's published keys (public) and the signing of a run. Thin."""

from __future__ import annotations

from typing import Any

from mock_portal.api.context import request_portal
from mock_portal.api.render import Reply, reply
from mock_portal.attestation import keys
from mock_portal.attestation.statement import FacilityRange, RunClaim, attest

Json = dict[str, Any]


def list_attestation_keys() -> Reply:
    return reply([key.to_dict() for key in keys.published(request_portal().repo)])


def attest_run(body: Json) -> Reply:
    claim = RunClaim(
        run_id=body["run_id"],
        seed=body.get("seed"),
        suite_version=body["suite_version"],
        tool_version=body.get("tool_version") or "",
        facilities=tuple(FacilityRange(f["code"], f["journal_after"], f["journal_until"]) for f in body["facilities"]),
        cases=tuple({"id": c["id"], "verdict": c["verdict"]} for c in body["cases"]),
        summary=body["summary"],
        manifest_sha256=body["manifest_sha256"],
    )
    return reply(attest(request_portal(), claim).to_dict())
