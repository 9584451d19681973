"""Helpers shared by the case modules: judging the portal's findings and signature checks per file.

Cases judge evidence only; these helpers turn "which findings / checks matter" into a verdict with
the submissions that show it, so the document and signature tables stay declarative.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from conformance.evidence import Bundle, Json
from conformance.model import CaseFinding
from conformance.registry import CaseOutcome, SkipCase, verdict_of

FAILING = ("FAILED", "INDETERMINATE")
LATE_FAULT = "late"
"""The late-reply scenario's hold (`scenarios.LATE`). Chosen by name as well as by length: other scenarios'
delays (the backlog's slow portal) grow long at a low `--clock-rate` and are no lost replies."""
LATE_REPLY_MS = 10_000.0
"""A reply held at least this long may have met a client that had given up (a 10–30 s client timeout is
usual): what it said may never have reached the hospital."""

CLIENT_GONE = "client-gone"
"""The portal's journal mark of a held exchange whose client hung up before the reply (`api/gateway.py`): the
portal stored the file, the hospital never read its MaGD."""


DROPPED = "DROPPED"
"""The journal's outcome of an exchange stored by the portal whose reply was swallowed (drop_after_commit)."""


def lost_replies(bundle: Bundle) -> set[int]:
    """Submissions stored whose reply the hospital certainly never got: swallowed by the portal (outcome
    DROPPED) or held until the hospital had hung up (marked CLIENT_GONE)."""
    return {
        e["submission_id"]
        for e in bundle.journal
        if e.get("submission_id") and (e.get("outcome") == DROPPED or CLIENT_GONE in (e.get("faults") or ()))
    }


def unread_replies(bundle: Bundle) -> set[int]:
    """Submissions stored whose reply the hospital never got, or may have given up waiting for (held by a
    late fault): neither a resend after one (API-011) nor after its 205 (API-006) is the hospital's fault."""
    late = late_faults(bundle)
    held = {e["submission_id"] for e in bundle.journal if e.get("submission_id") and late & set(e.get("faults") or ())}
    return lost_replies(bundle) | held


def late_faults(bundle: Bundle) -> set[str]:
    """Names of the injected delays that may outlast a client's timeout: the late-reply scenario's, when it ran."""
    return {
        LATE_FAULT
        for record in bundle.scenarios
        for fault in record.fault_plan.get("faults", [])
        if fault.get("name") == LATE_FAULT and float((fault.get("latency") or {}).get("ms") or 0) >= LATE_REPLY_MS
    }


def label(submission: Json) -> str:
    code = submission.get("document_code") or submission.get("source") or "no code"
    return f"submission {submission['id']} ({code})"


def files(bundle: Bundle, doc_type: str | None) -> list[Json]:
    """The hospital's files of `doc_type` (both when None) that were decoded; SKIP when there are none."""
    found = [
        s for s in bundle.hospital_submissions(doc_type) if s.get("result") != "401" and s.get("findings") is not None
    ]
    if not found:
        raise SkipCase(f"no {doc_type or 'GCS/GBT'} file from the hospital reached the portal")
    return found


def judge_findings(
    bundle: Bundle,
    doc_type: str | None,
    matches: Callable[[str], bool],
    what: str,
    *,
    even_warned: Callable[[str], bool] = lambda _code: False,
) -> CaseOutcome:
    """FAIL on any error finding whose code `matches`, naming file, code, path and message; and on a
    warning whose code is `even_warned` (what the portal takes but leaves the record broken)."""
    judged = files(bundle, doc_type)
    problems = [
        CaseFinding(
            f"{label(s)}: {f['code']}{' at ' + f['path'] if f.get('path') else ''}: {f.get('message_en', '')}",
            submission_ids=(s["id"],),
        )
        for s in judged
        for f in s.get("findings") or []
        if (f.get("severity") == "error" and matches(f["code"])) or even_warned(f["code"])
    ]
    ids = [s["id"] for s in judged]
    return verdict_of(problems, f"{len(judged)} file(s): {what}", submissions=ids)


def codes_in(codes: Iterable[str]) -> Callable[[str], bool]:
    wanted = frozenset(codes)
    return lambda code: code in wanted


def judge_checks(bundle: Bundle, names: tuple[str, ...], what: str) -> CaseOutcome:
    """Judge named checks of each file's signature report: FAIL if any failed, SKIP if none was evaluated."""
    judged = [s for s in files(bundle, None) if s.get("signature")]
    if not judged:
        raise SkipCase("no file carried a signature report (refused before the signature was examined)")
    problems, evaluated, not_run = [], [], []
    for submission in judged:
        for check in submission["signature"].get("checks", []):
            if check["name"] not in names:
                continue
            if check["outcome"] == "SKIPPED":
                not_run.append(f"{check['name']}: {check['message_en']}")
            elif check["outcome"] == "PASSED":
                evaluated.append(submission["id"])
            elif check["outcome"] in FAILING:
                evaluated.append(submission["id"])
                sub = f" [{check['sub_indication']}]" if check.get("sub_indication") else ""
                problems.append(
                    CaseFinding(
                        f"{label(submission)}: {check['name']}{sub}: {check['message_en']}",
                        submission_ids=(submission["id"],),
                    )
                )
    if not evaluated:  # a problem is always of an evaluated file
        why = not_run[0] if not_run else f"{', '.join(names)}: no report holds it"
        raise SkipCase(f"not evaluated on any file; {why}")  # e.g. "Not checked: SIG_CERT_UNTRUSTED stopped the chain"
    return verdict_of(problems, f"{len(set(evaluated))} file(s): {what}", submissions=sorted(set(evaluated)))
