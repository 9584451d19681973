"""Portal accounts and tokens: the [wire] login of `/api/token/take` and the credentials of a submission.

Accounts are `<MA_CSKCB>_BV` by convention; passwords travel as the hex MD5 of the password. PL02
asks for uppercase; production clients send lowercase and are accepted (R9), so the comparison is
case-insensitive and the letter case is a graded deviation (`AUTH_MD5_CASE` / `TOKEN_MD5_CASE`):
a warning in `portal` mode, a refusal in `strict` mode. So is a `maCskcb` of another facility than
the account's (`AUTH_FACILITY_MISMATCH`, accepted by the real portal: R2).

The portal never stores the MD5 (an unsalted MD5 is as good as the password to anyone who reads the
database): it stores a salted scrypt hash of its uppercase form (`hash_password_md5`) and checks a
received MD5 with `password_matches`. `LoginThrottle` limits failed logins per username and client
address (and per dashboard client) in a time window, without locking out an owner who shares the
guesser's address (`check_login`). Pure domain: no HTTP here.

Why a wrong password cannot be made expensive at will: scrypt costs ~50-100 ms of CPU, so a sender with
any valid token could otherwise spend a core of the portal's per wrong password it sends. So:

- only *verified-good* (stored hash, MD5) pairs are cached, per process and bounded (`_GOOD_PAIRS`): a
  hospital's every submission after its first pays nothing, `known_password` tells the wire gateway so
  without hashing (it serves only such submissions on the event loop: scrypt never runs there), and a
  flood of wrong passwords cannot push the good pairs out;
- a submission's unknown password spends one of the scrypt checks of its client address and account
  (`SenderBudget`, a token bucket per process: `SENDER_CHECKS` at once, one more every
  `SENDER_REFILL_SECONDS`; a right password gives its check back); over budget it is refused unhashed
  with the portal's own MaKetQua 401 (`AUTH_PASSWORD_THROTTLED`). Only a holder of a valid token of
  that account reaches the check, so nobody else can spend the owner's budget; the trade-off: someone
  who has the account's token, from the owner's address, can (and could submit as the owner anyway);
- at most `SCRYPT_AT_ONCE` scrypt runs at once per process (`_SCRYPT_SLOTS`), so however many
  addresses send, they cannot occupy every core (the others wait: a token request queued on the event
  loop for the wire's one login thread, `api/blocking.py`; a submission's on its thread).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from mock_portal.fidelity import grade
from mock_portal.portal.records import iso
from mock_portal.results.codes import TokenResult
from mock_portal.results.codes import md5_upper as md5_upper  # the wire's password form, also said here
from mock_portal.results.findings import Finding, Severity, has_errors
from mock_portal.results.grades import Strictness
from mock_portal.store import Account, Repository, Token

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password_md5(md5_hex: str, salt: bytes | None = None) -> str:
    """The stored form of a password: scrypt over the uppercase MD5 hex, with a random salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = _scrypt(md5_hex.upper(), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


SCRYPT_AT_ONCE = 1
"""Scrypt runs at once per process (`_SCRYPT_SLOTS`): with N server processes at most N cores hash."""
_SCRYPT_SLOTS = threading.BoundedSemaphore(SCRYPT_AT_ONCE)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _SCRYPT_SLOTS:
        return hashlib.scrypt(secret.encode("ascii", "replace"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 2**20)


class _GoodPairs:
    """Verified-good (stored hash, uppercase MD5) pairs, bounded, the least recently used dropped first.
    Only good pairs: wrong guesses cannot evict a hospital's (a hash changes with every password change,
    so a stale entry can never match)."""

    def __init__(self, max_pairs: int = 4096) -> None:
        self.max_pairs = max_pairs
        self._pairs: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, pair: tuple[str, str]) -> bool:
        with self._lock:
            if pair not in self._pairs:
                return False
            self._pairs.move_to_end(pair)
            return True

    def add(self, pair: tuple[str, str]) -> None:
        with self._lock:
            self._pairs[pair] = None
            while len(self._pairs) > self.max_pairs:
                self._pairs.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pairs.clear()


_GOOD_PAIRS = _GoodPairs()


def _verified(stored: str, candidate: str) -> bool:
    """Whether `candidate` (uppercase MD5 hex) hashes to `stored`; a good pair is remembered."""
    if (stored, candidate) in _GOOD_PAIRS:
        return True
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        good = hmac.compare_digest(_scrypt(candidate, bytes.fromhex(salt), int(n), int(r), int(p)), bytes.fromhex(key))
    except (ValueError, OverflowError):
        return False
    if good:
        _GOOD_PAIRS.add((stored, candidate))
    return good


def password_matches(account: Account, received_md5: str) -> bool:
    """Whether the MD5 a client sent is the account's password; letter case does not matter here (the
    MD5 is compared upper-cased: whether lower case is acceptable is a fidelity decision made elsewhere)."""
    return _plausible(received_md5) and _verified(account.password_hash, received_md5.upper())


def _plausible(received_md5: str) -> bool:
    """Worth hashing at all: something, and not a megabyte of it."""
    return 0 < len(received_md5) <= 128


def known_password(account: Account, received_md5: str) -> bool:
    """Whether this MD5 was verified as the account's password in this process already: a dictionary
    look-up, never scrypt (what the wire gateway may decide on the event loop)."""
    return (account.password_hash, received_md5.upper()) in _GOOD_PAIRS


SENDER_CHECKS = 4
"""Scrypt checks of unknown passwords one sender may spend at once (per process)."""
SENDER_REFILL_SECONDS = 5.0
"""One more check per this many seconds: a sender's wrong passwords cost at most ~2 % of a core."""


class SenderBudget:
    """Scrypt checks of unknown passwords per sender (a client address and an account): a token bucket of `checks`,
    refilled by one every `refill_seconds`, per process and bounded (`max_senders`, the least recently
    seen dropped first; a dropped sender starts full again, which costs at most `checks`)."""

    def __init__(
        self, checks: int = SENDER_CHECKS, refill_seconds: float = SENDER_REFILL_SECONDS, max_senders: int = 10_000
    ) -> None:
        self.checks, self.refill, self.max_senders = checks, refill_seconds, max_senders
        self._left: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """sender -> (checks left, when counted)"""
        self._lock = threading.Lock()

    def spend(self, sender: str, now: float | None = None) -> bool:
        """Take one check for `sender`; False (nothing taken) when none is left."""
        return self._add(sender, -1.0, now)

    def give_back(self, sender: str, now: float | None = None) -> None:
        """Return a check: the password it paid for was right (a hospital on a cold cache)."""
        self._add(sender, 1.0, now)

    def _add(self, sender: str, change: float, now: float | None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            left, at = self._left.get(sender, (float(self.checks), now))
            left = min(float(self.checks), left + (now - at) / self.refill)
            if left + change < 0:
                return False
            self._left[sender] = (min(float(self.checks), left + change), now)
            self._left.move_to_end(sender)
            while len(self._left) > self.max_senders:
                self._left.popitem(last=False)
            return True


_CheckOf = tuple[str, str, str]
"""(sender key, stored hash, uppercase MD5)"""


class _ChecksUnderWay:
    """Password checks running now, by (sender, stored hash, uppercase MD5). A hospital's burst of submissions
    on a cold cache (a server just started) waits for the first one's scrypt: before, each spent one of the
    sender's `SENDER_CHECKS`, and beyond them a right password was refused as AUTH_PASSWORD_THROTTLED (seen
    in 4 of 5 SIGTERM-drain runs with 2 workers: 3-13 of ~70). The sender is in the key because the result
    is the sender's: refused unhashed when its budget is spent. At most one entry per thread checking."""

    def __init__(self) -> None:
        self._checks: dict[_CheckOf, Future[bool | None]] = {}
        self._lock = threading.Lock()

    def join(self, check_of: _CheckOf) -> tuple[Future[bool | None], bool]:
        """The check of `check_of` under way, or a new one; True when the caller is to run it."""
        with self._lock:
            running = self._checks.get(check_of)
            if running is not None:
                return running, False
            mine: Future[bool | None] = Future()
            self._checks[check_of] = mine
            return mine, True

    def run(self, check_of: _CheckOf, future: Future[bool | None], check: Callable[[], bool | None]) -> bool | None:
        """Run `check` as the check of `check_of`; whoever joined it gets its result (or its exception)."""
        try:
            result = check()
        except BaseException as exc:
            self._end(check_of)
            future.set_exception(exc)
            raise
        self._end(check_of)
        future.set_result(result)
        return result

    def _end(self, check_of: _CheckOf) -> None:
        with self._lock:
            del self._checks[check_of]


_UNDER_WAY = _ChecksUnderWay()


def budgeted_password_check(budget: SenderBudget | None, sender: str) -> Callable[[Account, str], bool | None]:
    """A submission's password check for `judge_credentials`: a known-good pair costs nothing; an unknown
    one spends one of the checks of `sender` and the account together (`SenderBudget`) and gets None,
    unhashed, when none is left; the same pair arriving while it is checked waits for that check's result
    and spends nothing (`_ChecksUnderWay`, per sender). The check is reached only with a valid token of that very
    account (`_judge`), so only a holder of the account's token can spend its budget: another tenant's wrong
    passwords, even from the owner's address, never refuse the owner."""

    def key(account: Account) -> str:
        return f"{sender}|{account.username}"

    def spend_and_check(account: Account, received_md5: str) -> bool | None:
        if budget is not None and not budget.spend(key(account)):
            return None
        matches = password_matches(account, received_md5)
        if matches and budget is not None:
            budget.give_back(key(account))
        return matches

    def check(account: Account, received_md5: str) -> bool | None:
        if not _plausible(received_md5):
            return False
        if known_password(account, received_md5):
            return True
        check_of = (key(account), account.password_hash, received_md5.upper())
        future, mine = _UNDER_WAY.join(check_of)
        if not mine:
            return future.result()
        return _UNDER_WAY.run(check_of, future, lambda: spend_and_check(account, received_md5))

    return check


def md5_case(code: str, received_md5: str) -> Finding | None:
    """A deviation finding when the MD5 hex is not all uppercase (as PL02 asks)."""
    if received_md5 == received_md5.upper():
        return None
    return _auth(
        code,
        "Mật khẩu MD5 viết thường; PL02 yêu cầu chữ hoa",
        "The password MD5 is in lowercase hex; PL02 asks for uppercase (the real portal accepts both: R9)",
    )


def json_body_note() -> Finding:
    """A token request posted as JSON: accepted in both modes (production clients do it, R9), noted."""
    return Finding(
        "TOKEN_JSON_BODY",
        Severity.WARNING,
        "Yêu cầu token gửi dạng JSON; PL02 mô tả dạng form (cổng thật vẫn nhận: R9)",
        "The token request is JSON; PL02 documents a form body (the real portal accepts JSON: R9)",
        expected="application/x-www-form-urlencoded",
        received="application/json",
    )


@dataclass(frozen=True)
class TokenGrant:
    result: TokenResult
    token: Token | None = None
    findings: tuple[Finding, ...] = ()
    """Why the token was refused, or the warnings it was issued with (graded)."""

    def explain(self) -> str:
        """One line for `X-Sandbox-Explain`."""
        errors = [f for f in self.findings if f.severity is Severity.ERROR]
        if errors:
            return f"{errors[0].code}: {errors[0].message_en}"
        warnings = [f.code for f in self.findings]
        return f"TOKEN_ISSUED{'; warning(s): ' + ', '.join(warnings) if warnings else ''}"


_TOKEN_REFUSALS = {
    TokenResult.NO_ACCOUNT: ("TOKEN_NO_ACCOUNT", "Sai tài khoản hoặc mật khẩu", "Unknown account or wrong password"),
    TokenResult.WRONG_FACILITY: (
        "TOKEN_WRONG_FACILITY",
        "Tên đăng nhập không thuộc cơ sở của tài khoản",
        "The username's facility prefix is not the account's facility",
    ),
    TokenResult.LOCKED: ("TOKEN_LOCKED", "Tài khoản đã bị khóa", "The account is locked"),
}


def _refused(result: TokenResult, *extra: Finding) -> TokenGrant:
    code, vi, en = _TOKEN_REFUSALS[result]
    return TokenGrant(result, None, grade([*extra, _auth(code, vi, en)], Strictness.STRICT))


def upgrade_legacy_passwords(repo: Repository) -> int:
    """Replace the unsalted MD5s an older version stored by salted hashes of them (the MD5 is what the
    wire sends, so nobody has to reset a password); returns how many accounts were upgraded."""
    legacy = repo.legacy_passwords()
    for username, md5_hex in legacy.items():
        repo.set_password_hash(username, hash_password_md5(md5_hex))
    return len(legacy)


class LoginThrottle:
    """Failed logins per key (a username from one client address: `wire_login_key`; a dashboard client)
    in a sliding window of real time.

    After `max_failures` failures within `window_seconds` a key is throttled until its oldest failure
    leaves the window: the wire answers the portal's "account locked" (403), which it also gives for
    names that do not exist, so the throttle reveals nothing. Per process and bounded (`max_keys`, the
    oldest key dropped first). `max_failures` 0 switches it off.

    Why per address on the wire: keyed by the username alone, anyone who knows an account's name (they
    are `<MA_CSKCB>_BV`) could lock its hospital out with a few wrong guesses a window. But an attacker
    may share the owner's address (one proxy, one NAT, the loopback of a hosted sandbox: issue 24, where
    30 wrong passwords locked `79004_BV` out for 5 minutes), so on the wire a throttled key still lets
    its owner in (`check_login`): a password this process has already verified for the account passes
    at once (`known_password`, no scrypt), and any other password gets one real check per `probe_seconds`
    (`admit`; `window_seconds / max_failures`, 30 s by default), which also re-proves the owner after a
    restart. A right password does not forgive the key's failures (the next guess from that shared key
    would start afresh). The trade-off: an attacker keeps `max_failures` guesses per window and address
    and process, plus one per `probe_seconds` after them — the same long-run rate, `max_failures` per
    window — each paying scrypt; while it keeps sending, it takes most probes, so an owner this process
    has not verified yet may wait for a probe it wins (known-good owners never wait); hospitals behind
    one proxy still share a key."""

    def __init__(self, max_failures: int, window_seconds: float, max_keys: int = 10_000) -> None:
        self.max_failures, self.window, self.max_keys = max_failures, window_seconds, max_keys
        self.probe_seconds = window_seconds / max_failures if max_failures > 0 else 0.0
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._probed: dict[str, float] = {}
        """Key -> when `admit` last let a throttled key's request through."""
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

    def admit(self, key: str, now: float | None = None) -> bool:
        """Whether a request of `key` may have its password checked now: always under `max_failures`;
        when throttled, once `probe_seconds` have passed since the key's newest failure and the last
        request admitted so (only one request a probe: concurrent ones are refused)."""
        if self.max_failures <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self.max_failures:
                return True
            if now - max(failures[-1], self._probed.get(key, failures[-1])) < self.probe_seconds:
                return False
            self._probed[key] = now
            return True

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
                self._probed.pop(self._failures.popitem(last=False)[0], None)

    def succeeded(self, key: str) -> None:
        """Forget the key's failures (the dashboard's login, whose key names the claimed workspace)."""
        with self._lock:
            self._failures.pop(key, None)
            self._probed.pop(key, None)


def wire_login_key(username: str, client: str) -> str:
    """The throttle's key of a wire login: the username from one client address (see `LoginThrottle`)."""
    return f"wire:{client[:64]}:{username[:128]}"


@dataclass(frozen=True)
class PasswordCheck:
    """A password already checked for this request (by the wire gateway, which must know whether a token
    request proves its account before anything else), so `take_token` does not pay scrypt again. It
    speaks only for exactly this username and MD5."""

    username: str
    password_md5: str
    matches: bool

    def of(self, username: str, password_md5: str) -> bool | None:
        """Whether the password matches, when this check is of these credentials; else None."""
        return self.matches if (username, password_md5) == (self.username, self.password_md5) else None


def check_login(
    account: Account | None, username: str, password_md5: str, *, client: str, throttle: LoginThrottle | None
) -> PasswordCheck | None:
    """Whether a token request's password is its account's; None when the throttle refuses the check
    (`take_token` then refuses the request). A password already verified here passes even a throttled key
    (`known_password`: the owner sharing an attacker's address); any other is checked with scrypt when the
    throttle admits it (`LoginThrottle.admit`)."""
    if account is not None and _plausible(password_md5) and known_password(account, password_md5):
        return PasswordCheck(username, password_md5, True)
    if throttle is not None and not throttle.admit(wire_login_key(username, client)):
        return None
    matches = account is not None and password_matches(account, password_md5)
    return PasswordCheck(username, password_md5, matches)


def take_token(
    repo: Repository,
    *,
    username: str,
    password_md5: str,
    now: datetime,
    ttl: timedelta,
    strictness: Strictness = Strictness.STRICT,
    notes: tuple[Finding, ...] = (),
    throttle: LoginThrottle | None = None,
    client: str = "",
    checked: PasswordCheck | None = None,
) -> TokenGrant:
    """Issue a token, or say why not with the portal's own code. The password is checked first: lock
    state and facility are told only to whoever knows it (else a 402/403 would confirm an account).
    `notes`: deviations of the request itself (e.g. a JSON body), reported with the grant. `client`: the
    address the request came from (the throttle's key); `checked`: the gateway's check of the password,
    which already asked the throttle."""
    account = repo.get_account(username) if len(username) <= 64 else None
    if checked is None or checked.of(username, password_md5) is None:
        checked = check_login(account, username, password_md5, client=client, throttle=throttle)
    if checked is None:
        return _refused(
            TokenResult.LOCKED,
            *notes,
            _auth(
                "TOKEN_THROTTLED",
                "Quá nhiều lần đăng nhập sai từ địa chỉ này; hãy thử lại sau",
                "Too many failed logins for this username from this address; try again later",
            ),
        )
    if account is None or not checked.matches:
        if throttle is not None:
            throttle.failed(wire_login_key(username, client))
        return _refused(TokenResult.NO_ACCOUNT, *notes)
    if username.split("_", 1)[0] != account.facility_code:
        return _refused(TokenResult.WRONG_FACILITY, *notes)
    if account.locked:
        return _refused(TokenResult.LOCKED, *notes)
    case = md5_case("TOKEN_MD5_CASE", password_md5)
    findings = grade([*notes, *([case] if case else [])], strictness)
    if has_errors(findings):
        return TokenGrant(TokenResult.NO_ACCOUNT, None, findings)
    token = Token(
        access_token=secrets.token_urlsafe(32),
        id_token=secrets.token_urlsafe(32),
        username=username,
        issued_at=now,
        expires_at=now + ttl,
    )
    repo.add_token(token)
    return TokenGrant(TokenResult.OK, token, findings)


@dataclass(frozen=True)
class Credentials:
    """The credential fields of a submission form."""

    facility_code: str
    access_token: str
    id_token: str
    username: str
    password_md5: str


def check_credentials(
    repo: Repository, creds: Credentials, *, now: datetime, strictness: Strictness = Strictness.STRICT
) -> tuple[Account | None, tuple[Finding, ...]]:
    """The account the submission speaks for, and the graded AUTH_* findings (an error makes it a 401)."""
    token = repo.get_token(creds.access_token) if creds.access_token else None
    account = repo.get_account(creds.username) if creds.username else None
    known = (
        account is None or account.facility_code == creds.facility_code or bool(repo.get_facility(creds.facility_code))
    )
    return judge_credentials(creds, token, account, now=now, strictness=strictness, facility_known=known)


def judge_credentials(
    creds: Credentials,
    token: Token | None,
    account: Account | None,
    *,
    now: datetime,
    strictness: Strictness = Strictness.STRICT,
    facility_known: bool = True,
    password_check: Callable[[Account, str], bool | None] = password_matches,
) -> tuple[Account | None, tuple[Finding, ...]]:
    """`check_credentials` over rows the caller already read (`token` by access token, `account` by
    username), so a submission reads them with its other per-request data in one session.

    Returns the account (None when refused) and the graded findings: one error when refused, else
    the deviations the mode accepts as warnings (lowercase MD5, another facility's maCskcb — which
    must still name a facility the portal knows: `facility_known`). `password_check`: the wire's
    `budgeted_password_check` (None: not checked, the sender is over its budget)."""
    account, refusal = _judge(creds, token, account, now=now, password_check=password_check)
    if refusal is None and account is not None and creds.facility_code != account.facility_code and not facility_known:
        refusal = _auth(
            "AUTH_FACILITY_UNKNOWN",
            f"maCskcb {creds.facility_code} không phải cơ sở KCB đã biết",
            f"maCskcb {creds.facility_code} is not a known facility",
            expected=account.facility_code,
            received=creds.facility_code,
        )
    if refusal is not None or account is None:
        return None, grade([refusal] if refusal else [], strictness)
    findings = grade(deviations(creds, account), strictness)
    return (None if has_errors(findings) else account), findings


def deviations(creds: Credentials, account: Account) -> list[Finding]:
    """What the real portal accepts but PL02 does not ask for (graded by `fidelity`)."""
    found = [f for f in (md5_case("AUTH_MD5_CASE", creds.password_md5),) if f is not None]
    if creds.facility_code != account.facility_code:
        found.append(
            _auth(
                "AUTH_FACILITY_MISMATCH",
                f"maCskcb {creds.facility_code} không phải cơ sở của tài khoản ({account.facility_code});"
                f" cổng thật vẫn nhận và lưu vào cơ sở {creds.facility_code}",
                f"maCskcb {creds.facility_code} is not the account's facility ({account.facility_code}); the real"
                f" portal accepts it and files the document under {creds.facility_code} (R2)",
                expected=account.facility_code,
                received=creds.facility_code,
            )
        )
    return found


def _judge(
    creds: Credentials,
    token: Token | None,
    account: Account | None,
    *,
    now: datetime,
    password_check: Callable[[Account, str], bool | None],
) -> tuple[Account | None, Finding | None]:
    """The refusals every mode makes."""
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
    if now >= token.expires_at:
        return None, _auth(
            "AUTH_TOKEN_EXPIRED",
            "Token đã hết hạn, hãy lấy token mới",
            f"Token expired at {iso(token.expires_at)}; take a new one",
        )
    matches = password_check(account, creds.password_md5) if account is not None else False
    if matches is None:
        return None, _auth(
            "AUTH_PASSWORD_THROTTLED",
            "Quá nhiều mật khẩu sai từ địa chỉ này; hãy thử lại sau",
            "Too many wrong passwords from this address: not checked; try again later",
        )
    if not matches or account is None:  # a match implies an account
        return None, _auth(
            "AUTH_BAD_CREDENTIALS",
            "Sai tài khoản hoặc mật khẩu (MD5 của mật khẩu)",
            "Wrong username or password (hex MD5 of the password expected)",
        )
    if account.locked:
        return None, _auth("AUTH_ACCOUNT_LOCKED", "Tài khoản đã bị khóa", "The account is locked")
    return account, None


def _auth(code: str, vi: str, en: str, **extra: str | None) -> Finding:
    return Finding(code=code, severity=Severity.ERROR, message_vi=vi, message_en=en, **extra)
