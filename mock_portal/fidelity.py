"""The registry of graded behaviours: what the sandbox does, how sure we are the real portal does the same.

Every wire behaviour, envelope and signature item, business rule and per-field schema constraint is
one `Behaviour` with its `Evidence` (grade, source, reason, what `portal` mode does). `grade()`
attaches the evidence to findings and, in `portal` mode, turns the refusals the evidence does not
support into warnings. `render_markdown()` writes docs/fidelity.md (`mock-portal fidelity`),
`with_field_tables()` the per-field tables of docs/documents.md (`mock-portal fidelity --fields`).

Policy (docs/fidelity.md repeats it): `portal` mode refuses only what official text or real sends
show the portal refuses, and the integrity items — signature, hostile input, resource limits —
whatever their grade, because accepting them would make the sandbox pass a document the law says
must be signed, or make it unsafe. Everything else is accepted with a warning. `strict` refuses all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from mock_portal.documents import DocumentType, list_rules
from mock_portal.documents.doctypes import KIND_PATTERNS, FieldSpec
from mock_portal.documents.sources import (
    DISPUTED_KINDS,
    GCS_FILED_BY,
    R1_IGNORED,
    field_evidence,
    field_table,
)
from mock_portal.results.findings import Finding, Severity
from mock_portal.results.grades import Action, Evidence, Grade, Strictness

C, OBS, R, A = Grade.CONFIRMED, Grade.OBSERVED, Grade.RECONSTRUCTED, Grade.ADVISORY
REFUSE, WARN = Action.REFUSE, Action.WARN

SOURCES: dict[str, str] = {
    "R1": "Portal GBT field table '2.3 Mô tả cấu trúc dữ liệu' (gdbhyt, 2023), transcribed in a public markdown",
    "R2": "tracnn/qlbv_public: PHP PL02 module (CV 2076/BHXH-CNTT) with notes from real sends",
    "R3": "Public TypeScript PL02 (2025) builders for HSDLGCS/HSDLGBT",
    "R4": "Public TypeScript browser clients of token/take and guiGiayToDienTu",
    "R5": "NguyenSyHa/QLBV frm_Giaychungsinh.cs (WinForms HIS, 2024)",
    "R6": "Public ASP.NET HIS page UI_QLHSBA_frmGiayBaoTu (2023–24)",
    "R7": "buigiangnamgh/HIS_PRO CV2076 exporter (Inventec HIS)",
    "R8": "Inventec signer Xml09BHSigner (profile accepted by the portal for form 09/BH)",
    "R9": "Production card-lookup clients of /api/token/take (Python, C#)",
    "R10": "dh-hos/dhg.hosptaltreatment issues #106, #169, #190 and changelog",
    "R11": "dh-hos/Mo-ta-he-thong QĐ 130/4750 tables (XML9 = giấy chứng sinh)",
    "R12": "Public vendor note on PL02 of CV 3220/BHXH-CNTT",
    "R13": "Public Angular HIS component (Id on the root, another form)",
    "R14": "CV 507/BHXH-CNTT (27/02/2023): HIAP upgraded for GKSK/GCS/GBT",
    "Decree 63/2024": "Nghị định 63/2024/NĐ-CP: signed electronic data, 4 working hours (Art. 25.1)",
    "Circular 22/2025": "Thông tư 22/2025: code forms of GCS/GBT (Annex I), BHXH numbers",
    "Circular 59/2021": "Thông tư 59/2021/TT-BCA: structure of the CCCD number",
    "QĐ 121-TCTK, TT 07/2016": "Code lists of ethnicities, nationalities and provinces",
}


@dataclass(frozen=True)
class Behaviour:
    """One graded behaviour: what it is, what the real portal does, and what the sandbox does per mode."""

    key: str
    area: str
    what: str
    real: str
    evidence: Evidence
    portal: str
    strict: str
    codes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "area": self.area,
            "what": self.what,
            "real_portal": self.real,
            "grade": self.evidence.grade.value,
            "source": self.evidence.source,
            "reason": self.evidence.reason,
            "portal_mode": self.portal,
            "strict_mode": self.strict,
            "codes": list(self.codes),
        }


def _b(key: str, what: str, real: str, evidence: Evidence, portal: str, strict: str, *codes: str) -> Behaviour:
    return Behaviour(key, key.split(".", 1)[0], what, real, evidence, portal, strict, codes)


def _refused(key: str, what: str, real: str, evidence: Evidence, *codes: str) -> Behaviour:
    return _b(key, what, real, evidence, "refuse", "refuse", *codes)


PL02_205 = "PL02: 205 = fileBase64Str không hợp lệ (R2, R12)"
INTEGRITY = "integrity: refused in both modes whatever the grade"

WIRE: tuple[Behaviour, ...] = (
    _b(
        "wire.token_json",
        "POST /api/token/take with a JSON body",
        "answers maKetQua 200 (two production clients post JSON)",
        Evidence(OBS, "R9 production clients; PL02 documents a form (R2, R12)", "JSON works in production", WARN),
        "accept (200), warning TOKEN_JSON_BODY",
        "accept (200), warning TOKEN_JSON_BODY",
        "TOKEN_JSON_BODY",
    ),
    _b(
        "wire.md5_case",
        "password as lowercase hex MD5 (token and submission)",
        "accepts it (two production clients send lowercase)",
        Evidence(OBS, "R9 production clients; R6 uppercase", "lowercase works in production", WARN),
        "accept, warning TOKEN_MD5_CASE / AUTH_MD5_CASE",
        "refuse: maKetQua/MaKetQua 401",
        "TOKEN_MD5_CASE",
        "AUTH_MD5_CASE",
    ),
    _b(
        "wire.facility_mismatch",
        "maCskcb of another facility than the token's account",
        "accepts and files the document under the maCskcb sent, the wrong unit (seen on the 3176 channel)",
        Evidence(OBS, "R2 notes from real sends", "observed accepted on a sibling channel of the same portal", WARN),
        "accept (200), warning AUTH_FACILITY_MISMATCH; filed under the maCskcb sent; the signing certificate must be"
        " registered to the account's facility",
        "refuse: MaKetQua 401",
        "AUTH_FACILITY_MISMATCH",
    ),
    _refused(
        "wire.credentials",
        "unknown/expired token, wrong id_token, username or password, missing credential fields, locked account,"
        " maCskcb that names no facility",
        "MaKetQua 401 in the body with HTTP 200",
        Evidence(C, "PL02 codes (R2, R12); 401 with HTTP 200 observed (R2)", "PL02 lists 401", REFUSE),
        "AUTH_FIELDS_MISSING",
        "AUTH_TOKEN_INVALID",
        "AUTH_TOKEN_OTHER_ACCOUNT",
        "AUTH_TOKEN_EXPIRED",
        "AUTH_BAD_CREDENTIALS",
        "AUTH_ACCOUNT_LOCKED",
        "AUTH_FACILITY_UNKNOWN",
    ),
    _refused(
        "wire.token_refusals",
        "token with an unknown account or wrong password (401), username of another facility (402), locked (403)",
        "maKetQua 401 / 402 / 403",
        Evidence(C, "PL02 token codes (R2, R12)", "PL02 lists these codes", REFUSE),
        "TOKEN_NO_ACCOUNT",
        "TOKEN_WRONG_FACILITY",
        "TOKEN_LOCKED",
    ),
    _refused(
        "wire.login_throttle",
        "repeated failed logins for one username from one client address within a time window",
        "unknown: the sandbox answers the portal's 'account locked' (403) while the window lasts, but for a"
        " password it has verified and one checked attempt per window / failures",
        Evidence(A, "OWASP authentication guidance", f"no password oracle; {INTEGRITY}", REFUSE),
        "TOKEN_THROTTLED",
    ),
    _refused(
        "wire.password_throttle",
        "a submission's unknown passwords from one client address beyond its budget of scrypt checks",
        "unknown: the sandbox answers the portal's MaKetQua 401 without checking the password",
        Evidence(A, "OWASP authentication guidance", f"no password oracle, no CPU on demand; {INTEGRITY}", REFUSE),
        "AUTH_PASSWORD_THROTTLED",
    ),
    _b(
        "wire.unknown_fields",
        "extra form fields (e.g. fileHsBase64)",
        "ignored",
        Evidence(OBS, "R4 browser client sends fileHsBase64", "a working client sends one"),
        "ignored",
        "ignored",
    ),
    _b(
        "wire.reply_order",
        "token reply keys: maKetQua, APIKey{access_token, id_token, token_type, username, expires_in}",
        "this order; clients parse it positionally",
        Evidence(OBS, "R9 positional parsers; R2, R12", "clients depend on it"),
        "same order",
        "same order",
    ),
    _b(
        "wire.ma_gd",
        "MaGD of an accepted document: HS_<GCS|GBT><maCskcb>_<GUID>",
        "only HS_CHUNGTU01929_<GUID> was seen (loaiHs 39)",
        Evidence(R, "R2", "extrapolated from another loaiHs"),
        "HS_<kind><maCskcb sent>_<GUID>",
        "same",
    ),
    _b(
        "wire.duplicate",
        "the same document sent twice",
        "two documents, no recall",
        Evidence(OBS, "R2", "observed"),
        "accepted twice, new MaGD each time",
        "same",
    ),
    _refused(
        "wire.loai_hs",
        "loaiHs other than 60 (GBT) or 61 (GCS)",
        "205",
        Evidence(C, PL02_205, "PL02 defines 60/61", REFUSE),
        "FILE_LOAIHS_UNKNOWN",
    ),
    _refused(
        "wire.file",
        "fileBase64Str that is not base64, or empty",
        "205",
        Evidence(C, PL02_205, "the one 205 cause PL02 names", REFUSE),
        "FILE_BASE64_INVALID",
        "FILE_EMPTY",
    ),
    _refused(
        "wire.size",
        "a file over the size limit",
        "1001",
        Evidence(C, "PL02 code 1001 (R2, R12)", "PL02 lists 1001; the limit itself is reconstructed", REFUSE),
        "FILE_TOO_LARGE",
        "XML_TOO_LARGE",
    ),
)

ENVELOPE: tuple[Behaviour, ...] = (
    _refused(
        "envelope.xml",
        "not well-formed XML, empty file, wrong root for loaiHs, no data element",
        "205",
        Evidence(C, PL02_205, "not a file of the type declared", REFUSE),
        "XML_NOT_WELL_FORMED",
        "XML_EMPTY",
        "XML_ROOT_MISMATCH",
        "XML_DATA_MISSING",
    ),
    _refused(
        "envelope.hostile",
        "DTD, entity declarations, excessive depth",
        "unknown",
        Evidence(A, "OWASP XXE guidance", INTEGRITY, REFUSE),
        "XML_DTD_FORBIDDEN",
        "XML_ENTITY_FORBIDDEN",
        "XML_TOO_DEEP",
    ),
    _refused(
        "envelope.bounded_work",
        "more elements or attributes than any real document has; a tree libxml2 cannot canonicalise"
        " (e.g. a relative namespace URI)",
        "unknown",
        Evidence(A, "XML C14N 1.0 (relative namespace URIs are not canonicalisable)", INTEGRITY, REFUSE),
        "XML_TOO_MANY_ELEMENTS",
        "XML_TOO_MANY_ATTRIBUTES",
        "XML_NAMESPACE_RELATIVE",
        "XML_C14N_FAILED",
    ),
    _refused(
        "envelope.multiple",
        "more than one data element in a file",
        "unknown: R2 sends one per package, R6's class is a list",
        Evidence(R, "R2; R6", f"the signature covers one data element; {INTEGRITY}", REFUSE),
        "XML_DATA_MULTIPLE",
    ),
    _b(
        "envelope.bom",
        "UTF-8 file with a byte order mark",
        "unknown: R8's accepted profile has none, R6's StreamWriter(Encoding.UTF8) writes one",
        Evidence(R, "R8; R6", ".NET readers skip a BOM; no refusal was reported", WARN),
        "accept, warning XML_BOM",
        "refuse 205 XML_BOM",
        "XML_BOM",
    ),
    _refused(
        "envelope.encoding",
        "a file not in UTF-8",
        "unknown",
        Evidence(OBS, "R8 (UTF-8 profile)", "every source sends UTF-8", REFUSE),
        "XML_ENCODING",
    ),
    _b(
        "envelope.namespaces",
        "extra xmlns:xsd/xsi on the root and the data element; every element present, empty when unknown",
        "accepted (R3's builder emits them)",
        Evidence(OBS, "R3", "a PL02 builder does it"),
        "accept",
        "accept (empty optional fields); an empty field R1 requires is a refusal",
    ),
)

SIGNATURE: tuple[Behaviour, ...] = (
    _refused(
        "signature.required",
        "an unsigned file",
        "unknown whether refused at once: R5 sends unsigned for all facilities but one, R10 asks if allowed",
        Evidence(C, "Decree 63/2024 (signed electronic data); R5; R10", f"a legal duty; {INTEGRITY}", REFUSE),
        "SIG_MISSING",
    ),
    _refused(
        "signature.count",
        "more than one Signature in the file (reported as SIG_MISSING)",
        "unknown: R3's signer can countersign, appending several",
        Evidence(R, "R3", f"a second signature could cover other data; {INTEGRITY}", REFUSE),
    ),
    _refused(
        "signature.profile",
        "signature profile (two References #Object-CHUKYDONVI-<Id> and #<Id>, or enveloped URI='')",
        "the two-reference profile is accepted (R8, for form 09/BH; R2)",
        Evidence(OBS, "R8; R2", f"enveloped acceptance is unproven; {INTEGRITY}", REFUSE),
        "SIG_PROFILE_UNKNOWN",
        "SIG_REFERENCES_INCOMPLETE",
        "SIG_UNSIGNED_DATA",
    ),
    _refused(
        "signature.integrity",
        "tampered content, wrong digest or signature value",
        "a broken signature is no signature",
        Evidence(C, "W3C XMLDSig; Decree 63/2024", INTEGRITY, REFUSE),
        "SIG_DIGEST_MISMATCH",
        "SIG_VALUE_INVALID",
        "SIG_CRYPTO_FAILURE",
    ),
    _refused(
        "signature.algorithms",
        "algorithms other than RSA-SHA256 / SHA-256 family, weak keys",
        "R8's accepted profile uses RSA-SHA256 and C14N 2001",
        Evidence(OBS, "R8", INTEGRITY, REFUSE),
        "SIG_ALGORITHM_REFUSED",
        "SIG_CONSTRAINTS_FAILURE",
    ),
    _refused(
        "signature.certificate",
        "certificate untrusted, expired, not yet valid, revoked, wrong key usage (the path to a trusted CA "
        "is found at no instant, then each of its certificates is judged at SigningTime and at receipt)",
        "unknown in detail; a signature is valid only with a valid certificate",
        Evidence(
            C,
            "Law on E-transactions 2023; Decree 63/2024; RFC 5280 §6.1 (path validity at one time)",
            INTEGRITY,
            REFUSE,
        ),
        "SIG_CERT_UNTRUSTED",
        "SIG_CERT_INVALID_AT_SIGNING_TIME",
        "SIG_CERT_INVALID_AT_RECEIPT",
        "SIG_CERT_REVOKED",
        "SIG_CERT_KEY_USAGE",
    ),
    _refused(
        "signature.registered",
        "certificate not registered for the account's facility",
        "facilities register their signing certificates with BHXH; a refusal was not reported",
        Evidence(R, "R14 (HIAP upgrade); R2", INTEGRITY, REFUSE),
        "SIG_CERT_NOT_REGISTERED",
    ),
    _b(
        "signature.subject_name",
        "KeyInfo/X509Data without an X509SubjectName naming the signing certificate's subject (missing, empty,"
        " or another name; compared as distinguished names, RFC 4514)",
        "R8's accepted profile carries X509SubjectName + X509Certificate; no refusal of a file without it is"
        " reported, and the trust checks judge the certificate itself",
        Evidence(OBS, "R8", "every known accepted signature carries it; its absence is not known to be refused", WARN),
        "accept, warning SIG_X509_SUBJECT_NAME",
        "refuse: MaKetQua 205",
        "SIG_X509_SUBJECT_NAME",
    ),
    _refused(
        "signature.signing_time",
        "SigningTime missing, malformed or after receipt",
        "R8 and R3 write yyyy-MM-ddTHH:mm:ss local time",
        Evidence(R, "R8; R3", INTEGRITY, REFUSE),
        "SIG_SIGNING_TIME_INVALID",
    ),
)

_RULE_EVIDENCE: dict[str, Evidence] = {
    "RULE_CODE_FORMAT": Evidence(A, "Circular 22/2025 Annex I; R1; R10", "legal code form; not known to be checked"),
    "RULE_CODE_FACILITY": Evidence(A, "Circular 22/2025 Annex I", "legal code form; not known to be checked"),
    "RULE_CODE_YEAR": Evidence(
        A,
        "Circular 22/2025 Annex I; R10",
        "R10 builds YY from the accounting year, which may be the year before the issue date",
    ),
    "RULE_FACILITY_MISMATCH": Evidence(R, "R1 (MACSKCB = facility of the death)", "the sandbox's own rule"),
    "RULE_BHXH_MISSING": Evidence(OBS, "R2 warns on MA_BHXH", "a vendor warns, never blocks"),
    "RULE_CCCD_FORMAT": Evidence(A, "Circular 59/2021", "legal number structure; not known to be checked"),
    "RULE_CCCD_BIRTH_YEAR": Evidence(A, "Circular 59/2021", "legal number structure; not known to be checked"),
    "RULE_CCCD_SEX": Evidence(A, "Circular 59/2021", "legal number structure; not known to be checked"),
    "RULE_BHXH_FORMAT": Evidence(A, "Circular 22/2025", "legal number structure; not known to be checked"),
    "RULE_BHYT_FORMAT": Evidence(A, "Circular 22/2025", "legal number structure; not known to be checked"),
    "RULE_BHYT_BHXH_MISMATCH": Evidence(A, "Circular 22/2025", "good practice"),
    "RULE_ETHNICITY_CODE": Evidence(A, "QĐ 121-TCTK, TT 07/2016", "official list; not known to be checked"),
    "RULE_NATIONALITY_UNKNOWN": Evidence(A, "QĐ 121-TCTK, TT 07/2016", "official list; the sandbox's is partial"),
    "RULE_PROVINCE_CODE": Evidence(A, "QĐ 121-TCTK, TT 07/2016", "official list; not known to be checked"),
    "RULE_GHI_CHU_FLAGS": Evidence(A, "Circular 22/2025 (form wording)", "form wording; not known to be checked"),
    "RULE_SURROGACY_INCOMPLETE": Evidence(A, "Circular 22/2025 (form 02)", "form content; not known to be checked"),
}
_RECONSTRUCTED_RULE = Evidence(R, "sandbox", "plausibility check of ours; nothing shows the real portal makes it")


def _rules() -> tuple[Behaviour, ...]:
    out = []
    for rule in list_rules():
        evidence = _RULE_EVIDENCE.get(rule.code, _RECONSTRUCTED_RULE)
        portal = "warning" if rule.severity is Severity.WARNING or evidence.portal is WARN else "refuse"
        strict = "warning" if rule.severity is Severity.WARNING else "refuse"
        out.append(
            Behaviour(
                f"rule.{rule.code}",
                "rule",
                f"{rule.code} ({'/'.join(sorted(d.name for d in rule.doc_types))}): {rule.description_en}",
                "not known to be checked (PL02 names no business rule)",
                evidence,
                portal,
                strict,
                (rule.code,),
            )
        )
    return tuple(out)


SCHEMA_CODES = ("SCHEMA_REQUIRED_MISSING", "SCHEMA_REQUIRED_EMPTY", "SCHEMA_TOO_LONG", "SCHEMA_PATTERN")


def _schema() -> tuple[Behaviour, ...]:
    """One behaviour per field whose two tables differ, plus the order and the element set."""
    out = [
        _refused(
            "schema.elements",
            "element names, the Id attribute of the data element, CHUKYDONVI last",
            "PL02 names (R2, R3 identical); older formats (R7, XML9) use other names",
            Evidence(OBS, "PL02 via R2/R3/R12", "PL02 is likely authoritative for loaiHs 60/61", REFUSE),
            "SCHEMA_UNEXPECTED_ELEMENT",
            "SCHEMA_ATTRIBUTE",
            "SCHEMA_INVALID",
        ),
        _b(
            "schema.fields",
            "field presence, length and format (one row per disputed field below)",
            "the PL02 vendors and, for GBT, the portal's 2023 table (R1); no XSD is published",
            Evidence(OBS, "PL02 via R2/R3/R12; R1", "graded per field in each finding", REFUSE),
            "refuse outside every source's shape; warning between the sources",
            "refuse outside the tightest shape of all sources",
            *SCHEMA_CODES,
        ),
        _b(
            "schema.order",
            "field order (PL02 order; R1 has NGUOI_THANTHICH before NGUOI_GHIGIAY)",
            "not known to be checked; no XSD is published",
            field_evidence(DocumentType.GBT, "", "order", refused_in_portal=False),
            "accept any order, warning SCHEMA_ORDER",
            "refuse SCHEMA_ORDER outside the PL02 order",
            "SCHEMA_ORDER",
        ),
    ]
    out += [
        _b(
            f"schema.GBT.{name}",
            f"GBT {name}: R1 disregarded",
            note,
            Evidence(R, "R1 portal GBT table 2023", "our reading of the table"),
            "as the PL02 vendors (no warning)",
            "as the PL02 vendors",
        )
        for name, note in R1_IGNORED.items()
    ]
    for doc_type in DocumentType:
        portal_specs = {s.name: s for s in field_table(doc_type, portal=True)}
        for strict in field_table(doc_type, portal=False):
            loose = portal_specs[strict.name]
            if loose == strict:
                continue
            out.append(_field_behaviour(doc_type, loose, strict))
    return tuple(out)


def _field_behaviour(doc_type: DocumentType, loose: FieldSpec, strict: FieldSpec) -> Behaviour:
    name = strict.name
    parts, evidence = [], None
    for constraint, attr in (("presence", "required"), ("length", "max_length"), ("pattern", "kind")):
        if getattr(loose, attr) != getattr(strict, attr):
            parts.append(constraint)
            evidence = evidence or field_evidence(doc_type, name, constraint, refused_in_portal=False)
    assert evidence is not None
    note = DISPUTED_KINDS.get((doc_type, name), ("", "", ""))[2] or R1_IGNORED.get(name, "")
    return _b(
        f"schema.{doc_type.name}.{name}",
        f"{doc_type.name} {name}: {', '.join(parts)}",
        note or _real_of(doc_type, name, strict.required),
        evidence,
        _shape(loose) + "; a value between the two: warning",
        _shape(strict),
    )


def _real_of(doc_type: DocumentType, name: str, required: bool) -> str:
    if doc_type is DocumentType.GCS:
        if name in GCS_FILED_BY:
            return "required by every source; no portal table gives its length"
        return "no portal table; " + ("required by R3's types only; " if required else "") + "length from XML9"
    return "R1 table and the PL02 vendors differ"


def _shape(spec: FieldSpec) -> str:
    required = "required" if spec.required else "optional"
    length = spec.max_length if spec.max_length is not None else "∞"
    return f"{required}, max {length}, {spec.kind}"


def registry() -> tuple[Behaviour, ...]:
    """Every graded behaviour, in the order docs/fidelity.md lists them."""
    return WIRE + ENVELOPE + SIGNATURE + _schema() + _rules()


def _by_code() -> dict[str, Evidence]:
    found: dict[str, Evidence] = {}
    for behaviour in registry():
        for code in behaviour.codes:
            found.setdefault(code, behaviour.evidence)
    return found


_EVIDENCE = _by_code()


def evidence_of(code: str) -> Evidence | None:
    return _EVIDENCE.get(code)


def grade(findings: Iterable[Finding], strictness: Strictness) -> tuple[Finding, ...]:
    """Attach grade and source to each finding; in `portal` mode a refusal the evidence does not support
    becomes a warning. Findings already graded (schema, per field) are kept as they are."""
    out = []
    for finding in findings:
        evidence = evidence_of(finding.code)
        if finding.grade is None and evidence is not None:
            finding = replace(finding, grade=evidence.grade.value, source=evidence.source)
            soften = strictness is Strictness.PORTAL and evidence.portal is WARN
            if soften and finding.severity is Severity.ERROR:
                finding = replace(finding, severity=Severity.WARNING)
        out.append(finding)
    return tuple(out)


def _softened() -> frozenset[str]:
    """Codes `portal` mode turns from a refusal into a warning (`strict` refuses them)."""
    native = {r.code for r in list_rules() if r.severity is Severity.WARNING} | {"TOKEN_JSON_BODY"}
    return frozenset(c for b in registry() for c in b.codes if b.evidence.portal is WARN) - native


_SOFTENED = _softened()


def strict_refuses(code: str, severity: str) -> bool:
    """Would `strict` mode refuse what this finding reports? (An error, or a deviation portal mode
    only warns about: a graded code, or a schema finding between the sources.)"""
    return severity == Severity.ERROR.value or code in _SOFTENED or code.startswith("SCHEMA_")


def render_markdown() -> str:
    """docs/fidelity.md: the policy, every behaviour with its grade and source, and the sources."""
    lines = [
        "# Fidelity: what the sandbox does, and how sure we are the real portal does the same",
        "",
        "<!-- Generated by `mock-portal fidelity` from mock_portal/fidelity.py; do not edit by hand. -->",
        "",
        "Every check carries an evidence grade:",
        "",
        "- **CONFIRMED**: official text (the portal's own field table, the PL02 appendix as summarised, a decree).",
        "- **OBSERVED**: seen in real vendors' code or in reports of real sends.",
        "- **RECONSTRUCTED**: our inference; nothing independent shows the real portal does it.",
        "- **ADVISORY**: good practice or a legal duty that the portal is not known to check.",
        "",
        "Two modes (`PORTAL_STRICTNESS`, default `portal`; per facility with `PUT /sandbox/facilities/{code}/"
        "strictness`):",
        "",
        "- **portal** answers what the real portal is known or most likely to answer. It refuses (205 / 401 /"
        " 1001) only what official text or real sends show the portal refuses, plus the integrity items —"
        " signature, hostile input, resource limits — whatever their grade. Everything else is accepted (200) and"
        " reported as a `warning` finding (X-Sandbox-Explain, X-Sandbox-Findings, journal, dashboard, report).",
        "  Where sources disagree (the PL02 vendors vs the portal's 2023 GBT table), both shapes are accepted.",
        "- **strict** refuses every check. A vendor clean under `strict` is safe against any tightening.",
        "",
        "Decisions taken where the evidence leaves a choice:",
        "",
        "- A document sent with the `maCskcb` of another facility than the token's account is filed, in `portal`"
        ' mode, under the `maCskcb` sent (the "wrong unit" of R2); its MACSKCB/code rules compare with that'
        " facility, and the signing certificate must be registered to the *account's* facility (the sender).",
        "- `RULE_CODE_YEAR`: YY in MA_GCS/MA_GBT is the year of the issue date. R10 builds it from the accounting"
        " year, which in early January may be the year before: accepted with a warning in `portal` mode, refused"
        " in `strict` mode (use the year of NGAY_CT / NGAY_CAPGIAYBT to be safe).",
        "- GBT NGAY_SINH: `portal` accepts `yyyy` and `yyyyMMdd` (write `0101` for an unknown day and month, as R1"
        " says); `strict` wants `yyyyMMdd`.",
        "- A UTF-8 BOM: `portal` accepts it with a warning, `strict` refuses it.",
        "",
        "| Behaviour | Real portal (as far as known) | Grade | Source | portal mode | strict mode |",
        "|---|---|---|---|---|---|",
    ]
    for b in registry():
        cells = [
            b.what,
            b.real,
            b.evidence.grade.value,
            f"{b.evidence.source} — {b.evidence.reason}",
            b.portal,
            b.strict,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Sources", ""]
    lines += [f"- **{key}**: {title}" for key, title in SOURCES.items()]
    return "\n".join(lines) + "\n"


# --- the field tables of docs/documents.md: what each mode answers per field ---

_BOTH, _SPLIT = "205/205", "warn/205"


def _missing_cell(loose: FieldSpec, strict: FieldSpec) -> str:
    return _BOTH if loose.required else _SPLIT if strict.required else "—"


def _length_cell(loose: FieldSpec, strict: FieldSpec) -> str:
    if strict.max_length is None:
        return "—"
    if loose.max_length == strict.max_length:
        return f"> {strict.max_length}: {_BOTH}"
    beyond = "" if loose.max_length is None else f"; > {loose.max_length}: {_BOTH}"
    return f"> {strict.max_length}: {_SPLIT}{beyond}"


def _shape_cell(strict: FieldSpec) -> str:
    pattern = KIND_PATTERNS[strict.kind]
    length = "" if strict.max_length is None else f", ≤ {strict.max_length}"
    return (f"`{pattern}`" if pattern else "text") + length


def _format_cell(loose: FieldSpec, strict: FieldSpec) -> str:
    tight, wide = KIND_PATTERNS[strict.kind], KIND_PATTERNS[loose.kind]
    if not tight:
        return "—"
    if tight == wide:
        return _BOTH
    return f"`{wide}`: {_SPLIT}; other: {_BOTH}"


_SHORT = {"refuse": "205", "warning": "warn"}


def _rules_cell(doc_type: DocumentType, spec: FieldSpec, rules: dict[str, Behaviour]) -> str:
    judged = [rules[r.code] for r in list_rules(doc_type) if r.reads(spec)]
    return ", ".join(f"{b.codes[0]} {_SHORT[b.portal]}/{_SHORT[b.strict]}" for b in judged) or "—"


def field_table_markdown(doc_type: DocumentType) -> str:
    """One row per field: its strict shape and what each mode answers when it is missing, too long, in
    another format, or judged by a business rule (derived from the two field tables and the rules)."""
    rules = {b.codes[0]: b for b in _rules()}
    lines = [
        "| Field | Format | Missing or empty | Too long | Other format | Business rules |",
        "|---|---|---|---|---|---|",
    ]
    loose_of = {s.name: s for s in field_table(doc_type, portal=True)}
    for strict in field_table(doc_type, portal=False):
        loose = loose_of[strict.name]
        cells = [
            f"`{strict.name}`",
            _shape_cell(strict),
            _missing_cell(loose, strict),
            _length_cell(loose, strict),
            _format_cell(loose, strict),
            _rules_cell(doc_type, strict, rules),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _markers(doc_type: DocumentType) -> tuple[str, str]:
    return (
        f"<!-- {doc_type.name} field table: generated by `mock-portal fidelity --fields FILE`; do not edit -->",
        f"<!-- end of the {doc_type.name} field table -->",
    )


def with_field_tables(text: str) -> str:
    """`text` (docs/documents.md) with each document type's generated field table between its markers."""
    for doc_type in DocumentType:
        begin, end = _markers(doc_type)
        head, found, rest = text.partition(begin + "\n")
        if not found or end not in rest:
            raise ValueError(f"no {doc_type.name} field table markers")
        text = head + begin + "\n" + field_table_markdown(doc_type) + end + rest.split(end, 1)[1]
    return text
