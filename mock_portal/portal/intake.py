"""The examination of one submitted file: size, base64, XML, structure, schema, signature, rules.

`examine()` is pure: it reads nothing but its arguments and returns a `Verdict` (data), which the
portal stores and the HTTP layer renders. Only what the signature covers feeds the stored document.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

from lxml import etree

from mock_portal.config import Settings
from mock_portal.documents import (
    DocumentError,
    DocumentType,
    ParseLimits,
    RuleContext,
    check_rules,
    check_structure,
    compile_schemas,
    fields_of,
    parse_xml,
    validate_schema,
)
from mock_portal.fidelity import grade
from mock_portal.results.codes import SubmitResult
from mock_portal.results.findings import Finding, Severity, first_error, has_errors
from mock_portal.results.grades import Strictness
from mock_portal.signature import crypto
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import SignaturePolicy, SignatureReport, verify_signature


@dataclass(frozen=True)
class Verdict:
    """What the portal decided about one file, and why."""

    result: SubmitResult
    findings: tuple[Finding, ...] = ()
    doc_type: DocumentType | None = None
    file: bytes | None = None
    file_size: int = 0
    signature: SignatureReport | None = None
    fields: dict[str, str] = field(default_factory=dict)
    """Fields of the data element; from the signed content only when the verdict is 200."""

    @property
    def document_code(self) -> str | None:
        if self.doc_type is None:
            return None
        return self.fields.get(self.doc_type.code_field) or None

    def explain(self) -> str:
        """One line for `X-Sandbox-Explain`: the first error (`first_error`: the cause), or what was
        accepted (and its warnings)."""
        cause = first_error(self.findings)
        if cause is not None:
            return f"{cause.code}: {cause.message_en}"
        warnings = [f.code for f in self.findings if f.severity is Severity.WARNING]
        noted = f"; {len(warnings)} warning(s): {', '.join(warnings)}" if warnings else ""
        if self.result is SubmitResult.OK:
            accepted = f"ACCEPTED: {self.doc_type.name if self.doc_type else ''} {self.document_code or ''}".strip()
            return accepted + noted
        return f"{self.result.value}{noted}"


@dataclass(frozen=True)
class IntakePolicy:
    max_file_bytes: int
    parse_limits: ParseLimits
    signature: SignaturePolicy

    @classmethod
    def of(cls, settings: Settings) -> IntakePolicy:
        """The policy `settings` name: the portal's, and what `mock-portal rejudge` judges logged sends by."""
        return cls(
            max_file_bytes=settings.max_file_bytes,
            parse_limits=ParseLimits(max_bytes=settings.max_file_bytes, max_depth=settings.max_xml_depth),
            signature=SignaturePolicy(
                clock_skew=timedelta(minutes=settings.signing_time_skew_minutes),
                require_crl=settings.require_crl,
            ),
        )


UTF8_BOM = b"\xef\xbb\xbf"


def _bom_warning() -> Finding:
    """`portal` mode reads past a UTF-8 BOM (.NET readers do) but says so; `strict` refuses it (XML_BOM)."""
    return Finding(
        "XML_BOM",
        Severity.WARNING,
        "Tệp có BOM UTF-8; nên gửi UTF-8 không BOM.",
        "The file starts with a UTF-8 byte order mark; send UTF-8 without BOM.",
        expected="UTF-8 without BOM",
        received="UTF-8 with BOM",
    )


def _error(code: str, vi: str, en: str, **extra: str | None) -> Finding:
    return Finding(code=code, severity=Severity.ERROR, message_vi=vi, message_en=en, **extra)


def _unprocessable(exc: Exception) -> Finding:
    return _error(
        "XML_C14N_FAILED",
        f"Không chuẩn hoá (C14N) được tệp để kiểm tra chữ ký: {exc}",
        f"The file cannot be canonicalised (C14N) to check its signature: {exc}",
        path="/*/CHUKYDONVI",
        received=type(exc).__name__,
    )


def too_large(size: int, limit: int) -> Verdict:
    finding = _error(
        "FILE_TOO_LARGE",
        f"Tệp quá lớn: {size} byte, tối đa {limit} byte",
        f"File too large: {size} bytes, at most {limit}",
        expected=f"<= {limit}",
        received=str(size),
    )
    return Verdict(SubmitResult.FILE_TOO_LARGE, (finding,), file_size=size)


def decode_file(file_b64: str, max_file_bytes: int) -> tuple[bytes | None, Verdict | None]:
    """Decode `fileBase64Str`, refusing oversize input before decoding it."""
    text = "".join(file_b64.split())
    if len(text) > (max_file_bytes + 2) // 3 * 4:
        return None, too_large(len(text) * 3 // 4, max_file_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        hint = " (a space in the form value: was '+' URL-encoded?)" if " " in file_b64.strip() else ""
        finding = _error(
            "FILE_BASE64_INVALID",
            "fileBase64Str không phải base64 hợp lệ",
            f"fileBase64Str is not valid base64{hint}",
        )
        return None, Verdict(SubmitResult.INVALID_FILE, (finding,), file_size=len(text))
    if not data:
        finding = _error("FILE_EMPTY", "Tệp rỗng", "The file is empty")
        return None, Verdict(SubmitResult.INVALID_FILE, (finding,))
    if len(data) > max_file_bytes:
        return None, too_large(len(data), max_file_bytes)
    return data, None


def file_digest(file_b64: str, max_file_bytes: int) -> str | None:
    """SHA-256 (hex) of the file as `decode_file` decodes it; None when it does not decode."""
    data, _refusal = decode_file(file_b64, max_file_bytes)
    return hashlib.sha256(data).hexdigest() if data else None


LIGHT_FILE_COUNTS = ((b"<", 300), (b"=", 96), (b"&", 256), (b"Reference", 8), (b"X509Certificate", 10))
"""The most of each of these a file examined on the event loop may hold (`light`): bounds on its elements
(and comments), attributes and namespace declarations, character references, the signature's
references (each one canonicalised and digested) and certificates (each one parsed and chained). A
signed GCS has 153 '<', 26 '=', no '&', 4 'Reference' (2 references) and 2 'X509Certificate'."""


def light(file_b64: str, max_file_bytes: int) -> bool:
    """Whether a submission's file needs little enough work to examine on the event loop: a pre-scan of
    the decoded file's byte counts (`LIGHT_FILE_COUNTS`; microseconds), because its size alone does not
    say — 4,200 empty elements fit in 22 KB. A file that does not decode is refused before any XML work."""
    data, _refusal = decode_file(file_b64, max_file_bytes)
    return data is None or all(data.count(token) <= most for token, most in LIGHT_FILE_COUNTS)


@dataclass(frozen=True)
class FileIdentity:
    """Which file a submission carried, for a journal row the examination never saw (an exchange
    answered by an injected fault)."""

    sha256: str | None = None
    document_code: str | None = None
    """MA_GCS / MA_GBT as the file's data element states it, unverified: an identification, not a verdict."""


def identify(file_b64: str, policy: IntakePolicy) -> FileIdentity:
    """The file's SHA-256 and, best effort, its document code, read with the portal's hardened parser
    under the same limits (the root tells GCS from GBT, whatever loaiHs said); None for what does not
    decode or parse. Bounded as the examination's first steps are. Measured on the 2-core test VM (with
    the gateway's form parse; busy neighbours): 0.4-0.6 ms for a certificate's ~7 KB form. It runs on the
    event loop only for a file that passed the pre-scan (`light`); 4,999 empty elements, which cost a
    median of 6-10 ms here and up to ~85 ms with a garbage collection, now go to a thread."""
    data, _refusal = decode_file(file_b64, policy.max_file_bytes)
    if not data:
        return FileIdentity()
    digest = hashlib.sha256(data).hexdigest()
    try:
        root = parse_xml(data.removeprefix(UTF8_BOM), policy.parse_limits)
    except (DocumentError, ValueError, etree.LxmlError):
        return FileIdentity(digest)
    kind = next((t for t in DocumentType if root.tag == t.root_tag), None)
    found = root.find(f"{kind.data_tag}/{kind.code_field}") if kind is not None else None
    code = "".join(found.itertext()).strip()[:64] if found is not None else ""
    return FileIdentity(digest, code or None)


def prepare() -> None:
    """Compile every XSD the examination uses (the documents' and signxml's) on this thread, before the
    process serves: libxml2's first schema compile is not thread-safe, and a race left a worker
    answering MaKetQua 500 to every document."""
    compile_schemas()
    crypto.compile_schemas()


def examine(
    loai_hs: str,
    file_b64: str,
    *,
    facility_code: str,
    received_at: datetime,
    trust: TrustStore,
    policy: IntakePolicy,
    strictness: Strictness = Strictness.STRICT,
    signer_facility: str | None = None,
) -> Verdict:
    try:
        doc_type = DocumentType.from_loai_hs(loai_hs)
    except ValueError:
        finding = _error(
            "FILE_LOAIHS_UNKNOWN",
            f"loaiHs '{loai_hs}' không được hỗ trợ (61 = GCS, 60 = GBT)",
            f"loaiHs '{loai_hs}' is not supported (61 = birth certificate, 60 = death notice)",
            expected="61 | 60",
            received=loai_hs,
        )
        return Verdict(SubmitResult.INVALID_FILE, grade((finding,), strictness))
    data, refusal = decode_file(file_b64, policy.max_file_bytes)
    if refusal is not None or data is None:
        refusal = refusal or Verdict(SubmitResult.INVALID_FILE)
        return replace(refusal, findings=grade(refusal.findings, strictness))
    return examine_xml(
        doc_type,
        data,
        facility_code=facility_code,
        received_at=received_at,
        trust=trust,
        policy=policy,
        strictness=strictness,
        signer_facility=signer_facility,
    )


def examine_xml(
    doc_type: DocumentType,
    data: bytes,
    *,
    facility_code: str,
    received_at: datetime,
    trust: TrustStore,
    policy: IntakePolicy,
    strictness: Strictness = Strictness.STRICT,
    signer_facility: str | None = None,
) -> Verdict:
    """Every check on a decoded file; also used offline by the conformance suite.

    `facility_code` is the facility the document is filed under (maCskcb); `signer_facility` the one
    whose registered certificates apply (the authenticated account's; default the same).
    `strictness` decides which failed checks refuse the file (see `fidelity`); every finding carries
    its evidence grade either way."""
    verdict = partial(Verdict, doc_type=doc_type, file=data, file_size=len(data))
    findings: list[Finding] = []
    if strictness is Strictness.PORTAL and data.startswith(UTF8_BOM):
        findings.append(_bom_warning())
        data = data[len(UTF8_BOM) :]
    try:
        root = parse_xml(data, policy.parse_limits)
    except DocumentError as exc:
        return verdict(SubmitResult.INVALID_FILE, grade([*findings, exc.finding], strictness))
    structure = check_structure(doc_type, root)
    if has_errors(structure):
        return verdict(SubmitResult.INVALID_FILE, grade([*findings, *structure], strictness))
    findings += list(structure) + list(validate_schema(doc_type, root, strictness))
    try:
        report = verify_signature(
            root,
            data_tag=doc_type.data_tag,
            trust=trust,
            facility_code=signer_facility or facility_code,
            received_at=received_at,
            policy=policy.signature,
        )
    except etree.LxmlError as exc:  # libxml2 cannot canonicalise or re-read this tree: the file's fault
        return verdict(SubmitResult.INVALID_FILE, grade([*findings, _unprocessable(exc)], strictness))
    findings += report.findings()
    signed = report.signed_data
    data_element = signed if signed is not None else root.find(doc_type.data_tag)
    fields = fields_of(data_element) if isinstance(data_element, etree._Element) else {}
    findings += check_rules(doc_type, fields, RuleContext(facility_code=facility_code, received_at=received_at))
    graded = grade(findings, strictness)
    accepted = not has_errors(graded) and signed is not None
    return verdict(SubmitResult.OK if accepted else SubmitResult.INVALID_FILE, graded, signature=report, fields=fields)
