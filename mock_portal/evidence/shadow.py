"""The shadow proxy's domain half: each submission the proxy passed on, judged on the side and logged.

`api/shadow.py` moves the bytes between the hospital and the real portal; after the reply has left it
hands the exchange here (`SideJudge.submit`). A worker thread has it judged as the sandbox would in both
modes (`judge.judge`) in a process of its own at a lower CPU priority (judging in the proxy's process
took the interpreter from the event loop: 11-15 ms added to replies sent back to back), compares that
with the real reply, writes one line of the exchange log (the
format `rejudge` reads) and keeps the counts and the latest comparisons for the proxy's page
(`ShadowBook`). What it cannot keep up with is dropped and counted, never waited for: the room for
bodies waiting to be judged is bounded in count and bytes, and reserved before a body is kept.

What is written: the instant, maCskcb, username, loaiHs, the real reply (its wire code, MaGD and
ThoiGianTiepNhan: the keys the log's schema knows), the file's SHA-256, the
sandbox's codes and findings (code, field path, severity: no message, as `record.py` keeps them).
Never written: `password`, `token`, `id_token`, the token request and its reply, a finding's message;
the file itself only with `keep_files` (then as a file beside the log, `"file"` naming it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import re
import signal
import threading
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from mock_portal.evidence.judge import Sent, judge
from mock_portal.evidence.log import fits_schema
from mock_portal.evidence.record import VIETNAM, EvidenceRecord, record_of
from mock_portal.portal.facilities import FACILITY_CODE
from mock_portal.portal.intake import IntakePolicy, decode_file, prepare
from mock_portal.results.grades import Strictness
from mock_portal.signature.trust import TrustStore

log = logging.getLogger(__name__)

REPLY_BYTES = 64 * 1024
"""Most bytes of a reply kept to read its JSON: the portal's replies are ~100 bytes."""
FORM_FIELDS = 64
"""The wire's forms have seven fields (the gateway's bound too)."""
LOGGED_FIELDS = {"maCskcb": 64, "username": 256, "loaiHs": 16}
"""The form fields a log line keeps, each at most so long (the exchange log's schema): `password`, `token`
and `id_token` never, the file only as a file."""
WIRE_CODE = re.compile(r"[0-9]{1,6}")
"""A MaKetQua the log's schema takes: a reply without one is logged as an HTTP failure."""
REPLY_FIELDS = {"MaGD": 256, "ThoiGianTiepNhan": 64}
"""The reply's other keys a log line keeps, each a string (or null) at most so long (the log's schema): any
other key, or one of another type, is left out, so every line is one `rejudge` reads."""
RECENT = 200
"""Comparisons the page shows, newest first."""
MODES = (Strictness.PORTAL, Strictness.STRICT)
JUDGE_NICENESS = 10
"""How much lower the judging process's CPU priority is (`os.nice`): the proxy's event loop runs first."""


@dataclass(frozen=True)
class Seen:
    """One wire submission as the proxy passed it on."""

    sent_at: datetime
    """When the proxy took the request (aware): the sandbox judges at this instant."""
    body: bytes
    """The request body as sent (urlencoded form)."""
    status: int | None
    """The upstream's HTTP status; None when no reply came."""
    reply: bytes | None
    """The reply's body (None when none came, or it was over `REPLY_BYTES`)."""
    failure: str | None = None
    """`timeout` or `reset` when no reply came."""
    duration_ms: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """A submission's real reply beside what the sandbox answers to it in each mode."""

    sent_at: datetime
    facility_code: str
    """maCskcb when it is a facility code ("" otherwise: the page never shows an arbitrary form value)."""
    real: str
    """MaKetQua as received; `HTTP <status>` for a reply without one; `timeout` or `reset`."""
    codes: dict[Strictness, str]
    causes: dict[Strictness, str]
    """The first error's code in each mode ("" when the sandbox accepts)."""
    record: EvidenceRecord
    reply: dict[str, Any] | None
    """The real reply as the log keeps it (`wire_reply`)."""
    explain: str
    """`X-Sandbox-Explain` of the proxy's `--explain`: each mode's verdict with its message (never stored)."""

    def agrees(self, mode: Strictness) -> bool:
        return self.real == self.codes[mode]

    def sentence(self, mode: Strictness) -> str:
        """`real 205 — sandbox 205: RULE_…`, `real 200 — sandbox would refuse (205): SIG_…`."""
        code, cause = self.codes[mode], self.causes[mode]
        said = f"would refuse ({code})" if self.real == "200" and code != "200" else code
        return f"real {self.real} — sandbox {said}" + (f": {cause}" if cause else "")

    def to_dict(self) -> dict[str, Any]:
        """What the page and `GET /shadow/comparisons` show of it (no personal data)."""
        return {
            "sent_at": self.sent_at.astimezone(VIETNAM).isoformat(),
            "maCskcb": self.facility_code,
            "doc_type": self.record.doc_type,
            "real": self.real,
            "sandbox": {mode.value: self.codes[mode] for mode in MODES},
            "causes": {mode.value: self.causes[mode] for mode in MODES},
            "agrees": {mode.value: self.agrees(mode) for mode in MODES},
            "sentences": {mode.value: self.sentence(mode) for mode in MODES},
            "file_sha256": self.record.file_sha256,
        }


def form_of(body: bytes) -> dict[str, str] | None:
    """The fields of an urlencoded form (the first value of each); None for a body that is none (not UTF-8,
    too many fields): the sandbox would judge it as an empty form, which the real portal did not see."""
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    return {key: values[0] for key, values in parsed.items()}


def wire_reply(reply: bytes | None) -> dict[str, Any] | None:
    """The reply as the log keeps it: its MaKetQua when that is a wire code, with `REPLY_FIELDS` that fit the
    schema; None for a reply that is no JSON object with a wire code (an HTML page, a problem+json)."""
    try:
        found = json.loads(reply) if reply is not None else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(found, dict) or isinstance(found.get("MaKetQua"), bool):
        return None
    if not WIRE_CODE.fullmatch(str(found.get("MaKetQua", ""))):
        return None
    kept = {
        name: value
        for name, most in REPLY_FIELDS.items()
        if name in found and ((value := found[name]) is None or (isinstance(value, str) and len(value) <= most))
    }
    return {"MaKetQua": found["MaKetQua"], **kept}


def real_of(seen: Seen, answer: dict[str, Any] | None) -> str:
    """What the real portal answered, in one word: the failure (no reply, or one cut midway), else its wire
    code, else the HTTP status."""
    if seen.failure or seen.status is None:
        return seen.failure or "reset"
    return str(answer["MaKetQua"]) if answer else f"HTTP {seen.status}"


def compare(seen: Seen, form: dict[str, str], *, trust: TrustStore, policy: IntakePolicy) -> Comparison:
    """Judge `seen` as the sandbox would in both modes at its instant, beside its real reply."""
    answer = None if seen.failure else wire_reply(seen.reply)  # a reply cut midway is the failure, as logged
    real = real_of(seen, answer)
    code = form.get("maCskcb", "")
    sent = Sent(
        facility_code=code,
        loai_hs=form.get("loaiHs", ""),
        file_b64=form.get("fileBase64Str", ""),
        sent_at=seen.sent_at,
        real_code=real if answer else "",
    )
    judged = judge(sent, trust=trust, policy=policy)
    causes = {mode: cause.code if (cause := judged.cause(mode)) else "" for mode in MODES}
    return Comparison(
        sent_at=seen.sent_at,
        facility_code=code if FACILITY_CODE.fullmatch(code) else "",
        real=real,
        codes={mode: judged.code(mode) for mode in MODES},
        causes=causes,
        record=record_of(judged),
        reply=answer,
        explain="; ".join(f"{mode.value} {judged.code(mode)}: {judged.verdicts[mode].explain()}" for mode in MODES),
    )


class ShadowLog:
    """The exchange log (JSON Lines, the format `rejudge` reads), appended to, and with `keep_files` the
    files beside it. Bounded: once `max_bytes` are written (lines and files together) it writes nothing
    more and counts what it left out."""

    def __init__(self, path: Path, *, keep_files: Path | None = None, max_bytes: int = 1 << 30) -> None:
        self.path, self.keep_files, self.max_bytes = path, keep_files, max_bytes
        self.written = path.stat().st_size if path.exists() else 0
        self._lock = threading.Lock()
        self._out = path.open("a", encoding="utf-8")

    def close(self) -> None:
        """Close the log; a write after this (a judging that outlived `SideJudge.stop`) writes nothing."""
        with self._lock:
            self._out.close()

    def write(self, seen: Seen, form: dict[str, str], comparison: Comparison, max_file_bytes: int) -> bool:
        """Append the line of one judged submission; False when the budget is spent, the log is closed, or the
        line would not fit the log's schema (nothing written)."""
        kept, data = self._kept_file(form.get("fileBase64Str", ""), max_file_bytes)
        line = _line(seen, form, comparison)
        if kept is not None:
            line["form"].update(kept)
        if not fits_schema(line):  # the line is built to fit: one that does not is a bug, said and not written
            log.error("shadow: a log line does not fit exchange.schema.json: not written")
            return False
        text = json.dumps(line, ensure_ascii=True, separators=(",", ":")) + "\n"  # ASCII: a lone surrogate is escaped
        with self._lock:
            size = len(text) + len(data)
            if self._out.closed or self.written + size > self.max_bytes:
                return False
            if data:
                self._write_file(comparison.record.file_sha256, data)
            self._out.write(text)
            self._out.flush()
            self.written += size
        return True

    def _kept_file(self, file_b64: str, max_file_bytes: int) -> tuple[dict[str, str] | None, bytes]:
        """With `keep_files`: the line's reference to the file (`file`, relative to the log's folder) and its
        bytes, or the base64 as sent when it does not decode to a file; without: nothing."""
        if self.keep_files is None:
            return None, b""
        data, _refused = decode_file(file_b64, max_file_bytes)
        if not data:
            return {"fileBase64Str": file_b64}, b""
        name = self.keep_files / f"{hashlib.sha256(data).hexdigest()}.xml"
        return {"file": os.path.relpath(name, self.path.parent)}, data

    def _write_file(self, digest: str, data: bytes) -> None:
        assert self.keep_files is not None
        name = self.keep_files / f"{digest}.xml"
        if not name.exists():  # named by its digest: a file sent twice is kept once
            name.write_bytes(data)


def _line(seen: Seen, form: dict[str, str], comparison: Comparison) -> dict[str, Any]:
    """One log line: the exchange as the format has it (`evidence/exchange.schema.json`: a reply without a
    wire code is an HTTP failure, a field is cut to the length the schema takes), the sandbox's verdicts
    under `sandbox`."""
    answer = comparison.reply
    logged = {name: form.get(name, "")[:most] for name, most in LOGGED_FIELDS.items()}
    line: dict[str, Any] = {
        "sent_at": seen.sent_at.astimezone(VIETNAM).isoformat(),
        "form": {name: value for name, value in logged.items() if value or name != "username"},
        "reply": answer,
    }
    if answer is None:
        line["failure"] = seen.failure or "http"
        if seen.status is not None:
            line["http_status"] = seen.status
    record = comparison.record
    if record.file_sha256:
        line["file_sha256"] = record.file_sha256
    line["sandbox"] = {
        "doc_type": record.doc_type,
        **{mode.value: comparison.codes[mode] for mode in MODES},
        "causes": {mode.value: comparison.causes[mode] for mode in MODES},
        "findings": [finding.to_dict() for finding in record.findings],
    }
    line["shadow"] = {"http_status": seen.status, "duration_ms": round(seen.duration_ms, 3)}
    return line


class ShadowBook:
    """The counts and the latest comparisons, for the proxy's page; shared by the event loop and the worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.matrix: dict[Strictness, Counter[tuple[str, str]]] = {mode: Counter() for mode in MODES}
        self.recent: deque[Comparison] = deque(maxlen=RECENT)

    def count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def add(self, comparison: Comparison) -> None:
        with self._lock:
            self.counts["judged"] += 1
            for mode in MODES:
                self.matrix[mode][(comparison.real, comparison.codes[mode])] += 1
                self.counts[f"{mode.value}_{'agree' if comparison.agrees(mode) else 'disagree'}"] += 1
            self.recent.appendleft(comparison)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON."""
        with self._lock:
            return {
                "counts": dict(self.counts),
                "matrix": {
                    mode.value: [
                        {"real": r, "sandbox": s, "count": n} for (r, s), n in sorted(self.matrix[mode].items())
                    ]
                    for mode in MODES
                },
                "comparisons": [comparison.to_dict() for comparison in self.recent],
            }


_judging: tuple[TrustStore, IntakePolicy] | None = None
"""In the judging process: what it judges by (`_start_judging`)."""


def _start_judging(trust: TrustStore, policy: IntakePolicy) -> None:
    """The judging process's start: a lower CPU priority, Ctrl-C left to the proxy (which stops it after the
    queue is judged; interrupted, it would be replaced mid-shutdown), the XSDs compiled, what it judges by kept."""
    global _judging
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(JUDGE_NICENESS)
    prepare()
    _judging = (trust, policy)


def _judge_there(seen: Seen, keep_file: bool) -> tuple[dict[str, str], Comparison] | None:
    """In the judging process: the form and the comparison (None for a body that is no form); the file's
    base64 comes back only when the log keeps files."""
    assert _judging is not None, "the judging process was started without _start_judging"
    form = form_of(seen.body)
    if form is None:
        return None
    comparison = compare(seen, form, trust=_judging[0], policy=_judging[1])
    if not keep_file:
        form.pop("fileBase64Str", None)
    return form, comparison


class SideJudge:
    """A bounded queue of submissions to judge, served by one worker thread that has a process of its
    own (niced, `JUDGE_NICENESS`) judge each.

    The proxy reserves room for a body before it keeps it (`reserve`: at most `max_pending` bodies and
    `max_bytes` bytes in flight and queued together); when there is none the exchange is still passed on,
    only not judged (`dropped`). Counts: `submit` (every submission), `judged`, `dropped` (no room),
    `unkept` (no Content-Length, a body over the sandbox's cap, or not an urlencoded form), `unlogged`
    (the log's budget spent, the disk failed, or the log closed), `errors` (the judging failed: a sandbox
    bug, logged without the request; a judging process that died is replaced for the next one)."""

    def __init__(
        self,
        *,
        trust: TrustStore,
        policy: IntakePolicy,
        journal: ShadowLog,
        book: ShadowBook,
        max_pending: int = 64,
        max_bytes: int = 64 << 20,
    ) -> None:
        self.trust, self.policy, self.journal, self.book = trust, policy, journal, book
        self.max_pending, self.max_bytes = max_pending, max_bytes
        self._lock = threading.Lock()
        self._pending = self._bytes = 0
        self._queue: queue.SimpleQueue[Seen | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="shadow-judge", daemon=True)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def start(self) -> None:
        """Start the judging process (its first task waits until it has started) and the worker thread."""
        self._judging_process().submit(int).result()
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Judge what is queued (within `timeout`), then stop the worker and the judging process, and close
        the log."""
        self._queue.put(None)
        self._thread.join(timeout)
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=not self._thread.is_alive(), cancel_futures=True)
        self.journal.close()

    def _judging_process(self, *, replace: bool = False) -> ProcessPoolExecutor:
        """The process that judges (one, spawned: no copy of the proxy's threads and sockets); with
        `replace`, a new one for one that died."""
        with self._pool_lock:
            if self._pool is not None and replace:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_judging,
                    initargs=(self.trust, self.policy),
                )
            return self._pool

    def reserve(self, size: int) -> bool:
        """Room for one body of `size` bytes; False (counted as dropped) when there is none."""
        with self._lock:
            if self._pending >= self.max_pending or self._bytes + size > self.max_bytes:
                self.book.count("dropped")
                return False
            self._pending += 1
            self._bytes += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self._pending -= 1
            self._bytes -= size

    def submit(self, seen: Seen) -> None:
        """Queue an exchange whose room was reserved (never blocks)."""
        self._queue.put(seen)

    def judge_now(self, seen: Seen) -> Comparison | None:
        """Judge, log and count one exchange whose room was reserved, on the caller's thread (`--explain`); a
        failure is counted (`errors`) and logged without the request (it holds personal data), never raised:
        the worker thread goes on with the next."""
        try:
            return self._judge(seen)
        except Exception as exc:
            log.error("shadow: judging failed: %s", type(exc).__name__)
            self.book.count("errors")
            return None
        finally:
            self.release(len(seen.body))

    def _serve(self) -> None:
        while (seen := self._queue.get()) is not None:
            self.judge_now(seen)

    def _judge(self, seen: Seen) -> Comparison | None:
        try:
            found = self._judging_process().submit(_judge_there, seen, self.journal.keep_files is not None).result()
        except BrokenProcessPool:
            self._judging_process(replace=True)
            raise
        if found is None:
            self.book.count("unkept")
            return None
        form, comparison = found
        try:
            written = self.journal.write(seen, form, comparison, self.policy.max_file_bytes)
        except OSError as exc:  # a full or lost disk: the proxy goes on passing replies, the page says so
            log.error("shadow: cannot write the log: %s", exc.strerror or type(exc).__name__)
            written = False
        if not written:
            self.book.count("unlogged")
        self.book.add(comparison)
        return comparison
