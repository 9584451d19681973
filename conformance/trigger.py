"""How the harness asks a hospital system to issue a certificate (the trigger contract).

The order (`trigger.schema.json`) goes as JSON on the standard input of a command (exit code 0 =
taken) or as the body of an HTTP POST (2xx = taken). The harness validates every order against the
schema before sending, so a refusal is always the hospital's answer, never a malformed order.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import httpx
import jsonschema

from fixtures.hospital.wire import tls_context

__all__ = ["CommandTrigger", "HttpTrigger", "OrderInvalid", "Taken", "Trigger", "schema", "validate_order"]

SCHEMA_FILE = Path(__file__).with_name("trigger.schema.json")


class OrderInvalid(ValueError):
    """An order the harness built does not follow the trigger contract: a harness bug."""


@dataclass(frozen=True)
class Taken:
    """The hospital's answer to one order."""

    taken: bool
    note: str


class Trigger(Protocol):
    description: str

    def send(self, order: dict[str, Any]) -> Taken: ...


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def validate_order(order: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(order), key=lambda e: list(e.path))
    if errors:
        where = "/".join(map(str, errors[0].path)) or "(order)"
        raise OrderInvalid(
            f"order {order.get('request_id')!r} breaks trigger.schema.json at {where}: {errors[0].message}"
        )


class CommandTrigger:
    """Runs `command` once per order with the order's JSON on stdin; exit code 0 means taken."""

    def __init__(self, command: str, *, timeout: float = 30.0, cwd: Path | None = None) -> None:
        self.command = command
        self.description = f"command: {command}"
        self.timeout = timeout
        self.cwd = cwd

    def send(self, order: dict[str, Any]) -> Taken:
        validate_order(order)
        try:
            done = subprocess.run(  # noqa: S603 - the user's own trigger command, by design
                shlex.split(self.command),
                input=json.dumps(order, ensure_ascii=False).encode(),
                capture_output=True,
                timeout=self.timeout,
                cwd=self.cwd,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Taken(False, f"{type(exc).__name__}: {exc}")
        tail = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-300:]
        return Taken(done.returncode == 0, f"exit {done.returncode}{': ' + tail if tail else ''}")


class HttpTrigger:
    """POSTs each order as JSON to `url`; a 2xx answer means taken."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.description = f"HTTP POST {url}"
        self.timeout = timeout

    def send(self, order: dict[str, Any]) -> Taken:
        validate_order(order)
        try:
            reply = httpx.post(self.url, json=order, timeout=self.timeout, verify=tls_context())
        except httpx.HTTPError as exc:
            return Taken(False, f"{type(exc).__name__}: {exc}")
        return Taken(reply.is_success, f"HTTP {reply.status_code}")
