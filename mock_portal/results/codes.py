"""The real portal's result codes, as Enums whose values are the wire strings, and the wire's password form.

Imports nothing of the store: the reference hospital (`fixtures.hospital`) takes both from here and starts
without loading SQLAlchemy and Alembic (a conformance run starts one hospital per scenario facility).
"""

from __future__ import annotations

import hashlib
from enum import StrEnum


def md5_upper(password: str) -> str:
    """The password as the portal wants it: MD5 of its UTF-8 bytes, uppercase hex."""
    return hashlib.md5(password.encode("utf-8")).hexdigest().upper()  # noqa: S324 - the portal's own scheme


class TokenResult(StrEnum):
    """`maKetQua` of `POST /api/token/take` (PL02 §I)."""

    OK = "200"
    NO_ACCOUNT = "401"
    WRONG_FACILITY = "402"
    LOCKED = "403"
    SYSTEM_ERROR = "500"


class SubmitResult(StrEnum):
    """`MaKetQua` of `POST /api/hososuckhoe/guiGiayToDienTu` (PL02 §4)."""

    OK = "200"
    INVALID_FILE = "205"
    AUTH_ERROR = "401"
    SERVER_ERROR = "500"
    FILE_TOO_LARGE = "1001"
