"""The outcome of a run as data: the summary every report states and `conformance verify` recomputes
from the case verdicts (verdict, counts, MUST failures, exit code), and the root causes first.

Kept out of the report package: the run's attestation and the verifier need it without any output
format."""

from __future__ import annotations

from collections import Counter
from typing import Any

from conformance.events import exit_code
from conformance.model import CaseResult, Verdict

__all__ = ["HEADLINES", "root_causes", "summary"]


def summary(results: tuple[CaseResult, ...] | list[CaseResult]) -> dict[str, Any]:
    """The run's outcome: `verdict` fail (a MUST case failed), inconclusive (none did, but one could not be
    settled on this machine's timing: no certificate either) or pass, and what makes it so."""
    counts = Counter(r.verdict.value for r in results)
    blocking = [r.case_id for r in results if r.blocking]
    undecided = [r.case_id for r in results if r.undecided]
    not_strict = [r.case_id for r in results if r.result == "strict" and r.verdict in (Verdict.FAIL, Verdict.ERROR)]
    verdict = "fail" if blocking else "inconclusive" if undecided else "pass"
    return {
        "verdict": verdict,
        "headline": HEADLINES[verdict],
        "portal_compatible": {
            "verdict": verdict,
            "level": "MUST",
            "meaning": "the real portal would accept every document and file it under the right facility",
            "failed": blocking,
        },
        "strict_clean": {
            "verdict": "fail" if blocking or not_strict else verdict,
            "level": "SHOULD",
            "meaning": "nothing strict mode would refuse: safe against any tightening of the portal",
            "failed": blocking + not_strict,
        },
        "counts": {v.value: counts.get(v.value, 0) for v in Verdict},
        "total": len(results),
        "must_failed": blocking,
        "must_inconclusive": undecided,
        "should_failed": [r.case_id for r in results if r.verdict is Verdict.FAIL and not r.blocking],
        "exit_code": exit_code(results),
        "root_causes": root_causes(results),
    }


HEADLINES = {"fail": "NOT CONFORMANT", "inconclusive": "INCONCLUSIVE", "pass": "CONFORMANT"}
"""The run's one word, by `summary()["verdict"]`."""


def _linked(root: CaseResult, other: CaseResult) -> bool:
    """`other` follows from `root`: it names it ("see DL-001") or judged the same orders or submissions."""
    if root.case_id in other.message:
        return True
    a, b = root.evidence, other.evidence
    findings = set(a.request_ids) & set(b.request_ids) or set(a.submission_ids) & set(b.submission_ids)
    return bool(findings) and other.verdict in (Verdict.FAIL, Verdict.ERROR)


def root_causes(results: tuple[CaseResult, ...] | list[CaseResult]) -> list[dict[str, Any]]:
    """Failures grouped by the case that names their cause: the first failed MUST case (in catalogue
    order) leads, every later failed or skipped case that follows from it is listed under it, and each
    failure that follows from none leads a group of its own. Reports show these first."""
    bad = [r for r in results if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
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
            if r.case_id not in placed and r.verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.SKIP) and _linked(root, r)
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
