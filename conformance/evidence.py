"""What cases judge: the portal's journal, submissions with findings and files, expectations, the
orders the harness sent, the fault plans and the clock timeline.

A `Bundle` is built live from the sandbox API (`collect`), from files judged offline
(`from_file_verdicts`) or loaded from a saved JSON-lines file (`load`); the same judging code serves
all three, so a vendor can send its evidence and have it re-judged (`conformance replay`). Journal
entries, submissions and expectations are kept in the sandbox API's own JSON shapes.

JSON lines: one object per line with a `kind` — `meta`, `clock`, `scenario`, `order`, `journal`,
`submission`, `expectation`, `unauthenticated` — and the record's fields.

The journal holds only exchanges that proved to be the account they name; those that did not (a wrong
password, an unknown token: the hospital's or anyone's, since anyone can name an account) are kept
apart in `unauthenticated`, never evidence of what the hospital did, only of what it did not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance import SUITE_VERSION
from mock_portal import sandbox_version

if TYPE_CHECKING:
    from conformance.offline import FileVerdict

__all__ = ["Bundle", "Order", "ScenarioRecord", "load", "dump"]

Json = dict[str, Any]
LOAI_HS = {"GCS": "61", "GBT": "60"}


@dataclass(frozen=True)
class Order:
    """One order the harness sent through the trigger, and what became of it."""

    request_id: str
    scenario: str
    story: str
    type: str
    facility: str
    issued_at: str
    data: dict[str, str]
    deliver: bool = True
    """False when the hospital must not get it accepted (invalid data, or a 1001 it must not retry)."""
    valid: bool = True
    """False for data the harness made invalid on purpose: its 205 is expected, not the hospital's fault."""
    taken: bool = False
    trigger_note: str = ""
    expectation_id: int | None = None
    sends: int = 1
    """How many times the harness sent this order (the same request_id); a hospital takes it once."""
    sent_real_at: str = ""
    """Real time (UTC) the harness began handing the order over (the trigger call)."""
    taken_real_at: str = ""
    """Real time (UTC) the trigger answered: from then on the order is in the hospital's hands."""

    @property
    def code(self) -> str:
        return self.data.get("MA_GCS" if self.type == "GCS" else "MA_GBT", "")

    @property
    def key(self) -> str:
        """The certificate it asks for, as `conformance.substance.certificate_key` names a submission."""
        again = self.data.get("CAP_LAN_DAU")
        return f"{self.code}/{again}" if self.type == "GCS" and again else self.code

    def to_trigger(self) -> Json:
        """The order as the trigger contract (`trigger.schema.json`) sends it."""
        return {
            "request_id": self.request_id,
            "type": self.type,
            "facility": self.facility,
            "issued_at": self.issued_at,
            "data": self.data,
        }


@dataclass(frozen=True)
class ScenarioRecord:
    """A scenario as it ran: its facility, tags, fault plan and the journal ids that belong to it."""

    name: str
    description: str
    facility: str
    tags: tuple[str, ...]
    fault_plan: Json
    journal_after: int = 0
    journal_until: int = 0
    started_at: str = ""
    finished_at: str = ""
    token_ttl_minutes: int = 60
    rate: float = 0.0
    """The clock rate it ran at (0: not recorded, an older evidence file)."""
    plan: str = ""
    """The scenario it ran (`conformance.scenarios`); `name` differs for a run again (`backlog@2`)."""
    attempt: int = 1
    """1, or 2, 3 when the scenario ran again at a lower clock rate for a timing verdict the machine could
    not settle (`conformance.timing`)."""
    timing: Json = field(default_factory=dict)
    """What the harness measured of the machine while it ran (`conformance.timing.HARNESS_PARTS`)."""

    @property
    def scenario(self) -> str:
        return self.plan or self.name


@dataclass(frozen=True)
class Bundle:
    """Everything a case may judge. Missing parts make the cases that need them skip."""

    meta: Json = field(default_factory=dict)
    clock: tuple[Json, ...] = ()
    scenarios: tuple[ScenarioRecord, ...] = ()
    orders: tuple[Order, ...] = ()
    journal: tuple[Json, ...] = ()
    submissions: tuple[Json, ...] = ()
    expectations: tuple[Json, ...] = ()
    unauthenticated: tuple[Json, ...] = ()
    """Wire exchanges naming the run's facilities that did not prove to be their account (see above)."""

    # --- what is there -----------------------------------------------------------------------
    def provides(self, need: str) -> bool:
        """`need` is `journal`, `submissions`, `orders`, `expectations` or `scenario:<tag>`."""
        if need.startswith("scenario:"):
            return bool(self.scenarios_tagged(need.split(":", 1)[1]))
        return bool(getattr(self, need, ()))

    def missing_reason(self, need: str) -> str:
        if need.startswith("scenario:"):
            tag = need.split(":", 1)[1]
            return f"no scenario tagged '{tag}' ran (offline check, or not selected with --only)"
        live = " (offline evidence has none: use `conformance run`)" if need != "submissions" else ""
        return f"the evidence holds no {need}{live}"

    # --- views cases use ---------------------------------------------------------------------
    def scenarios_tagged(self, tag: str) -> list[ScenarioRecord]:
        return [s for s in self.scenarios if tag in s.tags]

    def journal_of(self, scenario: ScenarioRecord, operation: str | None = None) -> list[Json]:
        """The scenario's wire exchanges (its facility, its journal id range), oldest first."""
        until = scenario.journal_until or float("inf")
        return sorted(
            (
                e
                for e in self.journal
                if e["facility"] == scenario.facility
                and scenario.journal_after < e["id"] <= until
                and (operation is None or e["operation"] == operation)
            ),
            key=lambda e: e["id"],
        )

    def facility_journal(self, facility: str, operation: str | None = None) -> list[Json]:
        """The facility's whole journal in this run, oldest first, not cut into scenario slices: an
        exchange sequence that starts in one scenario and ends in the next is judged whole."""
        after = min((s.journal_after for s in self.scenarios if s.facility == facility), default=0)
        return sorted(
            (
                e
                for e in self.journal
                if e["facility"] == facility and e["id"] > after and (operation is None or e["operation"] == operation)
            ),
            key=lambda e: e["id"],
        )

    def facilities(self) -> list[str]:
        """The facilities the run's scenarios ran on (the orders' when the evidence names no scenario)."""
        return sorted({s.facility for s in self.scenarios} or {o.facility for o in self.orders})

    def record_of(self, order: Order) -> ScenarioRecord | None:
        return next((s for s in self.scenarios if s.name == order.scenario), None)

    def superseded(self, record: ScenarioRecord) -> bool:
        """Whether the scenario ran again later on the same facility (a timing verdict it could not settle)."""
        return any(
            s.scenario == record.scenario and s.facility == record.facility and s.attempt > record.attempt
            for s in self.scenarios
        )

    @cached_property
    def _codes_by_file(self) -> dict[tuple[str, str], str]:
        return {
            (e["facility"], e["file_sha256"]): e["document_code"]
            for e in self.journal
            if e.get("document_code") and e.get("file_sha256")
        }

    def document_of(self, entry: Json) -> str | None:
        """The certificate a submit exchange carried: its document code (the portal reads it also from a
        file answered by an injected fault), else the code another exchange of the same file was given."""
        digest = entry.get("file_sha256") or ""
        return entry.get("document_code") or self._codes_by_file.get((entry["facility"], digest))

    def same_document(self, first: Json, later: Json) -> bool:
        """Whether two submit exchanges carried the same certificate (by code, else by file digest); an
        exchange the evidence cannot name (an older portal journalled no digest) matches any."""
        codes = self.document_of(first), self.document_of(later)
        if all(codes):
            return codes[0] == codes[1]
        files = first.get("file_sha256"), later.get("file_sha256")
        if all(files):
            return files[0] == files[1]
        return not (codes[0] or files[0])

    def exchange_of(self, submission_id: int) -> Json | None:
        """The journal entry of the exchange that stored a submission."""
        return next((e for e in self.journal if e.get("submission_id") == submission_id), None)

    def attempts(self, order: Order) -> list[Json]:
        """The submit exchanges that carried the order's certificate, oldest first."""
        journal = self.facility_journal(order.facility, "submit")
        return [e for e in journal if order.code and self.document_of(e) == order.code]

    def orders_of(self, scenario: ScenarioRecord) -> list[Order]:
        return [o for o in self.orders if o.scenario == scenario.name]

    def calm_orders(self) -> list[Order]:
        """Orders of the fault-free base scenario (all orders when the evidence names no scenarios):
        flows are judged where no injected fault can excuse or explain a missing document."""
        base = {s.name for s in self.scenarios_tagged("base")}
        return [o for o in self.orders if not self.scenarios or o.scenario in base]

    def submission(self, submission_id: int | None) -> Json | None:
        return next((s for s in self.submissions if s["id"] == submission_id), None)

    def submissions_of(self, scenario: ScenarioRecord) -> list[Json]:
        ids = {e["submission_id"] for e in self.journal_of(scenario, "submit") if e.get("submission_id")}
        return sorted((s for s in self.submissions if s["id"] in ids), key=lambda s: s["id"])

    def hospital_submissions(self, doc_type: str | None = None) -> list[Json]:
        """Submissions whose content the hospital is answerable for: not those of orders made invalid on
        purpose (found by code, and by the scenario they were sent in, in case the hospital changed the code)."""
        invalid = {o.code for o in self.orders if not o.valid}
        tainted = {o.scenario for o in self.orders if not o.valid}
        excluded = {s["id"] for record in self.scenarios if record.name in tainted for s in self.submissions_of(record)}
        wanted = LOAI_HS.get(doc_type or "")
        return [
            s
            for s in self.submissions
            if (s.get("document_code") or "") not in invalid
            and s["id"] not in excluded
            and (wanted is None or s.get("loai_hs") == wanted)
        ]

    def expectation(self, expectation_id: int | None) -> Json | None:
        return next((x for x in self.expectations if x["id"] == expectation_id), None)

    def file_of(self, submission: Json) -> bytes | None:
        encoded = submission.get("file_b64")
        return base64.b64decode(encoded) if encoded else None

    def with_orders(self, orders: Iterable[Order]) -> Bundle:
        return replace(self, orders=tuple(orders))


# --- persistence ---------------------------------------------------------------------------------
def dump(bundle: Bundle, path: Path) -> Path:
    """Write `bundle` as JSON lines (see the module docstring)."""
    lines: list[Json] = [{"kind": "meta", **bundle.meta}]
    lines += [{"kind": "clock", **c} for c in bundle.clock]
    lines += [{"kind": "scenario", **asdict(s)} for s in bundle.scenarios]
    lines += [{"kind": "order", **asdict(o)} for o in bundle.orders]
    lines += [{"kind": "journal", **e} for e in bundle.journal]
    lines += [{"kind": "submission", **s} for s in bundle.submissions]
    lines += [{"kind": "expectation", **x} for x in bundle.expectations]
    lines += [{"kind": "unauthenticated", **e} for e in bundle.unauthenticated]
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def load(path: Path) -> Bundle:
    """Read a JSON-lines evidence file written by `dump` (or by hand, in the same shapes)."""
    parts: dict[str, list[Json]] = {
        k: [] for k in ("meta", "clock", "scenario", "order", "journal", "submission", "expectation", "unauthenticated")
    }
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        record = json.loads(text)
        kind = record.pop("kind", None)
        if kind not in parts:
            raise ValueError(f"{path}:{number}: unknown kind {kind!r}")
        parts[kind].append(record)
    meta = parts["meta"][0] if parts["meta"] else {}
    return Bundle(
        meta=meta,
        clock=tuple(parts["clock"]),
        scenarios=tuple(ScenarioRecord(**{**s, "tags": tuple(s.get("tags", ()))}) for s in parts["scenario"]),
        orders=tuple(Order(**o) for o in parts["order"]),
        journal=tuple(parts["journal"]),
        submissions=tuple(parts["submission"]),
        expectations=tuple(parts["expectation"]),
        unauthenticated=tuple(parts["unauthenticated"]),
    )


def from_file_verdicts(verdicts: list[FileVerdict]) -> Bundle:
    """Offline evidence: each checked file as a submission in the sandbox API's shape (no journal)."""
    submissions = []
    for number, result in enumerate(verdicts, 1):
        verdict = result.verdict
        submissions.append(
            {
                "id": number,
                "source": str(result.path),
                "facility": result.facility_code,
                "loai_hs": LOAI_HS.get(verdict.doc_type.name, "") if verdict.doc_type else "",
                "result": verdict.result.value,
                "document_code": verdict.document_code,
                "findings": [f.to_dict() for f in verdict.findings],
                "signature": verdict.signature.to_dict() if verdict.signature else None,
                "file_b64": base64.b64encode(verdict.file).decode() if verdict.file else None,
            }
        )
    meta = {"mode": "check", "suite_version": SUITE_VERSION, "tool_version": sandbox_version()}
    return Bundle(meta=meta, submissions=tuple(submissions))
