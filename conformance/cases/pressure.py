"""Pressure cases (API-013, API-014, API-016): how hard the hospital leans on the portal — logins, retries, and
sends on a token the portal has already retired.

Judged from the journal like the other API cases; kept apart so the catalogue lists them after the
once-only cases (modules register in import order).
"""

from __future__ import annotations

from conformance.cases.api import ANNEX, BUSY, _entry_finding, _when
from conformance.evidence import Bundle, Json
from conformance.model import CaseFinding, Level
from conformance.registry import CaseOutcome, SkipCase, case, verdict_of
from conformance.timing import resolution
from mock_portal.results.grades import Grade

BUDGET_BURST = 10
BUDGET_PER_SECOND = 0.5
"""The per-facility request budget while the portal is busy: BUDGET_BURST requests plus BUDGET_PER_SECOND
per real second of the busy period (tokens and submissions together). Exponential backoff with a
bounded number of attempts stays far below (about 12 in 24 s, against a budget of 22); a fixed
interval of 0.2 s or a 20 ms storm exceed it several times over."""
NEEDLESS_LOGINS = 2
"""More needless logins than this in one run is a token storm (API-013)."""
EXPIRED = "AUTH_TOKEN_EXPIRED"
"""The portal's finding on a submission whose token had expired (its own 401, not an injected one)."""


@case(
    id="API-013",
    grade=Grade.RECONSTRUCTED,
    title="No token storm: a token is reused while valid (at most 2 needless logins in a run)",
    basis=ANNEX + " §I expires_in; portal account lockout on repeated logins",
    area="api",
    needs=("journal",),
)
def no_token_storm(bundle: Bundle) -> CaseOutcome:
    """MUST (API-004 is the SHOULD on reuse): a login per request doubles the load on a portal that
    answers busy and trips per-account limits, so a storm is refused, a stray extra login is not."""
    needless, ids = [], []
    for scenario in bundle.scenarios:
        last: Json | None = None
        since_submit, since_refused = False, False
        for entry in bundle.journal_of(scenario):
            ids.append(entry["id"])
            if entry["operation"] == "token" and entry["outcome"] == "200":
                young = last is not None and (_when(entry) - _when(last)).total_seconds() < (
                    scenario.token_ttl_minutes * 30
                )
                if young and since_submit and not since_refused:
                    needless.append(_entry_finding(scenario, entry, "new token although the last one was still valid"))
                last, since_submit, since_refused = entry, False, False
            elif entry["operation"] == "submit":
                since_submit = True
                since_refused = since_refused or entry["outcome"] == "401"
    if not ids:
        raise SkipCase("the hospital never called the wire API")
    storm = [CaseFinding(f"token storm: {len(needless)} logins while the last token was still valid"), *needless]
    return verdict_of(
        storm if len(needless) > NEEDLESS_LOGINS else [],
        f"{len(needless)} needless login(s) (at most {NEEDLESS_LOGINS} allowed)",
        journal=ids,
    )


@case(
    id="API-014",
    grade=Grade.ADVISORY,
    title="Within the per-facility request budget while the portal answers busy (backoff, bounded retries)",
    basis=ANNEX + " §4 MaKetQua 500 / HTTP 503; sandbox request budget",
    area="api",
    needs=("journal", "scenario:overload"),
)
def request_budget(bundle: Bundle) -> CaseOutcome:
    """MUST: a hospital that hammers a busy portal makes the overload worse for every facility in the
    province; the budget (see BUDGET_BURST) is part of the contract, and the reference stays far below."""
    problems, ids, judged = [], [], 0
    for scenario in bundle.scenarios_tagged("overload"):
        entries = bundle.journal_of(scenario)
        busy = [e for e in entries if BUSY in (e.get("faults") or ())]
        if not busy:
            continue
        judged += 1
        first, last = _when(busy[0], "real_at"), _when(busy[-1], "real_at")
        inside = [e for e in entries if first <= _when(e, "real_at") <= last]
        ids += [e["id"] for e in inside]
        seconds = (last - first).total_seconds()
        budget = BUDGET_BURST + BUDGET_PER_SECOND * seconds
        if len(inside) > budget:
            tokens = sum(e["operation"] == "token" for e in inside)
            problems.append(
                CaseFinding(
                    f"{scenario.name}: {len(inside)} requests ({tokens} token) in {seconds:.1f} s of busy portal, "
                    f"budget {budget:.0f}: retries without backoff or without a bound",
                    journal_ids=tuple(e["id"] for e in inside[:50]),
                )
            )
    if not judged:
        raise SkipCase("no request met the busy portal")
    return verdict_of(problems, "within the request budget while busy", journal=ids)


@case(
    id="API-016",
    grade=Grade.RECONSTRUCTED,
    title="A token is renewed once its expires_in has passed: no submission sent on a dead token",
    basis=ANNEX + " §I expires_in",
    level=Level.SHOULD,
    area="api",
    needs=("journal", "scenario:relogin"),
)
def renewed_on_expiry(bundle: Bundle) -> CaseOutcome:
    """SHOULD, not MUST: a system that keeps its token until the portal's 401 and then logs in again and
    resends (API-005) gets every certificate through the real portal — the C# and Java examples in
    `examples/` do so — but makes the first send after every expiry a refused submission and counts on a
    401 that a strained portal may answer with a 5xx instead. `expires_in` is the token's contract. Judged
    on the relogin scenarios, whose last order comes long after the token expired: a send the portal
    refused for an expired token fails when the last token taken had expired by more than the scenario's
    timing resolution (the hospital's reading of the portal's clock may lag so much)."""
    problems, ids = [], []
    for scenario in bundle.scenarios_tagged("relogin"):
        slack, taken = resolution(bundle, scenario).minutes, None
        for entry in bundle.journal_of(scenario):
            if entry["operation"] == "token" and entry["outcome"] == "200":
                taken = _when(entry)
            elif entry["operation"] == "submit" and taken is not None:
                ids.append(entry["id"])
                dead = (_when(entry) - taken).total_seconds() / 60 - scenario.token_ttl_minutes
                if EXPIRED in entry["findings"] and dead > slack:
                    problems.append(
                        _entry_finding(
                            scenario, entry, f"sent on a token expired {dead:.0f} min before: expires_in ignored"
                        )
                    )
    if not ids:
        raise SkipCase("no submission followed a token in a relogin scenario")
    return verdict_of(problems, f"{len(ids)} submission(s), none on a token past its expires_in", journal=ids)
