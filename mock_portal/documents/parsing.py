"""Hardened parsing: the only place the project turns untrusted bytes into an XML tree.

Exceptions of this package::

    DocumentError            a document cannot be used at all; carries the `Finding` that says why
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree

from ..findings import Finding, Severity

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


@dataclass(frozen=True)
class ParseLimits:
    """What the portal is willing to parse; refuse anything bigger before building a tree."""

    max_bytes: int = 5 * 1024 * 1024
    """Largest document accepted, in bytes (the real portal's 1001 threshold is undocumented)."""
    max_depth: int = 64
    """Deepest element nesting accepted; GCS/GBT need 3 levels plus the signature's ~6."""


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
    if data.startswith(_UTF16_BOMS) or data[:2] in (b"<\x00", b"\x00<"):
        raise _fail(
            "XML_ENCODING",
            "Tệp không mã hoá UTF-8 (UTF-16); cổng yêu cầu UTF-8.",
            "The file is not UTF-8 (it looks like UTF-16); the portal requires UTF-8.",
            expected="UTF-8",
            received="UTF-16",
        )
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


def _check_depth(root: etree._Element, max_depth: int) -> None:
    """Walk iteratively (no recursion limit to hit) and refuse over-deep trees."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise _fail(
                "XML_TOO_DEEP",
                f"Cấu trúc XML lồng quá sâu (hơn {max_depth} cấp).",
                f"The XML nests too deeply (more than {max_depth} levels).",
                expected=f"<= {max_depth}",
                received=str(depth),
            )
        stack.extend((child, depth + 1) for child in node)


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
    _check_depth(root, limits.max_depth)
    return root
