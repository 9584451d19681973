"""The outcome of a run as data: the summary every report states and `conformance verify` recomputes
from the case verdicts (verdict, counts, MUST failures, exit code), and the root causes first.

Kept out of the report package: the run's attestation and the verifier need it without any output
format."""

from __future__ import annotations

from collections import Counter
from typing import Any

from conformance.events import exit_code
from conformance.model import CaseResult, CaseVerdict

__all__ = ["HEADLINES", "root_causes", "summary"]


def summary(results: tuple[CaseResult, ...] | list[CaseResult]) -> dict[str, Any]:
    """The run's outcome: `verdict` fail (a MUST case failed), inconclusive (none did, but one could not be
    settled on this machine's timing: no certificate either) or pass, and what makes it so."""
    counts = Counter(r.verdict.value for r in results)
    blocking = [r.case_id for r in results if r.blocking]
    undecided = [r.case_id for r in results if r.undecided]
    verdict = "fail" if blocking else "inconclusive" if undecided else "pass"
    return {
        "verdict": verdict,
        "headline": HEADLINES[verdict],
        "portal_compatible": _portal_compatible(results, verdict),
        "strict_clean": _strict_clean(results),
        "counts": {v.value: counts.get(v.value, 0) for v in CaseVerdict},
        "total": len(results),
        "must_failed": blocking,
        "must_inconclusive": undecided,
        "should_failed": [r.case_id for r in results if r.verdict is CaseVerdict.FAIL and not r.blocking],
        "exit_code": exit_code(results),
        "root_causes": root_causes(results),
    }


def _named(results: list[CaseResult], verdict: CaseVerdict) -> str:
    return ", ".join(r.case_id for r in results if r.verdict is verdict)


def _what_failed(bad: list[CaseResult]) -> str:
    """Which cases make a result FAIL, a harness error told apart from a failure of the hospital."""
    failures, errors = _named(bad, CaseVerdict.FAIL), _named(bad, CaseVerdict.ERROR)
    parts = (failures and f"failed: {failures}", errors and f"not judged (harness error): {errors}")
    return "; ".join(part for part in parts if part)


def _portal_compatible(results: tuple[CaseResult, ...] | list[CaseResult], verdict: str) -> dict[str, Any]:
    """The MUST cases' result; `statement` says in words what its verdict rests on (the cases, by ID)."""
    blocking = [r for r in results if r.blocking]
    if blocking:
        statement = f"MUST case(s) {_what_failed(blocking)}"
    elif verdict == "inconclusive":
        statement = (
            f"no MUST case failed, but {', '.join(r.case_id for r in results if r.undecided)} could not be settled "
            "on this machine's timing"
        )
    else:
        statement = "no MUST case failed: the real portal would accept every document, filed under the right facility"
    return {
        "verdict": verdict,
        "level": "MUST",
        "meaning": "whether the real portal would accept every document and file it under the right facility",
        "statement": statement,
        "failed": [r.case_id for r in blocking],
    }


def _strict_clean(results: tuple[CaseResult, ...] | list[CaseResult]) -> dict[str, Any]:
    """The result of the cases that count towards strict-clean (`result="strict"`: would `strict` mode refuse
    anything the hospital sent?), and of those only: a MUST failure is portal-compatible's, not this one's.
    `skip` when none of them was judged (none selected, or each skipped for want of evidence)."""
    covered = [r for r in results if r.result == "strict"]
    bad = [r for r in covered if r.verdict in (CaseVerdict.FAIL, CaseVerdict.ERROR)]
    judged = [r for r in covered if r.verdict is CaseVerdict.PASS]
    if bad:
        verdict, statement = "fail", f"strict case(s) {_what_failed(bad)}"
    elif judged:
        verdict = "pass"
        statement = f"nothing strict mode would refuse ({', '.join(r.case_id for r in judged)} passed)"
    elif covered:
        verdict, statement = "skip", f"not judged: {', '.join(r.case_id for r in covered)} skipped"
    else:
        verdict, statement = "skip", "not judged: no case that counts towards it was selected"
    return {
        "verdict": verdict,
        "level": "SHOULD",
        "meaning": "whether strict mode would refuse anything the hospital sent (clean: safe against any tightening "
        "of the portal)",
        "statement": statement,
        "failed": [r.case_id for r in bad],
    }


HEADLINES = {"fail": "NOT CONFORMANT", "inconclusive": "INCONCLUSIVE", "pass": "CONFORMANT"}
"""The run's one word, by `summary()["verdict"]`."""


def _linked(root: CaseResult, other: CaseResult) -> bool:
    """`other` follows from `root`: it names it ("see DL-001") or judged the same orders or submissions."""
    if root.case_id in other.message:
        return True
    a, b = root.evidence, other.evidence
    findings = set(a.request_ids) & set(b.request_ids) or set(a.submission_ids) & set(b.submission_ids)
    return bool(findings) and other.verdict in (CaseVerdict.FAIL, CaseVerdict.ERROR)


def root_causes(results: tuple[CaseResult, ...] | list[CaseResult]) -> list[dict[str, Any]]:
    """Failures grouped by the case that names their cause: the first failed MUST case (in catalogue
    order) leads, every later failed or skipped case that follows from it is listed under it, and each
    failure that follows from none leads a group of its own. Reports show these first."""
    bad = [r for r in results if r.verdict in (CaseVerdict.FAIL, CaseVerdict.ERROR)]
    roots = sorted(bad, key=lambda r: (not r.blocking, results.index(r)))
    groups: list[tuple[CaseResult, list[CaseResult]]] = []
    placed: set[str] = set()
    for root in roots:
        if root.case_id in placed:
            continue
        placed.add(root.case_id)
        followers = [
            r
            for r in results
            if r.case_id not in placed
            and r.verdict in (CaseVerdict.FAIL, CaseVerdict.ERROR, CaseVerdict.SKIP)
            and _linked(root, r)
        ]
        placed.update(r.case_id for r in followers)
        groups.append((root, followers))
    return [
        {
            "case": root.case_id,
            "level": root.level.value,
            "message": root.message,
            "consequences": [{"case": r.case_id, "verdict": r.verdict.value, "message": r.message} for r in followers],
        }
        for root, followers in groups
    ]
