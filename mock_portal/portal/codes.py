"""The real portal's result codes, as Enums whose values are the wire strings."""

from __future__ import annotations

from enum import StrEnum


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
