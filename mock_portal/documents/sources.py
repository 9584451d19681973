"""What the independent sources say about each field, and the two field tables derived from it.

`doctypes.py` holds the PL02 field list as the vendors build it (names and order: R2, R3). The
portal's own 2023 GBT table (R1) disagrees on some required flags, lengths, one pick list and the
order of two fields. From both this module derives:

- the `portal` table: the most permissive shape any source allows (a value outside it contradicts
  every source, so `portal` mode refuses it), and
- the `strict` table: the tightest shape of all sources (what `strict` mode enforces; in `portal`
  mode a value between the two is accepted with a warning).

The XSDs `xsd/<ROOT>.xsd` (strict) and `xsd/<ROOT>.portal.xsd` are rendered from these tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..results.grades import Action, Evidence, Grade
from .doctypes import DocumentType, FieldSpec

R1 = "R1 portal GBT table 2023"
PL02 = "PL02 via R2/R3/R12"
XML9 = "QĐ 130/4750 XML9 via R11"


@dataclass(frozen=True)
class R1Field:
    """One row of the portal's 2023 GBT field table (R1): required flag and maximum length."""

    required: bool
    max_length: int


# R1, "2.3 Mô tả cấu trúc dữ liệu" (35 rows, in the table's own order: NGUOI_THANTHICH before NGUOI_GHIGIAY).
R1_GBT: dict[str, R1Field] = {
    name: R1Field(req == "x", int(length))
    for name, req, length in (
        row.split()
        for row in """
        MA_GBT x 18; MA_BN - 255; MA_HSBA - 100; HO_TEN x 255; NGAY_SINH x 8; GIOI_TINH x 1; MA_THE - 15;
        MA_DANTOC x 2; MA_QUOCTICH x 2; DCHI_THUONGTRU x 250; MATINH_THUONGTRU x 2; MAHUYEN_THUONGTRU x 3;
        MAXA_THUONGTRU x 5; DCHI_HIENTAI - 255; MATINH_HIENTAI - 2; MAHUYEN_HIENTAI - 3; MAXA_HIENTAI - 3;
        LOAI_GIAYTO x 1; SO_GIAYTO x 15; NGAY_CAP x 8; NOI_CAP x 250; NGAYGIO_VV x 12; NGAY_TV x 12;
        TINH_TRANG_TV x 1; NGUYENNHAN_TV x 255; NGUOI_THANTHICH x 255; NGUOI_GHIGIAY x 255; TTRUONG_DVI x 255;
        SO_BAOTU x 255; QUYEN_SO x 50; NGAY_CAPGIAYBT x 8; SO_BAOTU_BD - 250; QUYEN_SO_BD - 50; MACSKCB x 5;
        DIACHI_CSKCB x 255
        """.replace("\n", " ").split(";")
        if row.strip()
    )
}
R1_GBT_ORDER: tuple[str, ...] = tuple(R1_GBT)

R1_IGNORED: dict[str, str] = {
    "MAXA_HIENTAI": "R1 prints length 3 for MAXA_HIENTAI but 5 for MAXA_THUONGTRU: a typo; 5 kept in both modes",
    "NGAYGIO_VV": "R1 marks NGAYGIO_VV required, but a death on the way to care (TINH_TRANG_TV=1) has no admission"
    " time; kept optional in both modes",
}

GCS_FILED_BY = frozenset({"MA_GCS"})
"""GCS fields `portal` mode requires: the certificate code, without which the portal cannot file it
(R2 blocks sending without it, R5 checks it non-empty, R10 builds it). The rest of the 21 fields the
mock requires come from R3's TypeScript types only: a warning in `portal` mode."""

# Pick lists and formats where the sources disagree: kind in portal mode, kind in strict mode.
DISPUTED_KINDS: dict[tuple[DocumentType, str], tuple[str, str, str]] = {
    (DocumentType.GBT, "MA_QUOCTICH"): (
        "nationality_any",
        "nationality",
        "R1 table: 2 characters; QĐ 130/4750 and the PL02 vendors' default '000': 3",
    ),
    (DocumentType.GBT, "NGAY_SINH"): (
        "birthdate",
        "date",
        "R2 (citing PL02) allows a year-only 'yyyy'; R1 wants yyyyMMdd with '0101' for an unknown day and month",
    ),
    (DocumentType.GBT, "LOAI_GIAYTO"): (
        "doctype_gbt",
        "doctype_strict",
        "R3's type allows 1–7, R2 checks 0–4, R12 lists 1–4: only 1–4 is in every list",
    ),
}


def _r1(doc_type: DocumentType, name: str) -> R1Field | None:
    if doc_type is not DocumentType.GBT or name in R1_IGNORED:
        return None
    return R1_GBT.get(name)


def _lengths(a: int | None, b: int | None) -> tuple[int | None, int | None]:
    """(most permissive, tightest) of two maxima; None is unbounded."""
    known = [n for n in (a, b) if n is not None]
    loose = None if a is None or b is None else max(known)
    return loose, min(known) if known else None


def _portal_required(doc_type: DocumentType, spec: FieldSpec) -> bool:
    if doc_type is DocumentType.GCS:
        return spec.name in GCS_FILED_BY
    r1 = _r1(doc_type, spec.name)
    return spec.required and (r1 is None or r1.required)


def portal_field(doc_type: DocumentType, spec: FieldSpec) -> FieldSpec:
    """The most permissive shape any source allows for one field."""
    r1 = _r1(doc_type, spec.name)
    disputed = DISPUTED_KINDS.get((doc_type, spec.name))
    length = _lengths(spec.max_length, r1.max_length if r1 else spec.max_length)[0]
    if doc_type is DocumentType.GCS and spec.kind == "text":
        length = None  # GCS text lengths are copied from XML9 (another channel): a warning only
    return replace(
        spec, max_length=length, kind=disputed[0] if disputed else spec.kind, required=_portal_required(doc_type, spec)
    )


def strict_field(doc_type: DocumentType, spec: FieldSpec) -> FieldSpec:
    """The tightest shape of all sources for one field."""
    r1 = _r1(doc_type, spec.name)
    disputed = DISPUTED_KINDS.get((doc_type, spec.name))
    length = _lengths(spec.max_length, r1.max_length if r1 else spec.max_length)[1]
    if disputed:
        length = spec.max_length  # the length is the dispute itself: the pattern decides
    return replace(
        spec,
        max_length=length,
        kind=disputed[1] if disputed else spec.kind,
        required=spec.required or bool(r1 and r1.required),
    )


def field_table(doc_type: DocumentType, *, portal: bool) -> tuple[FieldSpec, ...]:
    make = portal_field if portal else strict_field
    return tuple(make(doc_type, spec) for spec in doc_type.fields)


CONSTRAINTS = ("presence", "length", "pattern", "order")


def field_evidence(doc_type: DocumentType, name: str, constraint: str, *, refused_in_portal: bool) -> Evidence:
    """The grade and source of one field constraint as a finding reports it.

    `refused_in_portal`: the value is outside the `portal` table (every source refuses it) rather
    than between the two tables (the sources disagree)."""
    r1 = _r1(doc_type, name)
    if constraint == "order":
        if doc_type is DocumentType.GBT:
            return Evidence(
                Grade.RECONSTRUCTED,
                f"{PL02}; {R1}",
                "PL02 vendors and R1 order NGUOI_GHIGIAY/NGUOI_THANTHICH differently and no XSD is published:"
                " order is not known to be checked",
            )
        return Evidence(Grade.RECONSTRUCTED, PL02, "no XSD is published: order is not known to be checked")
    disputed = DISPUTED_KINDS.get((doc_type, name))
    if constraint == "pattern" and disputed and not refused_in_portal:
        return Evidence(Grade.OBSERVED, f"{R1}; {PL02}", disputed[2])
    if refused_in_portal:
        if r1 is not None:
            return Evidence(Grade.CONFIRMED, f"{R1}; {PL02}", "outside every source's shape", Action.REFUSE)
        if doc_type is DocumentType.GCS and constraint == "presence":
            return Evidence(
                Grade.OBSERVED, f"{PL02}; R5; R10", "the certificate code files the document", Action.REFUSE
            )
        return Evidence(
            Grade.OBSERVED, PL02, "outside every source's shape (names and formats of the PL02 vendors)", Action.REFUSE
        )
    if doc_type is DocumentType.GCS and constraint == "length":
        return Evidence(Grade.RECONSTRUCTED, XML9, "GCS lengths are copied from the claim channel's XML9")
    if doc_type is DocumentType.GCS and constraint == "presence":
        return Evidence(
            Grade.RECONSTRUCTED,
            "R3 TypeScript types",
            "only R3's types make it required; R2 and R5 require other fields",
        )
    return Evidence(Grade.CONFIRMED, R1, f"{R1} and the PL02 vendors disagree on this {constraint}")
