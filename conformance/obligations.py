"""What a hospital system is obliged to do, which cases check it, and which broken variants prove they do
(`conformance coverage`).

Each obligation names its source (Decree 63/2024 Art. 25.1, Dispatch 4410 PL02, Circulars 22/2025 and
25/2025, the signature profile, the trigger contract) and the cases that check it; an obligation with
no case is listed with the reason no case can check it, so a reader sees the holes as well as the
coverage. A case is only as good as a bug it has been seen to catch: `coverage` also names the
self-test variants (`conformance selftest`) that break each obligation — a variant breaks the
obligations whose cases include the one it must fail first — and lists an obligation no variant breaks
as unprotected, with the reason where one is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["OBLIGATIONS", "Obligation", "coverage"]

DECREE = "Decree 63/2024/NĐ-CP Art. 25.1"
ANNEX = "CV 4410/BYT-KCB PL02"
GCS = "Circular 22/2025 (GCS)"
GBT = "Circular 25/2025 (GBT Mẫu 05)"
PROFILE = "signature profile (docs/signature-profile.md)"
WIRE = "wire contract (openapi.yaml, docs/vendor-guide.md)"
TRIGGER = "trigger contract (conformance/trigger.schema.json)"
SHOULD = "its case is a SHOULD case (strict-clean), and a variant is judged by the first MUST case it fails"


@dataclass(frozen=True)
class Obligation:
    id: str
    source: str
    text: str
    cases: tuple[str, ...] = ()
    why_unchecked: str = ""
    """For an obligation no case checks: why (not visible on the wire, outside the sandbox, …)."""
    why_unprotected: str = ""
    """For an obligation whose cases no self-test variant is meant to fail first: why, when left so on purpose."""


OBLIGATIONS: tuple[Obligation, ...] = (
    Obligation("DEC-1", DECREE, "Birth and death data at the portal within 4 working hours of issue", ("DL-001",)),
    Obligation(
        "DEC-2",
        DECREE,
        "The 4 working hours hold through a portal outage",
        ("DL-002",),
        why_unprotected="a hospital that gives up in an outage fails API-007 first; one late only because of "
        "the outage (a circuit breaker that stays open long after the portal is back) is not a variant yet",
    ),
    Obligation("DEC-3", DECREE, "A backlog is sent so no deadline that could be met is missed", ("DL-003", "DL-004")),
    Obligation(
        "DEC-4",
        DECREE,
        "A certificate issued outside working hours (night, weekend, holiday) is due 4 working hours after the "
        "next working time: held no later",
        ("DL-006",),
    ),
    Obligation("DEC-5", DECREE, "A certificate past its deadline is still sent: late, never dropped", ("DL-005",)),
    Obligation("PL02-1", ANNEX, "Token with the account and the uppercase-hex MD5 password", ("API-001", "API-010")),
    Obligation(
        "PL02-2",
        ANNEX,
        "The token is reused until it expires (expires_in), then renewed; no login storm",
        ("API-004", "API-013", "API-016"),
    ),
    Obligation("PL02-3", ANNEX, "The seven form fields of guiGiayToDienTu", ("API-002",)),
    Obligation("PL02-4", ANNEX, "loaiHs 61 for HSDLGCS, 60 for HSDLGBT", ("API-003",)),
    Obligation("PL02-5", ANNEX, "MaKetQua 401: log in again and resend", ("API-005",)),
    Obligation("PL02-6", ANNEX, "MaKetQua 205: do not resend the same certificate unchanged", ("API-006",)),
    Obligation("PL02-7", ANNEX, "500, HTTP 5xx, reset: retry with backoff, bounded", ("API-007", "API-008", "API-014")),
    Obligation("PL02-8", ANNEX, "MaKetQua 1001: do not resend the file", ("API-009",)),
    Obligation("PL02-9", ANNEX, "MaKetQua 200: acknowledged, never sent again (one record)", ("API-011",)),
    Obligation(
        "PL02-10",
        ANNEX,
        "Keep the MaGD of each accepted file for reconciliation with the portal",
        why_unchecked="the MaGD lives in the hospital's own records; nothing on the wire shows it was kept",
    ),
    Obligation("TRG-1", TRIGGER, "The same request_id is one order: take it once", ("API-012",)),
    Obligation("TRG-2", TRIGGER, "Send exactly the data ordered", ("FLOW-005",)),
    Obligation(
        "GCS-1",
        GCS,
        "GCS XML well formed, root and data element, schema, formats and code lists",
        ("GCS-DOC-001", "GCS-DOC-002", "GCS-DOC-003", "GCS-DOC-004"),
    ),
    Obligation("GCS-2", GCS, "MA_GCS well formed, own facility, issue year", ("GCS-DOC-005",)),
    Obligation("GCS-3", GCS, "Cross-field rules and filing under the right facility", ("GCS-DOC-006", "GCS-DOC-007")),
    Obligation(
        "GCS-4", GCS, "Clean under strict (no deviation between sources)", ("GCS-DOC-008",), why_unprotected=SHOULD
    ),
    Obligation("GCS-5", GCS, "Twins, reissue and surrogacy stories", ("FLOW-001", "FLOW-002", "FLOW-003")),
    Obligation(
        "GBT-1",
        GBT,
        "GBT XML well formed, root and data element, schema, formats and code lists",
        ("GBT-DOC-001", "GBT-DOC-002", "GBT-DOC-003", "GBT-DOC-004"),
    ),
    Obligation("GBT-2", GBT, "MA_GBT well formed, own facility, issue year", ("GBT-DOC-005",)),
    Obligation("GBT-3", GBT, "Cross-field rules and filing under the right facility", ("GBT-DOC-006", "GBT-DOC-007")),
    Obligation(
        "GBT-4", GBT, "Clean under strict (no deviation between sources)", ("GBT-DOC-008",), why_unprotected=SHOULD
    ),
    Obligation("GBT-5", GBT, "An inpatient death carries admission time and record", ("FLOW-004",)),
    Obligation("SIG-A", PROFILE, "Signature present, recognised profile, covering the data", ("SIG-001", "SIG-002")),
    Obligation("SIG-B", PROFILE, "SHA-2 algorithms; digests and value valid", ("SIG-003", "SIG-004")),
    Obligation(
        "SIG-C",
        PROFILE,
        "Certificate trusted, valid, not revoked, right key usage, registered for the facility",
        ("SIG-005", "SIG-006", "SIG-007", "SIG-008", "SIG-009"),
    ),
    Obligation("SIG-D", PROFILE, "SigningTime present and plausible", ("SIG-010",)),
    Obligation(
        "SIG-E",
        PROFILE,
        "The signing key is kept in a token/HSM (USB token, remote signing)",
        why_unchecked="where the key lives cannot be seen in a signature",
    ),
    Obligation(
        "WIRE-1",
        WIRE,
        "Explicit client timeouts; a request answered late or not at all is resent (a stored one once only)",
        ("API-007", "API-011", "API-015", "API-017"),
    ),
)


def coverage(case_ids: list[str], kills: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """Obligations with their cases and the variants that break them, the obligations no case checks, those
    no variant breaks, and cases mapped to no obligation. `kills` pairs each self-test variant with the case
    that must fail first on it (`conformance.selftest.kills`)."""
    known = set(case_ids)
    mapped = {case for o in OBLIGATIONS for case in o.cases}
    pairs = list(kills)

    def variants(o: Obligation) -> list[str]:
        return list(dict.fromkeys(variant for variant, case in pairs if case in o.cases and case in known))

    return {
        "obligations": [
            {
                "id": o.id,
                "source": o.source,
                "text": o.text,
                "cases": [c for c in o.cases if c in known],
                "why_unchecked": o.why_unchecked,
                "variants": variants(o),
                "why_unprotected": o.why_unprotected or o.why_unchecked,
            }
            for o in OBLIGATIONS
        ],
        "unchecked": [o.id for o in OBLIGATIONS if not o.cases],
        "unprotected": [o.id for o in OBLIGATIONS if not variants(o)],
        "unmapped_cases": [c for c in case_ids if c not in mapped],
        "unknown_cases": sorted(mapped - known),
    }
