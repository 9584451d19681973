"""Birth-certificate (GCS) rules: child counts, weight, mother's age, GHI_CHU phrases, surrogacy."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..results.findings import Severity
from .doctypes import DocumentType
from .rulebook import GCS, Fields, Issue, Issues, RuleContext, as_birth, fold, rule, text, whole
from .rules_common import event_time

COUNT_FIELDS = ("SO_CON", "LAN_SINH", "SO_CON_SONG")
NOT_WEIGHED = "Không cân"
PHRASE_SURGERY = "Sinh con phải phẫu thuật"
PHRASE_PRETERM = "Sinh con dưới 32 tuần tuổi"
PHRASE_BOTH = "Phẫu thuật, sinh con dưới 32 tuần tuổi"
# Fields that must be filled when the surrogacy form (Mẫu 02) is used: the identity core of each group.
SURROGACY_REQUIRED = (
    "HOTEN_MTH",
    "NGAYSINH_MTH",
    "MA_DANTOC_MTH",
    "MA_QUOCTICH_MTH",
    "SO_CCCD_MTH",
    "NOI_CU_TRU_MTH",
    "HO_TEN_CHA_MTH",
    "NGAYSINH_CHA_MTH",
    "SO_CCCD_CHA_MTH",
    "NOI_CU_TRU_CHA_MTH",
)
MOTHERS = ("NGAYSINH_NND", "NGAYSINH_MTH")
MIN_MOTHER_AGE = 10


def _count(fields: Mapping[str, str], name: str) -> int | None:
    value = whole(text(fields, name))
    return value if value is not None and 1 <= value <= 99 else None


@rule(
    "RULE_COUNT_RANGE",
    Severity.ERROR,
    GCS,
    COUNT_FIELDS,
    "SO_CON, LAN_SINH, SO_CON_SONG là số nguyên 1..99.",
    "SO_CON, LAN_SINH, SO_CON_SONG are whole numbers 1..99.",
)
def count_range(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    for name in COUNT_FIELDS:
        value = text(fields, name)
        if value and _count(fields, name) is None:
            yield Issue(
                name,
                f"{name} phải là số nguyên từ 1 đến 99.",
                f"{name} must be a whole number from 1 to 99.",
                expected="1..99",
                received=value,
            )


@rule(
    "RULE_COUNT_CONSISTENCY",
    Severity.WARNING,
    GCS,
    ("SO_CON_SONG",),
    "Lần sinh đầu tiên: số con sống không vượt số con của lần sinh này.",
    "At a first birth the living children cannot outnumber the children of this birth.",
)
def count_consistency(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    born, order, living = (_count(fields, name) for name in COUNT_FIELDS)
    if born and living and order == 1 and living > born:
        yield Issue(
            "SO_CON_SONG",
            f"Lần sinh đầu nhưng SO_CON_SONG ({living}) lớn hơn SO_CON ({born}).",
            f"First birth, yet SO_CON_SONG ({living}) exceeds SO_CON ({born}).",
            expected=f"<= {born}",
            received=str(living),
        )


@rule(
    "RULE_BIRTH_WEIGHT",
    Severity.ERROR,
    GCS,
    ("CAN_NANG_CON",),
    "CAN_NANG_CON là số gam 100..9999 (hoặc 'Không cân').",
    "CAN_NANG_CON is grams 100..9999 (or 'Không cân', not weighed).",
)
def birth_weight(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    value = text(fields, "CAN_NANG_CON")
    grams = whole(value)
    if value and fold(value) != fold(NOT_WEIGHED) and (grams is None or not 100 <= grams <= 9999):
        yield Issue(
            "CAN_NANG_CON",
            "CAN_NANG_CON phải là số gam từ 100 đến 9999 (3,6 kg = 3600).",
            "CAN_NANG_CON must be grams from 100 to 9999 (3.6 kg = 3600).",
            expected="100..9999",
            received=value,
        )


@rule(
    "RULE_BIRTH_WEIGHT_NOT_RECORDED",
    Severity.WARNING,
    GCS,
    ("CAN_NANG_CON",),
    "Trẻ không được cân ('Không cân'): hợp lệ nhưng cần lưu ý.",
    "The child was not weighed ('Không cân'): accepted, but flagged.",
)
def weight_not_recorded(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    if fold(text(fields, "CAN_NANG_CON")) == fold(NOT_WEIGHED):
        yield Issue("CAN_NANG_CON", "Trẻ không được cân.", "The child was not weighed.", received=NOT_WEIGHED)


@rule(
    "RULE_MOTHER_AGE",
    Severity.ERROR,
    GCS,
    MOTHERS,
    "Mẹ (người đẻ, người mang thai hộ) sinh trước con ít nhất 10 năm.",
    "The mother (birth or surrogate) was born at least 10 years before the child.",
)
def mother_age(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    child = event_time(doc_type, fields)
    if child is None:
        return
    for name in MOTHERS:
        mother = as_birth(text(fields, name))
        if mother is None:
            continue
        if mother.day is None:
            too_young = child.year - mother.year < MIN_MOTHER_AGE
        else:
            born = mother.day
            years = child.year - born.year - ((child.month, child.day) < (born.month, born.day))
            too_young = years < MIN_MOTHER_AGE
        if too_young:
            yield Issue(
                name,
                f"{name}: mẹ sinh sau hoặc chưa đủ {MIN_MOTHER_AGE} tuổi khi sinh con.",
                f"{name}: the mother is born after the child or under {MIN_MOTHER_AGE} at the birth.",
                expected=f"<= {child.year - MIN_MOTHER_AGE}",
                received=text(fields, name),
            )


def _required_phrases(fields: Mapping[str, str]) -> list[str]:
    surgery, preterm = text(fields, "SINHCON_PHAUTHUAT") == "1", text(fields, "SINHCON_DUOI32TUAN") == "1"
    return [p for p, flag in ((PHRASE_SURGERY, surgery), (PHRASE_PRETERM, preterm)) if flag]


@rule(
    "RULE_GHI_CHU_FLAGS",
    Severity.ERROR,
    GCS,
    ("GHI_CHU",),
    "GHI_CHU ghi 'Sinh con phải phẫu thuật' / 'Sinh con dưới 32 tuần tuổi' khi các cờ bằng 1.",
    "GHI_CHU says 'Sinh con phải phẫu thuật' / 'Sinh con dưới 32 tuần tuổi' when the flags are 1.",
)
def ghi_chu_flags(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    required = _required_phrases(fields)
    note = fold(text(fields, "GHI_CHU"))
    if len(required) == 2 and fold(PHRASE_BOTH) in note:
        return
    missing = [phrase for phrase in required if fold(phrase) not in note]
    if missing:
        wanted = " + ".join(f"'{p}'" for p in missing)
        yield Issue(
            "GHI_CHU",
            f"GHI_CHU phải ghi {wanted} theo SINHCON_PHAUTHUAT/SINHCON_DUOI32TUAN.",
            f"GHI_CHU must state {wanted} as SINHCON_PHAUTHUAT/SINHCON_DUOI32TUAN say.",
            expected=PHRASE_BOTH if len(required) == 2 else required[0],
            received=text(fields, "GHI_CHU"),
        )


_SURROGACY_FIELD = re.compile(r".*_MTH$")


@rule(
    "RULE_SURROGACY_INCOMPLETE",
    Severity.ERROR,
    GCS,
    SURROGACY_REQUIRED,
    "Mẫu 02 (mang thai hộ): nhóm _MTH và _CHA_MTH phải đủ khi có bất kỳ trường nào.",
    "Form 02 (surrogacy): the _MTH and _CHA_MTH groups are required together once any is filled.",
)
def surrogacy_complete(doc_type: DocumentType, fields: Fields, ctx: RuleContext) -> Issues:
    used = [n for n in doc_type.field_names if _SURROGACY_FIELD.fullmatch(n) and text(fields, n)]
    if not used:
        return
    for name in SURROGACY_REQUIRED:
        if not text(fields, name):
            yield Issue(
                name,
                f"Có thông tin mang thai hộ ({used[0]}) nhưng thiếu {name}.",
                f"Surrogacy data is present ({used[0]}) but {name} is missing.",
                expected="non-empty",
            )
