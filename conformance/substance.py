"""What a certificate *is*, apart from how it was signed: judging per document, not per file.

A hospital that re-signs a refused file changes its bytes (new SigningTime, new Id) without changing
what it says; a case that compared SHA-256 digests would call that a correction. `substance` is the
digest of the data elements in document order with every XMLDSig element removed, and
`certificate_key` names the certificate (MA_GCS / MA_GBT, and CAP_LAN_DAU for a birth, since a reissue
keeps MA_GCS), so cases follow the orders they own wherever in the journal their exchanges fall.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

from lxml import etree

__all__ = ["DS_NS", "certificate_key", "fields_of", "substance"]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)


@lru_cache(maxsize=4096)
def _leaves(encoded: str) -> tuple[tuple[str, str], ...] | None:
    try:
        root = etree.fromstring(base64.b64decode(encoded), _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    leaves = []
    for element in root.iter():
        if not isinstance(element.tag, str) or element.tag.startswith("{" + DS_NS + "}"):
            continue
        if any(a.tag.startswith("{" + DS_NS + "}") for a in element.iterancestors() if isinstance(a.tag, str)):
            continue
        if len(element) == 0:
            leaves.append((etree.QName(element).localname, (element.text or "").strip()))
    return tuple(leaves)


def fields_of(submission: dict[str, Any]) -> dict[str, str]:
    """The data fields of a submission's file by element name (empty when it has no readable file)."""
    leaves = _leaves(submission.get("file_b64") or "") if submission.get("file_b64") else None
    return dict(leaves or ())


def substance(submission: dict[str, Any]) -> str | None:
    """SHA-256 of the file's data without its signature; None when the file is absent or unreadable."""
    encoded = submission.get("file_b64")
    leaves = _leaves(encoded) if encoded else None
    if leaves is None:
        return None
    text = "\n".join(f"{name}={value}" for name, value in leaves)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def certificate_key(submission: dict[str, Any]) -> str | None:
    """MA_GCS (with CAP_LAN_DAU) or MA_GBT of the submission, or None when it names none."""
    code = submission.get("document_code")
    if not code:
        return None
    again = fields_of(submission).get("CAP_LAN_DAU")
    return f"{code}/{again}" if submission.get("loai_hs") == "61" and again else str(code)
