"""Business rules: each rule fires on its case, valid scenarios pass, odd input never crashes."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.certificates import DEFAULT_ISSUED_AT, INVALID_KINDS, SCENARIOS, build_xml, mutate, scenario
from mock_portal.documents import (
    DocumentType,
    RuleContext,
    check_rules,
    check_structure,
    fields_of,
    list_rules,
    parse_xml,
    validate_schema,
)
from mock_portal.documents.rules_gcs import PHRASE_BOTH, PHRASE_PRETERM, PHRASE_SURGERY
from mock_portal.results.findings import Finding, Severity

CTX = RuleContext(facility_code="79001", received_at=DEFAULT_ISSUED_AT + timedelta(hours=1))
Fields = dict[str, str]
Change = Callable[[Fields], Fields]


def _base(name: str) -> tuple[DocumentType, Fields]:
    return scenario(name)[0]


def _examine(doc_type: DocumentType, fields: Fields) -> list[Finding]:
    """The whole document pipeline of this package, on the built XML."""
    root = parse_xml(build_xml(doc_type, fields))
    findings = check_structure(doc_type, root) + validate_schema(doc_type, root)
    return findings + check_rules(doc_type, fields_of(root.find(doc_type.data_tag)), CTX)


def _set(**values: str) -> Change:
    return lambda fields: {**fields, **values}


def _cccd_digits(field: str, start: int, digits: str) -> Change:
    def apply(fields: Fields) -> Fields:
        number = fields[field]
        return {**fields, field: number[:start] + digits + number[start + len(digits) :]}

    return apply


def _flip_sex(field: str) -> Change:
    return lambda f: {**f, field: f[field][:3] + str(int(f[field][3]) ^ 1) + f[field][4:]}


# rule code -> (scenario, change, field the finding points at)
FIRING: dict[str, tuple[str, Change, str]] = {
    "RULE_CODE_FORMAT": ("gcs_normal", _set(MA_GCS="1.GCS.79001.26"), "MA_GCS"),
    "RULE_CODE_FACILITY": ("gcs_normal", _set(MA_GCS="00001.GCS.01999.26"), "MA_GCS"),
    "RULE_CODE_YEAR": ("gbt_normal", _set(MA_GBT="00001.GBT.79001.25"), "MA_GBT"),
    "RULE_DATE_INVALID": ("gbt_inpatient", _set(NGAYGIO_VV="202602301000"), "NGAYGIO_VV"),
    "RULE_ISSUE_DATE_FUTURE": ("gcs_normal", _set(NGAY_CT="20260311"), "NGAY_CT"),
    "RULE_ISSUE_BEFORE_EVENT": ("gcs_normal", _set(NGAY_CT="20260301"), "NGAY_CT"),
    "RULE_EVENT_IN_FUTURE": ("gbt_normal", _set(NGAY_TV="202603101200"), "NGAY_TV"),
    "RULE_FACILITY_MISMATCH": ("gbt_normal", _set(MACSKCB="01999"), "MACSKCB"),
    "RULE_GBT_CHRONOLOGY": (
        "gbt_inpatient",
        lambda f: {**f, "NGAYGIO_VV": f["NGAY_TV"][:8] + "2359", "NGAY_TV": f["NGAY_TV"][:8] + "0000"},
        "NGAY_TV",
    ),
    "RULE_ICD10_FORMAT": ("gbt_inpatient", _set(BENH_ICD10_ID="96.0"), "BENH_ICD10_ID"),
    "RULE_COUNT_RANGE": ("gcs_normal", _set(SO_CON_SONG="0"), "SO_CON_SONG"),
    "RULE_COUNT_CONSISTENCY": ("gcs_normal", _set(SO_CON="1", LAN_SINH="1", SO_CON_SONG="3"), "SO_CON_SONG"),
    "RULE_BIRTH_WEIGHT": ("gcs_normal", _set(CAN_NANG_CON="50"), "CAN_NANG_CON"),
    "RULE_BIRTH_WEIGHT_NOT_RECORDED": ("gcs_normal", _set(CAN_NANG_CON="không cân"), "CAN_NANG_CON"),
    "RULE_MOTHER_AGE": ("gcs_normal", _set(NGAYSINH_NND="20200101"), "NGAYSINH_NND"),
    "RULE_GHI_CHU_FLAGS": ("gcs_normal", _set(SINHCON_DUOI32TUAN="1", GHI_CHU=PHRASE_SURGERY), "GHI_CHU"),
    "RULE_SURROGACY_INCOMPLETE": ("gcs_surrogacy", _set(SO_CCCD_CHA_MTH=""), "SO_CCCD_CHA_MTH"),
    "RULE_CCCD_FORMAT": ("gcs_normal", _set(SO_CCCD_NND="12345"), "SO_CCCD_NND"),
    "RULE_CCCD_BIRTH_YEAR": ("gbt_normal", _cccd_digits("SO_GIAYTO", 4, "99"), "SO_GIAYTO"),
    "RULE_CCCD_SEX": ("gcs_normal", _flip_sex("SO_CCCD_NND"), "SO_CCCD_NND"),
    "RULE_BHXH_FORMAT": ("gcs_normal", _set(MA_BHXH_NND="12345"), "MA_BHXH_NND"),
    "RULE_BHYT_FORMAT": ("gbt_normal", _set(MA_THE="XX9790123456789"), "MA_THE"),
    "RULE_BHYT_BHXH_MISMATCH": ("gcs_normal", _set(MA_BHXH_NND="0123456789"), "MA_THE_NND"),
    "RULE_ETHNICITY_CODE": ("gcs_normal", _set(MA_DANTOC_NND="99"), "MA_DANTOC_NND"),
    "RULE_NATIONALITY_UNKNOWN": ("gbt_normal", _set(MA_QUOCTICH="999"), "MA_QUOCTICH"),
    "RULE_PROVINCE_CODE": ("gcs_normal", _set(MATINH_CU_TRU="03"), "MATINH_CU_TRU"),
    "RULE_BHXH_MISSING": ("gbt_normal", _set(MA_BHXH=""), "MA_BHXH"),
}
RULES = {r.code: r for r in list_rules()}


def test_every_registered_rule_has_a_firing_case() -> None:
    assert set(FIRING) == set(RULES)


@pytest.mark.parametrize(("name", "change", "field"), FIRING.values(), ids=list(FIRING))
def test_rule_fires(name: str, change: Change, field: str, request: pytest.FixtureRequest) -> None:
    code = request.node.callspec.id
    doc_type, fields = _base(name)
    assert [f for f in check_rules(doc_type, fields, CTX) if f.code == code] == []
    hits = [f for f in check_rules(doc_type, change(fields), CTX) if f.code == code]
    assert hits, f"{code} did not fire"
    assert hits[0].severity is RULES[code].severity
    assert hits[0].path == doc_type.path(field)
    assert hits[0].message_vi and hits[0].message_en and hits[0].message_vi != hits[0].message_en


CERTS = [
    (f"{name}-seed{seed}-{i}", dt, f)
    for name in SCENARIOS
    for seed in range(3)
    for i, (dt, f) in enumerate(scenario(name, seed=seed))
]


@pytest.mark.parametrize(("doc_type", "fields"), [c[1:] for c in CERTS], ids=[c[0] for c in CERTS])
def test_valid_scenarios_have_no_findings(doc_type: DocumentType, fields: Fields) -> None:
    assert _examine(doc_type, fields) == []


INVALID = [(k, dt) for k, kind in INVALID_KINDS.items() for dt in DocumentType if dt in kind.doc_types]


@pytest.mark.parametrize(("kind", "doc_type"), INVALID, ids=[f"{k}-{dt.name}" for k, dt in INVALID])
def test_invalid_kind_gives_its_code(kind: str, doc_type: DocumentType) -> None:
    fields = _base("gcs_normal" if doc_type is DocumentType.GCS else "gbt_inpatient")[1]
    findings = _examine(doc_type, mutate(fields, kind))
    assert INVALID_KINDS[kind].code in {f.code for f in findings}


def _nfd_lower(text: str) -> str:
    return unicodedata.normalize("NFD", text.lower())


# (scenario, change, rule code that must NOT be reported)
ACCEPTED = {
    "ghi-chu-combined-phrase": (
        "gcs_normal",
        _set(SINHCON_PHAUTHUAT="1", SINHCON_DUOI32TUAN="1", GHI_CHU=PHRASE_BOTH),
        "RULE_GHI_CHU_FLAGS",
    ),
    "ghi-chu-both-phrases": (
        "gcs_normal",
        _set(SINHCON_PHAUTHUAT="1", SINHCON_DUOI32TUAN="1", GHI_CHU=f"{PHRASE_SURGERY}. {PHRASE_PRETERM}"),
        "RULE_GHI_CHU_FLAGS",
    ),
    "ghi-chu-nfd-lowercase": (
        "gcs_normal",
        _set(SINHCON_PHAUTHUAT="1", GHI_CHU=_nfd_lower(PHRASE_SURGERY)),
        "RULE_GHI_CHU_FLAGS",
    ),
    "bhxh-all-zeros": ("gcs_normal", _set(MA_BHXH_NND="0000000000"), "RULE_BHXH_FORMAT"),
    "bhxh-zeros-no-mismatch": ("gcs_normal", _set(MA_BHXH_NND="0000000000"), "RULE_BHYT_BHXH_MISMATCH"),
    "not-weighed-no-error": ("gcs_normal", _set(CAN_NANG_CON="Không cân"), "RULE_BIRTH_WEIGHT"),
    "mother-year-only": ("gcs_normal", _set(NGAYSINH_NND="1995"), "RULE_MOTHER_AGE"),
    "passport-not-cccd-checked": (
        "gcs_normal",
        _set(LOAI_GIAYTO_NND="3", SO_CCCD_NND="B1234567"),
        "RULE_CCCD_FORMAT",
    ),
    "death-birth-year-only": ("gbt_inpatient", _set(NGAY_SINH="1950"), "RULE_GBT_CHRONOLOGY"),
    "no-surrogacy-no-check": ("gcs_normal", _set(), "RULE_SURROGACY_INCOMPLETE"),
    "icd-four-decimals": ("gbt_inpatient", _set(BENH_ICD10_ID="M00.00"), "RULE_ICD10_FORMAT"),
}


@pytest.mark.parametrize(("name", "change", "code"), ACCEPTED.values(), ids=list(ACCEPTED))
def test_rule_accepts(name: str, change: Change, code: str) -> None:
    doc_type, fields = _base(name)
    assert code not in {f.code for f in check_rules(doc_type, change(fields), CTX)}


GARBAGE = [
    "",
    " ",
    "x",
    "0",
    "-1",
    "1.5",
    "99999999999999999999",
    "２０２６０３１０",
    "00000000",
    "😀",
    "\u0000",
    "<&>",
]


@pytest.mark.parametrize("doc_type", list(DocumentType), ids=lambda d: d.name)
@pytest.mark.parametrize("value", GARBAGE, ids=[f"g{i}" for i in range(len(GARBAGE))])
def test_rules_never_crash_on_garbage(doc_type: DocumentType, value: str) -> None:
    fields = _base("gcs_surrogacy" if doc_type is DocumentType.GCS else "gbt_inpatient")[1]
    for name in doc_type.field_names:
        check_rules(doc_type, {**fields, name: value}, CTX)
    check_rules(doc_type, dict.fromkeys(doc_type.field_names, value), CTX)
    check_rules(doc_type, {}, CTX)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_rules_never_crash_property(data: st.DataObject) -> None:
    doc_type = data.draw(st.sampled_from(list(DocumentType)))
    fields = data.draw(st.dictionaries(st.sampled_from(doc_type.field_names), st.text(max_size=20)))
    findings = check_rules(doc_type, fields, CTX)
    assert all(f.code.startswith("RULE_") for f in findings)


def test_registry_is_listable_and_stable() -> None:
    rules = list_rules()
    assert len({r.code for r in rules}) == len(rules)
    for r in rules:
        assert r.description_vi and r.description_en and r.doc_types
        assert r.to_dict()["code"] == r.code
    assert {r.code for r in list_rules(DocumentType.GBT)} >= {"RULE_GBT_CHRONOLOGY", "RULE_CODE_FORMAT"}
    assert "RULE_GBT_CHRONOLOGY" not in {r.code for r in list_rules(DocumentType.GCS)}
    warnings = {r.code for r in rules if r.severity is Severity.WARNING}
    assert warnings == {
        "RULE_NATIONALITY_UNKNOWN",
        "RULE_BHXH_MISSING",
        "RULE_BIRTH_WEIGHT_NOT_RECORDED",
        "RULE_COUNT_CONSISTENCY",
        "RULE_BHYT_BHXH_MISMATCH",
    }


def test_rule_context_requires_aware_time() -> None:
    with pytest.raises(ValueError):
        RuleContext(facility_code="79001", received_at=datetime(2026, 3, 10, 9, 0))


def test_receipt_date_is_vietnam_local() -> None:
    late_utc = datetime.fromisoformat("2026-03-10T18:30:00+00:00")  # 01:30 on 11 March in Hanoi
    ctx = RuleContext(facility_code="79001", received_at=late_utc)
    assert ctx.receipt_date.isoformat() == "2026-03-11"
    doc_type, fields = _base("gcs_normal")
    assert "RULE_ISSUE_DATE_FUTURE" not in {
        f.code for f in check_rules(doc_type, {**fields, "NGAY_CT": "20260311"}, ctx)
    }
