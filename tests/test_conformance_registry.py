"""The case registry: stable IDs, duplicates refused loudly, selection by ID, area and basis."""

from __future__ import annotations

import pytest

import conformance
from conformance.cases import load_cases
from conformance.model import Level, Verdict, roll_up
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
    assert roll_up([Verdict.PASS, Verdict.SKIP, Verdict.OMIT]) is Verdict.SKIP
    assert roll_up([Verdict.FAIL, Verdict.ERROR]) is Verdict.ERROR
    assert roll_up([Verdict.PASS, Verdict.FAIL]) is Verdict.FAIL
    assert roll_up([]) is Verdict.OMIT


def test_versions_are_reported() -> None:
    assert conformance.SUITE_VERSION
    assert conformance.tool_version() != ""
