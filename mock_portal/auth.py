"""Portal accounts and tokens: the [wire] login of `/api/token/take` and the credentials of a submission.

Accounts are `<MA_CSKCB>_BV` by convention; passwords travel as the uppercase hex MD5 of the
password, as the real portal wants. Pure domain: no HTTP here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from mock_portal.codes import TokenResult
from mock_portal.findings import Finding, Severity
from mock_portal.store import Account, Repository, Token


def md5_upper(password: str) -> str:
    """The password as the portal wants it: MD5 of its UTF-8 bytes, uppercase hex."""
    return hashlib.md5(password.encode("utf-8")).hexdigest().upper()  # noqa: S324 - the portal's own scheme


@dataclass(frozen=True)
class TokenGrant:
    result: TokenResult
    token: Token | None = None


def take_token(repo: Repository, *, username: str, password_md5: str, now: datetime, ttl: timedelta) -> TokenGrant:
    """Issue a token, or say why not with the portal's own code."""
    account = repo.get_account(username)
    if account is None:
        return TokenGrant(TokenResult.NO_ACCOUNT)
    if username.split("_", 1)[0] != account.facility_code:
        return TokenGrant(TokenResult.WRONG_FACILITY)
    if account.locked:
        return TokenGrant(TokenResult.LOCKED)
    if not hmac.compare_digest(password_md5.encode(), account.password_md5.encode()):
        return TokenGrant(TokenResult.NO_ACCOUNT)
    token = Token(
        access_token=secrets.token_urlsafe(32),
        id_token=secrets.token_urlsafe(32),
        username=username,
        issued_at=now.replace(tzinfo=None),
        expires_at=(now + ttl).replace(tzinfo=None),
    )
    repo.add_token(token)
    return TokenGrant(TokenResult.OK, token)


@dataclass(frozen=True)
class Credentials:
    """The credential fields of a submission form."""

    facility_code: str
    access_token: str
    id_token: str
    username: str
    password_md5: str


def check_credentials(repo: Repository, creds: Credentials, *, now: datetime) -> tuple[Account | None, Finding | None]:
    """The account the submission speaks for, or the AUTH_* finding that makes it a 401."""
    token = repo.get_token(creds.access_token) if creds.access_token else None
    account = repo.get_account(creds.username) if creds.username else None
    return judge_credentials(creds, token, account, now=now)


def judge_credentials(
    creds: Credentials, token: Token | None, account: Account | None, *, now: datetime
) -> tuple[Account | None, Finding | None]:
    """`check_credentials` over rows the caller already read (`token` by access token, `account` by
    username), so a submission reads them with its other per-request data in one session."""
    missing = [
        name
        for name, value in (
            ("token", creds.access_token),
            ("id_token", creds.id_token),
            ("username", creds.username),
            ("password", creds.password_md5),
            ("maCskcb", creds.facility_code),
        )
        if not value
    ]
    if missing:
        return None, _auth(
            "AUTH_FIELDS_MISSING",
            f"Thiếu trường xác thực: {', '.join(missing)}",
            f"Missing authentication fields: {', '.join(missing)}",
        )
    if token is None or not hmac.compare_digest(token.id_token.encode(), creds.id_token.encode()):
        return None, _auth(
            "AUTH_TOKEN_INVALID",
            "Token hoặc id_token không hợp lệ",
            "Unknown token, or id_token does not belong to it",
        )
    if token.username != creds.username:
        return None, _auth(
            "AUTH_TOKEN_OTHER_ACCOUNT",
            "Token được cấp cho tài khoản khác",
            f"The token was issued to another account ({token.username})",
        )
    if now.replace(tzinfo=None) >= token.expires_at:
        return None, _auth(
            "AUTH_TOKEN_EXPIRED",
            "Token đã hết hạn, hãy lấy token mới",
            f"Token expired at {token.expires_at.isoformat()}Z; take a new one",
        )
    if account is None or not hmac.compare_digest(creds.password_md5.encode(), account.password_md5.encode()):
        return None, _auth(
            "AUTH_BAD_CREDENTIALS",
            "Sai tài khoản hoặc mật khẩu (MD5 viết hoa)",
            "Wrong username or password (uppercase hex MD5 expected)",
        )
    if account.locked:
        return None, _auth("AUTH_ACCOUNT_LOCKED", "Tài khoản đã bị khóa", "The account is locked")
    if creds.facility_code != account.facility_code:
        return None, _auth(
            "AUTH_FACILITY_MISMATCH",
            f"maCskcb {creds.facility_code} không phải cơ sở của tài khoản",
            f"maCskcb {creds.facility_code} is not the account's facility ({account.facility_code})",
        )
    return account, None


def _auth(code: str, vi: str, en: str) -> Finding:
    return Finding(code=code, severity=Severity.ERROR, message_vi=vi, message_en=en)
