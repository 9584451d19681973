"""Fixture people and certificates: reproducible, Vietnamese name order, consistent identifiers."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest

from fixtures.certificates import DEFAULT_ISSUED_AT, INVALID_KINDS, SCENARIOS, build_xml, mutate, scenario
from fixtures.people import FEMALE, MALE, Person, cccd_number, make_faker, make_people
from mock_portal.documents import DocumentType, codes
from mock_portal.documents.rules_identity import PEOPLE, valid_cccd
from mock_portal.documents.rules_identity import PersonFields as IdentitySlot

PEOPLE_SAMPLE = make_people(seed=7, count=40, on=date(2026, 3, 10))


def test_same_seed_same_people_other_seed_other_people() -> None:
    assert make_people(seed=7, count=40, on=date(2026, 3, 10)) == PEOPLE_SAMPLE
    assert make_people(seed=8, count=40, on=date(2026, 3, 10)) != PEOPLE_SAMPLE


@pytest.mark.parametrize("person", PEOPLE_SAMPLE[:10], ids=lambda p: p.cccd)
def test_name_order_and_case(person: Person) -> None:
    assert person.full_name == f"{person.family_name} {person.middle_name} {person.given_name}"
    assert person.full_name_upper == person.full_name.upper()
    assert " " not in person.given_name and person.family_name[0].isupper()
    if person.gender == FEMALE:
        assert person.middle_name != "Văn"


@pytest.mark.parametrize("person", PEOPLE_SAMPLE, ids=lambda p: p.cccd)
def test_cccd_is_consistent_with_province_century_sex_and_year(person: Person) -> None:
    assert re.fullmatch(r"0[0-9]{11}", person.cccd)
    assert person.cccd[1:3] == person.registration_province in codes.provinces()
    century_digit = int(person.cccd[3])
    assert century_digit % 2 == (1 if person.gender == FEMALE else 0)
    assert {0: 1900, 2: 2000}[century_digit - century_digit % 2] + int(person.cccd[4:6]) == person.birth_date.year
    fields = {"LOAI": "1", "SO": person.cccd}
    assert valid_cccd(fields, IdentitySlot("LOAI", "SO", "NS", person.gender)) == person.cccd


@pytest.mark.parametrize("person", PEOPLE_SAMPLE, ids=lambda p: p.cccd)
def test_insurance_numbers_phone_codes_and_dates(person: Person) -> None:
    assert re.fullmatch(r"[0-9]{10}", person.bhxh)
    assert re.fullmatch(r"[A-Z]{2}[1-5][0-9]{2}[0-9]{10}", person.bhyt) and person.bhyt[5:] == person.bhxh
    assert person.bhyt[3:5] == person.province
    assert re.fullmatch(r"0[35789][0-9]{8}", person.phone)
    assert person.ethnicity in codes.ethnicities() and person.nationality == "000"
    assert person.province in codes.provinces() and codes.provinces()[person.province] in person.address
    assert re.fullmatch(r"[0-9]{3}", person.district) and re.fullmatch(r"[0-9]{5}", person.commune)
    assert person.birth_date <= person.cccd_issued <= date(2026, 3, 10)
    assert 18 <= (date(2026, 3, 10) - person.birth_date).days // 365.25 <= 80


@pytest.mark.parametrize("gender", [MALE, FEMALE], ids=["male", "female"])
def test_gender_and_age_bounds_are_honoured(gender: str) -> None:
    fake = make_faker(1)
    for _ in range(20):
        person = fake.vn_person(gender=gender, on=date(2026, 1, 1), min_age=18, max_age=20)
        assert person.gender == gender
        assert date(2005, 1, 2) <= person.birth_date <= date(2008, 1, 1)


@pytest.mark.parametrize(
    ("province", "gender", "year", "expected"),
    [("79", MALE, 1990, "079090"), ("01", FEMALE, 1985, "001185"), ("48", FEMALE, 2003, "048303")],
    ids=["male-1990", "female-1985", "female-2003"],
)
def test_cccd_number_layout(province: str, gender: str, year: int, expected: str) -> None:
    assert cccd_number(province, gender, year, 42) == f"{expected}000042"


def test_twins_have_distinct_codes_and_two_children() -> None:
    (_, first), (_, second) = scenario("gcs_twins", serial=41)
    assert first["MA_GCS"] == "00041.GCS.79001.26" and second["MA_GCS"] == "00042.GCS.79001.26"
    assert first["SO_CON"] == second["SO_CON"] == "2"
    assert first["SO_CCCD_NND"] == second["SO_CCCD_NND"]


def test_reissue_keeps_the_code() -> None:
    (_, first), (_, reissued) = scenario("gcs_reissue")
    assert (first["CAP_LAN_DAU"], reissued["CAP_LAN_DAU"]) == ("1", "0")
    assert first["MA_GCS"] == reissued["MA_GCS"]


def test_surrogacy_and_inpatient_scenarios_fill_their_groups() -> None:
    ((_, surrogacy),) = scenario("gcs_surrogacy")
    assert all(surrogacy[name] for name in ("HOTEN_MTH", "SO_CCCD_MTH", "HO_TEN_CHA_MTH", "SO_CCCD_CHA_MTH"))
    ((_, inpatient),) = scenario("gbt_inpatient")
    ((_, outpatient),) = scenario("gbt_normal")
    assert inpatient["NGAYGIO_VV"] and not outpatient["NGAYGIO_VV"]


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_scenarios_follow_parameters(name: str) -> None:
    issued_at = datetime.fromisoformat("2027-01-05T14:00:00+07:00")
    certs = scenario(name, facility_code="48202", serial=7, issued_at=issued_at, seed=3)
    for doc_type, fields in certs:
        assert list(fields) == list(doc_type.field_names)
        assert re.fullmatch(rf"0000[78]\.{doc_type.code_kind}\.48202\.27", fields[doc_type.code_field])
        assert fields[doc_type.issue_date_field] == "20270105"
    assert certs == scenario(name, facility_code="48202", serial=7, issued_at=issued_at, seed=3)


def test_build_xml_is_the_wire_shape() -> None:
    doc_type, fields = scenario("gcs_normal")[0]
    data = build_xml(doc_type, fields, data_id="Id-1234")
    assert data.startswith(
        b'<?xml version="1.0" encoding="utf-8"?><HSDLGCS xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><GIAYCHUNGSINH Id="Id-1234"><MA_GCS>'
    )
    assert data.endswith(b"</GIAYCHUNGSINH><CHUKYDONVI/></HSDLGCS>")
    assert b"\n" not in data and not data.startswith(b"\xef\xbb\xbf")
    assert "NGUYỄN".encode() in build_xml(doc_type, {**fields, "HOTEN_NND": "NGUYỄN & <CO>"})
    default_id = re.search(rb'Id="(Id-[0-9a-f-]{36})"', build_xml(doc_type, fields))
    assert default_id is not None


def test_mutate_copies_and_checks_doc_type() -> None:
    doc_type, fields = scenario("gbt_normal")[0]
    before = dict(fields)
    broken = mutate(fields, "too_long")
    assert fields == before and broken != fields
    with pytest.raises(ValueError):
        mutate(fields, "bad_ghi_chu")
    assert all(kind.description and kind.code for kind in INVALID_KINDS.values())


def test_fixture_people_slots_cover_both_document_types() -> None:
    assert set(PEOPLE) == set(DocumentType)
    assert DEFAULT_ISSUED_AT.tzinfo is not None
