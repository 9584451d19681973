"""Once-only cases: each order is accepted exactly once (API-011), the same request_id is one order
(API-012), a send whose reply was lost is resent until acknowledged (API-015: at least once), and a reply
that does not come is given up on (API-017: a client timeout, without which nothing is ever resent).

Judged per certificate (`conformance.substance.certificate_key`), over every submission of the run's
facilities: a duplicate acceptance makes two records of one birth or death at the portal, which the
Department of Health must then reconcile by hand, so both are MUST. A resend after a reply that never
reached the hospital is allowed: the hospital could not know, and the trigger contract says so. Such
replies are those the portal swallowed after storing the file (outcome DROPPED: `drop_after_commit`)
and those it held so long (`common.LATE_REPLY_MS`, `common.LATE_FAULT`) that the hospital may have given up waiting.
"""

from __future__ import annotations

from conformance.cases.common import CLIENT_GONE, LATE_FAULT, lost_replies, unread_replies
from conformance.evidence import Bundle, Json, Order
from conformance.model import CaseFinding
from conformance.registry import CaseOutcome, SkipCase, case, verdict_of
from conformance.substance import certificate_key
from mock_portal.results.grades import Grade

ANNEX = "CV 4410/BYT-KCB PL02 (portal API annex)"
TRIGGER = "trigger contract (conformance/trigger.schema.json request_id)"
REFUSED = frozenset({"205", "1001"})
"""Answers (read by the hospital) after which a certificate is not resent: API-015 leaves those orders out."""


def _acceptances(bundle: Bundle) -> dict[tuple[str, str], list[Json]]:
    """Accepted submissions per (facility, certificate), oldest first."""
    facilities = {s.facility for s in bundle.scenarios} or {o.facility for o in bundle.orders}
    out: dict[tuple[str, str], list[Json]] = {}
    for submission in sorted(bundle.submissions, key=lambda s: s["id"]):
        key = certificate_key(submission)
        if submission.get("result") == "200" and key and submission.get("facility") in facilities:
            out.setdefault((submission["facility"], key), []).append(submission)
    return out


def _duplicates(accepted: list[Json], unacked: set[int]) -> list[tuple[Json, Json | None]]:
    """Acceptances beyond the first acknowledged one (a dropped reply excuses the resend after it), each
    with the earlier acknowledged acceptance of the very same file, if any: a resend after MaKetQua 200."""
    acknowledged = [s for s in accepted if s["id"] not in unacked]
    return [
        (later, next((s for s in acknowledged[:index] if _same_file(s, later)), None))
        for index, later in enumerate(acknowledged)
        if index
    ]


def _same_file(first: Json, later: Json) -> bool:
    return bool(first.get("file_sha256")) and first.get("file_sha256") == later.get("file_sha256")


def _finding(key: str, accepted: list[Json], extra: str = "") -> CaseFinding:
    magds = ", ".join(f"MaGD {s.get('ma_gd') or '?'} (submission {s['id']})" for s in accepted)
    return CaseFinding(
        f"{key} accepted {len(accepted)} times{extra}: {magds}", submission_ids=tuple(s["id"] for s in accepted)
    )


def _resent_after_200(key: str, later: Json, first: Json) -> CaseFinding:
    return CaseFinding(
        f"{key} resent after MaKetQua 200: submission {later['id']} carries the very file acknowledged as MaGD "
        f"{first.get('ma_gd') or '?'} (submission {first['id']})",
        submission_ids=(first["id"], later["id"]),
    )


def _repeated(bundle: Bundle) -> dict[tuple[str, str], Order]:
    """The orders the harness sent twice (the same request_id), by (facility, certificate)."""
    return {(o.facility, o.key): o for o in bundle.orders if o.sends > 1}


@case(
    id="API-011",
    grade=Grade.CONFIRMED,
    title="Each certificate ordered is accepted exactly once (no duplicate records at the portal)",
    basis=ANNEX + " §4 MaKetQua 200 (acknowledged: never sent again)",
    area="api",
    needs=("orders", "submissions"),
)
def accepted_once(bundle: Bundle) -> CaseOutcome:
    """Every certificate, also those the harness ordered twice: a file sent again after the portal
    acknowledged that very file is a resend after MaKetQua 200, named as such, whatever the order did.
    A second *signing* of a certificate ordered twice is API-012's (the repeated order taken as new)."""
    repeated, accepted, unacked = _repeated(bundle), _acceptances(bundle), unread_replies(bundle)
    if not accepted:
        raise SkipCase("no certificate was accepted: see DL-001")
    problems = []
    for (facility, key), subs in accepted.items():
        duplicates = _duplicates(subs, unacked)
        resent = [(later, first) for later, first in duplicates if first is not None]
        if resent:
            problems += [_resent_after_200(key, later, first) for later, first in resent]
        elif duplicates and (facility, key) not in repeated:
            problems.append(_finding(key, subs))
    ids = [s["id"] for subs in accepted.values() for s in subs]
    return verdict_of(problems, f"{len(accepted)} certificate(s), each accepted once", submissions=ids)


@case(
    id="API-012",
    grade=Grade.CONFIRMED,
    title="An order sent twice with the same request_id is taken once (one certificate at the portal)",
    basis=TRIGGER,
    area="api",
    needs=("orders", "submissions"),
)
def request_taken_once(bundle: Bundle) -> CaseOutcome:
    """A certificate of an order sent twice, signed and accepted a second time: the hospital took the
    repeated order as a new one. (The same file sent again after its MaKetQua 200 is API-011's.)"""
    repeated = _repeated(bundle)
    if not repeated:
        raise SkipCase("the harness sent no order twice in this run (the 'issue' scenario does)")
    accepted, unacked = _acceptances(bundle), unread_replies(bundle)
    problems, judged = [], 0
    for (facility, key), order in repeated.items():
        subs = accepted.get((facility, key), [])
        judged += bool(subs)
        if any(first is None for _, first in _duplicates(subs, unacked)):
            problems.append(
                _finding(key, subs, f" for request_id {order.request_id} sent {order.sends}x: taken as a new order")
            )
    requests = [o.request_id for o in repeated.values()]
    if not judged:  # a problem is always of an accepted order
        raise SkipCase("no order sent twice was accepted at all: see DL-001")
    return verdict_of(problems, f"{len(repeated)} order(s) sent twice, each accepted once", requests=requests)


@case(
    id="API-015",
    grade=Grade.CONFIRMED,
    title="A send that got no reply (connection closed, timeout) is resent until the portal acknowledges it",
    basis=ANNEX + " §4 (no MaKetQua, no MaGD: not received); Decree 63/2024/NĐ-CP Art. 25.1",
    area="api",
    needs=("orders", "journal", "scenario:lost-reply"),
)
def resent_after_lost_reply(bundle: Bundle) -> CaseOutcome:
    """MUST because the consequence is legal and silent: a hospital that takes "no reply" for "sent" loses
    the certificate whenever the connection broke before the portal stored it (a birth or death missing
    from the national record, found only when the family asks for it), and when it was stored, the
    hospital holds no MaGD to prove or reconcile it. Judged per order of the lost-reply scenarios: its
    certificate must have an acceptance whose reply was not swallowed (a reply held late counts: the
    hospital may have read it)."""
    names = {s.name for s in bundle.scenarios_tagged("lost-reply")}
    accepted, lost = _acceptances(bundle), lost_replies(bundle)
    refused = {e.get("document_code") for e in bundle.journal if e["outcome"] in REFUSED}
    orders = [
        o
        for o in bundle.orders
        if o.scenario in names and o.deliver and o.taken
        and ((o.facility, o.key) in accepted or o.code not in refused)  # refused: the document cases' verdict
    ]  # fmt: skip
    if not orders:
        raise SkipCase("no order of a lost-reply scenario was taken by the hospital, or each was refused (205/1001)")
    problems = []
    for order in orders:
        subs = accepted.get((order.facility, order.key), [])
        if not subs:
            why = "never accepted: a send that got no reply was not resent, the certificate is lost"
        elif all(s["id"] in lost for s in subs):
            why = (
                f"stored only by submission {subs[0]['id']}, whose reply was lost, and never resent: the hospital "
                "holds no MaGD and cannot know the certificate arrived"
            )
        else:
            continue
        problems.append(CaseFinding(f"{order.code} ({order.story}): {why}", request_ids=(order.request_id,)))
    requests = [o.request_id for o in orders]
    return verdict_of(
        problems, f"{len(orders)} certificate(s) acknowledged despite lost or late replies", requests=requests
    )


MAX_CLIENT_WAIT = 30.0
"""Real seconds past which a hospital must have given up waiting for one reply (10–30 s are usual timeouts)."""


@case(
    id="API-017",
    grade=Grade.ADVISORY,
    title=f"Explicit client timeout: a reply held over {MAX_CLIENT_WAIT:.0f} s is given up on, not waited for",
    basis=ANNEX + " §4 (no reply: not received); wire contract (explicit client timeouts)",
    area="api",
    needs=("journal", "scenario:hung-reply"),
)
def client_timeout(bundle: Bundle) -> CaseOutcome:
    """MUST: a client without a timeout hangs on a portal that never answers (a stuck load balancer, a
    half-open connection), and every certificate queued behind it waits with it. Judged on the exchanges the
    hung-reply scenario held longer than MAX_CLIENT_WAIT: the portal marks one whose client hung up before
    the reply (`CLIENT_GONE`); one without the mark had a client still waiting when the hold ended."""
    held = [
        (entry, hold)
        for record in bundle.scenarios_tagged("hung-reply")
        for hold in _holds(record.fault_plan)
        if hold > MAX_CLIENT_WAIT
        for entry in bundle.journal_of(record, "submit")
        if LATE_FAULT in (entry.get("faults") or ())
    ]
    if not held:
        raise SkipCase(f"no submission was held over {MAX_CLIENT_WAIT:.0f} s (the hung-reply scenario)")
    problems = [
        CaseFinding(
            f"{e['facility']} #{e['id']} (submit {e.get('document_code') or ''} → {e['outcome']}): the hospital waited "
            f"the whole {hold:.0f} s hold for the reply: no client timeout",
            journal_ids=(e["id"],),
        )
        for e, hold in held
        if CLIENT_GONE not in e["faults"]
    ]
    ids = [e["id"] for e, _ in held]
    return verdict_of(
        problems, f"{len(held)} reply(ies) held over {MAX_CLIENT_WAIT:.0f} s, each given up on", journal=ids
    )


def _holds(fault_plan: Json) -> list[float]:
    """The real seconds each held-reply fault (`LATE_FAULT`) of a plan holds a submission."""
    return [float(f["latency"]["ms"]) / 1000 for f in fault_plan.get("faults", []) if f.get("name") == LATE_FAULT]
