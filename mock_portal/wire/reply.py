"""A wire reply as data, and the wire's paths: what `api/` writes out, derived in one place.

Replies use the wire's own spelling (`maKetQua` for tokens, `MaKetQua` for submissions) and HTTP 200
for business errors, as the real portal does. Every `X-Sandbox-*` value is ASCII (`header_safe`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from mock_portal.control.clock import vn_local
from mock_portal.results.codes import SubmitResult
from mock_portal.results.findings import EXPLAIN_CHARS, Finding

TOKEN_PATH = "/api/token/take"
SUBMIT_PATH = "/api/hososuckhoe/guiGiayToDienTu"
WIRE_OPERATIONS = {TOKEN_PATH: "token", SUBMIT_PATH: "submit"}
"""The real portal's two wire paths and the operation each is (fault plans and the journal name them so)."""

HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
"""What `header_safe` writes as it is: printable ASCII but the escape character."""
EXPLAIN = "X-Sandbox-Explain"


@dataclass(frozen=True)
class WireReply:
    """One wire reply and what the journal keeps of it, derived once from domain data.

    `body` is the JSON of the reply (a plain text for an HTTP error fault); `headers` are the
    `X-Sandbox-*` values, already header-safe, in the order they are sent."""

    status: int
    body: dict[str, Any] | str
    headers: tuple[tuple[str, str], ...] = ()
    outcome: str = ""
    """The journal's outcome: the wire code, `HTTP-<status>`, or a fault's (RESET, DROPPED)."""
    ma_gd: str | None = None
    submission_id: int | None = None
    document_code: str | None = None
    findings: tuple[str, ...] = ()
    file_sha256: str | None = None
    journal_id: int | None = None
    """The journal row written with the submission (its transaction), when there is one."""

    @property
    def content_type(self) -> str:
        return "text/plain; charset=utf-8" if isinstance(self.body, str) else "application/json"

    def faults_named(self, applied: tuple[str, ...]) -> WireReply:
        """The reply with the faults that touched it named first in X-Sandbox-Explain (sent last)."""
        if not applied:
            return self
        explain = next((header_text(v) for k, v in self.headers if k == EXPLAIN), "")
        named = header_safe(f"FAULT {', '.join(applied)}; {explain}")
        return replace(self, headers=(*((k, v) for k, v in self.headers if k != EXPLAIN), (EXPLAIN, named)))


def submit_body(result: SubmitResult | str, ma_gd: str, received_at: datetime) -> dict[str, str]:
    """The JSON of a submission's reply."""
    return {
        "MaKetQua": str(result),
        "MaGD": ma_gd,
        "ThoiGianTiepNhan": vn_local(received_at).strftime("%Y%m%d%H%M%S"),
    }


def header_safe(text: str, limit: int = EXPLAIN_CHARS) -> str:
    """An ASCII header value that says what `text` (cut to `limit` characters) says: clients decode a header
    as Latin-1 or ASCII, so a typographic dash or a Vietnamese name sent raw arrives mangled ('?').

    Every character outside printable ASCII, and `%` itself, is percent-encoded as its UTF-8 bytes (the
    encoding of RFC 8187's ext-value), so `urllib.parse.unquote` / `decodeURIComponent` gives back the text
    exactly, control characters included (sent raw, httptools refuses them and drops the connection)."""
    return quote(text[:limit], safe=HEADER_SAFE, errors="replace")


def header_text(value: str) -> str:
    """The text a `header_safe` value says."""
    return unquote(value)


def findings_header(findings: tuple[Finding, ...]) -> str:
    """X-Sandbox-Findings: the codes, comma-separated, in the order of causes."""
    return header_safe(",".join(f.code for f in findings), limit=2000)


def grades_header(findings: tuple[Finding, ...]) -> str:
    """`CODE=GRADE:severity`, comma-separated, in the order of X-Sandbox-Findings."""
    return header_safe(",".join(f"{f.code}={f.grade or '?'}:{f.severity.value}" for f in findings), limit=4000)
