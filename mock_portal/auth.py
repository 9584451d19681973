"""Portal accounts and tokens: the [wire] login of `/api/token/take` and the credentials of a submission.

Accounts are `<MA_CSKCB>_BV` by convention; passwords travel as the uppercase hex MD5 of the
password, as the real portal wants. The portal never stores that MD5 (an unsalted MD5 is as good
as the password to anyone who reads the database): it stores a salted scrypt hash of it
(`hash_password_md5`) and checks a received MD5 with `password_matches`. A verified pair is cached
per process, so a hospital's every submission does not pay scrypt's ~60 ms.

`LoginThrottle` limits failed logins per username (and per dashboard client) in a time window.
Pure domain: no HTTP here.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from mock_portal.codes import TokenResult
from mock_portal.findings import Finding, Severity
from mock_portal.store import Account, Repository, Token

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def md5_upper(password: str) -> str:
    """The password as the portal wants it: MD5 of its UTF-8 bytes, uppercase hex."""
    return hashlib.md5(password.encode("utf-8")).hexdigest().upper()  # noqa: S324 - the portal's own scheme


def hash_password_md5(md5_hex: str, salt: bytes | None = None) -> str:
    """The stored form of a password: scrypt over the uppercase MD5 hex, with a random salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = _scrypt(md5_hex.upper(), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("ascii", "replace"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 2**20)


@functools.lru_cache(maxsize=4096)
def _verified(stored: str, candidate: str) -> bool:
    """Whether `candidate` (uppercase MD5 hex) hashes to `stored`; cached, bounded (a hash changes with
    every password change, so a stale entry can never match)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(_scrypt(candidate, bytes.fromhex(salt), int(n), int(r), int(p)), bytes.fromhex(key))
    except (ValueError, OverflowError):
        return False


def password_matches(account: Account, received_md5: str) -> bool:
    """Whether the MD5 a client sent is the account's password; letter case does not matter here (the
    MD5 is compared upper-cased: whether lower case is acceptable is a fidelity decision made elsewhere)."""
    if not received_md5 or len(received_md5) > 128:
        return False
    return _verified(account.password_hash, received_md5.upper())


def _password_ok(account: Account, received_md5: str) -> bool:
    """The password check of the wire. Letter case is refused here as it always was (lower-case hex is
    not what the portal documents); whether it is a warning or a refusal per strictness mode is
    decided by the fidelity layer, which replaces this case rule."""
    return received_md5 == received_md5.upper() and password_matches(account, received_md5)


@dataclass(frozen=True)
class TokenGrant:
    result: TokenResult
    token: Token | None = None


def upgrade_legacy_passwords(repo: Repository) -> int:
    """Replace the unsalted MD5s an older version stored by salted hashes of them (the MD5 is what the
    wire sends, so nobody has to reset a password); returns how many accounts were upgraded."""
    legacy = repo.legacy_passwords()
    for username, md5_hex in legacy.items():
        repo.set_password_hash(username, hash_password_md5(md5_hex))
    return len(legacy)


class LoginThrottle:
    """Failed logins per key (a username, a dashboard client) in a sliding window of real time.

    After `max_failures` failures within `window_seconds` a key is refused until its oldest failure
    leaves the window, whatever the password: the wire answers the portal's "account locked" (403),
    which it also gives for names that do not exist, so the throttle reveals nothing. Per process and
    bounded (`max_keys`, the oldest key dropped first): with N workers an attacker gets at most N x
    `max_failures` guesses per window. `max_failures` 0 switches it off."""

    def __init__(self, max_failures: int, window_seconds: float, max_keys: int = 10_000) -> None:
        self.max_failures, self.window, self.max_keys = max_failures, window_seconds, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, key: str, now: float | None = None) -> bool:
        if self.max_failures <= 0:
            return False
        with self._lock:
            return len(self._recent(key, time.monotonic() if now is None else now)) >= self.max_failures

    def failed(self, key: str, now: float | None = None) -> None:
        if self.max_failures <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(key, now)
            failures.append(now)
            self._failures[key] = failures
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def take_token(
    repo: Repository,
    *,
    username: str,
    password_md5: str,
    now: datetime,
    ttl: timedelta,
    throttle: LoginThrottle | None = None,
) -> TokenGrant:
    """Issue a token, or say why not with the portal's own code. The password is checked first: lock
    state and facility are told only to whoever knows it (else a 402/403 would confirm an account)."""
    key = username[:128]
    if throttle is not None and throttle.blocked(key):
        return TokenGrant(TokenResult.LOCKED)
    account = repo.get_account(username) if len(username) <= 64 else None
    if account is None or not _password_ok(account, password_md5):
        if throttle is not None:
            throttle.failed(key)
        return TokenGrant(TokenResult.NO_ACCOUNT)
    if throttle is not None:
        throttle.succeeded(key)
    if username.split("_", 1)[0] != account.facility_code:
        return TokenGrant(TokenResult.WRONG_FACILITY)
    if account.locked:
        return TokenGrant(TokenResult.LOCKED)
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
    if account is None or not _password_ok(account, creds.password_md5):
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
