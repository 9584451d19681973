"""Structure and XSD checks of a parsed document, reported as `SCHEMA_*`/`XML_*` findings."""

from __future__ import annotations

import re
import threading

from lxml import etree

from ..findings import Finding, Severity
from .doctypes import DocumentType
from .xsdgen import xsd_path

_local = threading.local()


def _schema(doc_type: DocumentType) -> etree.XMLSchema:
    """Compile each XSD once per thread: `XMLSchema.validate` keeps its error log on the object."""
    cache: dict[DocumentType, etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = _local.schemas = {}
    if doc_type not in cache:
        cache[doc_type] = etree.XMLSchema(etree.parse(str(xsd_path(doc_type))))
    return cache[doc_type]


def _error(code: str, vi: str, en: str, **extra: str | None) -> Finding:
    return Finding(code, Severity.ERROR, vi, en, **extra)


def check_structure(doc_type: DocumentType, root: etree._Element) -> list[Finding]:
    """The envelope matches `loaiHs`: right root, exactly one data element."""
    if root.tag != doc_type.root_tag:
        return [
            _error(
                "XML_ROOT_MISMATCH",
                f"Phần tử gốc là <{root.tag}> nhưng loaiHs {doc_type.loai_hs} cần <{doc_type.root_tag}>.",
                f"Root element <{root.tag}>, but loaiHs {doc_type.loai_hs} needs <{doc_type.root_tag}>.",
                path=f"/{root.tag}",
                expected=doc_type.root_tag,
                received=str(root.tag),
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


def validate_schema(doc_type: DocumentType, root: etree._Element) -> list[Finding]:
    """Validate against the type's XSD; each libxml2 error becomes one specific finding."""
    schema = _schema(doc_type)
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
        expected = _EXPECTED.search(entry.message)
        path = entry.path or None
        missing = _skipped_required(doc_type, root, entry, expected) if code.endswith("UNEXPECTED_ELEMENT") else None
        if missing:
            code, vi, en = ("SCHEMA_REQUIRED_MISSING", "Thiếu trường bắt buộc", "A required field is missing")
            path = f"{path.rsplit('/', 1)[0]}/{missing}" if path else None
        findings.append(
            _error(
                code,
                f"{vi}: {entry.message} (dòng {entry.line})",
                f"{en}: {entry.message} (line {entry.line})",
                path=path,
                expected=missing or (expected.group(1) if expected else None),
                received=None if missing else _received(root, entry, code),
            )
        )
    return findings


def _skipped_required(
    doc_type: DocumentType, root: etree._Element, entry: etree._LogEntry, expected: re.Match[str] | None
) -> str | None:
    """libxml2 reports a skipped required field as "next element not expected": name the field."""
    if expected is None or not entry.path:
        return None
    required = {f.name for f in doc_type.fields if f.required} | {doc_type.data_tag, "CHUKYDONVI"}
    try:
        nodes = root.getroottree().xpath(entry.path)
    except etree.XPathError:
        return None
    parent = nodes[0].getparent() if nodes and isinstance(nodes[0], etree._Element) else None
    if parent is None:
        return None
    present = {child.tag for child in parent}
    names = [name.strip() for name in expected.group(1).split(",")]
    return next((name for name in names if name in required and name not in present), None)


def fields_of(data_element: etree._Element) -> dict[str, str]:
    """Field name -> text ("" when empty), in document order; comments and PIs are skipped."""
    return {str(child.tag): "".join(child.itertext()) for child in data_element if isinstance(child.tag, str)}
