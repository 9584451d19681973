"""Reporters: junit.xml parses and counts, report.json has the documented keys, report.html stands alone."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conformance import SUITE_VERSION
from conformance.events import RunFinished
from conformance.evidence import Bundle
from conformance.model import CaseVerdict
from conformance.report import FileReports
from conformance.report.common import reproduce
from conformance.report.json_report import KEYS
from conformance.runner import judge
from tests.test_conformance_judging import CASES, entry, expectation, order, scenario, submission


@pytest.fixture(scope="module")
def finished() -> RunFinished:
    bundle = Bundle(
        meta={
            "mode": "run",
            "seed": 5,
            "suite_version": SUITE_VERSION,
            "tool_version": "0.1.0",
            "portal": "http://127.0.0.1:1",
        },
        scenarios=(scenario("issue", "base"), scenario("too-large")),
        orders=(order("r1", expectation_id=1), order("r2", expectation_id=2, MA_GCS="00002.GCS.79101.26")),
        journal=(entry(1, "token", "200"), entry(2, "submit", "200", submission_id=1), entry(3, "submit", "1001")),
        submissions=(submission(1), submission(2, codes=("RULE_CODE_YEAR",))),
        expectations=(
            expectation(1, "ARRIVED", {"MA_GCS": "00001.GCS.79101.26", "CAP_LAN_DAU": "1"}),
            expectation(2, "OVERDUE"),
        ),
    )
    return RunFinished(tuple(judge(CASES.all(), bundle)), bundle, 1.5)


@pytest.fixture(scope="module")
def reports(finished: RunFinished, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("reports")
    FileReports(directory)(finished)
    return directory


def test_junit_parses_and_counts(reports: Path, finished: RunFinished) -> None:
    root = ET.parse(reports / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(finished.results)
    failures = sum(int(s.get("failures")) for s in root.findall("testsuite"))
    assert failures == sum(r.verdict is CaseVerdict.FAIL for r in finished.results) > 0
    assert {s.get("name") for s in root.findall("testsuite")} == {"documents", "signature", "api", "deadline", "flows"}
    failed = next(c for c in cases if c.find("failure") is not None)
    assert failed.find("failure").get("type") in ("MUST", "SHOULD")
    facts = {"id", "level", "basis", "grade", "result"}
    assert facts <= {p.get("name") for p in failed.findall("properties/property")} <= facts | {"caused_by"}
    overall = {p.get("name"): p.get("value") for p in root.findall("properties/property")}
    assert {k: v for k, v in overall.items() if not k.startswith("root_cause_")} == {
        "portal_compatible": "fail",
        "strict_clean": "fail",
    }


def test_report_json_has_the_documented_keys(reports: Path, finished: RunFinished) -> None:
    report = json.loads((reports / "report.json").read_text())
    assert tuple(report) == KEYS
    assert report["seed"] == 5 and report["summary"]["exit_code"] == finished.exit_code == 1
    assert report["summary"]["portal_compatible"]["verdict"] == "fail"
    assert report["summary"]["strict_clean"]["level"] == "SHOULD"
    assert all(c["grade"] in {"CONFIRMED", "OBSERVED", "RECONSTRUCTED", "ADVISORY"} for c in report["cases"])
    dl = next(c for c in report["cases"] if c["id"] == "DL-001")
    assert dl["verdict"] == "fail"
    assert dl["evidence"]["orders"] and dl["evidence"]["expectations"]
    assert any("/sandbox/expectations/2" in line for line in dl["reproduce"])
    doc = next(c for c in report["cases"] if c["id"] == "GCS-DOC-005")
    assert doc["evidence"]["submissions"][0]["findings"] or doc["evidence"]["submissions"][1]["findings"]
    assert any("guiGiayToDienTu" in line for line in doc["reproduce"])


def test_report_html_is_self_contained_with_a_timeline(reports: Path) -> None:
    page = (reports / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)
    assert "<script" not in page and "<link" not in page
    assert "<svg" in page and "<circle" in page
    assert "<details>" in page and "Reproduce with" in page
    assert page.count('<h2 id="') == 6  # five areas and the coverage of obligations
    assert "Coverage: obligations" in page and "not checked:" in page
    assert 'id="portal_compatible"' in page and 'id="strict_clean"' in page


def test_evidence_file_is_written_for_replay(reports: Path, finished: RunFinished) -> None:
    from conformance.evidence import load

    assert load(reports / "evidence.jsonl") == finished.bundle


def test_root_cause_first_groups_the_consequences() -> None:
    """A late sender fails DL-001; the flow cases that skip for want of its certificates ("see DL-001")
    and a failure judging the same order are listed under it, not beside it."""
    from conformance.model import CaseEvidence, CaseResult, Level
    from conformance.outcome import root_causes

    def result(case_id: str, verdict: CaseVerdict, message: str, requests: tuple[str, ...] = ()) -> CaseResult:
        return CaseResult(case_id, case_id, "x", Level.MUST, "b", verdict, message, CaseEvidence(request_ids=requests))

    results = [
        result("API-006", CaseVerdict.PASS, "fine"),
        result("DL-001", CaseVerdict.FAIL, "00001 OVERDUE", ("r1",)),
        result("FLOW-001", CaseVerdict.SKIP, "none of the 2 twins arrived: see DL-001"),
        result("FLOW-005", CaseVerdict.FAIL, "r1 data differs", ("r1",)),
        result("SIG-003", CaseVerdict.FAIL, "SHA-1", ("r9",)),
    ]
    groups = root_causes(results)
    assert [g["case"] for g in groups] == ["DL-001", "SIG-003"]
    assert [c["case"] for c in groups[0]["consequences"]] == ["FLOW-001", "FLOW-005"]
    assert groups[1]["consequences"] == []


def test_reports_lead_with_the_root_cause(reports: Path) -> None:
    data = json.loads((reports / "report.json").read_text())
    causes = data["summary"]["root_causes"]
    assert causes and causes[0]["case"] in data["summary"]["must_failed"]
    html = (reports / "report.html").read_text()
    assert html.index("Root cause first") < html.index("Portal-compatible")
    names = {p.get("name") for p in ET.parse(reports / "junit.xml").getroot().find("properties")}
    assert "root_cause_1" in names


def test_an_unattested_bundle_verifies_as_such_and_catches_a_change_or_a_rewritten_verdict(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No portal observed this bundle: it is sealed with a key made for it, verifies intact and says it is not
    attested; a pinned portal key refuses it (portal-attested bundles: tests/test_attestation.py)."""
    import shutil

    from conformance.certificate import seal, verify
    from conformance.cli import main
    from conformance.evidence import load

    bundle = tmp_path / "bundle"
    shutil.copytree(reports, bundle)
    assert {"manifest.json", "manifest.sig", "manifest.pub.pem", "fault_plans.json", "versions.json"} <= {
        p.name for p in bundle.iterdir()
    }
    found = verify(bundle)
    assert found.problems == () and "NOT ATTESTED BY A PORTAL" in found.notes[0]
    assert main(["verify", str(bundle)]) == 0
    assert "not attested by a portal" in json.loads((bundle / "manifest.json").read_text())["signer"]
    pem = bundle / "manifest.pub.pem"
    shutil.copy(pem, tmp_path / "some.pem")
    assert main(["verify", str(bundle), "--portal-key", str(tmp_path / "some.pem")]) == 1
    assert "the pinned portal key cannot vouch for it" in capsys.readouterr().out
    # a verdict rewritten by hand: the digest no longer matches
    report = json.loads((bundle / "report.json").read_text())
    case = next(c for c in report["cases"] if c["verdict"] == "fail")
    case["verdict"] = "pass"
    (bundle / "report.json").write_text(json.dumps(report))
    assert any("report.json: changed" in p for p in verify(bundle).problems)
    # ... and sealed again with a new key: intact and signed, but it does not re-judge the same
    seal(bundle, load(bundle / "evidence.jsonl"))
    assert f"{case['id']}: report.json says pass, the evidence judges fail" in verify(bundle).problems
    assert main(["verify", str(bundle)]) == 1


def test_coverage_maps_every_case_and_names_the_unchecked_obligations() -> None:
    from conformance.obligations import coverage

    found = coverage(CASES.ids())
    assert found["unmapped_cases"] == [] and found["unknown_cases"] == []
    assert found["unchecked"] and all(o["why_unchecked"] for o in found["obligations"] if o["id"] in found["unchecked"])
    assert any("Decree 63/2024" in o["source"] and "DL-004" in o["cases"] for o in found["obligations"])


def test_coverage_names_the_variants_that_break_each_obligation_and_the_unprotected_ones() -> None:
    """A variant breaks every obligation whose cases hold the case it must fail first; an obligation no
    variant breaks is unprotected, with the reason recorded for it."""
    from conformance.obligations import OBLIGATIONS, coverage

    found = coverage(CASES.ids(), [("plain-password", "API-001"), ("sha1", "SIG-003"), ("sha1", "SIG-003")])
    by_id = {o["id"]: o for o in found["obligations"]}
    assert by_id["PL02-1"]["variants"] == ["plain-password"] and by_id["SIG-B"]["variants"] == ["sha1"]
    assert found["unprotected"] == [o.id for o in OBLIGATIONS if o.id not in ("PL02-1", "SIG-B")]
    assert "SHOULD" in by_id["GCS-4"]["why_unprotected"] and by_id["SIG-E"]["why_unprotected"]
    assert coverage(CASES.ids(), [("ghost", "NO-SUCH-CASE")])["unprotected"] == [o.id for o in OBLIGATIONS]


def test_coverage_command_shows_the_selftest_kill_matrix_per_obligation(capsys: pytest.CaptureFixture[str]) -> None:
    from conformance import selftest
    from conformance.cli import main

    assert main(["coverage"]) == 0
    text = capsys.readouterr().out
    assert main(["coverage", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    protected = [o for o in found["obligations"] if o["variants"]]
    variants = {str(t.variant) for t in selftest.EXPECTED if t.variant is not None}
    assert protected and {v for o in protected for v in o["variants"]} == variants
    for o in found["obligations"]:
        line = re.search(rf"^  {re.escape(o['id'])} .*\n.*\n +✗ (.*)$", text, re.MULTILINE)
        assert line is not None, o["id"]
        assert line[1].startswith("UNPROTECTED" if o["id"] in found["unprotected"] else "broken by")
    assert f"{len(found['unprotected'])} broken by no selftest variant (UNPROTECTED: " in text


# Issue 25: each result line of the summary says what failed, and strict-clean judges only its own cases


def _case(case_id: str, verdict: CaseVerdict, *, level: str = "MUST", result: str = "portal"):  # noqa: ANN202
    from conformance.model import CaseResult, Level

    return CaseResult(case_id, case_id, "api", Level(level), "b", verdict, f"{case_id} said so", result=result)


STRICT_PASS = _case("GCS-DOC-008", CaseVerdict.PASS, level="SHOULD", result="strict")
STRICT_FAIL = _case("API-010", CaseVerdict.FAIL, level="SHOULD", result="strict")


@pytest.mark.parametrize(
    ("results", "portal", "strict"),
    [
        # a late certificate (a MUST failure) is nothing strict mode refuses: strict-clean keeps its own verdict
        (
            [_case("DL-001", CaseVerdict.FAIL), STRICT_PASS],
            ("fail", "MUST case(s) failed: DL-001"),
            ("pass", "GCS-DOC-008 passed"),
        ),
        (
            [_case("API-011", CaseVerdict.FAIL), _case("SIG-003", CaseVerdict.ERROR), STRICT_FAIL],
            ("fail", "MUST case(s) failed: API-011; not judged (harness error): SIG-003"),
            ("fail", "strict case(s) failed: API-010"),
        ),
        (
            [_case("API-001", CaseVerdict.PASS), STRICT_FAIL],
            ("pass", "no MUST case failed"),
            ("fail", "failed: API-010"),
        ),
        (
            [
                _case("DL-001", CaseVerdict.INCONCLUSIVE),
                _case("GCS-DOC-008", CaseVerdict.SKIP, level="SHOULD", result="strict"),
            ],
            ("inconclusive", "DL-001 could not be settled"),
            ("skip", "not judged: GCS-DOC-008 skipped"),
        ),
        ([_case("DL-001", CaseVerdict.FAIL)], ("fail", "failed: DL-001"), ("skip", "no case that counts towards it")),
    ],
)
def test_the_two_results_say_what_failed_and_never_contradict_their_verdict(
    results: list, portal: tuple[str, str], strict: tuple[str, str]
) -> None:
    import io

    from conformance.outcome import summary
    from conformance.report import TextReporter

    info = summary(results)
    for key, (verdict, said) in (("portal_compatible", portal), ("strict_clean", strict)):
        assert info[key]["verdict"] == verdict and said in info[key]["statement"], info[key]
    # strict-clean fails only when one of its own (SHOULD) cases did, never for a MUST failure alone
    errors = {r.case_id for r in results if r.verdict is CaseVerdict.ERROR}
    assert set(info["strict_clean"]["failed"]) <= set(info["should_failed"]) | errors
    assert (info["strict_clean"]["verdict"] == "fail") == bool(info["strict_clean"]["failed"])
    out = io.StringIO()
    TextReporter(out)(RunFinished(tuple(results), Bundle(), 1.0))
    lines = {
        line.split(":")[0].strip(): line
        for line in out.getvalue().splitlines()
        if "(MUST)" in line or "(SHOULD)" in line
    }
    assert f"{portal[0].upper()} — {info['portal_compatible']['statement']}" in lines["portal-compatible (MUST)"]
    assert f"{strict[0].upper()} — {info['strict_clean']['statement']}" in lines["strict-clean (SHOULD)"]
    for line in lines.values():  # a FAIL line never goes on to state what passing would mean
        assert "FAIL" not in line or ("would accept every document" not in line and "nothing strict" not in line)


# Issue 25: "reproduce with" lists only what the findings name, and each message is said once


def _one_late_of_three() -> Bundle:
    """Three certificates DL-001 judges (expectations 27, 28, 29): only the first (27, order r1) is late."""
    codes = {f"r{i}": f"0000{i}.GCS.79101.26" for i in (1, 2, 3)}
    bundle = Bundle(
        meta={"mode": "run", "suite_version": SUITE_VERSION, "portal": "http://127.0.0.1:1"},
        scenarios=(scenario("issue", "base"),),
        orders=tuple(order(r, expectation_id=i, MA_GCS=codes[r]) for i, r in enumerate(codes, 27)),
        expectations=(expectation(27, "OVERDUE"), expectation(28, "ARRIVED"), expectation(29, "ARRIVED")),
        journal=(entry(1, "submit", "200", submission_id=28), entry(2, "submit", "200", submission_id=29)),
        submissions=(submission(28), submission(29)),
    )
    return bundle


def test_reproduce_lists_only_the_late_expectation_and_each_message_once(tmp_path: Path) -> None:
    """DL-001 judges three certificates and one is late: its commands fetch that expectation alone, and the
    junit.xml and report.html of the case do not repeat its message."""
    bundle = _one_late_of_three()
    results = judge(CASES.select(ids=["DL-001"]), bundle)
    [late] = results
    assert late.verdict is CaseVerdict.FAIL and set(late.evidence.request_ids) == {"r1", "r2", "r3"}
    commands = "\n".join(reproduce(late, bundle))
    assert "/sandbox/expectations/27" in commands, commands
    assert "/sandbox/expectations/28" not in commands and "/sandbox/expectations/29" not in commands, commands
    FileReports(tmp_path)(RunFinished(tuple(results), bundle, 1.0))
    failure = ET.parse(tmp_path / "junit.xml").getroot().find(".//failure")
    assert failure.get("message") == late.message and late.message not in failure.text, failure.text
    row = (
        (tmp_path / "report.html").read_text().rsplit("<b>DL-001</b>", 1)[1]
    )  # the case's row (the root cause is above)
    assert row.count(html.escape(late.message, quote=False)) == 1  # the headline, not the findings list again


def test_details_say_each_finding_once_and_not_the_headline_again() -> None:
    from conformance.model import CaseFinding
    from conformance.registry import failed
    from conformance.report.common import culprits, details

    outcome = failed(
        [
            CaseFinding("a late", request_ids=("r1",)),
            CaseFinding("a late", request_ids=("r1",)),
            CaseFinding("b refused"),
        ]
    )
    result = _case("DL-001", CaseVerdict.FAIL)
    result = type(result)(**{**result.__dict__, "message": outcome.message, "evidence": outcome.evidence})
    assert result.message == "a late (+2 more)"
    assert details(result) == ["b refused"]
    assert culprits(result).request_ids == ("r1",)


def test_flow_findings_name_the_orders_they_are_about() -> None:
    """Twins sharing a code and a wrong SO_CON name their orders (r1, r2), not only the case's whole evidence."""
    twins = (order("r1", story="gcs_twins", expectation_id=1), order("r2", story="gcs_twins", expectation_id=2))
    same = {"MA_GCS": "00001.GCS.79101.26", "SO_CON": "1"}
    bundle = Bundle(orders=twins, expectations=(expectation(1, "ARRIVED", same), expectation(2, "ARRIVED", same)))
    [result] = judge(CASES.select(ids=["FLOW-001"]), bundle)
    assert result.verdict is CaseVerdict.FAIL and len(result.evidence.findings) == 3
    assert all(f.request_ids for f in result.evidence.findings), result.evidence.findings


# Issue 25: the pytest plugin's JUnit items have the classname `conformance.<area>`, as the suite's junit.xml


def test_pytest_plugin_items_have_the_area_as_classname_and_say_each_message_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plugin's items in pytest's own --junitxml (the live run replaced by judging constructed evidence)."""
    import conformance.pytest_plugin as plugin

    bundle = _one_late_of_three()
    monkeypatch.setattr(
        plugin, "run_live", lambda _options, specs, _listeners: RunFinished(tuple(judge(specs, bundle)), bundle, 0.1)
    )
    (tmp_path / "test_smoke.py").write_text("def test_smoke():\n    pass\n")
    junit = tmp_path / "junit.xml"
    argv = ["-q", str(tmp_path / "test_smoke.py"), f"--junitxml={junit}", "--conformance-only", "GCS-DOC-001,DL-001"]
    assert pytest.main([*argv, "--conformance-trigger-cmd", "true", "--conformance-portal", "http://127.0.0.1:1"]) == 1
    capsys.readouterr()
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert {n: c.get("classname") for n, c in cases.items() if n != "test_smoke"} == {
        "GCS-DOC-001": "conformance.documents",
        "DL-001": "conformance.deadline",
    }  # test_smoke's classname is its path from the rootdir, which depends on where the suite runs
    late = next(r for r in judge(CASES.select(ids=["DL-001"]), bundle))
    failure = cases["DL-001"].find("failure")
    assert failure.text.count(late.message) == 1 and "/sandbox/expectations/28" not in failure.text, failure.text
