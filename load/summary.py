"""What the end of a run says besides the deadlines: failures grouped, expected re-logins, the generator's CPU.

* Locust's error table has one row per distinct failure text, so a text must carry no per-request
  value (an expiry instant, a submission id, a field value): `failure_text` keeps the reply's stable
  part (outcome, HTTP status, MaKetQua, fault names and the finding code of `X-Sandbox-Explain`) and
  `FailureSamples` keeps a few full details of each text for the run's JSON summary.
* A token the portal answers AUTH_TOKEN_EXPIRED is what any hospital meets in a long session (the
  faster the sandbox clock, the sooner): that submission is reported as a success under its own name
  (`EXPIRED_NAME`) and the token request after it as a re-login (`RELOGIN_NAME`), which fails when the
  login fails. Any other 401 stays a failure. `Relogins` counts both from Locust's statistics, which
  already travel from workers to the master.
* `GeneratorCpu` reads Locust's own CPU monitor (each process sampled every 10 s; a master hears its
  workers' samples): above the threshold the response times and deadline verdicts include the load
  generator's own queueing, so the summary says so.

Pure Python (no Locust import), so the pytest process can test it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fixtures.hospital.wire import SUBMIT_PATH, TOKEN_PATH

__all__ = [
    "EXPIRED_CODE",
    "EXPIRED_NAME",
    "RELOGIN_NAME",
    "FailureSamples",
    "GeneratorCpu",
    "Relogins",
    "cause_of",
    "failure_text",
    "summary_level",
]

EXPIRED_CODE = "AUTH_TOKEN_EXPIRED"
EXPIRED_NAME = f"{SUBMIT_PATH}: token expired → re-login"
"""Locust name of a submission answered AUTH_TOKEN_EXPIRED (a success: the hospital logs in again)."""
RELOGIN_NAME = f"{TOKEN_PATH}: re-login"
"""Locust name of the token requests after an expired token, until one succeeds."""

_CODE = re.compile(r"[A-Z][A-Z0-9_]{2,}")


def cause_of(explain: str | None) -> str:
    """The stable part of an `X-Sandbox-Explain` line ("FAULT a, b; CODE: message", "CODE: message"):
    the fault names and the code, without the message, which carries per-request values."""
    text = explain or ""
    faults, _, rest = text.partition("; ") if text.startswith("FAULT ") else ("", "", text)
    code = rest.split(":", 1)[0].strip()
    return "; ".join(part for part in (faults, code if _CODE.fullmatch(code) else "") if part)


def failure_text(outcome: str, http_status: int, code: Any, explain: str | None) -> str:
    """The text of a failed wire request in Locust's error table: the same for every request that
    failed for the same reason."""
    return f"{outcome}: HTTP {http_status} code {code} {cause_of(explain)}".strip()


@dataclass
class FailureSamples:
    """The first few full details of each failure text (bounded however long the run lasts)."""

    per_error: int = 3
    max_errors: int = 50
    samples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, error: str, detail: str) -> None:
        kept = self.samples.get(error)
        if kept is None:
            if len(self.samples) >= self.max_errors:
                return
            kept = self.samples[error] = []
        detail = detail[:300]
        if len(kept) < self.per_error and detail not in kept:
            kept.append(detail)

    def extend(self, samples: Mapping[str, list[str]]) -> None:
        """Take a worker's samples (the master's summary holds every node's)."""
        for error, details in samples.items():
            for detail in details:
                self.add(error, detail)

    def drain(self) -> dict[str, list[str]]:
        out, self.samples = self.samples, {}
        return out

    def to_list(self) -> list[dict[str, Any]]:
        return [{"error": error, "examples": details} for error, details in self.samples.items()]


@dataclass(frozen=True)
class Relogins:
    """Expected token expiries and the re-logins after them, from Locust's statistics."""

    expired: int
    """Submissions answered AUTH_TOKEN_EXPIRED."""
    attempts: int
    """Token requests made to log in again after one."""
    failed: int
    """Of those, the ones that failed (each a failure in Locust's statistics)."""

    @classmethod
    def from_stats(cls, entries: Mapping[tuple[str, str], Any]) -> Relogins:
        """`entries`: Locust's `RequestStats.entries`, keyed by (name, method)."""
        expired, relogin = entries.get((EXPIRED_NAME, "POST")), entries.get((RELOGIN_NAME, "POST"))
        return cls(
            expired.num_requests if expired else 0,
            relogin.num_requests if relogin else 0,
            relogin.num_failures if relogin else 0,
        )

    @property
    def succeeded(self) -> int:
        return self.attempts - self.failed

    def to_dict(self) -> dict[str, int]:
        return {"tokens_expired": self.expired, "relogins": self.succeeded, "relogins_failed": self.failed}


@dataclass(frozen=True)
class GeneratorCpu:
    """Whether the load generator's own CPU went above Locust's threshold during the run."""

    threshold_percent: float
    this_process: bool
    """The single process, or the master."""
    workers: bool
    """A worker (master only: Locust hears its workers' CPU with their heartbeats)."""

    @classmethod
    def of(cls, runner: Any, threshold_percent: float) -> GeneratorCpu:
        """From a Locust runner's `cpu_warning_emitted` (and a master's `worker_cpu_warning_emitted`)."""
        return cls(
            threshold_percent,
            bool(getattr(runner, "cpu_warning_emitted", False)),
            bool(getattr(runner, "worker_cpu_warning_emitted", False)),
        )

    @property
    def saturated(self) -> bool:
        return self.this_process or self.workers

    def warning(self) -> str | None:
        """The summary's sentence when the generator saturated, else None."""
        if not self.saturated:
            return None
        where = " and ".join(
            name for name, hot in (("this process", self.this_process), ("a worker", self.workers)) if hot
        )
        return (
            f"the load generator's CPU was above {self.threshold_percent:g} % ({where}): latencies and late "
            "certificates include the generator's own queueing; add worker processes (--processes) or machines"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_saturated": self.saturated,
            "cpu_threshold_percent": self.threshold_percent,
            "this_process": self.this_process,
            "workers": self.workers,
        }


def summary_level(threshold_failures: tuple[str, ...], late: int) -> int:
    """A passing run's summary is information; a violated threshold or a late certificate is a warning."""
    return logging.WARNING if threshold_failures or late else logging.INFO
