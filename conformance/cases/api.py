"""API cases (API-*): how the hospital uses the wire API, judged from the portal's journal.

The journal lists every exchange of a scenario's facility in order (sandbox and real time, outcome,
faults applied, finding codes), which is enough to see logins, retries, backoff and resends without
instrumenting the hospital.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conformance.cases.common import late_faults, unread_replies
from conformance.evidence import Bundle, Json, Order, ScenarioRecord
from conformance.model import CaseFinding, Level
from conformance.registry import CaseOutcome, SkipCase, case, failed, passed, verdict_of
from conformance.substance import substance
from mock_portal.results.grades import Grade

ANNEX = "CV 4410/BYT-KCB PL02 (portal API annex)"
MIN_MEAN_GAP = 0.05
"""Seconds: retries whose pauses (beyond the measured noise) average less do not back off."""
CLEAR_MEAN_GAP = 0.15
"""Seconds: an average pause from MIN_MEAN_GAP up to this is INCONCLUSIVE. Measured: a client that retries
20 ms after each failure showed 0.05-0.07 s averages beyond the noise in 2 of 10 runs on 2 cores running
three test processes; the reference hospital's full-jitter backoff (base 0.2 s, five failures) averages
under 0.15 s in 0.5 % of sequences (simulated from its policy), and then runs again."""
MAX_ATTEMPTS = 12
RETRYABLE = frozenset({"500", "HTTP-500", "HTTP-502", "HTTP-503", "HTTP-504", "RESET"})
BUSY = "busy"
"""The overload scenario's fault name (`conformance.scenarios`)."""
FORM_FINDINGS = frozenset(
    {
        "AUTH_FIELDS_MISSING",
        "AUTH_BAD_CREDENTIALS",
        "AUTH_TOKEN_INVALID",
        "AUTH_TOKEN_OTHER_ACCOUNT",
    }
)


def _when(entry: Json, key: str = "at") -> datetime:
    return datetime.fromisoformat(entry[key])


def _all_entries(bundle: Bundle, operation: str | None = None) -> list[tuple[ScenarioRecord, Json]]:
    return [(s, e) for s in bundle.scenarios for e in bundle.journal_of(s, operation)]


def _entry_finding(scenario: ScenarioRecord, entry: Json, text: str) -> CaseFinding:
    return CaseFinding(
        f"{scenario.name} #{entry['id']} ({entry['operation']} → {entry['outcome']}): {text}",
        journal_ids=(entry["id"],),
    )


@case(
    id="API-001",
    grade=Grade.CONFIRMED,
    title="Token taken with the account and the uppercase-hex MD5 password",
    basis=ANNEX + " §I token/take",
    area="api",
    needs=(),  # the journal, or the refused requests kept apart from it (`Bundle.unauthenticated`)
)
def token_taken(bundle: Bundle) -> CaseOutcome:
    """Judged on the exchanges that proved to be the account (the password matched): one refused for
    what the password cannot fix (402 another facility, 403 locked, a strict-mode refusal) fails. Token
    requests with a wrong password are not the hospital's evidence — anyone can send them, naming any
    account — so they fail the case only when the hospital never got a token at all."""
    if not bundle.journal and not bundle.unauthenticated:
        raise SkipCase(bundle.missing_reason("journal"))
    tokens = _all_entries(bundle, "token")
    refused = [
        _entry_finding(
            s, e, "token refused (401 wrong account/password — MD5 uppercase hex? 402 wrong facility, 403 locked)"
        )
        for s, e in tokens
        if e["outcome"] in ("401", "402", "403") and not e["faults"]
    ]
    ids = [e["id"] for _, e in tokens]
    if refused:
        return failed(refused, journal=ids)
    if not any(e["outcome"] == "200" for _, e in tokens):
        attempts = [e for e in bundle.unauthenticated if e["operation"] == "token"]
        if attempts:
            names = ", ".join(sorted({str(e.get("username")) for e in attempts})[:3])
            return failed(
                [
                    CaseFinding(
                        f"no token was ever issued: {len(attempts)} token request(s) naming {names} were refused "
                        "(maKetQua 401: unknown account or wrong password — the uppercase-hex MD5 of the password?)"
                    )
                ]
            )
        if not tokens:
            raise SkipCase("the hospital never called /api/token/take")
        raise SkipCase("no token request got through (every one was answered by an injected fault)")
    return passed(f"{len(tokens)} token request(s), none refused for credentials", journal=ids)


@case(
    id="API-002",
    grade=Grade.CONFIRMED,
    title="Submission form complete: maCskcb, token, id_token, username, password, loaiHs, fileBase64Str",
    basis=ANNEX + " §4 guiGiayToDienTu",
    area="api",
    needs=("journal",),
)
def form_complete(bundle: Bundle) -> CaseOutcome:
    submits = _all_entries(bundle, "submit")
    if not submits:
        raise SkipCase("the hospital never called /api/hososuckhoe/guiGiayToDienTu")
    bad = [
        _entry_finding(s, e, ", ".join(sorted(FORM_FINDINGS & set(e["findings"]))))
        for s, e in submits
        if FORM_FINDINGS & set(e["findings"])
    ]
    bad += [_entry_finding(s, e, "loaiHs missing") for s, e in submits if not e.get("loai_hs")]
    ids = [e["id"] for _, e in submits]
    return verdict_of(bad, f"{len(submits)} submission(s) with complete forms", journal=ids)


@case(
    id="API-003",
    grade=Grade.CONFIRMED,
    title="loaiHs matches the document (61 = HSDLGCS, 60 = HSDLGBT)",
    basis=ANNEX + " §4 loaiHs",
    area="api",
    needs=("journal",),
)
def loai_hs_matches(bundle: Bundle) -> CaseOutcome:
    submits = _all_entries(bundle, "submit")
    if not submits:
        raise SkipCase("the hospital never called /api/hososuckhoe/guiGiayToDienTu")
    expected = {o.code: ("61" if o.type == "GCS" else "60") for o in bundle.orders}
    bad = [
        _entry_finding(s, e, f"loaiHs {e.get('loai_hs')!r} does not match the document")
        for s, e in submits
        if {"XML_ROOT_MISMATCH", "FILE_LOAIHS_UNKNOWN"} & set(e["findings"])
        or (e.get("document_code") in expected and e.get("loai_hs") != expected[e["document_code"]])
    ]
    ids = [e["id"] for _, e in submits]
    return verdict_of(bad, f"{len(submits)} submission(s) with the right loaiHs", journal=ids)


@case(
    id="API-004",
    grade=Grade.RECONSTRUCTED,
    title="Token reused for later submissions until it expires",
    basis=ANNEX + " §I expires_in",
    level=Level.SHOULD,
    area="api",
    needs=("journal", "scenario:token-reuse"),
)
def token_reused(bundle: Bundle) -> CaseOutcome:
    reused, needless, ids = 0, [], []
    for scenario in bundle.scenarios_tagged("token-reuse"):
        last_token: Json | None = None
        submitted_since_token, refused_since = False, False
        for entry in bundle.journal_of(scenario):
            ids.append(entry["id"])
            if entry["operation"] == "token" and entry["outcome"] == "200":
                young = (
                    last_token is not None
                    and (_when(entry) - _when(last_token)).total_seconds() < scenario.token_ttl_minutes * 30
                )
                if young and submitted_since_token and not refused_since:
                    needless.append(_entry_finding(scenario, entry, "new token although the last one was still valid"))
                last_token, submitted_since_token, refused_since = entry, False, False
            elif entry["operation"] == "submit":
                reused += submitted_since_token
                submitted_since_token = True
                refused_since = refused_since or entry["outcome"] == "401"
    if reused + len(needless) == 0:
        raise SkipCase("fewer than two submissions within one token lifetime: nothing to judge")
    return verdict_of(
        needless if len(needless) > reused else [],
        f"{reused} submission(s) reused a valid token, {len(needless)} needless login(s)",
        journal=ids,
    )


@case(
    id="API-005",
    grade=Grade.CONFIRMED,
    title="On MaKetQua 401 the client logs in again and resends",
    basis=ANNEX + " §4 MaKetQua 401",
    area="api",
    needs=("journal", "scenario:relogin"),
)
def relogin_after_401(bundle: Bundle) -> CaseOutcome:
    """Judged over each facility's whole journal, per certificate: the resend may come in the next
    scenario's time (a 401 just before a scenario ends). A 401 held past the client's timeout (late-reply)
    is not judged: the hospital never read it."""
    seen, problems, ids, late = 0, [], [], late_faults(bundle)
    for facility in bundle.facilities():
        entries = bundle.facility_journal(facility)
        for index, entry in enumerate(entries):
            if entry["operation"] != "submit" or entry["outcome"] != "401" or late & set(entry.get("faults") or ()):
                continue
            seen += 1
            ids.append(entry["id"])
            later = entries[index + 1 :]
            resend = next(
                (i for i, e in enumerate(later) if e["operation"] == "submit" and bundle.same_document(entry, e)), None
            )
            if resend is None:
                problems.append(_facility_finding(bundle, entry, "never resent after the 401"))
            elif not any(e["operation"] == "token" for e in later[:resend]):
                problems.append(_facility_finding(bundle, entry, "resent without taking a new token"))
            else:
                ids += [e["id"] for e in later[: resend + 1]]
    if not seen:
        raise SkipCase("no submission was answered with MaKetQua 401")
    return verdict_of(problems, f"{seen} 401 answer(s), each followed by a login and a resend", journal=ids)


def _facility_finding(bundle: Bundle, entry: Json, text: str) -> CaseFinding:
    """A finding on one exchange, named by its facility, its certificate and the journal entry."""
    code = bundle.document_of(entry) if entry["operation"] == "submit" else None
    what = f" {code}" if code else ""
    return CaseFinding(
        f"{entry['facility']} #{entry['id']} ({entry['operation']}{what} → {entry['outcome']}): {text}",
        journal_ids=(entry["id"],),
    )


@case(
    id="API-006",
    grade=Grade.CONFIRMED,
    title="A certificate refused with 205 is not resent unchanged in substance, however re-signed",
    basis=ANNEX + " §4 MaKetQua 205",
    area="api",
    needs=("journal", "submissions", "scenario:refusal"),
)
def no_resend_of_205(bundle: Bundle) -> CaseOutcome:
    """Judged on the signed content without its signature (`conformance.substance`), not the file bytes:
    a new SigningTime or Id changes the digest of the file, not what the portal refused."""
    unread = unread_replies(bundle)  # a 205 the hospital never read (its reply was dropped) asks nothing of it
    refused = [s for s in bundle.submissions if s.get("result") == "205" and substance(s) and s["id"] not in unread]
    if not refused:
        raise SkipCase("no submission was refused with 205 (with a reply the hospital read)")
    problems, seen = [], set()
    for first in refused:
        answered = _answered_at(bundle, first)
        for later in bundle.submissions:
            if (
                later["id"] != first["id"]
                and later["id"] not in seen
                and later.get("facility") == first.get("facility")
                and _sent_after(bundle, later, first["id"], answered)
                and substance(later) == substance(first)
            ):
                seen.add(later["id"])
                how = "the same file" if later.get("file_sha256") == first.get("file_sha256") else "re-signed"
                problems.append(
                    CaseFinding(
                        f"submission {later['id']} resends refused {first['id']} ({first.get('document_code')}) "
                        f"unchanged in substance ({how})",
                        submission_ids=(first["id"], later["id"]),
                    )
                )
    ids = [s["id"] for s in refused]
    return verdict_of(
        problems, f"{len(refused)} refused certificate(s), none resent unchanged in substance", submissions=ids
    )


def _answered_at(bundle: Bundle, submission: Json) -> datetime | None:
    """When the portal's reply to a submission left (real time): the exchange's arrival plus its duration."""
    entry = bundle.exchange_of(submission["id"])
    if entry is None:
        return None
    return _when(entry, "real_at") + timedelta(milliseconds=float(entry.get("duration_ms") or 0))


def _sent_after(bundle: Bundle, later: Json, first_id: int, answered: datetime | None) -> bool:
    """Whether `later` was sent once the reply to submission `first_id` had left: by when the hospital
    started sending it, not by when the portal stored it (a held request is stored after a later one)."""
    entry = bundle.exchange_of(later["id"])
    if answered is None or entry is None or _when(entry, "real_at") == answered:
        return bool(later["id"] > first_id)  # no times to tell (evidence by hand): the order stored
    return _when(entry, "real_at") > answered


def _retry_runs(bundle: Bundle) -> list[tuple[ScenarioRecord, Order, list[Json]]]:
    """Per order of the retry scenarios, the submit attempts for its certificate (wherever in the facility's
    journal they landed) up to and including the first acceptance."""
    runs = []
    for scenario in bundle.scenarios_tagged("retry"):
        for order in bundle.orders_of(scenario):
            attempts = []
            for entry in bundle.attempts(order):
                attempts.append(entry)
                if entry["outcome"] == "200":
                    break
            runs.append((scenario, order, attempts))
    return runs


@case(
    id="API-007",
    grade=Grade.CONFIRMED,
    title="On MaKetQua 500, HTTP 5xx or a reset connection the client retries",
    basis=ANNEX + " §4 MaKetQua 500",
    area="api",
    needs=("journal", "scenario:retry"),
)
def retries(bundle: Bundle) -> CaseOutcome:
    """Per certificate over the facility's whole journal, not the scenario's slice: a retry that lands
    after the scenario ended still counts, and another document's submission is no retry of this one
    (every submission, faulted or not, is tied to its certificate by code or file digest)."""
    problems, ids, seen = [], [], 0
    for facility in bundle.facilities():
        entries = bundle.facility_journal(facility)
        for index, entry in enumerate(entries):
            if entry["outcome"] not in RETRYABLE or BUSY in (entry.get("faults") or ()):
                continue  # the overload scenario ends once its budget is decided: API-014 judges those
            seen += 1
            ids.append(entry["id"])
            later = entries[index + 1 :]
            if entry["operation"] == "submit":
                again = any(e["operation"] == "submit" and bundle.same_document(entry, e) for e in later)
            else:
                again = any(e["operation"] in (entry["operation"], "submit") for e in later)
            if not again:
                problems.append(_facility_finding(bundle, entry, "not retried"))
    if not seen:
        raise SkipCase("no exchange was answered with 500, 5xx or a reset")
    return verdict_of(problems, f"{seen} transient failure(s), each retried", journal=ids)


@case(
    id="API-008",
    grade=Grade.ADVISORY,
    title="Retries back off and are bounded",
    basis=ANNEX + " §4 MaKetQua 500",
    level=Level.SHOULD,
    area="api",
    needs=("journal", "scenario:retry"),
)
def backoff(bundle: Bundle) -> CaseOutcome:
    """Judged on the real time between attempts for one file (the hospital's own clock), each pause
    measured from the end of one attempt (its reply left) to the start of the next, less what this run
    measured as the machine's noise (`_noise`): a request's own duration, or a loaded machine, is no
    backoff.

    Full jitter makes single pauses random (a 0.08 s pause after 0.38 s is fine), so the check is on the
    whole sequence: an average pause of at least MIN_MEAN_GAP, later pauses not collapsing below half
    the earlier ones, and no more than MAX_ATTEMPTS attempts for the injected errors. An average between
    MIN_MEAN_GAP and CLEAR_MEAN_GAP is INCONCLUSIVE (the scenario runs again): the machine's own delays
    could make a client that retries at once look like one that waits.
    """
    problems, undecided, ids, judged = [], [], [], []
    for scenario, order, attempts in _retry_runs(bundle):
        if len(attempts) < 3:
            continue
        ids += [e["id"] for e in attempts]
        noise = _noise(bundle, scenario)
        gaps = [max(0.0, _pause(a, b) - noise) for a, b in zip(attempts, attempts[1:], strict=False)]
        mean, half = sum(gaps) / len(gaps), len(gaps) // 2
        pauses = f"{', '.join(f'{g:.2f}s' for g in gaps)} (beyond {noise:.2f} s of noise)"
        judged.append(pauses)
        evidence = {"journal_ids": tuple(e["id"] for e in attempts), "request_ids": (order.request_id,)}
        if mean < MIN_MEAN_GAP or sum(gaps[half:]) < sum(gaps[:half]) / 2:
            problems.append(CaseFinding(f"{scenario.name}: pauses between retries {pauses}: no backoff", **evidence))
        elif mean < CLEAR_MEAN_GAP and not bundle.superseded(scenario):  # the last run's verdict stands
            undecided.append(
                CaseFinding(
                    f"{scenario.name}: pauses between retries {pauses} average {mean:.2f} s, under"
                    f" {CLEAR_MEAN_GAP} s: this machine's own delays could make a client that retries at once"
                    " look like one that waits",
                    **evidence,
                )
            )
        if len(attempts) > MAX_ATTEMPTS:
            problems.append(
                CaseFinding(f"{scenario.name}: {len(attempts)} attempts for one file: unbounded?", **evidence)
            )
    if not judged:
        raise SkipCase("no document needed two or more retries (see API-007)")
    passing = f"{len(judged)} retry sequence(s) back off and stay bounded: pauses {'; '.join(judged)}"
    return verdict_of(problems, passing, undecided=undecided, journal=ids)


def _pause(before: Json, after: Json) -> float:
    """Real seconds from the reply to `before` leaving the portal to `after` reaching it."""
    ended = _when(before, "real_at") + timedelta(milliseconds=float(before.get("duration_ms") or 0))
    return (_when(after, "real_at") - ended).total_seconds()


NOISE_CAP = 0.25
"""The most noise (real seconds) taken off each pause: beyond it, a machine too busy to judge backoff."""


def _noise(bundle: Bundle, scenario: ScenarioRecord) -> float:
    """How long a pause the machine alone makes between two requests of the hospital: how long this
    hospital took, in this scenario, to submit after a token reply (it had no reason to wait), plus the
    probe's typical scheduling delay (`ScenarioRecord.timing`); at most NOISE_CAP."""
    entries = bundle.journal_of(scenario)
    reactions = sorted(
        _pause(a, b)
        for a, b in zip(entries, entries[1:], strict=False)
        if a["operation"] == "token" and a["outcome"] == "200" and b["operation"] == "submit"
    )
    reaction = max(0.0, reactions[len(reactions) // 2]) if reactions else 0.0
    return min(NOISE_CAP, reaction + float(scenario.timing.get("jitter") or 0.0))


@case(
    id="API-009",
    grade=Grade.CONFIRMED,
    title="On MaKetQua 1001 (file too large) the same file is not resent",
    basis=ANNEX + " §4 MaKetQua 1001",
    area="api",
    needs=("journal", "scenario:too-large"),
)
def no_retry_on_1001(bundle: Bundle) -> CaseOutcome:
    """Per order: the too-large scenario answers the first send of its certificate 1001, so any later
    submission carrying that certificate's code, anywhere in the facility's journal, is a resend."""
    problems, ids, seen = [], [], 0
    for scenario in bundle.scenarios_tagged("too-large"):
        submits = bundle.journal_of(scenario, "submit")
        first = next((e for e in submits if e["outcome"] == "1001"), None)
        if first is None:
            continue
        seen += 1
        ids.append(first["id"])
        for order in bundle.orders_of(scenario):
            resends = [
                e
                for e in bundle.facility_journal(scenario.facility, "submit")
                if e["id"] > first["id"] and bundle.document_of(e) == order.code
            ]
            ids += [e["id"] for e in resends]
            if resends:
                problems.append(
                    _entry_finding(scenario, resends[0], f"{order.code} resent {len(resends)}x after MaKetQua 1001")
                )
    if not seen:
        raise SkipCase("no submission was answered with MaKetQua 1001")
    return verdict_of(problems, "no resend after MaKetQua 1001", journal=ids)


CASE_DEVIATIONS = frozenset({"TOKEN_MD5_CASE", "AUTH_MD5_CASE"})


@case(
    id="API-010",
    grade=Grade.OBSERVED,
    title="Password MD5 sent as uppercase hex (clean under strict; the real portal also takes lowercase)",
    basis=ANNEX + " §I token/take; R9 production clients",
    level=Level.SHOULD,
    area="api",
    needs=("journal",),
    result="strict",
)
def md5_uppercase(bundle: Bundle) -> CaseOutcome:
    entries = _all_entries(bundle)
    if not entries:
        raise SkipCase("the hospital never called the wire API")
    bad = [
        _entry_finding(s, e, ", ".join(sorted(CASE_DEVIATIONS & set(e["findings"]))) + ": lowercase hex MD5")
        for s, e in entries
        if CASE_DEVIATIONS & set(e["findings"])
    ]
    ids = [e["id"] for _, e in entries]
    return verdict_of(bad, f"{len(entries)} request(s) with uppercase MD5", journal=ids)
