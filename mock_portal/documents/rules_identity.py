"""Rules on people's identifiers and coded attributes: CCCD, BHXH, BHYT, ethnicity, nationality, province."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..results.findings import Severity
from . import codes
from .doctypes import DocumentType
from .rulebook import BOTH, GBT, Fields, Issue, Issues, RuleContext, as_birth, rule, text

_CCCD = re.compile(r"[0-9]{12}")
_BHXH = re.compile(r"[0-9]{10}")
_BHYT = re.compile(r"[A-Z]{2}[1-5][0-9]{2}[0-9]{10}")
# CCCD digit 4: century and sex (Circular 59/2021/TT-BCA Art. 7): even = male, odd = female.
_CENTURY = {0: 1900, 1: 1900, 2: 2000, 3: 2000, 4: 2100, 5: 2100, 6: 2200, 7: 2200, 8: 1800, 9: 1800}


@dataclass(frozen=True)
class PersonFields:
    """Where one person's identity fields are; `sex` is "1"/"2" or the name of a gender field."""

    doc_type_field: str
    number_field: str
    birth_field: str
    sex: str


PEOPLE = {
    DocumentType.GCS: (
        PersonFields("LOAI_GIAYTO_NND", "SO_CCCD_NND", "NGAYSINH_NND", "2"),
        PersonFields("LOAI_GIAYTO_MTH", "SO_CCCD_MTH", "NGAYSINH_MTH", "2"),
        PersonFields("LOAI_GIAYTO_CHA_MTH", "SO_CCCD_CHA_MTH", "NGAYSINH_CHA_MTH", "1"),
        PersonFields("LOAI_GIAYTO_CHA_NND", "SO_CCCD_CHA_NND", "NGAYSINH_CHA_NND", "1"),
    ),
    DocumentType.GBT: (PersonFields("LOAI_GIAYTO", "SO_GIAYTO", "NGAY_SINH", "GIOI_TINH"),),
}
CARD_FIELDS = {
    DocumentType.GCS: (("MA_THE_NND", "MA_BHXH_NND"), ("MA_THE_MTH", "MA_BHXH_MTH"), ("MA_THE_TAM", None)),
    DocumentType.GBT: (("MA_THE", "MA_BHXH"),),
}


def _kind_fields(doc_type: DocumentType, kind: str) -> list[str]:
    return [spec.name for spec in doc_type.fields if spec.kind == kind]


def valid_cccd(fields: Mapping[str, str], person: PersonFields) -> str | None:
    """The person's CCCD number when the document type says CCCD and the number is well-formed."""
    number = text(fields, person.number_field)
    if text(fields, person.doc_type_field) != "1" or not _CCCD.fullmatch(number):
        return None
    return number if number[1:3] in codes.provinces() and number[0] == "0" else None


@rule(
    "RULE_CCCD_FORMAT",
    Severity.ERROR,
    BOTH,
    ("SO_CCCD_*", "SO_GIAYTO"),
    "Khi LOAI_GIAYTO = 1, số CCCD gồm 12 chữ số, 3 số đầu là mã tỉnh đăng ký khai sinh (001–096).",
    "When LOAI_GIAYTO = 1 the CCCD has 12 digits, the first 3 a province-of-registration code (001-096).",
)
def cccd_format(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for person in PEOPLE[doc_type]:
        number = text(fields, person.number_field)
        if text(fields, person.doc_type_field) == "1" and number and valid_cccd(fields, person) is None:
            yield Issue(
                person.number_field,
                f"{person.number_field} không phải số CCCD hợp lệ (12 chữ số, 3 số đầu là mã tỉnh).",
                f"{person.number_field} is not a valid CCCD (12 digits, first 3 a province code).",
                expected="12 digits, 001-096 prefix",
                received=number,
            )


@rule(
    "RULE_CCCD_BIRTH_YEAR",
    Severity.ERROR,
    BOTH,
    ("SO_CCCD_*", "SO_GIAYTO"),
    "Số thứ 4 (thế kỷ) và số 5–6 của CCCD khớp năm sinh.",
    "CCCD digit 4 (century) and digits 5-6 match the year of birth.",
)
def cccd_birth_year(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for person in PEOPLE[doc_type]:
        number, birth = valid_cccd(fields, person), as_birth(text(fields, person.birth_field))
        if number is None or birth is None:
            continue
        year = _CENTURY[int(number[3])] + int(number[4:6])
        if year != birth.year:
            yield Issue(
                person.number_field,
                f"CCCD {person.number_field} ghi năm sinh {year}, {person.birth_field} là {birth.year}.",
                f"CCCD {person.number_field} encodes birth year {year}; {person.birth_field}: {birth.year}.",
                expected=str(birth.year),
                received=str(year),
            )


@rule(
    "RULE_CCCD_SEX",
    Severity.ERROR,
    BOTH,
    ("SO_CCCD_*", "SO_GIAYTO"),
    "Số thứ 4 của CCCD khớp giới tính (chẵn: nam, lẻ: nữ).",
    "CCCD digit 4 matches the sex (even: male, odd: female).",
)
def cccd_sex(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for person in PEOPLE[doc_type]:
        number = valid_cccd(fields, person)
        sex = person.sex if person.sex in ("1", "2") else text(fields, person.sex)
        if number is None or sex not in ("1", "2"):
            continue
        encoded = "1" if int(number[3]) % 2 == 0 else "2"
        if encoded != sex:
            label_vi, label_en = ("nam", "male") if encoded == "1" else ("nữ", "female")
            yield Issue(
                person.number_field,
                f"CCCD {person.number_field} mã hoá giới tính {label_vi}, khác giới tính của người này.",
                f"CCCD {person.number_field} encodes sex {label_en}, which contradicts the person's sex.",
                expected=sex,
                received=encoded,
            )


@rule(
    "RULE_BHXH_FORMAT",
    Severity.ERROR,
    BOTH,
    ("MA_BHXH_NND", "MA_BHXH_MTH", "MA_BHXH"),
    "Mã số BHXH gồm 10 chữ số (10 số 0 = không có, TT 22/2025).",
    "The BHXH number has 10 digits (ten zeros = none, Circular 22/2025).",
)
def bhxh_format(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for name in (n for n in doc_type.field_names if n.startswith("MA_BHXH")):
        value = text(fields, name)
        if value and not _BHXH.fullmatch(value):
            yield Issue(
                name,
                f"{name} phải gồm 10 chữ số.",
                f"{name} must be 10 digits.",
                expected="10 digits",
                received=value,
            )


@rule(
    "RULE_BHYT_FORMAT",
    Severity.ERROR,
    BOTH,
    ("MA_THE_NND", "MA_THE_MTH", "MA_THE_TAM", "MA_THE"),
    "Mã thẻ BHYT gồm 15 ký tự: 2 chữ nhóm đối tượng, 1 số quyền lợi (1–5), 2 số tỉnh, 10 số BHXH.",
    "The BHYT card has 15 chars: 2 group letters, 1 benefit digit (1-5), 2 province digits, 10-digit BHXH.",
)
def bhyt_format(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for card_field, _ in CARD_FIELDS[doc_type]:
        value = text(fields, card_field)
        if value and not _BHYT.fullmatch(value):
            yield Issue(
                card_field,
                f"{card_field} không đúng dạng mã thẻ BHYT (ví dụ TE1202020893987).",
                f"{card_field} is not a BHYT card number (e.g. TE1202020893987).",
                expected="[A-Z]{2}[1-5]NN + 10 digits",
                received=value,
            )


@rule(
    "RULE_BHYT_BHXH_MISMATCH",
    Severity.WARNING,
    BOTH,
    ("MA_THE_NND", "MA_THE_MTH", "MA_THE"),
    "10 số cuối của mã thẻ BHYT là mã số BHXH của cùng người.",
    "The last 10 digits of the BHYT card are the same person's BHXH number.",
)
def card_matches_bhxh(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for card_field, bhxh_field in CARD_FIELDS[doc_type]:
        card, bhxh = text(fields, card_field), text(fields, bhxh_field) if bhxh_field else ""
        if _BHYT.fullmatch(card) and _BHXH.fullmatch(bhxh) and bhxh != "0" * 10 and card[5:] != bhxh:
            yield Issue(
                card_field,
                f"10 số cuối của {card_field} khác {bhxh_field}.",
                f"The last 10 digits of {card_field} differ from {bhxh_field}.",
                expected=bhxh,
                received=card[5:],
            )


def _coded(
    doc_type: DocumentType, fields: Fields, kind: str, known: Mapping[str, str], what: tuple[str, str]
) -> Issues:
    for name in _kind_fields(doc_type, kind):
        value = text(fields, name)
        if value and value not in known:
            yield Issue(
                name,
                f"{name}: mã {what[0]} '{value}' không có trong danh mục.",
                f"{name}: {what[1]} code '{value}' is not in the code list.",
                received=value,
            )


@rule(
    "RULE_ETHNICITY_CODE",
    Severity.ERROR,
    BOTH,
    ("MA_DANTOC*",),
    "Mã dân tộc thuộc danh mục QĐ 121-TCTK (01–55, 56 không xác định).",
    "Ethnicity codes come from the QD 121-TCTK list (01-55, 56 undetermined).",
)
def ethnicity_code(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    yield from _coded(doc_type, fields, "ethnicity", codes.ethnicities(), ("dân tộc", "ethnicity"))


@rule(
    "RULE_NATIONALITY_UNKNOWN",
    Severity.WARNING,
    BOTH,
    ("MA_QUOCTICH*",),
    "Mã quốc tịch có trong danh mục TT 07/2016 (danh mục của sandbox chưa đầy đủ: chỉ cảnh báo).",
    "Nationality codes come from TT 07/2016 PL2 (the sandbox's list is partial: warning only).",
)
def nationality_code(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    yield from _coded(doc_type, fields, "nationality", codes.nationalities(), ("quốc tịch", "nationality"))


@rule(
    "RULE_PROVINCE_CODE",
    Severity.ERROR,
    BOTH,
    ("MATINH_*",),
    "Mã tỉnh gồm 2 số theo danh mục TT 07/2016 PL1 / QĐ 124/2004.",
    "Province codes are 2 digits from the TT 07/2016 PL1 / QD 124/2004 list.",
)
def province_code(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    yield from _coded(doc_type, fields, "province", codes.provinces(), ("tỉnh", "province"))


@rule(
    "RULE_BHXH_MISSING",
    Severity.WARNING,
    GBT,
    ("MA_BHXH",),
    "Nên có mã số BHXH của người tử vong (có thể không có).",
    "The deceased's BHXH number should be given (the person may have none).",
)
def bhxh_present(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    if not text(fields, "MA_BHXH"):
        yield Issue("MA_BHXH", "Không có mã số BHXH (MA_BHXH).", "No BHXH number (MA_BHXH) given.")
