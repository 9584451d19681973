"""Workspaces: one hosted sandbox, many vendors (docs/ARCHITECTURE.md, Workspaces). Pure domain.

The operator key (`PORTAL_ADMIN_TOKEN`) creates and deletes workspaces and acts on `default`; each
other workspace has a key of its own, `wsk_<id>_<secret>`, shown once and stored as its SHA-256.
`Portal.workspace(id)` is the context a request in a workspace runs in; this module decides which
workspace a key names, which workspace a wire request speaks for and whether it proved it, and
whether a workspace is within its quotas.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mock_portal import store
from mock_portal.portal.auth import PasswordCheck, check_login, known_password
from mock_portal.portal.service import Portal
from mock_portal.results.errors import Conflict, InvalidInput, NotFound, PortalError

DEFAULT = store.DEFAULT_WORKSPACE
WORKSPACE_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,19}")
"""Matched whole (`fullmatch`: a trailing newline, which `$` lets through, is refused). Short enough
that `ws:<id>:<key>` fits the shared-settings and counter keys (64 characters)."""
KEY_PREFIX = "wsk_"
RATE_KEY = "quota:submissions"


class Role(StrEnum):
    OPERATOR = "operator"
    """The operator key: manages workspaces, acts on `default`."""
    WORKSPACE = "workspace"
    """A workspace key: acts on its workspace only."""


class Forbidden(PortalError):
    status = 403


@dataclass(frozen=True)
class Caller:
    role: Role
    workspace: str
    generation: str = ""
    """Which incarnation of the workspace (the SHA-256 of its key, new at every creation): a process that
    cached the portal of a deleted workspace must not serve a new one of the same id with it."""


@dataclass(frozen=True)
class Quotas:
    max_facilities: int | None = None
    max_submissions_per_minute: int | None = None
    max_documents: int | None = None


@dataclass(frozen=True)
class NewWorkspace:
    id: str | None
    name: str
    quotas: Quotas


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def claimed(key: str) -> str:
    """The workspace a key names, unverified ('' for the operator key or anything else): login throttles
    count failures per claimed workspace, so one tenant's wrong keys lock no other tenant out."""
    workspace_id = key[len(KEY_PREFIX) :].split("_", 1)[0] if key.startswith(KEY_PREFIX) else ""
    return workspace_id if WORKSPACE_ID.fullmatch(workspace_id) else ""


def authenticate(portal: Portal, key: str) -> Caller | None:
    """Who a bearer key is: the operator (acting on `default`), a workspace, or nobody."""
    if hmac.compare_digest(key.encode(), portal.settings.admin_token.encode()):
        return Caller(Role.OPERATOR, DEFAULT)
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    workspace_id = key[len(KEY_PREFIX) :].split("_", 1)[0]
    if workspace_id == DEFAULT or not WORKSPACE_ID.fullmatch(workspace_id):
        return None
    row = portal.repo.get_workspace(workspace_id)
    if row is None or not hmac.compare_digest(_digest(key), row.key_sha256):
        return None
    return Caller(Role.WORKSPACE, workspace_id, row.key_sha256)


def require_operator(caller: Caller) -> None:
    if caller.role is not Role.OPERATOR:
        raise Forbidden(
            "WORKSPACE_OPERATOR_ONLY",
            "Chỉ khoá của người vận hành (PORTAL_ADMIN_TOKEN) mới tạo, liệt kê hoặc xoá được workspace",
            "Only the operator key (PORTAL_ADMIN_TOKEN) creates, lists or deletes workspaces",
        )


def _quota(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000_000:
        raise InvalidInput(
            "WORKSPACE_QUOTA_INVALID",
            f"{name} phải là số nguyên từ 0 đến 10000000 (hoặc null: không giới hạn)",
            f"{name} must be a whole number from 0 to 10000000 (or null: no limit)",
        )
    return value


def parse_quotas(data: dict[str, Any] | None, defaults: Quotas) -> Quotas:
    """Quotas given in a request; a missing one takes the portal's default for new workspaces."""
    data = data or {}
    values = {name: _quota(data.get(name, getattr(defaults, name)), name) for name in Quotas.__dataclass_fields__}
    return Quotas(**values)


def default_quotas(portal: Portal) -> Quotas:
    s = portal.settings
    return Quotas(s.workspace_max_facilities, s.workspace_max_submissions_per_minute, s.workspace_max_documents)


def check_id(workspace_id: str) -> None:
    """Refuse an id no workspace can have (matched whole)."""
    if not WORKSPACE_ID.fullmatch(workspace_id):
        raise InvalidInput(
            "WORKSPACE_ID_INVALID",
            "Mã workspace gồm 2–20 chữ thường, chữ số hoặc '-', không phải 'default'",
            "A workspace id is 2-20 lowercase letters, digits or '-', and not 'default'",
        )


def create(portal: Portal, new: NewWorkspace) -> tuple[store.Workspace, str]:
    """Make a workspace; returns it and its key (shown this once, stored only as a digest)."""
    workspace_id = new.id or f"w{secrets.token_hex(5)}"
    check_id(workspace_id)
    if workspace_id == DEFAULT:  # it exists, always
        raise Conflict("WORKSPACE_EXISTS", "Workspace default đã tồn tại", "Workspace default already exists")
    name = (new.name or workspace_id).strip()[:255]
    key = f"{KEY_PREFIX}{workspace_id}_{secrets.token_urlsafe(24)}"
    row = store.Workspace(
        id=workspace_id,
        name=name,
        key_sha256=_digest(key),
        created_at=datetime.now(UTC),
        max_facilities=new.quotas.max_facilities,
        max_submissions_per_minute=new.quotas.max_submissions_per_minute,
        max_documents=new.quotas.max_documents,
    )
    try:
        portal.repo.add_workspace(row)
    except store.repository.AlreadyExists as exc:
        raise Conflict(
            "WORKSPACE_EXISTS", f"Workspace {workspace_id} đã tồn tại", f"Workspace {workspace_id} already exists"
        ) from exc
    return row, key


def delete(portal: Portal, workspace_id: str) -> None:
    """Delete a workspace and everything it owns (the operator's `default` stays)."""
    if workspace_id == DEFAULT:
        raise Conflict(
            "WORKSPACE_DEFAULT_KEPT",
            "Không xoá được workspace default; dùng POST /sandbox/reset để làm trống nó",
            "The default workspace cannot be deleted; POST /sandbox/reset empties it",
        )
    if not portal.repo.scoped(workspace_id).delete_workspace():
        raise not_found(workspace_id)
    portal.forget_workspace(workspace_id)
    _FULL_MINUTES.pop(workspace_id, None)


def not_found(workspace_id: str) -> NotFound:
    return NotFound("WORKSPACE_NOT_FOUND", f"Không có workspace {workspace_id}", f"No workspace {workspace_id}")


def describe(portal: Portal) -> dict[str, Any]:
    """The workspace a portal serves: id, name, quotas and what it uses of them."""
    row = portal.repo.get_workspace(portal.workspace_id)
    quotas = _quotas_of(row)
    return {
        "id": portal.workspace_id,
        "name": row.name if row is not None else portal.workspace_id,
        "created_at": row.created_at.isoformat() if row is not None else None,
        "clock": {"now": portal.clock.now().isoformat(), "rate": portal.clock.state().rate},
        "quotas": {name: getattr(quotas, name) for name in Quotas.__dataclass_fields__},
        "usage": {"facilities": portal.repo.count_facilities(), "documents": portal.repo.count_documents()},
    }


def _quotas_of(row: store.Workspace | None) -> Quotas:
    if row is None:  # `default` in a database built before workspaces: no limits
        return Quotas()
    return Quotas(row.max_facilities, row.max_submissions_per_minute, row.max_documents)


def check_facility_quota(portal: Portal) -> None:
    """Refuse a new facility beyond the workspace's quota (the sandbox API's 409)."""
    limit = _quotas_of(portal.repo.get_workspace(portal.workspace_id)).max_facilities
    if limit is not None and portal.repo.count_facilities() >= limit:
        raise Conflict(
            "WORKSPACE_QUOTA_EXCEEDED",
            f"Workspace đã có đủ {limit} cơ sở (hạn mức max_facilities)",
            f"The workspace has its {limit} facilities already (quota max_facilities)",
        )


def reset(portal: Portal) -> None:
    """Empty a workspace as if new, but for its submission-rate count (a reset is no way round a quota);
    every process goes back to real time with the next request it serves."""
    portal.repo.reset(keep=(RATE_KEY,))
    portal.clock.reset()


@dataclass(frozen=True)
class WireIdentity:
    """Who a wire request speaks for, decided before anything is counted, faulted or journalled: the
    workspace its username names (`default` when none does) and whether it proved to be that account.
    Only a request that did meets the workspace's fault plans and quotas; the others get the portal's
    own answer (401) and are journalled apart, so naming an account (an easy guess: `<MA_CSKCB>_BV`)
    costs its hospital nothing."""

    workspace: str
    row: store.Workspace | None
    authenticated: bool
    login: PasswordCheck | None = None
    """A token request's password check, for `Portal.take_token` (scrypt once per request)."""
    scrypt_free: bool = False
    """Judging the request's password costs no scrypt: no account to check it against, or a pair this
    process verified already (`auth.known_password`); only then may a submission run on the event loop."""

    @property
    def generation(self) -> str:
        return self.row.key_sha256 if self.row is not None else ""


def wire_identity(portal: Portal, operation: str, form: dict[str, str], client: str) -> WireIdentity:
    """A token request proves its account with the right password (scrypt: call it off the event loop;
    a throttled key is checked only as `check_login` allows, the handler refuses it otherwise); a
    submission with a token this portal issued to an account of the named account's workspace — valid or
    expired: a hospital's own expired token is evidence the conformance suite judges. One read either way."""
    username = form.get("username", "")
    token = form.get("token", "") if operation == "submit" else ""
    found = portal.repo.wire_account(username, token)
    if found is None:
        return WireIdentity(DEFAULT, None, False, scrypt_free=True)
    if operation == "submit":
        known = known_password(found.account, form.get("password", ""))
        return WireIdentity(found.workspace, found.row, found.token_workspace == found.workspace, scrypt_free=known)
    login = check_login(
        found.account, username, form.get("password", ""), client=client, throttle=portal.login_throttle
    )
    return WireIdentity(found.workspace, found.row, login is not None and login.matches, login)


def admit_submission(portal: Portal, row: store.Workspace | None) -> str | None:
    """Count one submission against the quotas of the workspace `row` (read with the account, so not
    read again); the reason it is over one, else None.

    Submissions per minute are counted in a window of the real minute (a quota is about load, not
    sandbox time), in one shared counter per workspace and minute, so every server process agrees.
    Only authenticated submissions are counted (`wire_identity`: anyone else's sends must not use up a
    tenant's budget; the handler refuses them as 401 anyway). `default` has no quotas: its wire path
    costs no extra query."""
    if portal.workspace_id == DEFAULT:
        return None
    quotas = _quotas_of(row)
    if quotas.max_documents is None and quotas.max_submissions_per_minute is None:
        return None
    if quotas.max_documents is not None and portal.repo.count_documents() >= quotas.max_documents:
        return f"the workspace stores its {quotas.max_documents} documents already (quota max_documents)"
    limit = quotas.max_submissions_per_minute
    if limit is None:
        return None
    minute = int(time.time() // 60)
    busy = f"more than {limit} submissions this minute (quota max_submissions_per_minute)"
    if _FULL_MINUTES.get(portal.workspace_id) == minute:  # this process saw the minute full: no write
        return busy
    counted = portal.repo.update_setting(RATE_KEY, lambda v: _count(v, minute))
    if counted["count"] > limit:
        _FULL_MINUTES[portal.workspace_id] = minute
        return busy
    return None


_FULL_MINUTES: dict[str, int] = {}
"""workspace -> the real minute this process found its submission quota used up in: the rest of that
minute is refused without touching the database, so a tenant over its quota costs the others little."""


def _count(value: dict[str, Any], minute: int) -> dict[str, Any]:
    return {"minute": minute, "count": value.get("count", 0) + 1 if value.get("minute") == minute else 1}
