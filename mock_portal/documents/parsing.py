"""Hardened parsing: the only place the project turns untrusted bytes into an XML tree.

Exceptions of this package::

    DocumentError            a document cannot be used at all; carries the `Finding` that says why
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass

from lxml import etree

from ..results.findings import Finding, Severity

_UTF8_BOM = b"\xef\xbb\xbf"
# How a document that is not UTF-8 starts (XML 1.0 Appendix F): with a byte order mark, or "<?" in
# the encoding's own bytes. UTF-32 before UTF-16: FF FE 00 00 also starts with UTF-16LE's mark.
_FOREIGN_STARTS = (
    (b"\x00\x00\xfe\xff", "UTF-32BE"),
    (b"\xff\xfe\x00\x00", "UTF-32LE"),
    (b"\x00\x00\xff\xfe", "UTF-32 (2143)"),
    (b"\xfe\xff\x00\x00", "UTF-32 (3412)"),
    (b"\x00\x00\x00<", "UTF-32BE"),
    (b"<\x00\x00\x00", "UTF-32LE"),
    (b"\x00\x00<\x00", "UTF-32 (2143)"),
    (b"\x00<\x00\x00", "UTF-32 (3412)"),
    (b"\xfe\xff", "UTF-16BE"),
    (b"\xff\xfe", "UTF-16LE"),
    (b"\x00<", "UTF-16BE"),
    (b"<\x00", "UTF-16LE"),
    (b"\x4c\x6f\xa7\x94", "EBCDIC"),
)
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


@dataclass(frozen=True)
class ParseLimits:
    """What the portal is willing to parse; refuse anything bigger before building a tree."""

    max_bytes: int = 5 * 1024 * 1024
    """Largest document accepted, in bytes (the real portal's 1001 threshold is undocumented)."""
    max_depth: int = 64
    """Deepest element nesting accepted; GCS/GBT need 3 levels plus the signature's ~6."""
    max_elements: int = 5_000
    """Most elements accepted; a GCS/GBT has ~60 with its signature. Bounds the work of every later step."""
    max_attributes: int = 32
    """Most attributes (namespace declarations included) on one element; real files carry at most ~4.
    Canonicalisation sorts them at a superlinear cost: 50,000 on one element cost seconds of CPU."""


class DocumentError(Exception):
    """The document cannot be processed further; `.finding` says why, in both languages."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.code}: {finding.message_en}")
        self.finding = finding


def _fail(code: str, vi: str, en: str, **extra: str | None) -> DocumentError:
    return DocumentError(Finding(code, Severity.ERROR, vi, en, **extra))


_local = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread: lxml parsers are not thread-safe and keep a per-parser error log."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_pis=True,
            remove_blank_text=False,
            remove_comments=False,
            dtd_validation=False,
        )
        _local.parser = parser
    return parser


def _check_prolog(data: bytes, limits: ParseLimits) -> None:
    if len(data) > limits.max_bytes:
        raise _fail(
            "XML_TOO_LARGE",
            f"Tệp quá lớn: {len(data)} byte, tối đa {limits.max_bytes} byte.",
            f"File too large: {len(data)} bytes, the limit is {limits.max_bytes} bytes.",
            expected=f"<= {limits.max_bytes}",
            received=str(len(data)),
        )
    if not data.strip():
        raise _fail("XML_EMPTY", "Tệp rỗng.", "The file is empty.")
    if data.startswith(_UTF8_BOM):
        raise _fail(
            "XML_BOM",
            "Tệp có BOM UTF-8; cổng yêu cầu UTF-8 không có BOM.",
            "The file starts with a UTF-8 byte order mark; the portal requires UTF-8 without BOM.",
            expected="UTF-8 without BOM",
            received="UTF-8 with BOM",
        )
    foreign = next((name for start, name in _FOREIGN_STARTS if data.startswith(start)), None)
    if foreign is not None:
        raise _fail(
            "XML_ENCODING",
            f"Tệp không mã hoá UTF-8 (có vẻ là {foreign}); cổng yêu cầu UTF-8.",
            f"The file is not UTF-8 (it looks like {foreign}); the portal requires UTF-8.",
            expected="UTF-8",
            received=foreign,
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(
            "XML_ENCODING",
            f"Tệp không phải UTF-8 hợp lệ (byte {exc.start}: {data[exc.start : exc.start + 4].hex(' ')}); cổng yêu "
            "cầu UTF-8.",
            f"The file is not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 4].hex(' ')}); the "
            "portal requires UTF-8 (was it saved as Windows-1258 or Latin-1?).",
            expected="UTF-8",
            received=f"invalid UTF-8 at byte {exc.start}",
        ) from exc
    declared = _DECLARED_ENCODING.match(data)
    if declared and declared.group(1).decode("ascii").lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise _fail(
            "XML_ENCODING",
            f"Khai báo mã hoá '{declared.group(1).decode('ascii')}' không được chấp nhận; phải là UTF-8.",
            f"Declared encoding '{declared.group(1).decode('ascii')}' is not accepted; it must be UTF-8.",
            expected="utf-8",
            received=declared.group(1).decode("ascii"),
        )
    # Cheap pre-checks so that hostile DTDs never reach libxml2 at all.
    if _ENTITY_DECL.search(data):
        raise _entity_error()
    if _DOCTYPE.search(data):
        raise _dtd_error()


def _dtd_error() -> DocumentError:
    return _fail(
        "XML_DTD_FORBIDDEN",
        "Tệp chứa khai báo DOCTYPE/DTD; không được phép.",
        "The file contains a DOCTYPE/DTD declaration, which is forbidden.",
    )


def _entity_error() -> DocumentError:
    return _fail(
        "XML_ENTITY_FORBIDDEN",
        "Tệp chứa khai báo thực thể (ENTITY); không được phép.",
        "The file declares entities (ENTITY), which is forbidden.",
    )


def _within_limits(root: etree._Element, limits: ParseLimits) -> bool:
    """Whether the tree keeps every limit `_check_shape` and `_check_namespaces` judge, in one walk
    (`iterwalk`: its namespace-declaration events give each element's in-scope namespaces without
    `nsmap`, which rebuilds them from every ancestor and cost most of two walks). It stops at the first
    node over a limit, and at one node over the count, before a huge tree costs a proxy per node. A tree
    it refuses is walked again by those two, which name its offence as they always have."""
    count, depth = 0, 0
    scopes: list[dict[str | None, str]] = [{}]
    declared: dict[str | None, str] = {}
    for event, item in etree.iterwalk(root, events=("start", "end", "start-ns", "comment", "pi")):
        if isinstance(item, tuple):  # start-ns: (prefix, uri), before its element's start
            declared[item[0] or None] = item[1]
        elif event == "end":
            depth -= 1
            scopes.pop()
        else:  # an element's start, a comment or a processing instruction: one node, one level down
            count += 1
            if count > limits.max_elements or depth + 1 > limits.max_depth:
                return False
            if event != "start" or item is None:
                continue
            depth += 1
            scope = scopes[-1]
            if declared:
                if any(uri and not _ABSOLUTE_URI.match(uri) for uri in declared.values()):
                    return False
                scope, declared = {**scope, **declared}, {}
            scopes.append(scope)
            if len(item.attrib) + len(scope) > limits.max_attributes:
                return False
    return True


def _check_shape(root: etree._Element, limits: ParseLimits) -> None:
    """Refuse over-large, over-wide or over-deep trees before any canonicalisation, schema or signature
    work is spent on them. The nodes are counted first, stopping at one over the limit: 5 MiB of empty
    elements (1.3 M) would otherwise each get a Python proxy before the count could refuse them. Then
    the (bounded) walk, iterative: no recursion limit to hit."""
    if sum(1 for _ in itertools.islice(root.iter(), limits.max_elements + 1)) > limits.max_elements:
        raise _fail(
            "XML_TOO_MANY_ELEMENTS",
            f"Tệp có quá nhiều phần tử (hơn {limits.max_elements}).",
            f"The file has too many elements (more than {limits.max_elements}).",
            expected=f"<= {limits.max_elements}",
            received=f"> {limits.max_elements}",
        )
    max_depth, stack = limits.max_depth, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        width = len(node.attrib) + len(node.nsmap) if isinstance(node.tag, str) else 0
        if width > limits.max_attributes:
            raise _fail(
                "XML_TOO_MANY_ATTRIBUTES",
                f"Phần tử {etree.QName(node).localname} có quá nhiều thuộc tính ({width}, tối đa "
                f"{limits.max_attributes}).",
                f"Element {etree.QName(node).localname} has too many attributes ({width}, at most "
                f"{limits.max_attributes}).",
                path=root.getroottree().getpath(node),
                expected=f"<= {limits.max_attributes}",
                received=str(width),
            )
        if depth > max_depth:
            raise _fail(
                "XML_TOO_DEEP",
                f"Cấu trúc XML lồng quá sâu (hơn {max_depth} cấp).",
                f"The XML nests too deeply (more than {max_depth} levels).",
                expected=f"<= {max_depth}",
                received=str(depth),
            )
        stack.extend((child, depth + 1) for child in node)


def _check_namespaces(root: etree._Element) -> None:
    """Every namespace name must be an absolute URI: canonicalisation (C14N 1.0) fails on a relative one
    (`xmlns:n="u"`), so such a file cannot carry a verifiable signature."""
    for node in root.iter(tag=etree.Element):
        for prefix, uri in node.nsmap.items():
            if uri and not _ABSOLUTE_URI.match(uri):
                declared = f"xmlns:{prefix}" if prefix else "xmlns"
                raise _fail(
                    "XML_NAMESPACE_RELATIVE",
                    f'Khai báo {declared}="{uri}" dùng URI tương đối; namespace phải là URI tuyệt đối.',
                    f'{declared}="{uri}" is a relative URI; namespace names must be absolute URIs '
                    "(canonicalisation refuses relative ones).",
                    path=root.getroottree().getpath(node),
                    expected="absolute URI",
                    received=uri[:200],
                )


def parse_xml(data: bytes, limits: ParseLimits = ParseLimits()) -> etree._Element:  # noqa: B008
    """Parse an untrusted document or raise `DocumentError` with the reason as a finding."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("parse_xml takes bytes")
    data = bytes(data)
    _check_prolog(data, limits)
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        entry = parser.error_log.last_error if parser.error_log else None
        line = entry.line if entry is not None else exc.lineno
        detail = entry.message if entry is not None else str(exc)
        if "depth" in detail.lower() or "huge" in detail.lower():
            raise _fail(
                "XML_TOO_DEEP",
                f"XML vượt giới hạn của bộ phân tích (dòng {line}): {detail}",
                f"The XML exceeds the parser's limits (line {line}): {detail}",
            ) from exc
        raise _fail(
            "XML_NOT_WELL_FORMED",
            f"Tệp không phải XML hợp lệ (dòng {line}): {detail}",
            f"The file is not well-formed XML (line {line}): {detail}",
            received=f"line {line}",
        ) from exc
    if root is None:
        raise _fail("XML_EMPTY", "Tệp rỗng.", "The file is empty.")
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise _dtd_error()
    if not _within_limits(root, limits):
        _check_shape(root, limits)
        _check_namespaces(root)
    return root
