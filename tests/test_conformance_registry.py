"""The case registry: stable IDs, duplicates refused loudly, selection by ID, area and basis."""

from __future__ import annotations

import pytest

from conformance.cases import load_cases
from conformance.model import CaseVerdict, Level, roll_up
from conformance.registry import AREAS, CASE_IDS_FILE, CaseSpec, DuplicateCase, Registry, passed
from mock_portal.results.grades import Grade


def _spec(case_id: str, area: str = "api", basis: str = "API annex") -> CaseSpec:
    return CaseSpec(case_id, "t", basis, Level.MUST, area, (), lambda bundle: passed("ok"), Grade.OBSERVED)


def test_duplicate_ids_are_refused_loudly() -> None:
    registry = Registry()
    registry.add(_spec("X-001"))
    with pytest.raises(DuplicateCase, match="X-001"):
        registry.add(_spec("X-001", area="flows"))


def test_unknown_area_is_refused() -> None:
    with pytest.raises(ValueError, match="area"):
        Registry().add(_spec("X-001", area="misc"))


def test_case_ids_txt_lists_every_registered_case_in_catalogue_order() -> None:
    listed = [line.strip() for line in CASE_IDS_FILE.read_text().splitlines() if line.strip()]
    assert listed == load_cases().ids(), "a case was added, removed or renamed: update conformance/case_ids.txt"


def test_catalogue_covers_every_area_with_bases_and_levels() -> None:
    specs = load_cases().all()
    assert {s.area for s in specs} == set(AREAS)
    assert all(s.basis and s.title and isinstance(s.level, Level) and isinstance(s.grade, Grade) for s in specs)
    assert {s.result for s in specs} == {"portal", "strict"}
    assert all(s.level is Level.SHOULD for s in specs if s.result == "strict"), "strict-clean is a SHOULD"
    prefixes = {s.id.rsplit("-", 1)[0] for s in specs}
    assert prefixes == {"GCS-DOC", "GBT-DOC", "SIG", "API", "DL", "FLOW"}


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"ids": ["SIG-003"]}, ["SIG-003"]),
        ({"ids": ["DL-*"]}, ["DL-001", "DL-002", "DL-003", "DL-004", "DL-005", "DL-006"]),
        ({"areas": ["deadline"]}, ["DL-001", "DL-002", "DL-003", "DL-004", "DL-005", "DL-006"]),
        ({"ids": ["API-*"], "basis": "1001"}, ["API-009"]),
    ],
    ids=["by-id", "by-prefix", "by-area", "by-basis"],
)
def test_selection(selection: dict, expected: list[str]) -> None:
    assert [s.id for s in load_cases().select(**selection)] == expected


def test_selecting_an_unknown_id_raises() -> None:
    with pytest.raises(KeyError, match="NOPE-1"):
        load_cases().select(ids=["NOPE-1"])


def test_roll_up_precedence() -> None:
    assert roll_up([CaseVerdict.PASS, CaseVerdict.SKIP, CaseVerdict.OMIT]) is CaseVerdict.SKIP
    assert roll_up([CaseVerdict.FAIL, CaseVerdict.ERROR]) is CaseVerdict.ERROR
    assert roll_up([CaseVerdict.PASS, CaseVerdict.FAIL]) is CaseVerdict.FAIL
    assert roll_up([]) is CaseVerdict.OMIT


# Issue 26: a verdict helper for cases


def test_verdict_of_concludes_on_problems_then_undecided_then_passes() -> None:
    """The cases' one way to conclude: FAIL on problems (the first is the headline), INCONCLUSIVE on
    undecided findings alone, else PASS; the exchanges judged are the evidence whichever way it goes."""
    from conformance.model import CaseFinding
    from conformance.registry import verdict_of

    late, near = CaseFinding("late", journal_ids=(7,)), CaseFinding("near", request_ids=("r2",))
    failing = verdict_of([late, near], "fine", undecided=[near], journal=[3])
    assert (failing.verdict, failing.message) == (CaseVerdict.FAIL, "late (+1 more)")
    assert (failing.evidence.journal_ids, failing.evidence.findings) == ((3, 7), (late, near))
    undecided = verdict_of([], "fine", undecided=[near], requests=["r1"])
    assert (undecided.verdict, undecided.message, undecided.evidence.request_ids) == (
        CaseVerdict.INCONCLUSIVE,
        "near",
        ("r1", "r2"),
    )
    passing = verdict_of([], "fine", submissions=[2, 1])
    assert (passing.verdict, passing.message, passing.evidence.submission_ids) == (CaseVerdict.PASS, "fine", (2, 1))
