"""Judging hand-made evidence (no server): pass, fail with the reason, skip when evidence is missing,
error when a check crashes — and the same verdicts after a save/replay round trip."""

from __future__ import annotations

import base64
import unicodedata
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conformance.cases import load_cases
from conformance.evidence import Bundle, Order, ScenarioRecord, dump, load
from conformance.model import CaseVerdict, Level
from conformance.outcome import summary
from conformance.registry import CaseSpec
from mock_portal.results.grades import Grade

CASES = load_cases()
T0 = "2026-11-30T01:00:00Z"


def submission(sid: int, *, codes: tuple[str, ...] = (), checks: dict[str, str] | None = None, **extra: Any) -> dict:
    checks = checks or {"algorithms_allowed": "PASSED", "digests_match": "PASSED"}
    return {
        "id": sid,
        "facility": "79101",
        "loai_hs": "61",
        "result": "205" if codes else "200",
        "document_code": f"{sid:05d}.GCS.79101.26",
        "file_sha256": f"sha{sid}",
        "findings": [{"code": c, "severity": "error", "message_en": f"{c} happened", "path": None} for c in codes],
        "signature": {
            "profile": "two-reference",
            "checks": [
                {"name": n, "outcome": o, "message_en": f"{n} {o}", "sub_indication": None} for n, o in checks.items()
            ],
        },
        **extra,
    }


def entry(eid: int, operation: str, outcome: str, *, at: str = T0, real_at: str = T0, **extra: Any) -> dict:
    return {
        "id": eid,
        "facility": "79101",
        "operation": operation,
        "outcome": outcome,
        "at": at,
        "real_at": real_at,
        "faults": [],
        "findings": [],
        "loai_hs": "61" if operation == "submit" else None,
        **extra,
    }


def scenario(name: str, *tags: str) -> ScenarioRecord:
    return ScenarioRecord(name, name, "79101", tags or (name,), {"faults": []}, 0, 10_000)


def order(request_id: str, *, story: str = "gcs_normal", expectation_id: int | None = 1, **data: str) -> Order:
    fields = {"MA_GCS": "00001.GCS.79101.26", "CAP_LAN_DAU": "1", **data}
    return Order(
        request_id,
        "issue",
        story,
        "GCS",
        "79101",
        "2026-11-30T08:00:00+07:00",
        fields,
        taken=True,
        expectation_id=expectation_id,
    )


def expectation(eid: int, status: str, fields: dict[str, str] | None = None, deadline_status: str = "ON_TIME") -> dict:
    document = None
    if status == "ARRIVED":
        document = {
            "submission_id": eid,
            "accepted_at": "2026-11-30T01:30:00Z",
            "fields": fields or {},
            "deadline": {"status": deadline_status, "working_minutes_late": 0},
        }
    return {"id": eid, "status": status, "issued_at": T0, "deadline": "2026-11-30T05:00:00Z", "document": document}


def judge(case_id: str, bundle: Bundle) -> tuple[CaseVerdict, str]:
    result = CASES.get(case_id).judge(bundle)
    return result.verdict, result.message


def test_document_case_passes_on_clean_files() -> None:
    verdict, message = judge("GCS-DOC-005", Bundle(submissions=(submission(1), submission(2))))
    assert verdict is CaseVerdict.PASS, message
    assert message.startswith("2 file(s)")


def test_document_case_fails_naming_the_file_and_the_rule() -> None:
    verdict, message = judge(
        "GCS-DOC-005", Bundle(submissions=(submission(1), submission(2, codes=("RULE_CODE_YEAR",))))
    )
    assert verdict is CaseVerdict.FAIL
    assert "submission 2" in message and "RULE_CODE_YEAR" in message


def test_document_case_skips_without_files_of_its_type() -> None:
    verdict, message = judge("GBT-DOC-003", Bundle(submissions=(submission(1),)))
    assert verdict is CaseVerdict.SKIP
    assert "no GBT file" in message


def test_bytes_are_judged_too() -> None:
    import base64

    bom = base64.b64encode(b"\xef\xbb\xbf<?xml version='1.0'?><HSDLGCS/>").decode()
    dtd = base64.b64encode(b"<?xml version='1.0'?><!DOCTYPE HSDLGCS><HSDLGCS/>").decode()
    bundle = Bundle(submissions=(submission(1, file_b64=bom),))
    assert judge("GCS-DOC-001", bundle)[0] is CaseVerdict.PASS, "the real portal reads past a BOM"
    verdict, message = judge("GCS-DOC-008", bundle)
    assert verdict is CaseVerdict.FAIL and "byte order mark" in message, "but strict refuses it"
    verdict, message = judge("GCS-DOC-001", Bundle(submissions=(submission(1, file_b64=dtd),)))
    assert verdict is CaseVerdict.FAIL and "DOCTYPE" in message


def test_signature_case_fails_on_a_failed_check_and_skips_when_not_evaluated() -> None:
    sha1 = submission(1, checks={"algorithms_allowed": "FAILED"})
    assert judge("SIG-003", Bundle(submissions=(sha1,)))[0] is CaseVerdict.FAIL
    verdict, message = judge("SIG-004", Bundle(submissions=(sha1,)))
    assert verdict is CaseVerdict.SKIP and "not evaluated" in message


def test_a_signature_case_skipped_names_the_finding_that_stopped_its_check() -> None:
    untrusted = submission(1, checks={"certificate_chain_trusted": "INDETERMINATE"})
    stopped = "Not checked: SIG_CERT_UNTRUSTED stopped the chain: no trusted issuer to look up a CRL for."
    untrusted["signature"]["checks"].append(
        {"name": "certificate_not_revoked", "outcome": "SKIPPED", "message_en": stopped, "sub_indication": None}
    )
    verdict, message = judge("SIG-007", Bundle(submissions=(untrusted,)))
    assert verdict is CaseVerdict.SKIP and message.endswith(f"certificate_not_revoked: {stopped}"), message


def test_live_only_cases_skip_on_offline_evidence() -> None:
    verdict, message = judge("API-005", Bundle(submissions=(submission(1),)))
    assert verdict is CaseVerdict.SKIP
    assert "journal" in message


def signed_file(signature: str, **fields: str) -> str:
    """A file's base64: data elements, then an XMLDSig element whose content stands for one signing."""
    data = {"MA_GCS": "00001.GCS.79101.26", "CAP_LAN_DAU": "1", "HO_TEN": "Nguyễn An", **fields}
    body = "".join(f"<{k}>{v}</{k}>" for k, v in data.items())
    ds = f'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignatureValue>{signature}</SignatureValue></Signature>'
    return base64.b64encode(f"<HSDLGCS><DATA>{body}</DATA>{ds}</HSDLGCS>".encode()).decode()


def test_a_resend_after_a_205_the_hospital_never_read_is_no_resend_after_205() -> None:
    """dropped: the portal refused the file (a bad signature) and swallowed the reply; resending is right."""
    first = submission(1, codes=("SIG_ALGORITHM",), file_b64=signed_file("AAA"))
    again = submission(2, codes=("SIG_ALGORITHM",), file_b64=signed_file("AAA"))
    journal = (entry(1, "submit", "DROPPED", submission_id=1), entry(2, "submit", "205", submission_id=2))
    bundle = Bundle(scenarios=(scenario("refused", "refusal"),), journal=journal, submissions=(first, again))
    assert judge("API-006", bundle)[0] is CaseVerdict.PASS  # 2 is the first 205 it read, and nothing followed
    third = submission(3, codes=("SIG_ALGORITHM",), file_b64=signed_file("AAA"))
    read = replace(
        bundle, journal=(*journal, entry(3, "submit", "205", submission_id=3)), submissions=(first, again, third)
    )
    verdict, message = judge("API-006", read)
    assert verdict is CaseVerdict.FAIL and "submission 3 resends refused 2" in message


def test_resending_a_refused_certificate_fails_however_re_signed() -> None:
    """The bytes differ (a new signature) but the certificate is the same: still a resend."""
    refused = submission(1, codes=("RULE_CCCD_FORMAT",), file_b64=signed_file("AAA"))
    resigned = submission(2, codes=("RULE_CCCD_FORMAT",), file_b64=signed_file("BBB"))
    journal = (entry(1, "submit", "205", submission_id=1), entry(2, "submit", "205", submission_id=2))
    bundle = Bundle(scenarios=(scenario("refused", "refusal"),), journal=journal, submissions=(refused, resigned))
    verdict, message = judge("API-006", bundle)
    assert verdict is CaseVerdict.FAIL and "unchanged in substance (re-signed)" in message
    corrected = submission(2, file_b64=signed_file("CCC", HO_TEN="Nguyễn Văn An"))
    fixed = Bundle(scenarios=bundle.scenarios, journal=journal, submissions=(refused, corrected))
    assert judge("API-006", fixed)[0] is CaseVerdict.PASS


def test_each_certificate_accepted_once_names_the_duplicates_magds() -> None:
    code = "00001.GCS.79101.26"
    first = submission(1, ma_gd="GD1", file_b64=signed_file("A"), document_code=code)
    again = submission(2, ma_gd="GD2", file_b64=signed_file("B"), document_code=code)
    orders = (order("r1"),)
    bundle = Bundle(scenarios=(scenario("issue", "base"),), orders=orders, submissions=(first, again))
    verdict, message = judge("API-011", bundle)
    assert verdict is CaseVerdict.FAIL and "accepted 2 times" in message and "GD1" in message and "GD2" in message
    # a reply lost after the portal stored the file (drop_after_commit: outcome DROPPED) excuses the resend
    plan = {"faults": [{"name": "d", "effect": "drop_after_commit"}]}
    record = ScenarioRecord("drop", "drop", "79101", ("base",), plan)
    dropped = Bundle(
        scenarios=(record,), orders=orders, submissions=(first, again),
        journal=(entry(1, "submit", "DROPPED", submission_id=1, faults=["d"]),),
    )  # fmt: skip
    assert judge("API-011", dropped)[0] is CaseVerdict.PASS
    # a fault named like the drop that did not drop (a reset came first) excuses nothing
    not_dropped = replace(dropped, journal=(entry(1, "submit", "200", submission_id=1, faults=["d"]),))
    assert judge("API-011", not_dropped)[0] is CaseVerdict.FAIL
    # the resend after a drop is excused once: a second resend is a duplicate again
    third = submission(3, ma_gd="GD3", file_b64=signed_file("C"), document_code=code)
    verdict, message = judge("API-011", replace(dropped, submissions=(first, again, third)))
    assert verdict is CaseVerdict.FAIL and "GD2" in message and "GD3" in message
    # an order the harness sent twice is API-012's to judge, not API-011's
    twice = Bundle(scenarios=bundle.scenarios, orders=(replace(orders[0], sends=2),), submissions=(first, again))
    assert judge("API-011", twice)[0] is CaseVerdict.PASS
    verdict, message = judge("API-012", twice)
    assert verdict is CaseVerdict.FAIL and "request_id r1 sent 2x" in message
    assert judge("API-012", Bundle(scenarios=bundle.scenarios, orders=twice.orders, submissions=(first,)))[0] is (
        CaseVerdict.PASS
    )
    assert (
        judge("API-012", Bundle(scenarios=bundle.scenarios, orders=orders, submissions=(first,)))[0] is CaseVerdict.SKIP
    )


def _lost_reply_bundle(*steps: tuple[str, str, int | None], late_ms: float = 20_000) -> Bundle:
    """The dropped and late-reply scenarios' evidence: (outcome, faults, submission id) per submit."""
    code = "00001.GCS.79101.26"
    plan = {"faults": [{"name": "lost", "effect": "drop_after_commit"}, {"name": "late", "latency": {"ms": late_ms}}]}
    record = ScenarioRecord("dropped", "dropped", "79101", ("lost-reply",), plan, 0, 10_000)
    journal = tuple(
        entry(i + 1, "submit", outcome, submission_id=sid, faults=fault.split("+") if fault else [], document_code=code)
        for i, (outcome, fault, sid) in enumerate(steps)
    )
    subs = tuple(
        submission(sid, ma_gd=f"GD{sid}", file_b64=signed_file(f"S{sid}"), document_code=code)
        for _, _, sid in steps
        if sid is not None
    )
    return Bundle(scenarios=(record,), orders=(replace(order("r1"), scenario="dropped"),), journal=journal,
                  submissions=subs)  # fmt: skip


@pytest.mark.parametrize(
    ("steps", "api_011", "api_015", "why"),
    [
        ([("DROPPED", "lost", 1), ("200", "", 2)], CaseVerdict.PASS, CaseVerdict.PASS, ""),
        ([("DROPPED", "lost", 1)], CaseVerdict.PASS, CaseVerdict.FAIL, "holds no MaGD"),
        ([("RESET", "", None)], CaseVerdict.SKIP, CaseVerdict.FAIL, "the certificate is lost"),
        ([("RESET", "", None), ("200", "", 1)], CaseVerdict.PASS, CaseVerdict.PASS, ""),
        # stored late (the hospital timed out) and resent: one certificate; or waited and read the reply
        ([("200", "", 1), ("200", "late", 2)], CaseVerdict.PASS, CaseVerdict.PASS, ""),
        ([("200", "late", 1)], CaseVerdict.PASS, CaseVerdict.PASS, ""),
        # held until the hospital hung up (the portal marks it) and never resent: stored, but no MaGD
        ([("200", "late+client-gone", 1)], CaseVerdict.PASS, CaseVerdict.FAIL, "holds no MaGD"),
        # acknowledged at once, then sent again: a duplicate however the other was faulted
        ([("DROPPED", "lost", 1), ("200", "", 2), ("200", "", 3)], CaseVerdict.FAIL, CaseVerdict.PASS, ""),
        # refused (a bad signature): the document cases' verdict, not a lost reply
        ([("RESET", "", None), ("205", "", None)], CaseVerdict.SKIP, CaseVerdict.SKIP, "refused"),
    ],
    ids=["drop-resent", "drop-not-resent", "reset-not-resent", "reset-resent", "late-resent", "late-waited",
         "late-gave-up", "drop-resent-twice", "refused"],
)  # fmt: skip
def test_a_lost_reply_is_resent_once(
    steps: list[tuple[str, str, int | None]], api_011: CaseVerdict, api_015: CaseVerdict, why: str
) -> None:
    bundle = _lost_reply_bundle(*steps)
    assert judge("API-011", bundle)[0] is api_011
    verdict, message = judge("API-015", bundle)
    assert verdict is api_015 and why in message


def test_a_short_delay_excuses_no_resend() -> None:
    """Only a delay that may outlast a client's timeout excuses a resend: 2 s is an ordinary slow reply."""
    bundle = _lost_reply_bundle(("200", "late", 1), ("200", "", 2), late_ms=2_000)
    assert judge("API-011", bundle)[0] is CaseVerdict.FAIL


@pytest.mark.parametrize(
    ("after_401", "verdict"),
    [
        (["token:200", "submit:200"], CaseVerdict.PASS),
        (["submit:401"], CaseVerdict.FAIL),
        ([], CaseVerdict.FAIL),
    ],
    ids=["relogin-and-resend", "resend-without-login", "gives-up"],
)
def test_relogin_after_401(after_401: list[str], verdict: CaseVerdict) -> None:
    journal = [entry(1, "token", "200"), entry(2, "submit", "401")]
    journal += [entry(3 + i, *step.split(":")) for i, step in enumerate(after_401)]
    bundle = Bundle(scenarios=(scenario("token", "relogin"),), journal=tuple(journal))
    assert judge("API-005", bundle)[0] is verdict


def test_a_401_held_past_the_clients_timeout_needs_no_relogin() -> None:
    """late-reply: the held request meets an expired token after the hospital gave up on it and resent."""
    plan = {"faults": [{"name": "late", "effect": "latency", "latency": {"ms": 20_000}}]}
    record = ScenarioRecord("late-reply", "late-reply", "79101", ("relogin", "lost-reply"), plan, 0, 10_000)
    journal = (entry(1, "token", "200"), entry(2, "submit", "200"), entry(3, "submit", "401", faults=["late"]))
    assert judge("API-005", Bundle(scenarios=(record,), journal=journal))[0] is CaseVerdict.SKIP
    unread = journal[:2] + (entry(3, "submit", "401"),)
    assert judge("API-005", Bundle(scenarios=(record,), journal=unread))[0] is CaseVerdict.FAIL


def test_token_per_request_fails_the_should_case() -> None:
    journal = tuple(entry(i, "token" if i % 2 else "submit", "200") for i in range(1, 9))
    bundle = Bundle(scenarios=(scenario("issue", "token-reuse"),), journal=journal)
    verdict, message = judge("API-004", bundle)
    assert verdict is CaseVerdict.FAIL and "still valid" in message
    reused = (entry(1, "token", "200"), *(entry(i, "submit", "200") for i in range(2, 6)))
    assert judge("API-004", Bundle(scenarios=bundle.scenarios, journal=reused))[0] is CaseVerdict.PASS


def test_resend_after_1001_fails_per_order_wherever_it_lands() -> None:
    """The resend lands after the scenario's slice of the journal ended: it is still this order's resend."""
    ordered = replace(order("r1", story="gcs_normal"), scenario="too-large")
    record = ScenarioRecord("too-large", "t", "79101", ("too-large",), {"faults": []}, 0, 2)
    journal = (entry(1, "token", "200"), entry(2, "submit", "1001"))
    other = entry(3, "submit", "200", document_code="00009.GCS.79101.26")
    resend = entry(4, "submit", "200", document_code="00001.GCS.79101.26")
    clean = Bundle(scenarios=(record,), orders=(ordered,), journal=(*journal, other))
    assert judge("API-009", clean)[0] is CaseVerdict.PASS  # another document's submission is no resend
    resent = Bundle(scenarios=(record,), orders=(ordered,), journal=(*journal, other, resend))
    verdict, message = judge("API-009", resent)
    assert verdict is CaseVerdict.FAIL and "00001.GCS.79101.26 resent 1x after MaKetQua 1001" in message


def test_deadline_case_fails_when_overdue_and_passes_on_time() -> None:
    late = Bundle(
        scenarios=(scenario("issue", "base"),), orders=(order("r1"),), expectations=(expectation(1, "OVERDUE"),)
    )
    verdict, message = judge("DL-001", late)
    assert verdict is CaseVerdict.FAIL and "OVERDUE" in message
    on_time = Bundle(scenarios=late.scenarios, orders=late.orders, expectations=(expectation(1, "ARRIVED"),))
    assert judge("DL-001", on_time)[0] is CaseVerdict.PASS


def test_flow_case_compares_what_arrived_with_what_was_ordered() -> None:
    twins = (order("r1", story="gcs_twins", expectation_id=1), order("r2", story="gcs_twins", expectation_id=2))
    same = {"MA_GCS": "00001.GCS.79101.26", "SO_CON": "2"}
    bundle = Bundle(orders=twins, expectations=(expectation(1, "ARRIVED", same), expectation(2, "ARRIVED", same)))
    verdict, message = judge("FLOW-001", bundle)
    assert verdict is CaseVerdict.FAIL and "share MA_GCS" in message
    assert judge("FLOW-003", bundle)[0] is CaseVerdict.SKIP


def test_flow_group_cases_ask_for_presence_and_flow_005_for_the_exact_text() -> None:
    """One defect, one case: a group that arrived in another Unicode form is present (FLOW-003 passes) and
    not the data ordered (FLOW-005 fails, naming the form, since both print alike); an empty one fails FLOW-003."""
    ordered = {"HOTEN_MTH": "NGUYỄN THỊ LAN", "NOI_CU_TRU_MTH": "Phường Bến Nghé"}
    orders = (order("r1", story="gcs_surrogacy", **ordered),)
    decomposed = {"MA_GCS": "00001.GCS.79101.26", "CAP_LAN_DAU": "1"} | {
        k: unicodedata.normalize("NFD", v) for k, v in ordered.items()
    }
    bundle = Bundle(orders=orders, expectations=(expectation(1, "ARRIVED", decomposed),))
    assert judge("FLOW-003", bundle)[0] is CaseVerdict.PASS
    verdict, message = judge("FLOW-005", bundle)
    assert verdict is CaseVerdict.FAIL and "HOTEN_MTH in decomposed Unicode (NFD" in message
    emptied = Bundle(orders=orders, expectations=(expectation(1, "ARRIVED", {**decomposed, "HOTEN_MTH": ""}),))
    verdict, message = judge("FLOW-003", emptied)
    assert verdict is CaseVerdict.FAIL and "HOTEN_MTH missing or empty" in message


def test_a_crashing_check_is_an_error_not_a_failure() -> None:
    def broken(bundle: Bundle) -> None:
        raise KeyError("oops")

    spec = CaseSpec("X-001", "crash", "none", Level.MUST, "api", (), broken, Grade.OBSERVED)  # type: ignore[arg-type]
    result = spec.judge(Bundle())
    assert result.verdict is CaseVerdict.ERROR
    assert "KeyError" in result.message and result.blocking


def test_saved_evidence_replays_to_the_same_verdicts(tmp_path: Path) -> None:
    bundle = Bundle(
        meta={"mode": "run", "seed": 3},
        scenarios=(scenario("too-large"),),
        orders=(order("r1"),),
        journal=(entry(1, "submit", "1001"), entry(2, "submit", "200")),
        submissions=(submission(1, codes=("RULE_CODE_YEAR",)),),
        expectations=(expectation(1, "OVERDUE"),),
    )
    again = load(dump(bundle, tmp_path / "evidence.jsonl"))
    assert again == bundle
    assert [s.judge(again).verdict for s in CASES.all()] == [s.judge(bundle).verdict for s in CASES.all()]


def _warned(sid: int, *codes: str) -> dict:
    """A file the portal accepted in portal mode with these deviations as warnings."""
    accepted = submission(sid)
    accepted["findings"] = [
        {"code": c, "severity": "warning", "message_en": f"{c} noted", "path": None, "grade": "OBSERVED"} for c in codes
    ]
    return accepted


def test_a_code_not_of_the_legal_form_fails_doc_005_even_when_the_portal_only_warned() -> None:
    """The code is the key the paper is looked up by: a malformed one fails, a warned year (R10) does not."""
    verdict, message = judge("GCS-DOC-005", Bundle(submissions=(_warned(1, "RULE_CODE_FORMAT"),)))
    assert verdict is CaseVerdict.FAIL and "RULE_CODE_FORMAT" in message
    assert judge("GCS-DOC-005", Bundle(submissions=(_warned(1, "RULE_CODE_YEAR", "RULE_CODE_FACILITY"),)))[0] is (
        CaseVerdict.PASS
    )


def test_a_portal_warning_is_portal_compatible_but_not_strict_clean() -> None:
    bundle = Bundle(submissions=(_warned(1, "RULE_CODE_YEAR", "SCHEMA_ORDER"),))
    results = [spec.judge(bundle) for spec in CASES.select(ids=["GCS-DOC-*"])]
    verdicts = {r.case_id: r.verdict for r in results}
    assert verdicts["GCS-DOC-005"] is CaseVerdict.PASS and verdicts["GCS-DOC-003"] is CaseVerdict.PASS
    assert verdicts["GCS-DOC-008"] is CaseVerdict.FAIL
    info = summary(results)
    assert info["portal_compatible"]["verdict"] == "pass"
    assert (info["strict_clean"]["verdict"], info["strict_clean"]["failed"]) == ("fail", ["GCS-DOC-008"])
    native = Bundle(submissions=(_warned(2, "RULE_COUNT_CONSISTENCY"),))  # a warning in strict mode too
    assert CASES.get("GCS-DOC-008").judge(native).verdict is CaseVerdict.PASS


def test_a_facility_mismatch_fails_a_must_case_even_as_a_warning() -> None:
    bundle = Bundle(submissions=(_warned(1, "AUTH_FACILITY_MISMATCH"),))
    result = CASES.get("GCS-DOC-007").judge(bundle)
    assert result.verdict is CaseVerdict.FAIL and result.blocking and "AUTH_FACILITY_MISMATCH" in result.message
    assert summary([result])["portal_compatible"]["verdict"] == "fail"


def test_lowercase_md5_is_not_strict_clean() -> None:
    bundle = Bundle(
        scenarios=(scenario("issue", "base"),),
        journal=(entry(1, "token", "200", findings=["TOKEN_MD5_CASE"]), entry(2, "token", "200")),
    )
    result = CASES.get("API-010").judge(bundle)
    assert result.verdict is CaseVerdict.FAIL and result.result == "strict" and not result.blocking
    assert CASES.get("API-001").judge(bundle).verdict is CaseVerdict.PASS


def at(seconds: float) -> str:
    """A real instant `seconds` after T0."""
    return (datetime.fromisoformat(T0) + timedelta(seconds=seconds)).isoformat()


def test_a_resend_after_200_of_a_certificate_ordered_twice_is_named_by_api_011() -> None:
    """The very file sent again after the portal acknowledged it: a resend after MaKetQua 200, whatever the
    order did, and the same verdict and message whichever of API-011 and API-012 is selected."""
    code = "00001.GCS.79101.26"
    first = submission(1, ma_gd="GD1", file_b64=signed_file("A"), document_code=code, file_sha256="f1")
    again = submission(2, ma_gd="GD2", file_b64=signed_file("A"), document_code=code, file_sha256="f1")
    bundle = Bundle(scenarios=(scenario("issue", "base"),), orders=(replace(order("r1"), sends=2),),
                    submissions=(first, again))  # fmt: skip
    verdict, message = judge("API-011", bundle)
    assert verdict is CaseVerdict.FAIL and "resent after MaKetQua 200" in message and "GD1" in message, message
    assert judge("API-012", bundle)[0] is CaseVerdict.PASS  # the order was taken once: it is the resend that is wrong
    # signed again (new bytes) for an order sent twice: the repeated order was taken as a new one
    resigned = replace(bundle, submissions=(first, {**again, "file_sha256": "f2"}))
    assert judge("API-011", resigned)[0] is CaseVerdict.PASS
    verdict, message = judge("API-012", resigned)
    assert verdict is CaseVerdict.FAIL and "taken as a new order" in message


def test_a_401_then_login_then_resend_across_two_scenarios_passes_api_005() -> None:
    """The token scenario's slice ended between the 401 and the resend: judged whole, per certificate."""
    token = ScenarioRecord("token", "token", "79101", ("relogin",), {"faults": []}, 0, 2)
    outage = ScenarioRecord("outage", "outage", "79101", ("outage",), {"faults": []}, 2, 10)
    code = "00001.GCS.79101.26"
    journal = (
        entry(1, "token", "200"),
        entry(2, "submit", "401", file_sha256="f1"),
        entry(3, "token", "200"),
        entry(4, "submit", "200", file_sha256="f1", document_code=code),
    )
    assert judge("API-005", Bundle(scenarios=(token, outage), journal=journal))[0] is CaseVerdict.PASS
    # another certificate's submission after the 401 is no resend of this one
    other = (*journal[:3], entry(4, "submit", "200", file_sha256="f9", document_code="00009.GCS.79101.26"))
    verdict, message = judge("API-005", Bundle(scenarios=(token, outage), journal=other))
    assert verdict is CaseVerdict.FAIL and "never resent after the 401" in message


def test_a_retry_of_another_document_does_not_satisfy_api_007() -> None:
    """A faulted submission carries its file's digest and code: only the same certificate later is its retry."""
    record = scenario("retry", "retry")
    faulted = entry(1, "submit", "HTTP-503", faults=["http_error-503"], file_sha256="f1", document_code="A")
    other = entry(2, "submit", "200", file_sha256="f2", document_code="B")
    verdict, message = judge("API-007", Bundle(scenarios=(record,), journal=(faulted, other)))
    assert verdict is CaseVerdict.FAIL and "not retried" in message
    retried = entry(3, "submit", "200", file_sha256="f1")  # the same file, even where the code was not read
    assert judge("API-007", Bundle(scenarios=(record,), journal=(faulted, other, retried)))[0] is CaseVerdict.PASS


def _retry_attempts(pauses: list[float], duration_ms: float, attempt: int = 1) -> Bundle:
    """A retry scenario's attempts for one file: 503s, then a 200, `pauses` real seconds apart (end to start);
    `attempt` 2 or more: the scenario run again (`retry@2`, its own order, file and journal ids)."""
    name = "retry" if attempt == 1 else f"retry@{attempt}"
    record = replace(scenario(name, "retry"), plan="retry", attempt=attempt, timing={"jitter": 0.01})
    code, first = f"0000{attempt}.GCS.79101.26", 100 * attempt
    journal, clock = [entry(first, "token", "200", real_at=at(0), duration_ms=5)], 0.01
    for number, pause in enumerate([0.0, *pauses]):
        clock += pause
        outcome = "200" if number == len(pauses) else "HTTP-503"
        journal.append(
            entry(first + 1 + number, "submit", outcome, real_at=at(clock), duration_ms=duration_ms,
                  file_sha256=f"f{attempt}", document_code=code)
        )  # fmt: skip
        clock += duration_ms / 1000
    taken = replace(order(f"r{attempt}", MA_GCS=code), scenario=name)
    return Bundle(scenarios=(record,), orders=(taken,), journal=tuple(journal))


def test_retries_without_backoff_fail_api_008_however_slow_each_request() -> None:
    """On a loaded machine each request takes long (here 0.8 s): measured start to start, a client that
    retries at once looked as if it paused; from the end of one attempt to the start of the next, it did not."""
    verdict, message = judge("API-008", _retry_attempts([0.004, 0.006, 0.003, 0.005, 0.004], duration_ms=800))
    assert verdict is CaseVerdict.FAIL and "no backoff" in message
    backing_off = _retry_attempts([0.15, 0.3, 0.55, 1.2, 2.4], duration_ms=800)
    assert judge("API-008", backing_off)[0] is CaseVerdict.PASS


def test_retry_pauses_a_loaded_machine_could_have_made_leave_api_008_inconclusive() -> None:
    """Averaging 0.08 s beyond the noise: a client that retries at once, waiting for a CPU each time, looks
    like that; the verdict waits for another run (the order is named, so its scenario runs again)."""
    bundle = _retry_attempts([0.09, 0.06, 0.10, 0.07, 0.11], duration_ms=40)
    outcome = CASES.get("API-008").judge(bundle)
    assert outcome.verdict is CaseVerdict.INCONCLUSIVE, outcome.message
    assert "could make a client that retries at once look like one that waits" in outcome.message
    assert outcome.evidence.request_ids == ("r1",)
    assert judge("API-008", _retry_attempts([0.12, 0.2, 0.15, 0.25, 0.3], duration_ms=40))[0] is CaseVerdict.PASS


def test_a_run_again_that_backs_off_settles_api_008() -> None:
    """The verdict is the last run's: an inconclusive first run, then the scenario again (`retry@2`) with
    pauses that clearly grow, is a pass (the first run's finding stood for ever before)."""
    first = _retry_attempts([0.09, 0.06, 0.10, 0.07, 0.11], duration_ms=40)
    again = _retry_attempts([0.2, 0.4, 0.8, 1.6, 3.2], duration_ms=40, attempt=2)
    both = replace(first, scenarios=first.scenarios + again.scenarios, orders=first.orders + again.orders,
                   journal=first.journal + again.journal)  # fmt: skip
    verdict, message = judge("API-008", both)
    assert verdict is CaseVerdict.PASS and message.startswith("2 retry sequence(s)"), message
    storm = _retry_attempts([0.01, 0.02, 0.01, 0.0, 0.01], duration_ms=40, attempt=2)
    stormy = replace(first, scenarios=first.scenarios + storm.scenarios, orders=first.orders + storm.orders,
                     journal=first.journal + storm.journal)  # fmt: skip
    assert judge("API-008", stormy)[0] is CaseVerdict.FAIL


def test_the_late_reply_original_stored_after_its_resend_is_no_resend_of_a_refused_file() -> None:
    """The held original arrived first and was stored last: judged by when it was sent, it is not a resend
    of the refusal that came before it was stored."""
    held = submission(2, codes=("SIGNING_TIME_INVALID",), file_b64=signed_file("AAA"))
    resend = submission(1, codes=("SIGNING_TIME_INVALID",), file_b64=signed_file("AAA"))
    journal = (
        entry(2, "submit", "205", submission_id=2, real_at=at(0), duration_ms=20_000, faults=["late"]),
        entry(1, "submit", "205", submission_id=1, real_at=at(15), duration_ms=40),
    )
    bundle = Bundle(scenarios=(scenario("refused", "refusal"),), journal=journal, submissions=(resend, held))
    assert judge("API-006", bundle)[0] is CaseVerdict.PASS


def test_token_requests_with_a_wrong_password_fail_api_001_only_when_no_token_was_ever_issued() -> None:
    """Anyone can name an account: refused token requests are kept apart from the hospital's evidence, and
    count only when the hospital itself never got a token (its password is wrong)."""
    outsider = tuple(entry(500 + i, "token", "401", username="79101_BV") for i in range(3))
    hospital = (entry(1, "token", "200"), entry(2, "submit", "200"))
    flooded = Bundle(scenarios=(scenario("issue", "base"),), journal=hospital, unauthenticated=outsider)
    assert judge("API-001", flooded)[0] is CaseVerdict.PASS
    locked_out = Bundle(scenarios=(scenario("issue", "base"),), unauthenticated=outsider)
    verdict, message = judge("API-001", locked_out)
    assert verdict is CaseVerdict.FAIL and "no token was ever issued: 3 token request(s) naming 79101_BV" in message
    assert judge("API-001", Bundle(scenarios=(scenario("issue", "base"),)))[0] is CaseVerdict.SKIP


def sandbox(minutes: float) -> str:
    """A sandbox instant `minutes` after T0."""
    return (datetime.fromisoformat(T0) + timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("sent_at", "findings", "verdict"),
    [
        (50, [], CaseVerdict.PASS),  # within the token's 60 minutes
        (150, ["AUTH_TOKEN_EXPIRED"], CaseVerdict.FAIL),  # 90 minutes after it expired: expires_in ignored
        (61, ["AUTH_TOKEN_EXPIRED"], CaseVerdict.PASS),  # a minute over: inside the run's timing resolution
    ],
    ids=["valid", "long-dead", "just-expired"],
)
def test_a_send_on_a_token_past_its_expires_in_fails_api_016(
    sent_at: float, findings: list[str], verdict: CaseVerdict
) -> None:
    record = replace(scenario("token", "relogin"), rate=600.0, timing={"scheduling": 0.1})
    journal = (
        entry(1, "token", "200", at=sandbox(0)),
        entry(2, "submit", "401", at=sandbox(sent_at), findings=findings),
    )
    result, message = judge("API-016", Bundle(scenarios=(record,), journal=journal))
    assert result is verdict and ("expires_in ignored" in message) is (verdict is CaseVerdict.FAIL), message


def _tagged_orders(tag: str, *statuses: str) -> Bundle:
    orders = tuple(replace(order(f"r{i}", expectation_id=i), scenario=tag) for i in range(1, len(statuses) + 1))
    expectations = tuple(expectation(i, status, deadline_status="LATE") for i, status in enumerate(statuses, 1))
    return Bundle(scenarios=(scenario(tag),), orders=orders, expectations=expectations)


def test_an_overdue_certificate_must_still_arrive_late_is_no_failure() -> None:
    assert judge("DL-005", _tagged_orders("overdue", "ARRIVED", "ARRIVED"))[0] is CaseVerdict.PASS
    verdict, message = judge("DL-005", _tagged_orders("overdue", "ARRIVED", "OVERDUE"))
    assert verdict is CaseVerdict.FAIL and "past its deadline must still be sent" in message
    assert judge("DL-001", _tagged_orders("overdue", "ARRIVED"))[0] is CaseVerdict.SKIP  # late by design: not DL-001's


def test_a_night_certificate_is_judged_by_dl_006_not_dl_001() -> None:
    held = _tagged_orders("night", "OVERDUE")
    verdict, message = judge("DL-006", held)
    assert verdict is CaseVerdict.FAIL and "OVERDUE" in message
    assert judge("DL-001", held)[0] is CaseVerdict.SKIP


@pytest.mark.parametrize(
    ("hold_ms", "faults", "verdict"),
    [
        (35_000, ["late", "client-gone"], CaseVerdict.PASS),
        (35_000, ["late"], CaseVerdict.FAIL),  # still waiting when the 35 s hold ended
        (20_000, ["late"], CaseVerdict.SKIP),  # the late-reply hold: waiting 20 s is allowed
    ],
    ids=["gave-up", "waited", "short-hold"],
)
def test_a_reply_held_over_30_s_must_have_been_given_up_on(
    hold_ms: float, faults: list[str], verdict: CaseVerdict
) -> None:
    plan = {"faults": [{"name": "late", "effect": "latency", "latency": {"ms": hold_ms}}]}
    record = ScenarioRecord("hung-reply", "h", "79101", ("late-reply", "hung-reply"), plan, 0, 10_000)
    journal = (entry(1, "token", "200"), entry(2, "submit", "200", faults=faults))
    result, message = judge("API-017", Bundle(scenarios=(record,), journal=journal))
    assert result is verdict and ("no client timeout" in message) is (verdict is CaseVerdict.FAIL), message
