"""The two document types and their field tables (docs/documents.md).

The field tables are the single source of truth: the XSDs in `xsd/` are rendered from them
(`xsdgen.render_xsd`) and a test keeps the checked-in files identical to the rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class FieldSpec:
    """One element of the data element: name, max length (None = no fixed maximum), format kind."""

    name: str
    max_length: int | None
    kind: str = "text"
    required: bool = False


# Lexical formats, as XSD regular expressions (implicitly anchored; [0-9] because XSD \d is Unicode).
KIND_PATTERNS: dict[str, str] = {
    "text": "",
    "date": "[0-9]{8}",
    "birthdate": "[0-9]{4}([0-9]{4})?",
    "datetime12": "[0-9]{12}",
    "datetime14": "[0-9]{14}",
    "gender": "[123]",
    "flag": "[01]",
    "doctype": "[0-4]",
    "doctype_gbt": "[0-7]",
    "doctype_strict": "[1-4]",
    "ethnicity": "[0-9]{2}",
    "nationality": "[0-9A-Z]{3}",
    "nationality_any": "[0-9A-Z]{2,3}",
    "province": "[0-9]{2,3}",
    "district": "[0-9]{3}",
    "commune": "[0-9]{5}",
    "count": "[0-9]{1,2}",
}


def _f(name: str, max_length: int | None, kind: str = "text", required: bool = False) -> FieldSpec:
    return FieldSpec(name, max_length, kind, required)


def _R(name: str, max_length: int | None, kind: str = "text") -> FieldSpec:
    return FieldSpec(name, max_length, kind, True)


def _person(suffix: str, *, with_district: bool) -> list[FieldSpec]:
    """Identity block shared by the mother and the surrogate mother."""
    fields = [
        _f(f"MA_BHXH_{suffix}", 10),
        _f(f"MA_THE_{suffix}", 15),
        _f(f"HOTEN_{suffix}", 255),
        _f(f"NGAYSINH_{suffix}", 8, "birthdate"),
        _f(f"MA_DANTOC_{suffix}", 2, "ethnicity"),
        _f(f"MA_QUOCTICH_{suffix}", 3, "nationality"),
        _f(f"LOAI_GIAYTO_{suffix}", 1, "doctype"),
        _f(f"SO_CCCD_{suffix}", 15),
        _f(f"NGAYCAP_CCCD_{suffix}", 8, "date"),
        _f(f"NOICAP_CCCD_{suffix}", 1024),
        _f(f"NOI_CU_TRU_{suffix}", 1024),
    ]
    tail = "" if suffix == "NND" else f"_{suffix}"
    fields.append(_f(f"MATINH_CU_TRU{tail}", 3, "province"))
    if with_district:
        fields.append(_f(f"MAHUYEN_CU_TRU{tail}", 3, "district"))
    fields.append(_f(f"MAXA_CU_TRU{tail}", 5, "commune"))
    return fields


_REQUIRED_GCS = frozenset(
    [
        "MA_GCS",
        "MA_BN",
        "HOTEN_NND",
        "NGAYSINH_NND",
        "MA_DANTOC_NND",
        "MA_QUOCTICH_NND",
        "SO_CCCD_NND",
        "TEN_CON",
        "GIOI_TINH_CON",
        "SO_CON",
        "LAN_SINH",
        "SO_CON_SONG",
        "CAN_NANG_CON",
        "NGAY_SINH_CON",
        "NOI_SINH_CON",
        "TINH_TRANG_CON",
        "NGUOI_DO_DE",
        "NGUOI_GHI_PHIEU",
        "MA_TTDV",
        "THU_TRUONG_DVI",
        "NGAY_CT",
    ]
)


def _mark_required(fields: list[FieldSpec], required: frozenset[str]) -> tuple[FieldSpec, ...]:
    return tuple(FieldSpec(f.name, f.max_length, f.kind, f.name in required) for f in fields)


GCS_FIELDS: tuple[FieldSpec, ...] = _mark_required(
    [
        _f("MA_GCS", 18),
        _f("MA_BN", 100),
        _f("MA_CT", 200),
        _f("SO_SERI", 200),
        *_person("NND", with_district=True),
        _f("HO_TEN_CHA", 255),
        _f("MA_THE_TAM", 15),
        _f("TEN_CON", 255),
        _f("GIOI_TINH_CON", 1, "gender"),
        _f("SO_CON", 2, "count"),
        _f("LAN_SINH", 2, "count"),
        _f("SO_CON_SONG", 2, "count"),
        _f("CAN_NANG_CON", 10),
        _f("NGAY_SINH_CON", 14, "datetime14"),
        _f("NOI_SINH_CON", 1024),
        _f("TINH_TRANG_CON", None),
        _f("SINHCON_PHAUTHUAT", 1, "flag"),
        _f("SINHCON_DUOI32TUAN", 1, "flag"),
        _f("GHI_CHU", None),
        _f("NGUOI_DO_DE", 255),
        _f("NGUOI_GHI_PHIEU", 255),
        _f("MA_TTDV", 255),
        _f("THU_TRUONG_DVI", 255),
        _f("NGAY_CT", 8, "date"),
        _f("SO", 200),
        _f("QUYEN_SO", 200),
        *_person("MTH", with_district=False),
        _f("HO_TEN_CHA_MTH", 255),
        _f("NGAYSINH_CHA_MTH", 8, "birthdate"),
        _f("MA_DANTOC_CHA_MTH", 2, "ethnicity"),
        _f("NOI_CU_TRU_CHA_MTH", 1024),
        _f("MATINH_CU_TRU_CHA_MTH", 3, "province"),
        _f("MAXA_CU_TRU_CHA_MTH", 5, "commune"),
        _f("LOAI_GIAYTO_CHA_MTH", 1, "doctype"),
        _f("SO_CCCD_CHA_MTH", 15),
        _f("NGAYCAP_CCCD_CHA_MTH", 8, "date"),
        _f("NOICAP_CCCD_CHA_MTH", 1024),
        _f("NGAYSINH_CHA_NND", 8, "birthdate"),
        _f("MA_DANTOC_CHA_NND", 2, "ethnicity"),
        _f("LOAI_GIAYTO_CHA_NND", 1, "doctype"),
        _f("SO_CCCD_CHA_NND", 15),
        _f("NGAYCAP_CCCD_CHA_NND", 8, "date"),
        _f("NOICAP_CCCD_CHA_NND", 1024),
        _f("CAP_LAN_DAU", 1, "flag"),
    ],
    _REQUIRED_GCS,
)

GBT_FIELDS: tuple[FieldSpec, ...] = (
    _R("MA_GBT", 18),
    _f("MA_BN", 100),
    _f("MA_HSBA", 100),
    _R("HO_TEN", 255),
    _R("NGAY_SINH", 8, "birthdate"),
    _R("GIOI_TINH", 1, "gender"),
    _f("MA_THE", 15),
    _f("MA_DANTOC", 2, "ethnicity"),
    _f("MA_QUOCTICH", 3, "nationality"),
    _f("DCHI_THUONGTRU", 1024),
    _f("MATINH_THUONGTRU", 3, "province"),
    _f("MAHUYEN_THUONGTRU", 3, "district"),
    _f("MAXA_THUONGTRU", 5, "commune"),
    _f("DCHI_HIENTAI", 1024),
    _f("MATINH_HIENTAI", 3, "province"),
    _f("MAHUYEN_HIENTAI", 3, "district"),
    _f("MAXA_HIENTAI", 5, "commune"),
    _f("LOAI_GIAYTO", 1, "doctype_gbt"),
    _f("SO_GIAYTO", 15),
    _f("NGAY_CAP", 8, "date"),
    _f("NOI_CAP", 1024),
    _f("NGAYGIO_VV", 12, "datetime12"),
    _R("NGAY_TV", 12, "datetime12"),
    _f("TINH_TRANG_TV", 1, "flag"),
    _R("NGUYENNHAN_TV", None),
    _R("NGUOI_GHIGIAY", 255),
    _f("NGUOI_THANTHICH", 255),
    _R("TTRUONG_DVI", 255),
    _f("SO_BAOTU", 200),
    _f("QUYEN_SO", 200),
    _R("NGAY_CAPGIAYBT", 8, "date"),
    _f("SO_BAOTU_BD", 200),
    _f("QUYEN_SO_BD", 200),
    _R("MACSKCB", 5),
    _f("DIACHI_CSKCB", 1024),
    _f("MA_BHXH", 10),
    _f("BENH_ICD10_ID", 7),
    _f("BENH_ICD10_TEN", None),
)


class DocumentType(Enum):
    """A document kind the portal accepts, keyed on the wire by `loaiHs`."""

    GCS = ("61", "HSDLGCS", "GIAYCHUNGSINH", "MA_GCS", "NGAY_CT", "GCS")
    GBT = ("60", "HSDLGBT", "GIAYBAOTU", "MA_GBT", "NGAY_CAPGIAYBT", "GBT")

    def __init__(
        self, loai_hs: str, root_tag: str, data_tag: str, code_field: str, issue_date_field: str, kind: str
    ) -> None:
        self.loai_hs = loai_hs
        self.root_tag = root_tag
        self.data_tag = data_tag
        self.code_field = code_field
        self.issue_date_field = issue_date_field
        self.code_kind = kind

    @classmethod
    def from_loai_hs(cls, value: str) -> DocumentType:
        """Map the wire's `loaiHs` to a type; unknown values are the caller's 205."""
        for member in cls:
            if member.loai_hs == value:
                return member
        raise ValueError(f"unknown loaiHs {value!r}; expected one of 60, 61")

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return GCS_FIELDS if self is DocumentType.GCS else GBT_FIELDS

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def path(self, field: str | None = None) -> str:
        """XPath of the data element, or of one of its fields."""
        base = f"/{self.root_tag}/{self.data_tag}"
        return f"{base}/{field}" if field else base
