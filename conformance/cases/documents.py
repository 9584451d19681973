"""Document cases (GCS-DOC-*, GBT-DOC-*): what the hospital's files look like to the portal.

Both document types share the same six questions, so the cases come from one table with the IDs
written out (stable, human-chosen), rather than two copies of the same functions. Each case judges
the findings the portal recorded for every file the hospital sent, plus the raw bytes where the
question is about bytes (BOM, DTD, encoding).
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.cases.common import codes_in, files, judge_findings, label
from conformance.evidence import Bundle
from conformance.model import CaseFinding, Level
from conformance.registry import CaseOutcome, Check, SkipCase, case, failed, verdict_of
from mock_portal.fidelity import strict_refuses
from mock_portal.results.grades import Grade

BASIS = {"GCS": "Circular 22/2025 (GCS data set, Mẫu 01/02)", "GBT": "Circular 25/2025 (GBT data set, Mẫu 05)"}
ROOT = {"GCS": "HSDLGCS", "GBT": "HSDLGBT"}

WELL_FORMED = (
    "XML_ENCODING",
    "XML_DTD_FORBIDDEN",
    "XML_ENTITY_FORBIDDEN",
    "XML_NOT_WELL_FORMED",
    "XML_EMPTY",
    "XML_TOO_DEEP",
    "XML_TOO_LARGE",
    "XML_TOO_MANY_ELEMENTS",
    "XML_TOO_MANY_ATTRIBUTES",
    "XML_NAMESPACE_RELATIVE",
    "XML_C14N_FAILED",
    "FILE_BASE64_INVALID",
    "FILE_EMPTY",
)
FORMATS = (
    "RULE_DATE_INVALID",
    "RULE_CCCD_FORMAT",
    "RULE_CCCD_BIRTH_YEAR",
    "RULE_CCCD_SEX",
    "RULE_BHXH_FORMAT",
    "RULE_BHYT_FORMAT",
    "RULE_BHYT_BHXH_MISMATCH",
    "RULE_ETHNICITY_CODE",
    "RULE_NATIONALITY_UNKNOWN",
    "RULE_PROVINCE_CODE",
    "RULE_ICD10_FORMAT",
)
CODE_RULES = ("RULE_CODE_FORMAT", "RULE_CODE_FACILITY", "RULE_CODE_YEAR")
CROSS_FIELD = (
    "RULE_COUNT_RANGE",
    "RULE_COUNT_CONSISTENCY",
    "RULE_BIRTH_WEIGHT",
    "RULE_MOTHER_AGE",
    "RULE_GHI_CHU_FLAGS",
    "RULE_SURROGACY_INCOMPLETE",
    "RULE_GBT_CHRONOLOGY",
    "RULE_FACILITY_MISMATCH",
    "RULE_ISSUE_BEFORE_EVENT",
    "RULE_ISSUE_DATE_FUTURE",
    "RULE_EVENT_IN_FUTURE",
)


FACILITY = ("AUTH_FACILITY_MISMATCH", "AUTH_FACILITY_UNKNOWN", "RULE_CODE_FACILITY", "RULE_FACILITY_MISMATCH")


def _bytes_problems(bundle: Bundle, doc_type: str) -> list[CaseFinding]:
    """What the bytes themselves show: a DTD, or text that is not UTF-8 (a BOM: see the strict-clean case)."""
    problems = []
    for submission in files(bundle, doc_type):
        data = bundle.file_of(submission)
        if data is None:
            continue
        reason = None
        if b"<!DOCTYPE" in data[:4096]:
            reason = "carries a DOCTYPE declaration"
        else:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                reason = f"is not UTF-8 (byte {exc.start})"
        if reason:
            problems.append(CaseFinding(f"{label(submission)}: the file {reason}", submission_ids=(submission["id"],)))
    return problems


def _well_formed(doc_type: str) -> Check:
    def check(bundle: Bundle) -> CaseOutcome:
        problems = _bytes_problems(bundle, doc_type)
        if problems:
            return failed(problems)
        return judge_findings(bundle, doc_type, codes_in(WELL_FORMED), "well-formed UTF-8, no DTD")

    return check


def _right_facility(doc_type: str) -> Check:
    """R2: the real portal accepts a maCskcb of another facility and files the document there. Any sign of
    that — whether the portal under test warned or refused — fails: the document would be mis-filed."""

    def check(bundle: Bundle) -> CaseOutcome:
        judged = [s for s in bundle.hospital_submissions(doc_type) if s.get("findings") is not None]
        if not judged:
            raise SkipCase(f"no {doc_type} file from the hospital reached the portal")
        problems = [
            CaseFinding(
                f"{label(s)}: {f['code']} ({f['severity']}): {f.get('message_en', '')}", submission_ids=(s["id"],)
            )
            for s in judged
            for f in s["findings"]
            if f["code"] in FACILITY
        ]
        ids = [s["id"] for s in judged]
        return verdict_of(
            problems, f"{len(judged)} file(s) sent for and filed under the account's own facility", submissions=ids
        )

    return check


def _strict_clean(doc_type: str) -> Check:
    """Nothing `strict` mode would refuse: no deviation between the sources even where the real portal
    is lax (order, fields R1 requires, lengths, nationality, year-only birth date, BOM, code year)."""

    def check(bundle: Bundle) -> CaseOutcome:
        judged = files(bundle, doc_type)
        problems = [
            CaseFinding(f"{label(s)}: the file starts with a UTF-8 byte order mark", submission_ids=(s["id"],))
            for s in judged
            if (bundle.file_of(s) or b"").startswith(b"\xef\xbb\xbf")
            and not any(f["code"] == "XML_BOM" for f in s.get("findings") or [])
        ]
        problems += [
            CaseFinding(
                f"{label(s)}: {f['code']}{' at ' + f['path'] if f.get('path') else ''} ({f.get('grade') or '?'}):"
                f" {f.get('message_en', '')}",
                submission_ids=(s["id"],),
            )
            for s in judged
            for f in s.get("findings") or []
            if strict_refuses(f["code"], f["severity"])
        ]
        ids = [s["id"] for s in judged]
        return verdict_of(problems, f"{len(judged)} file(s) clean under strict", submissions=ids)

    return check


def _by_codes(doc_type: str, codes: tuple[str, ...], what: str) -> Check:
    return lambda bundle: judge_findings(bundle, doc_type, codes_in(codes), what)


def _code_form(doc_type: str, code_field: str) -> Check:
    """The code rules' refusals, and a code not of the legal form even where the portal only warns: the
    code is printed on the paper and is the key the civil registry finds the data by (Circular 22/2025
    Annex I), so a code of another form is a record nobody can look up. The year stays a refusal only
    (R10 derives it from the accounting year; the portal takes that, a decision of docs/fidelity.md)."""
    what = f"{code_field} well formed, own facility, issue year"
    return lambda bundle: judge_findings(
        bundle, doc_type, codes_in(CODE_RULES), what, even_warned=codes_in(("RULE_CODE_FORMAT",))
    )


def _schema(doc_type: str) -> Check:
    return lambda bundle: judge_findings(bundle, doc_type, lambda c: c.startswith("SCHEMA_"), "valid against the XSD")


@dataclass(frozen=True)
class DocCase:
    suffix: str
    title: str
    build: Check
    grade: Grade
    level: Level = Level.MUST
    result: str = "portal"


def _table(doc_type: str) -> list[DocCase]:
    code_field = "MA_GCS" if doc_type == "GCS" else "MA_GBT"
    return [
        DocCase("001", "Well-formed UTF-8 without DTD or entities", _well_formed(doc_type), Grade.CONFIRMED),
        DocCase(
            "002",
            f"Root {ROOT[doc_type]} with exactly one data element (a root loaiHs does not name: API-003)",
            _by_codes(doc_type, ("XML_DATA_MISSING", "XML_DATA_MULTIPLE"), "exactly one data element"),
            Grade.CONFIRMED,
        ),
        DocCase(
            "003",
            "Valid against the schema in a shape some source allows (fields, lengths, patterns)",
            _schema(doc_type),
            Grade.OBSERVED,
        ),
        DocCase(
            "004",
            "Formats and code lists (dates, CCCD, BHXH/BHYT, ethnicity, nationality, places)",
            _by_codes(doc_type, FORMATS, "formats and code lists respected"),
            Grade.ADVISORY,
        ),
        DocCase(
            "005",
            f"{code_field} is XXXXX.{doc_type}.ZZZZZ.YY with the submitting facility and the issue year",
            _code_form(doc_type, code_field),
            Grade.ADVISORY,
        ),
        DocCase(
            "006",
            "Cross-field rules (dates in order, counts, weights, notes, required groups)",
            _by_codes(doc_type, CROSS_FIELD, "cross-field rules hold"),
            Grade.RECONSTRUCTED,
        ),
        DocCase(
            "007",
            "Filed under the right facility: maCskcb is the account's facility and the one in the document",
            _right_facility(doc_type),
            Grade.OBSERVED,
        ),
        DocCase(
            "008",
            "Clean under strict: no deviation between the sources (order, R1 fields, lengths, BOM, code year)",
            _strict_clean(doc_type),
            Grade.RECONSTRUCTED,
            Level.SHOULD,
            "strict",
        ),
    ]


def _register() -> None:
    for doc_type in ("GCS", "GBT"):
        for row in _table(doc_type):
            case(
                id=f"{doc_type}-DOC-{row.suffix}",
                title=f"{doc_type}: {row.title}",
                basis=BASIS[doc_type],
                level=row.level,
                area="documents",
                needs=("submissions",),
                grade=row.grade,
                result=row.result,
            )(row.build)


_register()
