"""What several reporters show the same way: timing, the evidence of a case, reproduce commands (the
summary is the run's outcome as data: `conformance.outcome`)."""

from __future__ import annotations

from conformance.evidence import Bundle, Json
from conformance.model import CaseEvidence, CaseResult, CaseVerdict
from conformance.timing import resolution

ADMIN = '-H "Authorization: Bearer $PORTAL_ADMIN_TOKEN"'


def timing(bundle: Bundle) -> list[Json]:
    """Each scenario's timing resolution (`conformance.timing`), in the order the scenarios ran (none for
    evidence that measured none: offline, by hand, or from an older suite)."""
    return [
        {"scenario": s.name, "facility": s.facility, "attempt": s.attempt, **resolution(bundle, s).to_dict()}
        for s in bundle.scenarios
        if s.timing
    ]


def _submission_view(submission: Json) -> Json:
    """A submission without its file (the file is in evidence.jsonl and behind the curl command)."""
    return {k: v for k, v in submission.items() if k != "file_b64"}


def _orders(bundle: Bundle, request_ids: tuple[str, ...]) -> list[Json]:
    return [
        {
            "request_id": o.request_id,
            "type": o.type,
            "code": o.code,
            "issued_at": o.issued_at,
            "scenario": o.scenario,
            "taken": o.taken,
            "expectation_id": o.expectation_id,
        }
        for o in bundle.orders
        if o.request_id in set(request_ids)
    ]


def _expectations(bundle: Bundle, orders: list[Json]) -> list[Json]:
    return [x for x in bundle.expectations if x["id"] in {o["expectation_id"] for o in orders}]


def case_evidence(result: CaseResult, bundle: Bundle) -> Json:
    """The journal entries, submissions and orders a case judged, in full."""
    ev = result.evidence
    journal = [e for e in bundle.journal if e["id"] in set(ev.journal_ids)]
    submissions = [_submission_view(s) for s in bundle.submissions if s["id"] in set(ev.submission_ids)]
    orders = _orders(bundle, ev.request_ids)
    return {
        "findings": [f.to_dict() for f in ev.findings],
        "journal": journal,
        "submissions": submissions,
        "orders": orders,
        "expectations": _expectations(bundle, orders),
    }


def culprits(result: CaseResult) -> CaseEvidence:
    """The exchanges, submissions and orders the case's findings name: what made it fail, not everything it
    judged (that, when no finding names any)."""
    named = tuple(f for f in result.evidence.findings if f.journal_ids or f.submission_ids or f.request_ids)
    if not named:
        return result.evidence
    return CaseEvidence(
        tuple(sorted({i for f in named for i in f.journal_ids})),
        tuple(sorted({i for f in named for i in f.submission_ids})),
        tuple(sorted({i for f in named for i in f.request_ids})),
        named,
    )


def details(result: CaseResult) -> list[str]:
    """The findings' messages, each once, less the one the case's message already states (`failed`: the first
    finding, with "(+N more)" when there are others)."""
    findings = result.evidence.findings
    said = {result.message}
    if findings and result.message.removesuffix(f" (+{len(findings) - 1} more)") == findings[0].message:
        said.add(findings[0].message)
    lines = []
    for finding in findings:
        if finding.message not in said:
            said.add(finding.message)
            lines.append(finding.message)
    return lines


def reproduce(result: CaseResult, bundle: Bundle) -> list[str]:
    """Shell commands that show a failure again: the exchanges its findings name rebuilt as curl, and a replay
    of the case."""
    if result.verdict not in (CaseVerdict.FAIL, CaseVerdict.ERROR):
        return []
    portal = bundle.meta.get("portal") or "$PORTAL"
    cause = culprits(result)
    lines = []
    for submission_id in cause.submission_ids[:3]:
        submission = bundle.submission(submission_id) or {}
        lines += [
            f"curl -s {ADMIN} {portal}/sandbox/submissions/{submission_id}",
            f"curl -s {ADMIN} {portal}/sandbox/submissions/{submission_id}/file -o sub{submission_id}.xml",
            f"curl -s {portal}/api/hososuckhoe/guiGiayToDienTu -d maCskcb={submission.get('facility', '$MA_CSKCB')}"
            f" -d token=$TOKEN -d id_token=$ID_TOKEN -d username=$USERNAME -d password=$PASSWORD_MD5"
            f" -d loaiHs={submission.get('loai_hs', '61')}"
            f' --data-urlencode fileBase64Str="$(base64 -w0 sub{submission_id}.xml)"',
        ]
    journal_ids = cause.journal_ids
    if journal_ids:
        facilities = sorted({e["facility"] for e in bundle.journal if e["id"] in set(journal_ids)})
        for facility in facilities:
            lines.append(
                f"curl -s {ADMIN} '{portal}/sandbox/journal?facility={facility}&after={min(journal_ids) - 1}&limit=50'"
            )
    for expectation in _expectations(bundle, _orders(bundle, cause.request_ids))[:3]:
        lines.append(f"curl -s {ADMIN} {portal}/sandbox/expectations/{expectation['id']}")
    lines.append(f"conformance replay evidence.jsonl --only {result.case_id}")
    return lines


def timeline(bundle: Bundle) -> list[Json]:
    """Issue → acceptance of every expected certificate against its deadline (sandbox time)."""
    rows = []
    for order in bundle.orders:
        expectation = bundle.expectation(order.expectation_id)
        if expectation is None:
            continue
        document = expectation.get("document") or {}
        rows.append(
            {
                "code": order.code,
                "scenario": order.scenario,
                "issued_at": expectation["issued_at"],
                "deadline": expectation["deadline"],
                "accepted_at": document.get("accepted_at"),
                "status": (document.get("deadline") or {}).get("status") or expectation["status"],
            }
        )
    return rows
