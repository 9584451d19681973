"""Group commit (issue 28, `store.group_commit`): the submissions a process writes at once share one
transaction; a write is answered only after the commit that covers it; a write whose rows fail fails
alone; a failed commit fails every write of its batch and acknowledges none. On SQLite and, with
`--db postgresql`, on PostgreSQL; and a `kill -9` of a real `mock-portal serve` in the middle of a flood loses
no submission it acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, func, select

from fixtures.hospital import LOAI_HS, SUBMIT_PATH
from fixtures.pki import TestPKI
from mock_portal import store
from mock_portal.app import create_asgi
from mock_portal.config import Settings
from mock_portal.portal import auth
from mock_portal.store.group_commit import GroupCommit
from mock_portal.store.repository import Retention, Stored, SubmissionWrite, _values
from tests.conftest import provision, trust_root
from tests.live import LiveServer, new_database_url, start_server
from tests.wire import sample

NOW = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)


def _submission(n: int, **change: object) -> store.Submission:
    row = store.Submission(
        received_at=NOW, facility_code="79001", username="79001_BV", loai_hs="61", result="200",
        ma_gd=f"MGD-{n}", file=b"<xml/>", file_sha256=None, file_size=6, document_code=f"C{n}", explain="",
        findings=[], signature_report=None,
    )  # fmt: skip
    for name, value in change.items():
        setattr(row, name, value)
    return row


def _document(n: int) -> store.Document:
    return store.Document(
        doc_type="GCS", code=f"C{n}", facility_code="79001", ma_gd=f"MGD-{n}", first_issue=True, issue_date="",
        signing_time=None, accepted_at=NOW, fields={"MA_GCS": f"C{n}"},
    )  # fmt: skip


def _journal(n: int) -> store.JournalEntry:
    return store.JournalEntry(
        at=NOW, real_at=NOW, facility_code="79001", username="79001_BV", operation="submit", outcome="200",
        faults=[], findings=[], duration_ms=1.0, ma_gd=f"MGD-{n}",
    )  # fmt: skip


def _write(n: int, **change: object) -> SubmissionWrite:
    """Submission `n` with its document, outbox row and a journal row naming the submission's id."""

    def journal(submission_id: int) -> store.JournalEntry:
        entry = _journal(n)
        entry.submission_id = submission_id
        return entry

    return SubmissionWrite("default", _values(_submission(n, **change)), _values(_document(n)), journal, Retention())


def _count(repo: store.Repository, model: type[object]) -> int:
    with repo.engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(model)) or 0)


def _commits(repo: store.Repository) -> list[int]:
    """A list that grows by one at every commit on the repository's engine."""
    seen: list[int] = []
    event.listen(repo.engine, "commit", lambda _connection: seen.append(1))
    return seen


# the queue -------------------------------------------------------------------------------------------------------
class _Writer:
    """A fake writer: records each batch; fails the writes named in `bad`, or the whole batch."""

    def __init__(self, bad: set[int] = set(), fail_batch: bool = False) -> None:  # noqa: B006 - never changed
        self.batches: list[list[int]] = []
        self.bad, self.fail_batch = bad, fail_batch
        self.gate = threading.RLock()

    def __call__(self, batch: Sequence[int]) -> list[int | Exception]:
        assert self.gate._is_owned()  # type: ignore[attr-defined]  # written with the gate held
        self.batches.append(list(batch))
        if self.fail_batch:
            raise OSError("disk I/O error")
        return [ValueError(n) if n in self.bad else n * 10 for n in batch]


def _queued_while_held(writer: _Writer, items: range, max_batch: int = 64) -> list[Future[int]]:
    """`items` written by as many threads while another writer holds the gate, as when another process is
    committing: each thread's result (or error) as a future."""
    commits: GroupCommit[int, int] = GroupCommit(writer, lambda: writer.gate, max_batch)
    futures: list[Future[int]] = [Future() for _ in items]

    def write(n: int, future: Future[int]) -> None:
        try:
            future.set_result(commits.commit(n))
        except Exception as exc:
            future.set_exception(exc)

    with writer.gate:
        for n, future in zip(items, futures, strict=True):
            threading.Thread(target=write, args=(n, future)).start()
            while len(commits._queue) < n - items.start + 1:  # this one is queued (or leads) before the next
                time.sleep(0.001)
        time.sleep(0.05)
        assert not any(f.done() for f in futures)  # nothing is answered before its commit
    for future in futures:
        future.exception(timeout=10)
    return futures


def test_writes_queued_behind_the_gate_share_one_commit_of_at_most_max_batch() -> None:
    writer = _Writer()
    futures = _queued_while_held(writer, range(1, 11), max_batch=4)
    assert [f.result() for f in futures] == [n * 10 for n in range(1, 11)]
    # the first writer led once the gate was free: it took the writes queued behind it, four at most; the
    # writers left queued led the next batches
    assert writer.batches == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


def test_many_writers_each_get_their_own_result_and_lead_in_turn() -> None:
    """16 threads writing 200 times each through batches of at most 3: every write is answered with its
    own result, once, in a batch no bigger than 3 (no writer left waiting, none answered twice)."""
    writer = _Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer, lambda: writer.gate, max_batch=3)
    answers: list[list[int]] = [[] for _ in range(16)]

    def write(thread: int) -> None:
        for n in range(200):
            answers[thread].append(commits.commit(thread * 1000 + n))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [a for t in range(16) for a in answers[t]] == [(t * 1000 + n) * 10 for t in range(16) for n in range(200)]
    assert max(map(len, writer.batches)) <= 3 and sum(map(len, writer.batches)) == 3200


def test_a_write_that_fails_fails_alone() -> None:
    futures = _queued_while_held(_Writer(bad={3}), range(1, 6))
    assert isinstance(futures[2].exception(), ValueError)
    assert [f.result() for i, f in enumerate(futures) if i != 2] == [10, 20, 40, 50]


def test_a_failed_commit_fails_every_write_of_its_batch_and_acknowledges_none() -> None:
    futures = _queued_while_held(_Writer(fail_batch=True), range(1, 6))
    assert all(isinstance(f.exception(), OSError) for f in futures)


# the repository's writer ----------------------------------------------------------------------------------------
def test_a_batch_is_one_transaction_with_every_row_of_each_submission(repo: store.Repository) -> None:
    commits = _commits(repo)
    stored = repo._write_submissions([_write(n) for n in range(1, 6)])
    assert len(commits) == 1
    assert all(isinstance(s, Stored) for s in stored)
    ids = [s.submission_id for s in stored if isinstance(s, Stored)]
    assert ids == sorted(ids)  # in the order they were queued
    for n, one in enumerate(stored, start=1):
        assert isinstance(one, Stored)
        submission = repo.get_submission(one.submission_id)
        document = repo.document_of_submission(one.submission_id)
        assert submission is not None and submission.ma_gd == f"MGD-{n}"
        assert document is not None and document.code == f"C{n}"
        (entry,) = [e for e in repo.journal(store.repository.JournalFilter()) if e.id == one.journal_id]
        assert (entry.submission_id, entry.ma_gd) == (one.submission_id, f"MGD-{n}")
    assert _count(repo, store.OutboxEntry) == 5


def test_a_submission_whose_rows_fail_fails_alone_and_the_others_are_stored(repo: store.Repository) -> None:
    writes = [_write(1), _write(2, facility_code=None), _write(3)]  # NOT NULL: the database refuses row 2
    stored = repo._write_submissions(writes)
    assert isinstance(stored[1], Exception) and not isinstance(stored[1], Stored)
    kept = [s for s in stored if isinstance(s, Stored)]
    assert [repo.get_submission(s.submission_id).ma_gd for s in kept] == ["MGD-1", "MGD-3"]  # type: ignore[union-attr]
    assert (_count(repo, store.Submission), _count(repo, store.Document), _count(repo, store.JournalEntry)) == (2, 2, 2)


def test_a_failed_commit_stores_nothing_of_its_batch(repo: store.Repository) -> None:
    def refuse(_connection: object) -> None:
        raise OSError("disk I/O error")

    event.listen(repo.engine, "commit", refuse)
    with pytest.raises(OSError):
        repo.record_submission(_submission(1), _document(1))
    event.remove(repo.engine, "commit", refuse)
    assert (_count(repo, store.Submission), _count(repo, store.Document), _count(repo, store.OutboxEntry)) == (0, 0, 0)
    assert repo.record_submission(_submission(4), _document(4)).submission_id > 0  # the next writer goes on


def test_every_submission_of_a_failed_commit_is_answered_500_and_none_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the app `mock-portal serve` runs (in this process, on SQLite: its IPSS sharing thread outlives
    the test): submissions sent at once whose commit fails each get the portal's MaKetQua 500 naming the
    error; none is acknowledged, none stored."""
    database_url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    repo = store.Repository(store.create_engine_for(database_url))
    repo.create_schema()
    password = auth.md5_upper("pw")
    account = store.Account(username="48301_BV", facility_code="48301", password_hash=auth.hash_password_md5(password))
    repo.add_facility(store.Facility(code="48301", name="BV", created_at=NOW), account)
    now = datetime.now(UTC)
    repo.add_token(
        store.Token(
            access_token="access",
            id_token="id",
            username="48301_BV",
            issued_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    batches: list[int] = []

    def failing_commit(_repo: store.Repository, writes: Sequence[SubmissionWrite]) -> list[Stored | Exception]:
        batches.append(len(writes))
        raise OSError("disk I/O error")

    monkeypatch.setattr(store.Repository, "_write_submissions", failing_commit)
    app = create_asgi(Settings(database_url=database_url, admin_token="in-process"))
    form = {"maCskcb": "48301", "token": "access", "id_token": "id", "username": "48301_BV", "password": password}
    forms = [{**form, "loaiHs": "61", "fileBase64Str": f"{n:04d}"} for n in range(6)]

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            return await asyncio.gather(*(client.post(SUBMIT_PATH, data=one) for one in forms))

    replies = asyncio.run(send_all())
    assert [r.json()["MaKetQua"] for r in replies] == ["500"] * 6
    assert {r.headers["X-Sandbox-Explain"] for r in replies} == {"SERVER_ERROR: OSError"}
    assert sum(batches) == 6 and repo.count_submissions() == 0


# a real server killed mid-flood ----------------------------------------------------------------------------------
FLOOD = 16
"""Submissions in flight at once: several share each group commit of the two workers."""
KILL_AFTER = 60
"""Acknowledged submissions before the server is killed (the others in flight then get no reply)."""


def test_kill_9_in_a_flood_loses_no_acknowledged_submission(tmp_path: Path, pki: TestPKI) -> None:
    database_url = new_database_url(tmp_path)
    (tmp_path / "again").mkdir()
    portal = start_server(tmp_path, workers=2, database_url=database_url)
    try:
        with portal.admin() as admin:
            trust_root(admin, pki)
            hospital = provision(admin, pki, portal.base_url)
        token = hospital.client.take_token()
        forms = [hospital.client.form(LOAI_HS["GCS"], sample(hospital), token) for _ in range(KILL_AFTER + 4 * FLOOD)]
        acknowledged, unanswered = asyncio.run(_flood_then_kill(portal, forms))
    finally:
        portal.stop()
    assert len(acknowledged) >= KILL_AFTER and unanswered, "the kill came in the middle of the flood"
    again = start_server(tmp_path / "again", database_url=database_url)
    try:
        with again.admin() as admin:
            stored = _stored_ma_gd(admin, hospital.code)
    finally:
        again.stop()
    assert acknowledged <= stored, f"acknowledged but not stored: {sorted(acknowledged - stored)}"


async def _flood_then_kill(portal: LiveServer, forms: list[dict[str, str]]) -> tuple[set[str], int]:
    """Send `forms` on `FLOOD` connections; once `KILL_AFTER` are acknowledged (MaKetQua 200), SIGKILL the
    server's process group (supervisor and workers) while the rest are in flight. The MaGD acknowledged, and
    how many requests got no reply."""
    acknowledged: set[str] = set()
    unanswered = 0
    pending = iter(forms)
    killed = asyncio.Event()

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal unanswered
        for form in pending:
            try:
                reply = await client.post(SUBMIT_PATH, data=form)
            except httpx.TransportError:
                unanswered += 1
                continue
            body = reply.json()
            if reply.status_code == 200 and str(body.get("MaKetQua")) == "200":
                acknowledged.add(body["MaGD"])
            if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                killed.set()
                os.killpg(portal.process.pid, signal.SIGKILL)

    limits = httpx.Limits(max_connections=FLOOD)
    async with httpx.AsyncClient(base_url=portal.base_url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(sender(client) for _ in range(FLOOD)))
    if killed.is_set():
        portal.process.wait(timeout=10)
    return acknowledged, unanswered


def _stored_ma_gd(admin: httpx.Client, facility: str) -> set[str]:
    """The MaGD of every accepted submission of `facility` the portal has stored."""
    page = admin.get("/sandbox/submissions", params={"facility": facility, "result": "200", "limit": 500})
    assert page.status_code == 200, page.text
    return {row["ma_gd"] for row in page.json()}
