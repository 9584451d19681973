"""Settings of the mock portal, read from `PORTAL_*` environment variables in one place.

One `Settings` object is made at start-up and passed down explicitly (to `mock-portal serve`'s worker
processes too); nothing else reads the environment. The entry points read it: `mock-portal` once per
command, `mock_portal/asgi.py` once for `uvicorn mock_portal.asgi:app`. A value that cannot be taken
stops the start (`SettingsError`) instead of being guessed at: `PORTAL_REQUIRE_CRL=ture` is refused,
not read as false.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mock_portal.results.grades import Strictness

DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    """Address the server binds to; loopback by default."""
    port: int = 8080
    """TCP port of the server."""
    database_url: str = "sqlite:///var/portal.sqlite3"
    """SQLAlchemy URL; a SQLite file by default, PostgreSQL for several hosts."""
    admin_token: str = field(default_factory=lambda: secrets.token_hex(24))
    """Bearer token of the sandbox control API; a random one is printed at start when unset (hex: a token
    starting with "-" would be read as an option by every command line it is passed to)."""
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    """Largest decoded XML file accepted; larger ones get MaKetQua 1001 before any parsing."""
    token_ttl_minutes: int = 60
    """Lifetime of a portal access token (reconstructed; the real value is not documented)."""
    max_xml_depth: int = 64
    """Deepest element nesting accepted in a submitted file."""
    signing_time_skew_minutes: int = 5
    """How far a SigningTime may lie after receipt before it is called implausible."""
    require_crl: bool = False
    """Make a missing CRL for the issuing CA an INDETERMINATE signature instead of a note."""
    calendar: str = "default"
    """Working-time calendar: `default` (Mon–Fri 08–12, 13–17, VN holidays), `24x7`, or a TOML/JSON file."""
    deadline_working_minutes: int = 240
    """Decree 63/2024 Art. 25.1: signed data within 4 working hours of issuing the paper."""
    ipss_api_key: str = field(default_factory=lambda: secrets.token_hex(24))
    """API key of the simulated IPSS (`/ipss/v1`, header X-API-Key); a random one is printed at start when unset."""
    sharing_enabled: bool = True
    """Run the HIAP -> IPSS sharing worker in this process."""
    sharing_interval_ms: int = 200
    """How often the sharing worker looks at the outbox."""
    journal_max_entries: int = 100_000
    """Journal retention per workspace: the oldest entries beyond this are dropped (0 switches the journal
    off). Counts the requests that proved to be their account; the others have their own bound below."""
    unauthenticated_journal_max_entries: int = 10_000
    """Retention per workspace of the journal rows of requests that named an account without proving to be
    it (wrong password, a token the portal did not issue to the workspace): anyone can send them, so they
    are kept apart and never push the account's own rows out (0: not journalled)."""
    strictness: str = "portal"
    """`portal`: answer what the real portal most likely answers (refuse only what the evidence supports,
    warn about the rest); `strict`: every check refuses. Overridable per facility (docs/fidelity.md)."""
    unauthenticated_max_submissions: int = 10_000
    """Retention of submissions refused for their credentials (MaKetQua 401): anyone can send them, so
    only the newest this many are kept (0 keeps all)."""
    header_timeout_seconds: int = 10
    """A connection must finish sending a request's headers within this time, or it is closed."""
    body_timeout_seconds: int = 120
    """A request body must have fully arrived within this time (a 7 MB upload at ~0.5 Mbit/s)."""
    body_idle_timeout_seconds: int = 15
    """Longest pause allowed while a request body arrives."""
    max_open_bodies: int = 256
    """Requests whose bodies may be in flight at once, per server process; more get 503 / MaKetQua 500."""
    max_inflight_bytes: int = 64 * 1024 * 1024
    """Bytes of request bodies held at once, per server process (declared lengths are reserved)."""
    wire_inline_bytes: int | None = None
    """A wire submission up to this size is examined and stored on the server process's event loop, one at
    a time, instead of on a worker thread: on 2 cores the thread hand-offs and the threads' contention
    for the GIL made a submission cost 25-40 % more CPU (bench/README.md). Bigger ones (and token requests,
    which pay scrypt) go to threads. Unset: 32 KiB on SQLite (a certificate's form is ~8 KiB; the worst
    32 KiB form found holds the loop ~8 ms), 0 on PostgreSQL (its round trips, maybe to another host, would
    hold the loop); 0: the examination and the database always on threads."""
    login_max_failures: int = 10
    """Failed logins within `login_window_seconds` before further attempts are refused — per username and
    client address on the wire (maKetQua 403; a password the process has verified still passes, and one
    attempt per `login_window_seconds / login_max_failures` is still checked, so a guesser at the
    hospital's own address does not lock it out: `LoginThrottle`), per client and claimed workspace on
    the dashboard (429); 0 switches the throttle off."""
    login_window_seconds: int = 300
    """The sliding window of the login throttle."""
    workspace_max_facilities: int = 100
    """Facilities a new workspace may hold unless its creator says otherwise (docs/ARCHITECTURE.md, Workspaces)."""
    workspace_max_submissions_per_minute: int = 600
    """Wire submissions per real minute a new workspace may send; beyond, the portal's busy answer (MaKetQua 500)."""
    workspace_max_documents: int = 100_000
    """Accepted documents a new workspace may store; beyond, the portal's busy answer."""
    worker_restarts: int = 5
    """Crashed workers the supervisor restarts within `worker_restart_window_seconds` before giving up."""
    worker_restart_window_seconds: int = 60
    """The sliding window of the restart budget: crashes older than this are forgotten."""
    drain_timeout_seconds: int = 8
    """How long a stopping server waits for the requests in progress before cancelling them: below the 10 s
    `podman stop` and `docker stop` wait before SIGKILL."""
    drain_delay_seconds: int = 0
    """Behind a load balancer: how long a server told to stop goes on accepting and serving, its readiness
    already 503, before it closes its listening socket, so the balancer's check takes it out first and sends
    it nothing it would refuse (deploy/: 2; 0: close at once)."""
    field_evidence: str = ""
    """Field-evidence files (docs/field-evidence.md) whose counts `GET /sandbox/fidelity` shows per behaviour:
    one path, or several separated as in PATH (`:`; `;` on Windows); read as each server process starts (and
    first by `mock-portal serve`), a file that is not one stops the start. Empty: none."""

    def __post_init__(self) -> None:
        Strictness.parse(self.strictness)

    @property
    def field_evidence_files(self) -> tuple[str, ...]:
        """The files `field_evidence` names."""
        return tuple(part for part in self.field_evidence.split(os.pathsep) if part.strip())

    @property
    def inline_limit(self) -> int:
        """`wire_inline_bytes`, or its default for the database."""
        if self.wire_inline_bytes is not None:
            return self.wire_inline_bytes
        return 32 * 1024 if self.database_url.startswith("sqlite") else 0

    @property
    def max_body_bytes(self) -> int:
        """Largest wire request body read at all: the base64 of the largest file plus form overhead."""
        return self.max_file_bytes * 4 // 3 + 64 * 1024

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        /,
        *,
        defaults: Mapping[str, object] | None = None,
        **overrides: object,
    ) -> Settings:
        """The settings `env` (the process environment by default) names over `defaults` (the demo's kept
        secrets), `overrides` (a command's flags) on top; `SettingsError` naming every malformed variable
        and every `PORTAL_*` name that is no setting (a misspelt one would silently leave its default)."""
        env = os.environ if env is None else env
        values: dict[str, object] = dict(defaults or {})
        problems = _unknown(env, [f"PORTAL_{f.name.upper()}" for f in fields(cls)])
        for f in fields(cls):
            variable = f"PORTAL_{f.name.upper()}"
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _convert(str(f.type), f.name, raw)
            except ValueError as exc:
                problems.append(f"{variable}={raw!r}: {exc}")
        if problems:
            raise SettingsError(problems)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]  # each value converted to its field's type above

    def sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url[len(prefix) :])
        return None


def _unknown(env: Mapping[str, str], known: list[str]) -> list[str]:
    """One line per `PORTAL_*` variable of `env` that names no setting, with the nearest setting's name."""
    lines = []
    for variable in sorted(name for name in env if name.startswith("PORTAL_") and name not in known):
        near = difflib.get_close_matches(variable, known, n=1, cutoff=0.8)
        lines.append(f"{variable}: no such setting" + (f" (did you mean {near[0]}?)" if near else ""))
    return lines


class SettingsError(ValueError):
    """`PORTAL_*` values that cannot be taken; the message has one line per variable: its name, the value
    and what it accepts."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
"""What a yes/no setting accepts, in any case: the words starlette's `Config` takes, and yes/no, on/off."""

DATABASES = ("sqlite", "postgresql", "postgres")


def _port(value: object) -> bool:
    return isinstance(value, int) and 1 <= value <= 65535


def _strictness(value: object) -> bool:
    return str(value).strip().lower() in set(Strictness)


def _database(value: object) -> bool:
    try:
        return make_url(str(value)).get_backend_name() in DATABASES
    except ArgumentError:
        return False


RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "port": (_port, "a TCP port, 1 to 65535"),
    "strictness": (_strictness, "portal or strict"),
    "database_url": (_database, "a SQLAlchemy URL: sqlite:///FILE or postgresql://USER@HOST/DB"),
}
"""Settings that accept less than their type: the check and what is accepted."""


def _convert(kind: str, name: str, raw: str) -> object:
    """`raw` as a value of the setting `name` of type `kind`; ValueError saying what is accepted."""
    text = raw.strip()
    value: object = raw
    if kind == "bool":
        if text.lower() not in BOOLEANS:
            raise ValueError("expected true or false (also 1/0, yes/no, on/off; any case)")
        value = BOOLEANS[text.lower()]
    elif kind.removesuffix(" | None") == "int":  # an optional setting, when the environment sets it
        if not re.fullmatch(r"\d+", text):
            raise ValueError(f"expected {RULES[name][1] if name in RULES else 'a whole number, 0 or more'}")
        value = int(text)
    check, accepted = RULES.get(name, (lambda _: True, ""))
    if not check(value):
        raise ValueError(f"expected {accepted}")
    return value
