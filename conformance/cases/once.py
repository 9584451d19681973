"""Once-only cases (API-011, API-012): each order is accepted exactly once, the same request_id is one order.

Judged per certificate (`conformance.substance.certificate_key`), over every submission of the run's
facilities: a duplicate acceptance makes two records of one birth or death at the portal, which the
Department of Health must then reconcile by hand, so both are MUST. A resend after a reply that never
reached the hospital (the portal stored the file and dropped the connection: `drop_after_commit`) is
allowed: the hospital could not know, and the trigger contract says so.
"""

from __future__ import annotations

from conformance.evidence import Bundle, Json, Order
from conformance.model import Finding
from conformance.registry import Outcome, SkipCase, case, failed, passed
from conformance.substance import certificate_key
from mock_portal.results.grades import Grade

ANNEX = "CV 4410/BYT-KCB PL02 (portal API annex)"
TRIGGER = "trigger contract (conformance/trigger.schema.json request_id)"


def _unacknowledged(bundle: Bundle) -> set[int]:
    """Submissions the portal stored but whose reply the hospital never got (drop-after-commit faults)."""
    dropping = {
        fault.get("name")
        for record in bundle.scenarios
        for fault in record.fault_plan.get("faults", [])
        if fault.get("effect") == "drop_after_commit"
    }
    return {
        e["submission_id"] for e in bundle.journal if e.get("submission_id") and dropping & set(e.get("faults") or ())
    }


def _acceptances(bundle: Bundle) -> dict[tuple[str, str], list[Json]]:
    """Accepted submissions per (facility, certificate), oldest first."""
    facilities = {s.facility for s in bundle.scenarios} or {o.facility for o in bundle.orders}
    out: dict[tuple[str, str], list[Json]] = {}
    for submission in sorted(bundle.submissions, key=lambda s: s["id"]):
        key = certificate_key(submission)
        if submission.get("result") == "200" and key and submission.get("facility") in facilities:
            out.setdefault((submission["facility"], key), []).append(submission)
    return out


def _duplicates(bundle: Bundle, accepted: list[Json], unacked: set[int]) -> list[Json]:
    """Acceptances beyond the first acknowledged one (a dropped reply excuses the resend after it)."""
    acknowledged = [s for s in accepted if s["id"] not in unacked]
    return acknowledged[1:] if acknowledged else []


def _finding(key: str, accepted: list[Json], extra: str = "") -> Finding:
    magds = ", ".join(f"MaGD {s.get('ma_gd') or '?'} (submission {s['id']})" for s in accepted)
    return Finding(
        f"{key} accepted {len(accepted)} times{extra}: {magds}", submission_ids=tuple(s["id"] for s in accepted)
    )


@case(
    id="API-011",
    grade=Grade.CONFIRMED,
    title="Each certificate ordered is accepted exactly once (no duplicate records at the portal)",
    basis=ANNEX + " §4 MaKetQua 200 (acknowledged: never sent again)",
    area="api",
    needs=("orders", "submissions"),
)
def accepted_once(bundle: Bundle) -> Outcome:
    twice = {(o.facility, o.key) for o in bundle.orders if o.sends > 1}
    accepted, unacked = _acceptances(bundle), _unacknowledged(bundle)
    if not accepted:
        raise SkipCase("no certificate was accepted: see DL-001")
    problems = [
        _finding(key, subs)
        for (facility, key), subs in accepted.items()
        if (facility, key) not in twice and _duplicates(bundle, subs, unacked)
    ]
    ids = [s["id"] for subs in accepted.values() for s in subs]
    if problems:
        return failed(problems, submissions=ids)
    return passed(f"{len(accepted)} certificate(s), each accepted once", submissions=ids)


@case(
    id="API-012",
    grade=Grade.CONFIRMED,
    title="An order sent twice with the same request_id is taken once (one certificate at the portal)",
    basis=TRIGGER,
    area="api",
    needs=("orders", "submissions"),
)
def request_taken_once(bundle: Bundle) -> Outcome:
    repeated: list[Order] = [o for o in bundle.orders if o.sends > 1]
    if not repeated:
        raise SkipCase("the harness sent no order twice in this run (the 'issue' scenario does)")
    accepted, unacked = _acceptances(bundle), _unacknowledged(bundle)
    problems, judged = [], 0
    for order in repeated:
        subs = accepted.get((order.facility, order.key), [])
        judged += bool(subs)
        if _duplicates(bundle, subs, unacked):
            problems.append(_finding(order.key, subs, f" for request_id {order.request_id} sent {order.sends}x"))
    requests = [o.request_id for o in repeated]
    if problems:
        return failed(problems, requests=requests)
    if not judged:
        raise SkipCase("no order sent twice was accepted at all: see DL-001")
    return passed(f"{len(repeated)} order(s) sent twice, each accepted once", requests=requests)
