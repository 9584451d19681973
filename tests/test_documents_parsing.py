"""Hardened parsing: hostile inputs get their specific finding, quickly, and never an exception."""

from __future__ import annotations

import dataclasses
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from lxml import etree

import mock_portal.documents as documents
from fixtures.certificates import build_xml, scenario
from mock_portal.documents import DocumentError, DocumentType, ParseLimits, parse_xml
from mock_portal.documents import parsing as parsing_module
from mock_portal.results.findings import Severity

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(f'<!ENTITY lol{i} "{"&lol{};".format(i - 1 if i > 1 else "") * 10}">'.encode() for i in range(1, 10))
    + b"]><lolz>&lol9;</lolz>"
)
VALID = build_xml(*scenario("gcs_normal")[0])

HOSTILE = {
    "internal-dtd": (
        b'<?xml version="1.0"?><!DOCTYPE HSDLGCS [<!ELEMENT HSDLGCS ANY>]><HSDLGCS/>',
        "XML_DTD_FORBIDDEN",
    ),
    "external-dtd": (b'<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd"><r/>', "XML_DTD_FORBIDDEN"),
    "lowercase-doctype": (b"<!doctype r><r/>", "XML_DTD_FORBIDDEN"),
    "external-entity": (
        b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>',
        "XML_ENTITY_FORBIDDEN",
    ),
    "parameter-entity": (
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://example.invalid/p">%p;]><r/>',
        "XML_ENTITY_FORBIDDEN",
    ),
    "billion-laughs": (BILLION_LAUGHS, "XML_ENTITY_FORBIDDEN"),
    "deep-nesting-100": (b"<a>" * 100 + b"</a>" * 100, "XML_TOO_DEEP"),
    "deep-nesting-100000": (b"<a>" * 100_000 + b"</a>" * 100_000, "XML_TOO_DEEP"),
    "utf8-bom": (b"\xef\xbb\xbf" + VALID, "XML_BOM"),
    "utf16-le-bom": (VALID.decode().replace("utf-8", "utf-16").encode("utf-16"), "XML_ENCODING"),
    "utf16-no-bom": ("<a/>".encode("utf-16-le"), "XML_ENCODING"),
    "latin1-declared": (b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>', "XML_ENCODING"),
    "not-xml": (b"fileBase64Str=SGVsbG8=", "XML_NOT_WELL_FORMED"),
    "json": (b'{"MaKetQua": "200"}', "XML_NOT_WELL_FORMED"),
    "truncated": (VALID.decode()[: len(VALID.decode()) // 2].encode(), "XML_NOT_WELL_FORMED"),  # at a character
    "bad-utf8": (b"<a>\xff\xfe</a>", "XML_ENCODING"),
    "two-roots": (b"<a/><b/>", "XML_NOT_WELL_FORMED"),
    "empty": (b"", "XML_EMPTY"),
    "whitespace": (b"  \n ", "XML_EMPTY"),
}


@pytest.mark.parametrize(("data", "code"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_input_gives_specific_finding_quickly(data: bytes, code: str) -> None:
    started = time.perf_counter()
    with pytest.raises(DocumentError) as info:
        parse_xml(data)
    assert time.perf_counter() - started < 1.0
    finding = info.value.finding
    assert (finding.code, finding.severity) == (code, Severity.ERROR)
    assert finding.message_vi and finding.message_en and finding.message_vi != finding.message_en


def test_oversize_is_refused_before_parsing() -> None:
    with pytest.raises(DocumentError) as info:
        parse_xml(VALID, ParseLimits(max_bytes=len(VALID) - 1))
    assert info.value.finding.code == "XML_TOO_LARGE"
    assert info.value.finding.received == str(len(VALID))


def test_depth_limit_is_configurable() -> None:
    nested = b"<a>" * 10 + b"</a>" * 10
    assert parse_xml(nested, ParseLimits(max_depth=10)).tag == "a"
    with pytest.raises(DocumentError, match="XML_TOO_DEEP"):
        parse_xml(nested, ParseLimits(max_depth=9))


BOUNDARY = {
    "elements": (b"<r>" + b"<e/>" * 9 + b"</r>", ParseLimits(max_elements=10)),
    "elements and a comment": (b"<r>" + b"<e/>" * 9 + b"<!--c--></r>", ParseLimits(max_elements=11)),
    "depth": (b"<a>" * 5 + b"</a>" * 5, ParseLimits(max_depth=5)),
    "depth with a comment": (b"<a>" * 5 + b"<!--c-->" + b"</a>" * 5, ParseLimits(max_depth=6)),
    "attributes": (b'<r><e a="1" b="2" c="3"/></r>', ParseLimits(max_attributes=3)),
    "inherited namespaces": (
        b'<r xmlns:a="urn:a" xmlns:b="urn:b"><e xmlns="urn:e"><f c="1"/></e></r>',
        ParseLimits(max_attributes=4),
    ),
    "a redeclared prefix": (b'<r xmlns:a="urn:a"><e xmlns:a="urn:b" b="1"/></r>', ParseLimits(max_attributes=2)),
    "an undeclared default": (b'<r xmlns="urn:r"><e xmlns=""><f a="1"/></e></r>', ParseLimits(max_attributes=2)),
    "a relative namespace": (b'<r><e><f xmlns:n="n"/></e></r>', ParseLimits()),
    "a relative default namespace deep down": (b'<r xmlns:a="urn:a"><e><f xmlns="a/b:c"/></e></r>', ParseLimits()),
}


@pytest.mark.parametrize(("data", "limits"), list(BOUNDARY.values()), ids=list(BOUNDARY))
def test_the_one_walk_refuses_exactly_what_the_exact_checks_refuse(data: bytes, limits: ParseLimits) -> None:
    """`parse_xml` walks a tree once (`_within_limits`) and names an offence with the exact checks only
    when that walk finds one: at each limit and one past it, both must judge alike."""
    for shrink in (0, 1):
        tighter = dataclasses.replace(
            limits,
            max_elements=limits.max_elements - shrink,
            max_depth=limits.max_depth - shrink,
            max_attributes=limits.max_attributes - shrink,
        )
        root = etree.fromstring(data)
        try:
            parsing_module._check_shape(root, tighter)
            parsing_module._check_namespaces(root)
            exact = True
        except DocumentError:
            exact = False
        assert parsing_module._within_limits(root, tighter) is exact
        assert exact is (shrink == 0 and b":n=" not in data and b'"a/b:c"' not in data)  # at a limit, not past it


def test_not_well_formed_message_names_the_line() -> None:
    with pytest.raises(DocumentError) as info:
        parse_xml(b"<a>\n<b>\n</a>")
    assert re.search(r"line [0-9]+", info.value.finding.message_en)
    assert re.search(r"dòng [0-9]+", info.value.finding.message_vi)


def test_dtd_is_refused_even_if_the_prefilter_misses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The docinfo check after parsing is the real guard; the byte pre-filter only saves work."""
    monkeypatch.setattr(parsing_module, "_DOCTYPE", re.compile(rb"(?!)"))
    with pytest.raises(DocumentError) as info:
        parse_xml(b"<!DOCTYPE r><r/>")
    assert info.value.finding.code == "XML_DTD_FORBIDDEN"


def test_valid_document_parses_and_keeps_whitespace_and_comments() -> None:
    data = VALID.replace(b"<CHUKYDONVI/>", b"<CHUKYDONVI>\n  <!-- c --></CHUKYDONVI>")
    root = parse_xml(data.replace(b"<HSDLGCS ", b"<?pi x?><HSDLGCS ", 1))
    signature_box = root.find("CHUKYDONVI")
    assert signature_box is not None and signature_box.text == "\n  "
    assert isinstance(signature_box[0], etree._Comment)


def test_processing_instructions_are_removed() -> None:
    root = parse_xml(b"<a><?evil x?><b/></a>")
    assert [child.tag for child in root] == ["b"]


def test_parse_limits_is_frozen_with_safe_defaults() -> None:
    limits = ParseLimits()
    assert (limits.max_bytes, limits.max_depth) == (5 * 1024 * 1024, 64)
    with pytest.raises(AttributeError):
        limits.max_depth = 1  # type: ignore[misc]


def test_parsing_is_thread_safe() -> None:
    bad = b"<a><b></a>"
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda i: _outcome(VALID if i % 2 else bad), range(200)))
    assert results.count("HSDLGCS") == 100 and results.count("XML_NOT_WELL_FORMED") == 100


def _outcome(data: bytes) -> str:
    try:
        return str(parse_xml(data).tag)
    except DocumentError as exc:
        return exc.finding.code


@pytest.mark.parametrize(
    ("loai_hs", "expected"), [("61", DocumentType.GCS), ("60", DocumentType.GBT)], ids=["61", "60"]
)
def test_document_type_from_loai_hs(loai_hs: str, expected: DocumentType) -> None:
    assert DocumentType.from_loai_hs(loai_hs) is expected


@pytest.mark.parametrize("loai_hs", ["39", "", "061", "GCS"], ids=["39", "empty", "061", "name"])
def test_unknown_loai_hs_raises_value_error(loai_hs: str) -> None:
    with pytest.raises(ValueError):
        DocumentType.from_loai_hs(loai_hs)


def test_document_type_attributes() -> None:
    gbt = DocumentType.GBT
    assert (gbt.loai_hs, gbt.root_tag, gbt.data_tag, gbt.code_field, gbt.issue_date_field, gbt.code_kind) == (
        "60",
        "HSDLGBT",
        "GIAYBAOTU",
        "MA_GBT",
        "NGAY_CAPGIAYBT",
        "GBT",
    )
    assert DocumentType.GCS.path("MA_GCS") == "/HSDLGCS/GIAYCHUNGSINH/MA_GCS"


def test_public_api_is_pinned() -> None:
    assert sorted(documents.__all__) == [
        "DocumentError",
        "DocumentType",
        "ParseLimits",
        "Rule",
        "RuleContext",
        "check_rules",
        "check_structure",
        "compile_schemas",
        "fields_of",
        "list_rules",
        "parse_xml",
        "validate_schema",
    ]
