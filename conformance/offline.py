"""Offline judgement of files a hospital system produced: the portal's own checks, no server needed.

Offline there is no "Danh mục chứng thư số", so the signing certificate found in each file is taken
as registered for the facility (`mock_portal.evidence.judge.as_registered`); everything else is judged
exactly as the portal judges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from conformance import UsageError
from mock_portal.documents import DocumentError, DocumentType, ParseLimits, parse_xml
from mock_portal.evidence.judge import as_registered
from mock_portal.portal.intake import IntakePolicy, Verdict, examine_xml
from mock_portal.results.grades import Strictness
from mock_portal.signature.trust import TrustStore
from mock_portal.signature.verify import SignaturePolicy

ROOTS = {t.root_tag: t for t in DocumentType}
OFFLINE_AREAS = ("documents", "signature")
"""The areas `conformance check` judges: what a file alone shows, with no portal and no exchange."""


@dataclass(frozen=True)
class FileVerdict:
    path: Path
    verdict: Verdict
    facility_code: str
    strictness: str = Strictness.PORTAL.value


def read_input(path: Path, option: str) -> bytes:
    """The bytes of a file the user named; a file that cannot be read is a `UsageError` naming the option."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from exc


def doc_type_of(data: bytes, limits: ParseLimits) -> DocumentType | None:
    try:
        return ROOTS.get(str(parse_xml(data, limits).tag))
    except DocumentError:
        return None


def check_file(
    path: Path,
    *,
    facility_code: str | None,
    trust: TrustStore,
    max_file_bytes: int = 5 << 20,
    now: datetime | None = None,
    strictness: Strictness = Strictness.PORTAL,
) -> FileVerdict:
    """Judge one file as the portal in `strictness` mode would."""
    data = path.read_bytes()
    policy = IntakePolicy(max_file_bytes, ParseLimits(max_bytes=max_file_bytes), SignaturePolicy())
    doc_type = doc_type_of(data, policy.parse_limits) or DocumentType.GCS
    facility = facility_code or _facility_in_code(data, doc_type)
    received = now or datetime.now(UTC)
    examine = partial(
        examine_xml, doc_type, data, facility_code=facility, received_at=received, policy=policy, strictness=strictness
    )
    verdict = as_registered(examine, trust, facility)
    return FileVerdict(path, verdict, facility, strictness.value)


def _facility_in_code(data: bytes, doc_type: DocumentType) -> str:
    """The facility named in MA_GCS / MA_GBT (`XXXXX.GCS.ZZZZZ.YY`), when no --facility is given."""
    marker = f".{doc_type.code_kind}.".encode()
    at = data.find(marker)
    return data[at + len(marker) : at + len(marker) + 5].decode("ascii", "replace") if at >= 0 else ""
