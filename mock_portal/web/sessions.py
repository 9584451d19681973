"""Server-side dashboard sessions: a signed cookie alone cannot be taken back, so each login opens a
session id held in the database (shared by every server process) and logout closes it; the cookie
is honoured only while its id is open. Pure domain over the repository.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from mock_portal.store import Repository

KEY = "ui_sessions"
LIFETIME_SECONDS = 12 * 3600
"""An idle-or-not session ends after this long (a working day)."""
MAX_OPEN = 64
"""Most sessions open at once; the oldest is closed first."""


def _live(value: dict[str, Any], now: float) -> dict[str, float]:
    return {sid: expires for sid, expires in (value.get("open") or {}).items() if expires > now}


def open_session(repo: Repository) -> str:
    sid, now = secrets.token_urlsafe(24), time.time()

    def add(value: dict[str, Any]) -> dict[str, Any]:
        live = _live(value, now)
        live[sid] = now + LIFETIME_SECONDS
        newest = sorted(live.items(), key=lambda item: item[1])[-MAX_OPEN:]
        return {"open": dict(newest)}

    repo.update_setting(KEY, add)
    return sid


def is_open(repo: Repository, sid: str | None) -> bool:
    if not sid:
        return False
    found = repo.get_settings([KEY]).get(KEY)
    return found is not None and sid in _live(found[1], time.time())


def close_session(repo: Repository, sid: str | None) -> None:
    if not sid:
        return

    def remove(value: dict[str, Any]) -> dict[str, Any]:
        return {"open": {k: v for k, v in _live(value, time.time()).items() if k != sid}}

    repo.update_setting(KEY, remove)
