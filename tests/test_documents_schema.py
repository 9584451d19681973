"""XSDs and structure checks: every built scenario is valid; each kind of schema error has its code."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from fixtures.certificates import SCENARIOS, build_xml, scenario
from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType, check_structure, fields_of, parse_xml, validate_schema
from mock_portal.documents.doctypes import GBT_FIELDS, GCS_FIELDS
from mock_portal.documents.sources import R1_GBT_ORDER
from mock_portal.documents.xsdgen import render_xsd, xsd_path
from mock_portal.results.findings import Severity
from mock_portal.results.grades import Strictness

CERTS = [(f"{name}-{i}", dt, fields) for name in SCENARIOS for i, (dt, fields) in enumerate(scenario(name))]


def _xml(doc_type: DocumentType, fields: dict[str, str]) -> bytes:
    return build_xml(doc_type, fields, data_id="Id-test")


def _codes(doc_type: DocumentType, data: bytes) -> list[str]:
    root = parse_xml(data)
    return [f.code for f in check_structure(doc_type, root) + validate_schema(doc_type, root)]


@pytest.mark.parametrize("portal", [False, True], ids=["strict", "portal"])
@pytest.mark.parametrize("doc_type", list(DocumentType), ids=lambda d: d.name)
def test_checked_in_xsd_matches_the_field_table(doc_type: DocumentType, portal: bool) -> None:
    assert xsd_path(doc_type, portal=portal).read_text(encoding="utf-8") == render_xsd(doc_type, portal=portal)


def test_field_tables_match_design() -> None:
    assert (len(GCS_FIELDS), len(GBT_FIELDS)) == (69, 38)
    assert (GCS_FIELDS[0].name, GCS_FIELDS[-1].name) == ("MA_GCS", "CAP_LAN_DAU")
    assert (GBT_FIELDS[0].name, GBT_FIELDS[-1].name) == ("MA_GBT", "BENH_ICD10_TEN")
    required_gbt = ("MA_GBT", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "NGAY_TV", "NGUYENNHAN_TV")
    required_gbt += ("NGUOI_GHIGIAY", "TTRUONG_DVI", "NGAY_CAPGIAYBT", "MACSKCB")
    assert {f.name for f in GBT_FIELDS if f.required} == set(required_gbt)
    assert sum(f.required for f in GCS_FIELDS) == 21


@pytest.mark.parametrize(("doc_type", "fields"), [c[1:] for c in CERTS], ids=[c[0] for c in CERTS])
def test_built_scenarios_are_schema_valid(doc_type: DocumentType, fields: dict[str, str]) -> None:
    assert _codes(doc_type, _xml(doc_type, fields)) == []


def test_fields_of_returns_document_order_and_empty_strings() -> None:
    doc_type, fields = scenario("gbt_normal")[0]
    root = parse_xml(_xml(doc_type, fields))
    extracted = fields_of(root.find(doc_type.data_tag))
    assert list(extracted) == list(doc_type.field_names)
    assert extracted == fields and extracted["NGAYGIO_VV"] == ""


GCS, GBT = DocumentType.GCS, DocumentType.GBT
_BASE = {dt: next(f for _, d, f in CERTS if d is dt) for dt in DocumentType}


def _without(name: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda f: {k: v for k, v in f.items() if k != name}


def _swap(a: str, b: str) -> Callable[[dict[str, str]], dict[str, str]]:
    def apply(fields: dict[str, str]) -> dict[str, str]:
        keys = list(fields)
        i, j = keys.index(a), keys.index(b)
        keys[i], keys[j] = keys[j], keys[i]
        return {k: fields[k] for k in keys}

    return apply


# (doc type, change to the valid field set, expected finding code, expected path suffix)
SCHEMA_CASES = {
    "missing-first-field": (GCS, _without("MA_GCS"), "SCHEMA_REQUIRED_MISSING", "/MA_GCS"),
    "missing-middle-field": (GCS, _without("NGAY_CT"), "SCHEMA_REQUIRED_MISSING", "/NGAY_CT"),
    "missing-last-required": (GBT, _without("MACSKCB"), "SCHEMA_REQUIRED_MISSING", "/MACSKCB"),
    "empty-required": (GBT, lambda f: {**f, "HO_TEN": ""}, "SCHEMA_REQUIRED_EMPTY", "/HO_TEN"),
    "unknown-element": (
        GCS,
        lambda f: {**f, "GHI_CHU_THEM": "x"},
        "SCHEMA_UNEXPECTED_ELEMENT",
        "/GHI_CHU_THEM",
    ),
    "out-of-order": (GCS, _swap("SO_CON", "LAN_SINH"), "SCHEMA_ORDER", "/SO_CON"),
    "too-long": (GCS, lambda f: {**f, "HOTEN_NND": "A" * 256}, "SCHEMA_TOO_LONG", "/HOTEN_NND"),
    "too-long-code": (GBT, lambda f: {**f, "MA_GBT": f["MA_GBT"] + "X"}, "SCHEMA_TOO_LONG", "/MA_GBT"),
    "bad-date": (GCS, lambda f: {**f, "NGAY_CT": "10/03/26"}, "SCHEMA_PATTERN", "/NGAY_CT"),
    "bad-birth-time": (
        GCS,
        lambda f: {**f, "NGAY_SINH_CON": "202603100930"},
        "SCHEMA_PATTERN",
        "/NGAY_SINH_CON",
    ),
    "bad-death-time": (GBT, lambda f: {**f, "NGAY_TV": "20260310"}, "SCHEMA_PATTERN", "/NGAY_TV"),
    "bad-gender": (GBT, lambda f: {**f, "GIOI_TINH": "0"}, "SCHEMA_PATTERN", "/GIOI_TINH"),
    "bad-flag": (GCS, lambda f: {**f, "SINHCON_PHAUTHUAT": "2"}, "SCHEMA_PATTERN", "/SINHCON_PHAUTHUAT"),
    "bad-count": (GCS, lambda f: {**f, "SO_CON": "x"}, "SCHEMA_PATTERN", "/SO_CON"),
    "unicode-digits": (GCS, lambda f: {**f, "NGAY_CT": "２０２６０３１０"}, "SCHEMA_PATTERN", "/NGAY_CT"),
}


@pytest.mark.parametrize(("doc_type", "change", "code", "path"), SCHEMA_CASES.values(), ids=list(SCHEMA_CASES))
def test_schema_error_has_specific_code_and_path(
    doc_type: DocumentType, change: Callable[[dict[str, str]], dict[str, str]], code: str, path: str
) -> None:
    root = parse_xml(_xml(doc_type, change(_BASE[doc_type])))
    findings = validate_schema(doc_type, root)
    assert findings, "expected a schema error"
    first = findings[0]
    assert first.code == code
    assert first.path == doc_type.path() + path
    assert first.message_vi != first.message_en


def test_value_errors_report_the_received_value() -> None:
    root = parse_xml(_xml(GCS, {**_BASE[GCS], "NGAY_CT": "2026-3-10"}))
    (finding,) = [f for f in validate_schema(GCS, root) if f.code == "SCHEMA_PATTERN"]
    assert finding.received == "2026-3-10"


VALID_VARIANTS = {
    "optional-empty": (GCS, lambda f: {**f, "MA_CT": "", "MAHUYEN_CU_TRU": "", "GHI_CHU": ""}),
    "optional-absent": (GCS, lambda f: {k: v for k, v in f.items() if not k.endswith("_MTH")}),
}

# Shapes one source allows and another does not: accepted with a warning in portal mode, refused in strict.
DISPUTED_VARIANTS = {
    "birth-year-only": (GBT, lambda f: {**f, "NGAY_SINH": "1950"}, "SCHEMA_PATTERN", "/NGAY_SINH"),
    "gbt-id-type-7": (GBT, lambda f: {**f, "LOAI_GIAYTO": "7"}, "SCHEMA_PATTERN", "/LOAI_GIAYTO"),
    "nationality-2": (GBT, lambda f: {**f, "MA_QUOCTICH": "VN"}, "SCHEMA_PATTERN", "/MA_QUOCTICH"),
    "r1-required-empty": (GBT, lambda f: {**f, "DCHI_THUONGTRU": ""}, "SCHEMA_REQUIRED_EMPTY", "/DCHI_THUONGTRU"),
    "r1-required-absent": (GBT, _without("SO_BAOTU"), "SCHEMA_REQUIRED_MISSING", "/SO_BAOTU"),
    "r1-length": (GBT, lambda f: {**f, "MA_BN": "B" * 200}, "SCHEMA_TOO_LONG", "/MA_BN"),
    "pl02-length": (GBT, lambda f: {**f, "NOI_CAP": "N" * 300}, "SCHEMA_TOO_LONG", "/NOI_CAP"),
    "r1-order": (GBT, _swap("NGUOI_GHIGIAY", "NGUOI_THANTHICH"), "SCHEMA_ORDER", "/NGUOI_GHIGIAY"),
    "gcs-r3-required": (GCS, lambda f: {**f, "CAN_NANG_CON": ""}, "SCHEMA_REQUIRED_EMPTY", "/CAN_NANG_CON"),
}


@pytest.mark.parametrize(
    ("doc_type", "change", "code", "path"), DISPUTED_VARIANTS.values(), ids=list(DISPUTED_VARIANTS)
)
def test_disputed_shapes_warn_in_portal_mode_and_refuse_in_strict(
    doc_type: DocumentType, change: Callable[[dict[str, str]], dict[str, str]], code: str, path: str
) -> None:
    root = parse_xml(_xml(doc_type, change(_BASE[doc_type])))
    (strict,) = validate_schema(doc_type, root, Strictness.STRICT)
    (portal,) = validate_schema(doc_type, root, Strictness.PORTAL)
    assert (strict.code, strict.path, strict.severity) == (code, doc_type.path() + path, Severity.ERROR)
    assert (portal.code, portal.path, portal.severity) == (code, doc_type.path() + path, Severity.WARNING)
    assert portal.grade in {"CONFIRMED", "OBSERVED", "RECONSTRUCTED"} and portal.source


def test_outside_every_source_is_refused_in_both_modes() -> None:
    root = parse_xml(_xml(GBT, {**_BASE[GBT], "MA_BN": "B" * 256, "MA_QUOCTICH": "V"}))
    for mode in Strictness:
        findings = validate_schema(GBT, root, mode)
        assert {(f.code, f.severity) for f in findings} == {
            ("SCHEMA_TOO_LONG", Severity.ERROR),
            ("SCHEMA_PATTERN", Severity.ERROR),
        }
        assert {f.grade for f in findings} == {"CONFIRMED"}


@pytest.mark.parametrize(("doc_type", "change"), VALID_VARIANTS.values(), ids=list(VALID_VARIANTS))
def test_schema_accepts_what_hospitals_send(
    doc_type: DocumentType, change: Callable[[dict[str, str]], dict[str, str]]
) -> None:
    assert _codes(doc_type, _xml(doc_type, change(_BASE[doc_type]))) == []


def test_signature_container_takes_any_namespaced_content() -> None:
    signed = _xml(GCS, _BASE[GCS]).replace(
        b"<CHUKYDONVI/>",
        b'<CHUKYDONVI><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><X/></Signature></CHUKYDONVI>',
    )
    assert _codes(GCS, signed) == []


def test_missing_id_attribute() -> None:
    data = _xml(GCS, _BASE[GCS]).replace(b' Id="Id-test"', b"")
    assert _codes(GCS, data) == ["SCHEMA_ATTRIBUTE"]


def test_root_mismatch_names_expected_and_received() -> None:
    root = parse_xml(_xml(GBT, _BASE[GBT]))
    (finding,) = check_structure(GCS, root)
    assert (finding.code, finding.expected, finding.received) == ("XML_ROOT_MISMATCH", "HSDLGCS", "HSDLGBT")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<HSDLGCS><CHUKYDONVI/></HSDLGCS>", "XML_DATA_MISSING"),
        (
            b'<HSDLGCS><GIAYCHUNGSINH Id="a"/><GIAYCHUNGSINH Id="b"/><CHUKYDONVI/></HSDLGCS>',
            "XML_DATA_MULTIPLE",
        ),
    ],
    ids=["data-missing", "data-multiple"],
)
def test_structure_findings(data: bytes, code: str) -> None:
    assert [f.code for f in check_structure(GCS, parse_xml(data))] == [code]


def test_schema_validation_is_thread_safe() -> None:
    good, bad = _xml(GCS, _BASE[GCS]), _xml(GCS, {**_BASE[GCS], "SO_CON": "x"})
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda i: _codes(GCS, bad if i % 2 else good), range(100)))
    assert results.count([]) == 50 and results.count(["SCHEMA_PATTERN"]) == 50


FIRST_COMPILES = """
import threading
from fixtures.certificates import SCENARIOS, build_xml, scenario
from mock_portal.documents import parse_xml, validate_schema

docs = [(dt, build_xml(dt, fields, data_id="Id-test")) for name in list(SCENARIOS)[:4] for dt, fields in scenario(name)]
start, results = threading.Barrier(16), []

def first_validation(i):
    doc_type, data = docs[i % len(docs)]
    start.wait()
    try:
        results.append(len(validate_schema(doc_type, parse_xml(data))))
    except Exception as exc:
        results.append(repr(exc))

threads = [threading.Thread(target=first_validation, args=(i,)) for i in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(results)
"""


def test_the_first_schema_compiles_of_a_fresh_process_may_run_at_once() -> None:
    """libxml2 sets up its built-in schema types on the first compile, unguarded: sixteen threads of a
    fresh worker process compiling both document types' XSDs at once broke them for the whole process
    (every later compile failed, so every document of that worker answered MaKetQua 500) or hung it.
    Each run is a new interpreter, so the first compiles race for real; without the lock about one
    run in two failed."""
    for _ in range(8):
        run = subprocess.run(
            [sys.executable, "-c", FIRST_COMPILES], capture_output=True, text=True, timeout=60, check=True
        )
        assert run.stdout.strip() == str([0] * 16), run.stdout + run.stderr


# Issue 25: SCHEMA_ORDER names the element that moved, not its neighbours ----------------------------------


def _moved_to(data: bytes, doc_type: DocumentType, name: str, index: int) -> etree._Element:
    root = parse_xml(data)
    element = root.find(f"{doc_type.data_tag}/{name}")
    element.getparent().insert(index, element)  # lxml moves it
    return root


def _order_findings(doc_type: DocumentType, root: etree._Element, mode: Strictness) -> list[tuple[str, Severity]]:
    return [(f.path, f.severity) for f in validate_schema(doc_type, root, mode) if f.code == "SCHEMA_ORDER"]


def test_a_field_moved_far_gets_one_finding_naming_it(pki: TestPKI) -> None:
    """The vendor's example: HOTEN_NND moved to second place in a signed GCS gave five findings naming
    MA_BN, MA_CT, SO_SERI, MA_BHXH_NND and MA_THE_NND; now one names HOTEN_NND, in both modes as before."""
    sample = signed_sample(GCS, pki.issue_facility_cert("79001"), facility_code="79001")
    root = _moved_to(sample, GCS, "HOTEN_NND", 1)
    for mode, severity in ((Strictness.PORTAL, Severity.WARNING), (Strictness.STRICT, Severity.ERROR)):
        (finding,) = validate_schema(GCS, root, mode)
        assert (finding.code, finding.path, finding.severity) == ("SCHEMA_ORDER", GCS.path("HOTEN_NND"), severity)
    assert finding.message_en.startswith(
        "<HOTEN_NND> is after <MA_GCS>; the documented order (PL02) puts it after <MA_THE_NND>"
    )
    assert "<HOTEN_NND> đứng sau <MA_GCS>" in finding.message_vi and "sau <MA_THE_NND>" in finding.message_vi
    assert (finding.received, finding.expected) == ("after MA_GCS", "after MA_THE_NND")


def test_a_field_moved_to_the_top_is_placed_among_the_fields_that_stay() -> None:
    fields = _BASE[GBT]
    root = _moved_to(_xml(GBT, fields), GBT, "BENH_ICD10_TEN", 0)
    (finding,) = validate_schema(GBT, root, Strictness.PORTAL)
    assert finding.path == GBT.path("BENH_ICD10_TEN")
    assert finding.message_en.startswith(
        f"<BENH_ICD10_TEN> is before <MA_GBT>; the documented order (PL02) puts it after <{list(fields)[-2]}>"
    )


@pytest.mark.parametrize(
    ("mode", "severity"), [(Strictness.PORTAL, Severity.WARNING), (Strictness.STRICT, Severity.ERROR)]
)
@pytest.mark.parametrize("doc_type", list(DocumentType), ids=lambda d: d.name)
def test_order_findings_are_the_fewest_moves(doc_type: DocumentType, mode: Strictness, severity: Severity) -> None:
    fields = _BASE[doc_type]
    names = list(fields)
    swapped = _swap(names[3], names[4])(fields)
    reversed_ = {name: fields[name] for name in reversed(names)}
    assert _order_findings(doc_type, parse_xml(_xml(doc_type, fields)), mode) == []
    # of two swapped neighbours, the second moved
    assert _order_findings(doc_type, parse_xml(_xml(doc_type, swapped)), mode) == [(doc_type.path(names[3]), severity)]
    assert _order_findings(doc_type, parse_xml(_xml(doc_type, reversed_)), mode) == [
        (doc_type.path(name), severity) for name in reversed(names[:-1])
    ]


# Issue 25: an ordered XSD (xs:sequence) for code generators beside the order-free ones ------------------

XS = "{http://www.w3.org/2001/XMLSchema}"
ROOT = Path(__file__).resolve().parents[1]


@cache
def _ordered_schema(doc_type: DocumentType) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd_path(doc_type, ordered=True))))


def _fields_group(xsd: etree._ElementTree, doc_type: DocumentType) -> etree._Element:
    (group,) = xsd.find(f"{XS}complexType[@name='{doc_type.data_tag}Type']").iterchildren(f"{XS}all", f"{XS}sequence")
    return group


@pytest.mark.parametrize("doc_type", list(DocumentType), ids=lambda d: d.name)
def test_ordered_xsd_is_the_strict_xsd_with_its_fields_in_order(doc_type: DocumentType) -> None:
    """Same elements, types, facets and minOccurs as the order-free `<ROOT>.xsd`, element by element, and
    nothing else differs but `xs:all` → `xs:sequence`; the checked-in file is the generator's output."""
    assert xsd_path(doc_type, ordered=True).read_text(encoding="utf-8") == render_xsd(doc_type, ordered=True)
    free, ordered = (etree.parse(str(xsd_path(doc_type, ordered=flag))) for flag in (False, True))
    free_group, ordered_group = _fields_group(free, doc_type), _fields_group(ordered, doc_type)
    assert ordered_group.tag == f"{XS}sequence" and free_group.tag == f"{XS}all"
    assert [e.get("name") for e in ordered_group] == list(doc_type.field_names)
    by_name = [{e.get("name"): etree.tostring(e) for e in group} for group in (free_group, ordered_group)]
    assert by_name[0] == by_name[1]
    for group in (free_group, ordered_group):
        group.tag, group[:] = f"{XS}all", []
    assert etree.tostring(free, method="c14n", with_comments=False) == etree.tostring(
        ordered, method="c14n", with_comments=False
    )


@pytest.mark.parametrize("doc_type", list(DocumentType), ids=lambda d: d.name)
def test_ordered_xsd_refuses_exactly_what_the_order_check_finds(doc_type: DocumentType) -> None:
    """Its order is the one SCHEMA_ORDER checks: the documented order passes both, and swapping any two
    neighbouring fields is refused by the ordered XSD and named by the check."""
    fields = _BASE[doc_type]
    names = list(fields)
    assert _ordered_schema(doc_type).validate(parse_xml(_xml(doc_type, fields)))
    for first, second in zip(names, names[1:], strict=False):
        root = parse_xml(_xml(doc_type, _swap(first, second)(fields)))
        assert not _ordered_schema(doc_type).validate(root), (first, second)
        assert _order_findings(doc_type, root, Strictness.STRICT) == [(doc_type.path(first), Severity.ERROR)]


def test_ordered_xsd_validates_every_sample_the_fixtures_make(pki: TestPKI) -> None:
    credential = pki.issue_facility_cert("79001")
    samples = [(doc_type, _xml(doc_type, fields)) for _, doc_type, fields in CERTS]
    samples += [
        (doc_type, signed_sample(doc_type, credential, facility_code="79001", profile=profile))
        for doc_type in DocumentType
        for profile in ("two-reference", "enveloped")
    ]
    samples.append((GCS, (ROOT / "examples" / "signing" / "gcs-unsigned.xml").read_bytes()))
    for doc_type, data in samples:
        assert _ordered_schema(doc_type).validate(parse_xml(data)), _ordered_schema(doc_type).error_log
    moved = _moved_to(samples[-1][1], GCS, "HOTEN_NND", 1)  # the issue's example
    r1 = parse_xml(_xml(GBT, {name: _BASE[GBT][name] for name in R1_GBT_ORDER}))
    for doc_type, root in ((GCS, moved), (GBT, r1)):
        assert not _ordered_schema(doc_type).validate(root)
        assert validate_schema(doc_type, root, Strictness.PORTAL)[0].code == "SCHEMA_ORDER"


def test_every_published_xsd_is_linked_and_documented() -> None:
    """The trigger schema links the validating and the ordered XSDs; docs/documents.md says what each is for."""
    links = json.loads((ROOT / "conformance" / "trigger.schema.json").read_text(encoding="utf-8"))["xsd"]
    schema_dir = ROOT / "conformance"
    for doc_type in DocumentType:
        assert (schema_dir / links[doc_type.name]).resolve() == xsd_path(doc_type).resolve()
        assert (schema_dir / links["ordered"][doc_type.name]).resolve() == xsd_path(doc_type, ordered=True).resolve()
    section = (ROOT / "docs" / "documents.md").read_text(encoding="utf-8").split("## Which XSD for what", 1)[1]
    for path in xsd_path(GCS).parent.glob("*.xsd"):
        assert f"`{path.name}`" in section, path.name
