"""Structure and XSD checks of a parsed document, reported as `SCHEMA_*`/`XML_*` findings."""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from dataclasses import replace
from functools import cache

from lxml import etree

from ..results.findings import Finding, Severity
from ..results.grades import Action, Evidence, Grade, Strictness
from .doctypes import DocumentType
from .sources import R1_GBT_ORDER, field_evidence, field_table
from .xsdgen import xsd_path

_local = threading.local()
_compiling = threading.Lock()
"""libxml2 sets up its built-in schema types on the first compile, unguarded: two threads compiling at
once can leave them broken for the whole process (every later compile fails with "the given type is
not a built-in type", so every document of that worker got MaKetQua 500). Compiles take turns."""


def _schema(doc_type: DocumentType, portal: bool) -> etree.XMLSchema:
    """Compile each XSD once per thread: `XMLSchema.validate` keeps its error log on the object."""
    cache: dict[tuple[DocumentType, bool], etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = _local.schemas = {}
    if (doc_type, portal) not in cache:
        with _compiling:
            cache[doc_type, portal] = etree.XMLSchema(etree.parse(str(xsd_path(doc_type, portal=portal))))
    return cache[doc_type, portal]


def compile_schemas() -> None:
    """Compile every XSD on this thread now, so a server process has done libxml2's first compile
    before its threads and requests can race for it (see `_compiling`)."""
    for doc_type in DocumentType:
        for portal in (False, True):
            _schema(doc_type, portal)


def _error(code: str, vi: str, en: str, **extra: str | None) -> Finding:
    return Finding(code, Severity.ERROR, vi, en, **extra)


def check_structure(doc_type: DocumentType, root: etree._Element) -> list[Finding]:
    """The envelope matches `loaiHs`: right root, exactly one data element."""
    tag = str(root.tag)  # a parsed element's tag is a str (lxml's stubs allow bytes and QName)
    if tag != doc_type.root_tag:
        return [
            _error(
                "XML_ROOT_MISMATCH",
                f"Phần tử gốc là <{tag}> nhưng loaiHs {doc_type.loai_hs} cần <{doc_type.root_tag}>.",
                f"Root element <{tag}>, but loaiHs {doc_type.loai_hs} needs <{doc_type.root_tag}>.",
                path=f"/{tag}",
                expected=doc_type.root_tag,
                received=tag,
            )
        ]
    found = root.findall(doc_type.data_tag)
    if not found:
        return [
            _error(
                "XML_DATA_MISSING",
                f"Thiếu phần tử dữ liệu <{doc_type.data_tag}>.",
                f"The data element <{doc_type.data_tag}> is missing.",
                path=doc_type.path(),
                expected=doc_type.data_tag,
            )
        ]
    if len(found) > 1:
        return [
            _error(
                "XML_DATA_MULTIPLE",
                f"Có {len(found)} phần tử <{doc_type.data_tag}>; mỗi tệp chỉ một giấy.",
                f"There are {len(found)} <{doc_type.data_tag}> elements; one certificate per file.",
                path=doc_type.path(),
                expected="1",
                received=str(len(found)),
            )
        ]
    return []


_ELEMENT = re.compile(r"Element '([^']+)'")
_EXPECTED = re.compile(r"Expected is (?:one of )?\( ([^)]*) \)")
_VALUE_ERRORS = ("SCHEMA_TOO_LONG", "SCHEMA_REQUIRED_EMPTY", "SCHEMA_PATTERN", "SCHEMA_INVALID")


def _classify(entry: etree._LogEntry) -> tuple[str, str, str] | None:
    """Map one libxml2 schema error to (code, vi, en); None for errors that repeat a previous one."""
    kind = entry.type_name
    msg = entry.message
    if kind == "SCHEMAV_CVC_DATATYPE_VALID_1_2_1":
        return None  # libxml2's generic echo of the facet error just reported
    if "Missing child element" in msg:
        return ("SCHEMA_REQUIRED_MISSING", "Thiếu trường bắt buộc", "A required field is missing")
    if kind in ("SCHEMAV_CVC_COMPLEX_TYPE_2_4", "SCHEMAV_ELEMENT_CONTENT"):
        return (
            "SCHEMA_UNEXPECTED_ELEMENT",
            "Phần tử không mong đợi hoặc sai thứ tự",
            "Unexpected or out-of-order element",
        )
    if kind == "SCHEMAV_CVC_MAXLENGTH_VALID":
        return ("SCHEMA_TOO_LONG", "Giá trị vượt độ dài tối đa", "The value exceeds the maximum length")
    if kind == "SCHEMAV_CVC_MINLENGTH_VALID":
        return ("SCHEMA_REQUIRED_EMPTY", "Trường bắt buộc để trống", "A required field is empty")
    if kind == "SCHEMAV_CVC_PATTERN_VALID":
        return ("SCHEMA_PATTERN", "Giá trị sai định dạng", "The value does not match the required format")
    if kind in ("SCHEMAV_CVC_COMPLEX_TYPE_4", "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1", "SCHEMAV_CVC_ATTRIBUTE_1"):
        return ("SCHEMA_ATTRIBUTE", "Thuộc tính thiếu hoặc không hợp lệ", "Missing or invalid attribute")
    return ("SCHEMA_INVALID", "Tài liệu không đúng lược đồ", "The document does not match the schema")


def _received(root: etree._Element, entry: etree._LogEntry, code: str) -> str | None:
    """The offending value for value errors, the offending element name otherwise."""
    if code in _VALUE_ERRORS and entry.path:
        try:
            nodes = root.getroottree().xpath(entry.path)
        except etree.XPathError:
            nodes = []
        if nodes and isinstance(nodes[0], etree._Element) and len(nodes[0]) == 0:
            return "".join(nodes[0].itertext())[:300]
    if code == "SCHEMA_REQUIRED_MISSING":
        return None
    element = _ELEMENT.search(entry.message)
    return element.group(1) if element else None


_CONSTRAINT = {
    "SCHEMA_REQUIRED_MISSING": "presence",
    "SCHEMA_REQUIRED_EMPTY": "presence",
    "SCHEMA_TOO_LONG": "length",
    "SCHEMA_PATTERN": "pattern",
    "SCHEMA_ORDER": "order",
}
_STRUCTURE = Evidence(
    Grade.OBSERVED, "PL02 via R2/R3/R12", "element names and the Id attribute of the PL02 vendors", Action.REFUSE
)


def validate_schema(
    doc_type: DocumentType, root: etree._Element, strictness: Strictness = Strictness.STRICT
) -> list[Finding]:
    """Validate against both XSDs and the field order; each problem becomes one graded finding.

    A problem the `portal` XSD finds contradicts every source: an error in both modes. One only the
    `strict` XSD (or the order check) finds is where the sources disagree: an error in `strict`
    mode, a warning in `portal` mode."""
    strict = _xsd_findings(doc_type, root, portal=False)
    refused = (
        _xsd_findings(doc_type, root, portal=True) if strict else []
    )  # the strict shape lies inside the portal one
    keys = {(f.code, f.path) for f in refused}
    disputed = [f for f in strict if (f.code, f.path) not in keys] + check_order(doc_type, root)
    soft = Severity.ERROR if strictness is Strictness.STRICT else Severity.WARNING
    return [_graded(doc_type, f, True, Severity.ERROR) for f in refused] + [
        _graded(doc_type, f, False, soft) for f in disputed
    ]


def _graded(doc_type: DocumentType, finding: Finding, refused: bool, severity: Severity) -> Finding:
    constraint = _CONSTRAINT.get(finding.code)
    name = (finding.path or "").rsplit("/", 1)[-1].split("[", 1)[0]
    evidence = (
        _STRUCTURE if constraint is None else field_evidence(doc_type, name, constraint, refused_in_portal=refused)
    )
    return replace(finding, severity=severity, grade=evidence.grade.value, source=evidence.source)


def _xsd_findings(doc_type: DocumentType, root: etree._Element, *, portal: bool) -> list[Finding]:
    """Each libxml2 error of one XSD as one specific finding; missing required fields named one by one."""
    schema = _schema(doc_type, portal)
    if schema.validate(root):
        return []
    findings: list[Finding] = []
    seen: set[tuple[str | None, str]] = set()
    for entry in schema.error_log:
        classified = _classify(entry)
        if classified is None or (entry.path, entry.message) in seen:
            continue
        seen.add((entry.path, entry.message))
        code, vi, en = classified
        if code == "SCHEMA_REQUIRED_MISSING":
            findings += _missing(doc_type, root, portal=portal)
            continue
        expected = _EXPECTED.search(entry.message)
        findings.append(
            _error(
                code,
                f"{vi}: {entry.message} (dòng {entry.line})",
                f"{en}: {entry.message} (line {entry.line})",
                path=entry.path or None,
                expected=expected.group(1) if expected else None,
                received=_received(root, entry, code),
            )
        )
    return findings


def _missing(doc_type: DocumentType, root: etree._Element, *, portal: bool) -> list[Finding]:
    data = root.find(doc_type.data_tag)
    present = {child.tag for child in data} if data is not None else set()
    return [
        _error(
            "SCHEMA_REQUIRED_MISSING",
            f"Thiếu trường bắt buộc <{spec.name}>",
            f"The required field <{spec.name}> is missing",
            path=doc_type.path(spec.name),
            expected=spec.name,
        )
        for spec in field_table(doc_type, portal=portal)
        if spec.required and spec.name not in present
    ]


def check_order(doc_type: DocumentType, root: etree._Element) -> list[Finding]:
    """One finding per field that moved out of the PL02 order, naming that field (an R1-ordered GBT is
    named as such). The fields of a longest run already in order stay where they are; the others are the
    fewest moves that restore the order, so one field moved far yields one finding, not one per
    neighbour it jumped over."""
    data = root.find(doc_type.data_tag)
    if data is None:
        return []
    rank = _rank(doc_type)
    names = [str(child.tag) for child in data if isinstance(child.tag, str) and child.tag in rank]
    note = (
        " (the order of the portal's 2023 table, R1)"
        if doc_type is DocumentType.GBT and _sorted_by(names, _R1_RANK)
        else ""
    )
    kept = _kept([rank[name] for name in names])
    staying = [names[i] for i in sorted(kept)]
    return [_moved(doc_type, names, i, staying, note) for i in range(len(names)) if i not in kept]


def _kept(ranks: list[int]) -> set[int]:
    """The indices of a longest non-decreasing subsequence of `ranks`, in O(n log n). Of several, the one
    that keeps the earliest elements of the document: of two swapped neighbours, the second moved."""
    starts = [0] * len(ranks)  # the length of the longest such subsequence starting at each index
    tails: list[int] = []  # tails[k]: the highest rank that starts one of length k + 1, negated
    for i in reversed(range(len(ranks))):
        k = bisect_right(tails, -ranks[i])
        tails[k : k + 1] = [-ranks[i]]
        starts[i] = k + 1
    kept, need, last = set(), len(tails), -1
    for i, (r, start) in enumerate(zip(ranks, starts, strict=True)):
        if start == need and r >= last:
            kept.add(i)
            need, last = need - 1, r
    return kept


def _moved(doc_type: DocumentType, names: list[str], i: int, staying: list[str], note: str) -> Finding:
    """The finding for the moved field `names[i]`: where it is, and where the PL02 order puts it among the
    fields that stay (a moved field always has a neighbour and at least one field stays)."""
    name, rank = names[i], _rank(doc_type)
    place = bisect_left(staying, rank[name], key=rank.__getitem__)
    at = ("đứng sau", "after", names[i - 1]) if i else ("đứng trước", "before", names[1])
    to = ("sau", "after", staying[place - 1]) if place else ("trước", "before", staying[0])
    return _error(
        "SCHEMA_ORDER",
        f"<{name}> {at[0]} <{at[2]}>; thứ tự quy định (PL02) đặt nó {to[0]} <{to[2]}>{note}",
        f"<{name}> is {at[1]} <{at[2]}>; the documented order (PL02) puts it {to[1]} <{to[2]}>{note}",
        path=doc_type.path(name),
        expected=f"{to[1]} {to[2]}",
        received=f"{at[1]} {at[2]}",
    )


_R1_RANK = {name: i for i, name in enumerate(R1_GBT_ORDER)}


@cache
def _rank(doc_type: DocumentType) -> dict[str, int]:
    return {name: i for i, name in enumerate(doc_type.field_names)}


def _sorted_by(names: list[str], rank: dict[str, int]) -> bool:
    ranks = [rank[n] for n in names if n in rank]
    return ranks == sorted(ranks)


def fields_of(data_element: etree._Element) -> dict[str, str]:
    """Field name -> text ("" when empty), in document order; comments and PIs are skipped."""
    return {
        str(child.tag): (child.text or "") if not len(child) else "".join(child.itertext())  # a leaf: its text
        for child in data_element
        if isinstance(child.tag, str)
    }
