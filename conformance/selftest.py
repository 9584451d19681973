"""`conformance selftest`: the suite against every built-in broken variant of the reference hospital.

Each variant (`fixtures.hospital.worker.Variant`) mirrors one bug real vendors make. The suite must
refuse every one of them, and the *first* MUST case that fails (in catalogue order) must be the one
that names the bug: a variant certified, or refused for another reason, is a hole in the suite. The
correct reference hospital must stay CONFORMANT over every scenario, with three seeds, and over
subsets of the scenarios (as `--only` picks them), so no verdict depends on the seed or on which
scenarios ran before.

To fit in CI, each variant runs only the scenarios that show its bug (plus the fault-free base
scenario every run has) and every case those scenarios feed; runs go two at a time, each with its own
portal and hospitals, so they share nothing.

Each variant runs a second time with `--only <its case>`: a case must judge every piece of evidence
that bears on it whichever other cases are selected, so that run must fail the same case with the same
message (`same_message`: numbers, codes and ids differ from run to run, the words may not).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from conformance.cases import load_cases
from conformance.harness import LiveOptions, run_live
from conformance.model import CaseResult
from conformance.registry import CaseSpec
from fixtures.hospital.worker import Variant

__all__ = [
    "EXPECTED",
    "MatrixRow",
    "PortalAccess",
    "Target",
    "kill_matrix",
    "kills",
    "render",
    "run_selftest",
    "same_message",
    "specs_for",
]


@dataclass(frozen=True)
class Target:
    """A variant (None = the correct hospital), the MUST case that must fail first, the scenario tags
    that show the bug."""

    variant: str | None
    expected: str | None
    tags: tuple[str, ...] = ()
    seed: int | None = None
    """None: the run's seed."""
    only: bool = False
    """Run with `--only <expected>` (and so only the scenarios that case needs)."""


SCENARIOS = (
    "refusal",
    "retry",
    "relogin",
    "outage",
    "too-large",
    "lost-reply",
    "overload",
    "backlog",
    "overdue",
    "night",
)
"""The tags of every scenario beyond the fault-free base one."""

EXPECTED: tuple[Target, ...] = (
    Target(None, None, SCENARIOS),
    Target(None, None, SCENARIOS, seed=11),
    Target(None, None, SCENARIOS, seed=23),
    Target(None, None, ("outage",)),
    Target(None, None, ("backlog", "lost-reply")),
    Target(None, None, ("overload", "relogin", "refusal")),
    Target(Variant.PLAIN_PASSWORD, "API-001"),
    Target(Variant.SHA1, "SIG-003"),
    Target(Variant.WRONG_LOAIHS, "API-003"),
    Target(Variant.NO_RELOGIN, "API-005", ("relogin",)),
    Target(Variant.RETRY_REFUSED, "API-006", ("refusal",)),
    Target(Variant.RESIGN_205, "API-006", ("refusal",)),
    Target(Variant.NO_RETRY, "API-007", ("retry",)),
    Target(Variant.RETRY_1001, "API-009", ("too-large",)),
    Target(Variant.NO_REPLY_SENT, "API-015", ("lost-reply",)),
    Target(Variant.DOUBLE_SEND, "API-011"),
    Target(Variant.ACK_MISREAD, "API-011"),
    Target(Variant.RESEND_ACKED, "API-011"),
    Target(Variant.NO_DEDUPE, "API-012"),
    Target(Variant.TOKEN_PER_REQUEST, "API-013"),
    Target(Variant.FIXED_RETRY, "API-014", ("overload",)),
    Target(Variant.RETRY_STORM, "API-014", ("overload",)),
    Target(Variant.WRONG_YEAR, "DL-001"),
    Target(Variant.LATE_SENDER, "DL-001"),
    Target(Variant.FIFO, "DL-004", ("backlog",)),
    Target(Variant.DATA_DRIFT, "FLOW-005"),
    Target(Variant.EXPIRED_CERT, "SIG-006"),
    Target(Variant.NOT_YET_VALID_CERT, "SIG-006"),
    Target(Variant.REVOKED_CERT, "SIG-007"),
    Target(Variant.KEY_USAGE_CERT, "SIG-008"),
    Target(Variant.UNREGISTERED_CERT, "SIG-009"),
    Target(Variant.SELF_MADE_CA, "SIG-005"),
    Target(Variant.WINDOWS_1258, "GCS-DOC-001"),
    Target(Variant.DMY_DATES, "GCS-DOC-003"),
    Target(Variant.GBT_SECONDS, "GBT-DOC-003"),
    Target(Variant.UNPADDED_CODE, "GCS-DOC-005"),
    Target(Variant.GBT_CODE_KIND, "GBT-DOC-005"),
    Target(Variant.HEAD_OFFICE_CODE, "GCS-DOC-007"),
    Target(Variant.GBT_HEAD_OFFICE, "GBT-DOC-007"),
    Target(Variant.NFD_TEXT, "FLOW-005"),
    Target(Variant.TWINS_SO_CON, "FLOW-001"),
    Target(Variant.NO_ADMISSION, "FLOW-004"),
    Target(Variant.PRETTY_PRINT, "SIG-004"),
    Target(Variant.COUNTERSIGN, "SIG-001"),
    Target(Variant.SIGNING_TIME_LOCALE, "SIG-010"),
    Target(Variant.NO_ID_TOKEN, "API-002"),
    Target(Variant.RELOGIN_BY_CLOCK, "API-005", ("relogin",)),
    Target(Variant.DROP_OVERDUE, "DL-005", ("overdue",)),
    Target(Variant.NIGHT_NEXT_DAY, "DL-006", ("night",)),
    Target(Variant.UTC_WORKDAY, "DL-001"),
    Target(Variant.RACING_WORKERS, "API-011"),
    Target(Variant.NO_TIMEOUT, "API-017", ("hung-reply",)),
    Target(Variant.RECEIPT_AS_UTC, "API-013"),
)


def kills(targets: Iterable[Target] = EXPECTED) -> list[tuple[str, str]]:
    """Each variant with the case that must fail first on it: what `conformance coverage` maps to obligations."""
    return [(str(t.variant), t.expected) for t in targets if t.variant is not None and t.expected is not None]


def same_message(full: str, only: str) -> bool:
    """Whether two failure messages say the same: equal once every number (codes, ids, MaGDs, times,
    counts) is masked and the "(+N more)" tail dropped."""
    return _masked(full) == _masked(only)


VOLATILE = re.compile(
    r"c\d+-[0-9a-f]{6}|[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]*\d[0-9A-Fa-f.]*"
)
"""What differs between two runs of one behaviour: a run's id in a request_id (`c<seed>-<6 hex>`, whose hex
may hold no digit: `c7-dafcfd`), GUIDs (in a MaGD, in a data element's Id), numbers, and hex with a digit."""


def _masked(message: str) -> str:
    return VOLATILE.sub("#", re.sub(r" \(\+\d+ more\)$", "", message))


@dataclass(frozen=True)
class MatrixRow:
    """One line of the kill matrix."""

    target: Target
    first_failed: str | None
    message: str
    seconds: float
    error: str = ""
    full_message: str | None = None
    """For a `--only` row: the message of the same variant's full run, which it must repeat."""

    @property
    def name(self) -> str:
        if self.target.variant:
            return f"{self.target.variant}{' --only ' + str(self.target.expected) if self.target.only else ''}"
        only = "" if set(self.target.tags) == set(SCENARIOS) else f", only {'+'.join(self.target.tags)}"
        seed = f", seed {self.target.seed}" if self.target.seed is not None else ""
        return f"reference{seed}{only}"

    @property
    def ok(self) -> bool:
        same = self.full_message is None or same_message(self.full_message, self.message)
        return not self.error and self.first_failed == self.target.expected and same

    @property
    def verdict(self) -> str:
        if self.error:
            return f"ERROR: {self.error}"
        if self.ok:
            return "expected" if self.target.expected else "CONFORMANT, as it must be"
        if self.first_failed is None:
            return "NOT CAUGHT: certified"
        if self.target.expected is None:
            return "WRONG: the correct hospital failed"
        if self.first_failed != self.target.expected:
            return f"WRONG REASON: expected {self.target.expected}"
        return f"WRONG MESSAGE: the full run said {self.full_message!r}"


@dataclass(frozen=True)
class PortalAccess:
    """The portal the self-test runs on (`--portal`, `--admin-token`); none: each run starts its own."""

    url: str | None = None
    admin_token: str | None = None


def with_only(targets: Iterable[Target]) -> list[Target]:
    """`targets`, and after them each variant again with `--only` its case."""
    chosen = list(targets)
    return chosen + [replace(t, only=True) for t in chosen if t.expected is not None and not t.only]


def specs_for(target: Target, every: Iterable[CaseSpec]) -> list[CaseSpec]:
    """The cases a target's scenarios feed: those needing no scenario (judged on the base one) and
    those whose scenarios are all among the target's tags (with `only`: its case alone)."""
    if target.only:
        return [spec for spec in every if spec.id == target.expected]
    tags = {"base", *target.tags}
    chosen = []
    for spec in every:
        wanted = {n.split(":", 1)[1] for n in spec.needs if n.startswith("scenario:")}
        if wanted <= tags:
            chosen.append(spec)
    return chosen


def first_failed(results: Iterable[CaseResult]) -> CaseResult | None:
    """The first blocking (MUST, failed or errored) case in catalogue order."""
    return next((r for r in results if r.blocking), None)


def _run_one(target: Target, seed: int, rate: float, timeout: float, portal: PortalAccess) -> MatrixRow:
    started = time.monotonic()
    options = LiveOptions(
        reference=True,
        variant=str(target.variant) if target.variant else None,
        portal=portal.url,
        admin_token=portal.admin_token,
        seed=seed if target.seed is None else target.seed,
        clock_rate=rate,
        timeout=timeout,
    )
    try:
        finished = run_live(options, specs_for(target, load_cases().all()), [])
    except Exception as exc:  # noqa: BLE001 - one broken run is a row in the matrix, not the end of it
        return MatrixRow(target, None, "", time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
    failing = first_failed(finished.results)
    return MatrixRow(
        target,
        failing.case_id if failing else None,
        failing.message if failing else "",
        time.monotonic() - started,
    )


def run_selftest(
    targets: Iterable[Target] = EXPECTED,
    *,
    seed: int = 7,
    rate: float = 600.0,
    timeout: float = 60.0,
    workers: int = 2,
    progress: Callable[[MatrixRow], None] | None = None,
    portal: PortalAccess | None = None,
) -> list[MatrixRow]:
    """Run every target, and every variant again with `--only` its case (`with_only`); rows in that order,
    each `--only` row holding its full run's message to compare with. Each run starts a portal of its own,
    or, given `portal`, opens a workspace of its own there (no portal start per run)."""
    chosen = with_only(targets)
    portal = portal or PortalAccess()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_one, target, seed, rate, timeout, portal) for target in chosen]
        rows: list[MatrixRow] = []
        for future in futures:
            row = future.result()
            if row.target.only:
                full = next((r for r in rows if r.target == replace(row.target, only=False)), None)
                row = replace(row, full_message=full.message if full else None)
            if progress is not None:
                progress(row)
            rows.append(row)
    return rows


def kill_matrix(rows: list[MatrixRow]) -> list[dict[str, object]]:
    """The matrix as data (for --json)."""
    return [
        {
            "variant": row.name,
            "expected": row.target.expected,
            "first_failed_must": row.first_failed,
            "ok": row.ok,
            "verdict": row.verdict,
            "message": row.message,
            "seconds": round(row.seconds, 1),
        }
        for row in rows
    ]


def render(rows: list[MatrixRow]) -> str:
    """The kill matrix as text: variant → first failed MUST case → expected?"""
    width = max([22, *(len(row.name) for row in rows)])
    lines = [f"{'variant':<{width}} {'first failed MUST':<18} {'expected':<10} verdict", "-" * (width + 56)]
    for row in rows:
        lines.append(
            f"{row.name:<{width}} {row.first_failed or '-':<18} {row.target.expected or '-':<10} {row.verdict}"
            f"  ({row.seconds:.0f} s)"
        )
        if row.message:
            lines.append(f"{'':<{width}}   {row.message[:150]}")
    bad = [row for row in rows if not row.ok]
    variants = [row for row in rows if row.target.variant and not row.target.only]
    alone = [row for row in rows if row.target.only]
    lines.append("")
    lines.append(
        f"selftest: {len(variants)} variant(s), {sum(r.ok for r in variants)} caught by the case that names them"
        + (f" ({sum(r.ok for r in alone)} of {len(alone)} the same with --only that case)" if alone else "")
        + f"; reference {'CONFORMANT' if all(r.ok for r in rows if not r.target.variant) else 'FAILED'}"
        + (f"; {len(bad)} problem(s): {', '.join(r.name for r in bad)}" if bad else "")
    )
    return "\n".join(lines)
