"""The repository: every read and write of the portal's database goes through here.

Domain code gets plain values or ORM rows back; no SQL leaks out. Writes that belong together
(a submission and its accepted document) are one transaction, committed before the caller replies.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    false,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from mock_portal.store import migrate
from mock_portal.store.group_commit import GroupCommit
from mock_portal.store.models import (
    DEFAULT_WORKSPACE,
    Account,
    Application,
    AttestationKey,
    Base,
    CertificateAuthority,
    Document,
    Expectation,
    Facility,
    JournalEntry,
    OutboxEntry,
    RegisteredCertificate,
    RevocationList,
    SharedDocument,
    SharedSetting,
    Submission,
    Token,
    Workspace,
)
from mock_portal.store.write_gate import WriteGate


class Meta(Base):
    """Small shared counters, e.g. the trust-store version that tells processes to reload."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int]


class Identity(StrEnum):
    """Which journal rows a reader wants: those of requests that proved to be their account, the others
    (anyone may name an account), or both."""

    AUTHENTICATED = "authenticated"
    UNAUTHENTICATED = "unauthenticated"
    ALL = "all"


def _authenticated_is(value: bool) -> Any:
    """`authenticated = true|false`, a comparison the index `ix_journal_identity` serves (`IS` is not one
    on PostgreSQL)."""
    return JournalEntry.authenticated == (true() if value else false())


@dataclass(frozen=True)
class JournalFilter:
    facility: str | None = None
    operation: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    """Sandbox time."""
    after_id: int | None = None
    identity: Identity = Identity.ALL

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.identity is not Identity.ALL:
            query = query.where(_authenticated_is(self.identity is Identity.AUTHENTICATED))
        if self.facility:
            query = query.where(JournalEntry.facility_code == self.facility)
        if self.operation:
            query = query.where(JournalEntry.operation == self.operation)
        if self.outcome:
            query = query.where(JournalEntry.outcome == self.outcome)
        if self.since:
            query = query.where(JournalEntry.at >= self.since)
        if self.after_id:
            query = query.where(JournalEntry.id > min(self.after_id, MAX_ROW_ID))
        return query


@dataclass(frozen=True)
class Retention:
    """How many of a workspace's newest rows are kept (0 keeps all). Journal rows are counted apart by
    `authenticated`, so a flood of requests that merely name an account trims only its own kind and never
    pushes the account's own evidence out."""

    journal: int = 0
    unauthenticated_journal: int = 0
    unauthenticated_submissions: int = 0
    """Submissions refused for their credentials (result 401)."""


@dataclass(frozen=True)
class WireAccount:
    """What the wire path reads about the account a request names, in one query."""

    workspace: str
    row: Workspace | None
    """The workspace's row (None for `default` in a database built before workspaces)."""
    account: Account
    token_workspace: str | None
    """The workspace of the account the request's token was issued to (None: no such token)."""


@dataclass(frozen=True)
class SubmissionWrite:
    """One submission's rows, queued for a group commit (`Repository.record_submission`)."""

    workspace: str
    submission: dict[str, Any]
    document: dict[str, Any] | None
    journal: Callable[[int], JournalEntry | None] | None
    retention: Retention


@dataclass(frozen=True)
class Stored:
    """The ids a committed submission got: its own and its journal row's (None: none was written)."""

    submission_id: int
    journal_id: int | None


class StoreError(Exception):
    """Base of the store's errors."""


class AlreadyExists(StoreError):
    """A row with the same key is already stored."""


class RowNotFound(StoreError):
    """No row with that key."""


TRUST_VERSION = "trust_version"
CLOCK = "clock"


log = logging.getLogger(__name__)


def create_engine_for(url: str) -> Engine:
    """An engine with settings that suit the URL: SQLite gets WAL, a busy timeout and a pool of 10+."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=12,
            max_overflow=8,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # a database host that stops answering must not hold a request (the readiness check's, every second) for
    # the kernel's TCP timeout (~2 min): a connection attempt gives up after PG_CONNECT_TIMEOUT_SECONDS
    timeout = {} if "connect_timeout=" in url else {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS}
    return create_engine(postgres_url(url), pool_size=12, max_overflow=8, pool_pre_ping=True, connect_args=timeout)


PG_CONNECT_TIMEOUT_SECONDS = 5
"""How long a new PostgreSQL connection may take (libpq's `connect_timeout`) unless the URL sets its own."""


def postgres_url(url: str) -> str:
    """`postgresql://` and `postgres://` URLs go through psycopg 3 (the `postgres` extra), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


UNAUTHENTICATED = "401"
"""The result of a submission refused for its credentials before any examination."""

_Paged = TypeVar("_Paged", Submission, Document)
_Row = TypeVar("_Row")
_Scoped = TypeVar("_Scoped", bound="_InWorkspace")
_Done = TypeVar("_Done")


class _InWorkspace(Protocol):
    """A row of one workspace."""

    @property
    def workspace_id(self) -> str: ...


"""The rows listed a page at a time, newest first."""

MAX_ROW_ID = 2**63 - 1
"""Row ids are signed 64-bit integers (SQLite, PostgreSQL BIGINT); the drivers raise on larger ones."""


def _get_by_id(s: Session, model: type[_Row], row_id: int) -> _Row | None:
    """The row with this id, or None — also for an id no database column can hold (a URL's `/2**70`)."""
    return s.get(model, row_id) if 0 < row_id <= MAX_ROW_ID else None


# The wire path's reads, built once with bound parameters: building a statement (comparisons, coercions,
# its cache key) cost more CPU than running it on SQLite, on every submission.
_PENDING = (  # expectations of a facility and document type no document has claimed yet, oldest first
    select(Expectation.__table__)
    .where(
        Expectation.workspace_id == bindparam("workspace"),
        Expectation.facility_code == bindparam("facility"),
        Expectation.doc_type == bindparam("doc_type"),
        Expectation.document_id.is_(None),
    )
    .order_by(Expectation.id)
)
_BASE = select(literal(1).label("one")).subquery("base")  # one row, whatever the joins find
_CONTEXT = (  # what a submission reads first, in one statement: see Repository.submission_context
    select(
        *(column.label(f"token_{column.key}") for column in Token.__table__.columns),
        *(column.label(f"account_{column.key}") for column in Account.__table__.columns),
        Facility.strictness,
        select(Meta.value).where(Meta.key == bindparam("trust_key")).scalar_subquery().label("trust_version"),
        exists(_PENDING.with_only_columns(Expectation.id)).label("pending"),
    )
    .select_from(_BASE)
    .outerjoin(Token, Token.access_token == bindparam("access_token"))
    .outerjoin(Account, (Account.username == bindparam("username")) & (Account.workspace_id == bindparam("workspace")))
    .outerjoin(Facility, (Facility.workspace_id == Account.workspace_id) & (Facility.code == Account.facility_code))
)
_TOKEN_OWNER = Account.__table__.alias("token_owner")
_TOKEN_WORKSPACE = (  # an alias: the outer query's `accounts` must not correlate into it
    select(_TOKEN_OWNER.c.workspace_id)
    .join(Token, Token.username == _TOKEN_OWNER.c.username)
    .where(Token.access_token == bindparam("access_token"))
    .scalar_subquery()
)
_WIRE_ACCOUNT = (
    select(*Account.__table__.columns, *Workspace.__table__.columns, _TOKEN_WORKSPACE.label("token_workspace"))
    .outerjoin(Workspace, Workspace.id == Account.workspace_id)
    .where(Account.username == bindparam("username"))
)
_SETTINGS = select(SharedSetting.key, SharedSetting.version, SharedSetting.value).where(
    SharedSetting.key.in_(bindparam("keys", expanding=True))
)
_INSERTS: dict[Table, Any] = {}


def _detached(model: type[Any], row: Any, prefix: str) -> Any:
    """A detached object of `model` from the columns of `row` labelled `prefix` + column name."""
    return model(**{column.key: row[prefix + column.key] for column in model.__table__.columns})


def _values(row: Any) -> dict[str, Any]:
    """An ORM object's set attributes (the id only when set): what an INSERT of it names."""
    return {k: v for k, v in vars(row).items() if not k.startswith("_") and not (k == "id" and v is None)}


def _insert_many(c: Connection, model: type[Any], rows: Sequence[dict[str, Any]]) -> list[int]:
    """INSERT rows of `model` with Core (column defaults apply to the columns a row does not name), rows
    naming the same columns one after another in one statement (SQLAlchemy's "insertmanyvalues": one round
    trip for many rows); the ids the database chose, in the order of `rows`."""
    table = model.__table__
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for _, run in groupby(rows, key=lambda row: sorted(row)):
        ids += c.execute(statement, list(run)).scalars().all()
    return ids


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (it holds credentials and tokens) before
    SQLite opens it; SQLite gives its -wal and -shm files the database file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged MaKetQua 200 survives a power cut too
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


MAINTENANCE_CHUNKS: dict[type[Any], int] = {Submission: 100, JournalEntry: 500}
"""Rows one maintenance transaction (a reset's or a workspace deletion's; a journal trim) deletes at most:
a submission with its stored file, document, outbox row and IPSS copy, or a journal row. bench/maintenance.py
(10,700 submissions with 12 KB files, 10,700 journal rows): 131 transactions, the longest hold of the
SQLite write gate 23 ms at load average 2 and 56 ms at 5.4 on the 2-core VM, instead of one of 725-830 ms."""

WORKSPACE_OWNED: tuple[type[Any], ...] = (
    RevocationList,
    CertificateAuthority,
    RegisteredCertificate,
    Account,
    Facility,
    Expectation,
    JournalEntry,
    Document,
    Submission,
)
"""Tables with a `workspace_id` (besides the IPSS ones), children before parents: the order a workspace's
rows are deleted in (`Repository._delete_rows`)."""


class Repository:
    """Reads and writes of one workspace (`default` unless made by `scoped`); the engine, the sessions
    and the write gate are shared by every workspace's repository."""

    def __init__(self, engine: Engine, workspace: str = DEFAULT_WORKSPACE) -> None:
        self.engine = engine
        self.workspace = workspace
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._gate = WriteGate.for_engine(engine)
        self._commits = GroupCommit(self._write_submissions, self._held)
        # Where the wire path's one-statement reads run. On PostgreSQL, a read on `engine` cost three round trips
        # (psycopg's BEGIN, the SELECT, the pool's ROLLBACK on return); in autocommit one, and a single statement
        # sees one snapshot either way. pysqlite begins no transaction for a SELECT: SQLite keeps `engine`.
        self._reads = (
            engine if engine.dialect.name == "sqlite" else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._read_sessions = sessionmaker(self._reads, expire_on_commit=False)

    def scoped(self, workspace: str) -> Repository:
        """The repository of another workspace, on the same engine, sessions and write gate."""
        other = copy.copy(self)
        other.workspace = workspace
        return other

    def key(self, name: str) -> str:
        """A shared setting's or counter's key in this workspace (`default` keeps the bare names, so an
        existing database keeps its clock and fault plans)."""
        return name if self.workspace == DEFAULT_WORKSPACE else f"ws:{self.workspace}:{name}"

    def _mine(self, model: type[Any]) -> Any:
        """The condition that a row of `model` belongs to this workspace: the one place it is written."""
        return model.workspace_id == self.workspace

    def query(self, model: type[Any], *columns: Any) -> Select[Any]:
        """SELECT `columns` (whole rows of `model` when none are named) among this workspace's rows of
        `model`: the reads of the IPSS view and the reports start here, so none can forget the workspace."""
        return select(*(columns or (model,))).where(self._mine(model))

    def _own(self, row: _Scoped | None) -> _Scoped | None:
        """`row` when it belongs to this workspace, else None (another workspace's row does not exist here)."""
        return row if row is not None and row.workspace_id == self.workspace else None

    def create_schema(self) -> None:
        """Create or upgrade the schema to the newest migration (`mock_portal.store.migrate`); a
        database made before migrations existed gets its missing tables and columns."""

        migrate.upgrade(self.engine)

    def schema_problem(self) -> str | None:
        """Why the database cannot serve this code now (unreachable, or at an older migration than the
        code's newest); None when it can. A revision the code does not know was made by a newer version: in a
        rolling upgrade (deploy/README.md) the replicas not yet upgraded serve on it for a moment, as the
        migrations only add. Asked by the readiness check: one connection, one read; the driver's words
        (host, user) go to the log, not to the unauthenticated caller."""
        try:
            revision = migrate.current(self._reads)
        except SQLAlchemyError:
            log.warning("readiness: the database is unreachable", exc_info=True)
            return "the database is unreachable"
        if revision == migrate.head() or (revision is not None and revision not in migrate.known()):
            return None
        return f"the database is at revision {revision}, this code needs {migrate.head()}"

    def legacy_passwords(self) -> dict[str, str]:
        """username -> stored unsalted MD5, for accounts an older version made (not hashed yet)."""
        query = select(Account.username, Account.password_md5).where(Account.password_hash == "")
        with self._sessions() as s:
            return {row.username: row.password_md5 for row in s.execute(query) if row.password_md5}

    def set_password_hash(self, username: str, password_hash: str) -> None:
        """Store a salted hash and forget the legacy MD5 of the account."""
        with self.session() as s:
            s.execute(
                update(Account).where(Account.username == username).values(password_hash=password_hash, password_md5="")
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write transaction, committed on exit (behind the SQLite write gate)."""
        with self._held(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A read-write transaction on a Core connection (no ORM session to set up: IPSS sharing's
        writes), committed on exit, behind the write gate as `session` is."""
        with self._held(), self.engine.begin() as connection:
            yield connection

    def _held(self) -> Any:
        return self._gate.hold() if self._gate is not None else nullcontext()

    def reset(self, keep: Iterable[str] = ()) -> None:
        """Delete every row of this workspace (children first), as in a new workspace — except that the
        trust version and the shared settings' versions keep rising, so no process mistakes its cached
        trust store or fault plans for the new ones; shared settings come back empty ({}). The clock's
        setting and those named in `keep` stay as they are (the caller sets the clock next, one version
        up, which every process then takes).

        Many short transactions (`_delete_history`), then one that empties the workspace atomically: the
        reset happens at that last commit. Until then the workspace works as before — a submission into
        it is examined and answered as usual, and the reset deletes what it stored, as if it had come
        just before the reset; readers see the oldest rows go first. After it, the workspace is new:
        its accounts are gone, so a request naming one is refused as unknown. A submission whose account
        was read before that commit and whose own commit comes after it keeps its rows (it was in
        flight across the reset), as with the one transaction before issue 24."""
        kept = {self.key(CLOCK), *(self.key(key) for key in keep)}

        def empty(s: Session) -> None:
            trust = s.scalar(select(Meta.value).where(Meta.key == self.key(TRUST_VERSION))) or 0
            settings = self._settings_query(select(SharedSetting.key, SharedSetting.version))
            versions = {row.key: row.version for row in s.execute(settings) if row.key not in kept}
            self._delete_rows(s)
            s.execute(delete(SharedSetting).where(SharedSetting.key.in_(list(versions))))
            s.add(Meta(key=self.key(TRUST_VERSION), value=trust + 1))
            s.add_all(SharedSetting(key=key, value={}, version=version + 1) for key, version in versions.items())

        self._delete_history()
        self._deleting(empty)

    def delete_workspace(self) -> bool:
        """Delete this workspace with all its rows, settings and counters (in short transactions and one
        last one, as `reset`); False when it did not exist. Rows are deleted even then: a request in
        flight during an earlier delete may have written some after it, and a new workspace of the same
        id must not find them."""

        def remove(s: Session) -> bool:
            existed = s.get(Workspace, self.workspace) is not None
            self._delete_rows(s)
            s.execute(self._settings_query(delete(SharedSetting)))
            s.execute(delete(Workspace).where(Workspace.id == self.workspace))
            return existed

        self._delete_history()
        return self._deleting(remove)

    def _delete_history(self) -> None:
        """Delete the bulk of this workspace — submissions with their documents, outbox rows and IPSS
        copies, and the journal — oldest first, in transactions of at most `MAINTENANCE_CHUNKS` rows, the
        write gate released between them: a writer of another workspace (an inline wire
        submission holds its worker's event loop while it waits) waits for one chunk, not for the whole
        delete. The caller's one last transaction (`_delete_rows`) then deletes the rest, rows written
        meanwhile included, so the workspace is empty when it commits; it is short, the bulk being gone."""
        for table in MAINTENANCE_CHUNKS:
            while self._deleting(partial(self._delete_oldest, model=table)):
                pass

    def _delete_oldest(self, s: Session, model: Any) -> bool:
        """Delete this workspace's oldest `MAINTENANCE_CHUNKS[model]` rows of `model` (a submission with
        its children); whether there may be more."""
        last = self._oldest_chunk_end(s, model)
        if last is None:
            return False
        if model is Submission:
            self._delete_submissions(s, Submission.id <= last)
        else:
            s.execute(delete(model).where(self._mine(model), model.id <= last))
        return True

    def _deleting(self, body: Callable[[Session], _Done]) -> _Done:
        """`body` in one write transaction, run again (at most 3 times) when a row another process wrote
        meanwhile breaks a foreign key — on PostgreSQL, which has no write gate, the IPSS copy of a
        document being deleted, shared just then: the next attempt sees that row and deletes it too."""
        for attempt in range(3):
            try:
                with self.session() as s:
                    return body(s)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable: the last attempt returned or raised")

    def _settings_query(self, query: Any) -> Any:
        """`query` limited to this workspace's shared settings and, for a delete, its counters too."""
        return query.where(self._keyed(SharedSetting.key))

    def _keyed(self, column: Any) -> Any:
        if self.workspace == DEFAULT_WORKSPACE:
            return ~column.like("ws:%")
        return column.like(f"ws:{self.workspace}:%")

    def _delete_submissions(self, s: Session, *where: Any) -> None:
        """This workspace's submissions matching `where` with their documents, the documents' outbox rows,
        IPSS copies and the applications filed against those copies, children first."""
        submissions = select(Submission.id).where(self._mine(Submission), *where)
        documents = select(Document.id).where(Document.submission_id.in_(submissions))
        # the outbox first: it waits for a share of these documents in flight and leaves none to share next
        s.execute(delete(OutboxEntry).where(OutboxEntry.document_id.in_(documents)))
        shared = select(SharedDocument.id).where(SharedDocument.document_id.in_(documents))
        s.execute(delete(Application).where(Application.shared_document_id.in_(shared)))
        s.execute(delete(SharedDocument).where(SharedDocument.document_id.in_(documents)))
        s.execute(delete(Document).where(Document.submission_id.in_(submissions)))
        s.execute(delete(Submission).where(self._mine(Submission), *where))

    def _delete_rows(self, s: Session) -> None:
        """Every row of this workspace, children first, and its counters."""
        self._delete_submissions(s)
        s.execute(delete(Application).where(self._mine(Application)))
        s.execute(delete(SharedDocument).where(self._mine(SharedDocument)))
        accounts = select(Account.username).where(self._mine(Account))
        s.execute(delete(Token).where(Token.username.in_(accounts)))
        for model in WORKSPACE_OWNED:
            s.execute(delete(model).where(self._mine(model)))
        s.execute(delete(Meta).where(self._keyed(Meta.key)))

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session: no write gate (WAL readers never wait for the writer); on PostgreSQL in
        autocommit (`_reads`: at READ COMMITTED each statement has its own snapshot in a transaction too), so
        never write through it: a write would be committed at once, not rolled back at the end."""
        with self._read_sessions() as session:
            yield session

    # facilities and accounts
    def add_facility(self, facility: Facility, account: Account) -> None:
        facility.workspace_id = account.workspace_id = self.workspace
        try:
            with self.session() as s:
                s.add(facility)
                s.flush()
                s.add(account)
        except IntegrityError as exc:
            raise AlreadyExists(facility.code) from exc

    def get_facility(self, code: str) -> Facility | None:
        with self._sessions() as s:
            return s.get(Facility, (self.workspace, code))

    def count_facilities(self) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(Facility).where(self._mine(Facility))) or 0

    def list_facilities(self) -> Sequence[Facility]:
        with self._sessions() as s:
            return s.scalars(select(Facility).where(self._mine(Facility)).order_by(Facility.code)).all()

    def accounts_of(self, facility_code: str) -> Sequence[Account]:
        with self._sessions() as s:
            return s.scalars(select(Account).where(self._mine(Account), Account.facility_code == facility_code)).all()

    def get_account(self, username: str) -> Account | None:
        with self._sessions() as s:
            return self._own(s.get(Account, username))

    def wire_account(self, username: str, access_token: str = "") -> WireAccount | None:
        """The wire account `username` names (account names are unique across workspaces), its workspace
        and, for `access_token`, the workspace of the account that token was issued to: one read for the
        wire path, whatever the workspace. None when no account has that name."""
        if not username or len(username) > 64:
            return None
        token = access_token if len(access_token) <= 128 else ""
        with self._reads.connect() as c:
            found = c.execute(_WIRE_ACCOUNT, {"username": username, "access_token": token}).first()
        if found is None:
            return None
        row = found._mapping
        account = Account(**{c.key: row[c.key] for c in Account.__table__.columns})
        workspace = Workspace(**{c.key: row[c.key] for c in Workspace.__table__.columns}) if row["id"] else None
        return WireAccount(account.workspace_id, workspace, account, row["token_workspace"])

    def set_account_locked(self, facility_code: str, locked: bool) -> None:
        with self.session() as s:
            mine = update(Account).where(self._mine(Account), Account.facility_code == facility_code)
            s.execute(mine.values(locked=locked))

    # tokens
    def add_token(self, token: Token) -> None:
        with self.session() as s:
            s.add(token)

    def get_token(self, access_token: str) -> Token | None:
        with self._sessions() as s:
            return s.get(Token, access_token)

    def submission_context(
        self, access_token: str, username: str, expectations_for: tuple[str, str] | None = None
    ) -> tuple[Token | None, Account | None, int, str | None, Sequence[Expectation]]:
        """What every submission reads first — its token, its account, the trust version, the strictness
        set for the account's facility and, for `expectations_for` = (facility, doc type), the pending
        expectations the document may claim — in one Core statement (`_CONTEXT`: outer joins, a scalar
        subquery, an EXISTS), and a second one for the expectations only when there are some: two round trips at
        most instead of five (the ORM's identity map and unit of work cost more than these reads; the rows
        come back as detached objects)."""
        mine = self.workspace
        facility, doc_type = expectations_for or ("", "")
        params = {
            "access_token": access_token,
            "username": username,
            "workspace": mine,
            "trust_key": self.key(TRUST_VERSION),
            "facility": facility,
            "doc_type": doc_type,
        }
        with self._reads.connect() as c:
            row = c.execute(_CONTEXT, params).one()._mapping
            token = _detached(Token, row, "token_") if access_token and row["token_access_token"] else None
            account = _detached(Account, row, "account_") if username and row["account_username"] else None
            pending: Sequence[Expectation] = ()
            if expectations_for and token and row["pending"]:
                pending = self._pending(c, facility, doc_type)
        strictness = row["strictness"] if account else None
        return token, account, row["trust_version"] or 0, strictness, pending

    def facility_strictness(self, code: str) -> str | None:
        """The strictness set for a facility (None: it follows the portal's default)."""
        with self._sessions() as s:
            return s.scalar(select(Facility.strictness).where(self._facility(code)))

    def _facility(self, code: str) -> Any:
        return (Facility.workspace_id == self.workspace) & (Facility.code == code)

    def set_facility_strictness(self, code: str, strictness: str | None) -> None:
        with self.session() as s:
            s.execute(update(Facility).where(self._facility(code)).values(strictness=strictness))

    # trust material
    def register_certificate(self, cert: RegisteredCertificate) -> RegisteredCertificate:
        cert.workspace_id = self.workspace
        try:
            with self.session() as s:
                s.add(cert)
                self._bump_trust(s)
        except IntegrityError as exc:
            raise AlreadyExists(cert.fingerprint) from exc
        return cert

    def unregister_certificate(self, facility_code: str, fingerprint: str) -> None:
        with self.session() as s:
            done = s.execute(
                delete(RegisteredCertificate).where(
                    self._mine(RegisteredCertificate),
                    RegisteredCertificate.facility_code == facility_code,
                    RegisteredCertificate.fingerprint == fingerprint,
                )
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]  # Session.execute is typed Result; a DML statement's is a CursorResult
                raise RowNotFound(fingerprint)
            self._bump_trust(s)

    def certificates_of(self, facility_code: str) -> Sequence[RegisteredCertificate]:
        with self._sessions() as s:
            query = select(RegisteredCertificate).where(
                self._mine(RegisteredCertificate), RegisteredCertificate.facility_code == facility_code
            )
            return s.scalars(query.order_by(RegisteredCertificate.id)).all()

    def add_ca(self, ca: CertificateAuthority) -> CertificateAuthority:
        ca.workspace_id = self.workspace
        try:
            with self.session() as s:
                s.add(ca)
                self._bump_trust(s)
        except IntegrityError as exc:
            raise AlreadyExists(ca.fingerprint) from exc
        return ca

    def add_crl(self, crl: RevocationList) -> RevocationList:
        crl.workspace_id = self.workspace
        with self.session() as s:
            s.add(crl)
            self._bump_trust(s)
        return crl

    def trust_material(self) -> tuple[list[str], list[bytes], list[tuple[str, str]]]:
        """CA PEMs, CRL DERs and (facility, fingerprint) registrations, read in one transaction."""
        with self._sessions() as s:
            cas = list(
                s.scalars(
                    select(CertificateAuthority.pem)
                    .where(self._mine(CertificateAuthority))
                    .order_by(CertificateAuthority.id)
                )
            )
            crls = list(
                s.scalars(select(RevocationList.der).where(self._mine(RevocationList)).order_by(RevocationList.id))
            )
            query = select(RegisteredCertificate.facility_code, RegisteredCertificate.fingerprint).where(
                self._mine(RegisteredCertificate)
            )
            regs = [(row.facility_code, row.fingerprint) for row in s.execute(query)]
        return cas, crls, regs

    def trust_version(self) -> int:
        with self._sessions() as s:
            return s.scalar(select(Meta.value).where(Meta.key == self.key(TRUST_VERSION))) or 0

    def _bump_trust(self, s: Session) -> None:
        row = s.get(Meta, self.key(TRUST_VERSION), with_for_update=True)
        if row is None:
            s.add(Meta(key=self.key(TRUST_VERSION), value=1))
        else:
            row.value += 1

    # shared settings (clock, fault plans) and counters
    def get_settings(self, keys: Sequence[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """The shared settings named (in this workspace), each as (version, value), in one query."""
        named = {self.key(key): key for key in keys}
        with self._reads.connect() as c:  # Core: read on every wire request, no ORM objects needed
            return {named[row.key]: (row.version, row.value) for row in c.execute(_SETTINGS, {"keys": list(named)})}

    def put_setting(self, key: str, value: dict[str, Any]) -> int:
        return self._change_setting(key, lambda _old: value)[1]

    def update_setting(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read, change and write one shared setting in one transaction (no lost update between processes)."""
        return self._change_setting(key, change)[0]

    def _change_setting(
        self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> tuple[dict[str, Any], int]:
        """The new value and version. `FOR UPDATE` locks no row that does not exist yet, so on PostgreSQL
        two processes may both create one: the loser retries and updates the winner's row."""
        key = self.key(key)
        for _ in range(3):
            try:
                with self.session() as s:
                    row = s.get(SharedSetting, key, with_for_update=True)
                    value = change(dict(row.value) if row is not None else {})
                    if row is None:
                        s.add(SharedSetting(key=key, value=value, version=1))
                        return value, 1
                    row.value, row.version = value, row.version + 1
                    return value, row.version
            except IntegrityError:
                continue
        raise StoreError(f"setting {key} could not be written")

    def load_clock(self) -> tuple[int, dict[str, Any]] | None:
        return self.get_settings([CLOCK]).get(CLOCK)

    def save_clock(self, state: dict[str, Any]) -> int:
        return self.put_setting(CLOCK, state)

    def increment(self, key: str) -> int:
        """Add one to a shared counter and return the new value (atomic across processes).

        A single UPDATE … RETURNING takes the write lock before reading, so two processes never
        read the same value (a read-then-write would, under SQLite's deferred transactions)."""
        key = self.key(key)
        bump = update(Meta).where(Meta.key == key).values(value=Meta.value + 1).returning(Meta.value)
        for _ in range(3):
            try:
                with self.session() as s:
                    value = s.execute(bump).scalar()
                    if value is None:
                        s.add(Meta(key=key, value=1))
                        value = 1
                return int(value)
            except IntegrityError:
                continue  # another process created the counter first: bump it
        raise StoreError(f"counter {key} could not be incremented")

    # journal
    def add_journal(self, entry: JournalEntry, retention: Retention) -> int:
        """Append an entry; every 256th write trims the journal to its `retention`."""
        entry.workspace_id = self.workspace
        with self.session() as s:
            s.add(entry)
            s.flush()
            if entry.id % 256 == 0:
                self._trim_journal(s, retention)
        return entry.id

    def _trim_journal(self, s: Session | Connection, retention: Retention) -> None:
        """Both kinds of rows, each to its own bound: checking both every 256th write (whichever kind it
        was) keeps each within its bound + 256, however rare one kind is."""
        for authenticated, keep in ((True, retention.journal), (False, retention.unauthenticated_journal)):
            if keep > 0:
                self._trim(s, JournalEntry, keep, _authenticated_is(authenticated))

    def journal(
        self, filters: JournalFilter, *, limit: int | None = None, oldest_first: bool = False
    ) -> Sequence[JournalEntry]:
        order = JournalEntry.id.asc() if oldest_first else JournalEntry.id.desc()
        query = filters.apply(select(JournalEntry).where(self._mine(JournalEntry))).order_by(order)
        with self._sessions() as s:
            return s.scalars(query.limit(limit) if limit else query).all()

    def count_journal(self, filters: JournalFilter) -> int:
        with self._sessions() as s:
            query = select(func.count()).select_from(JournalEntry).where(self._mine(JournalEntry))
            return s.scalar(filters.apply(query)) or 0

    # submissions and documents
    def record_submission(
        self,
        submission: Submission,
        document: Document | None,
        journal: Callable[[int], JournalEntry | None] | None = None,
        retention: Retention = Retention(),  # noqa: B008 - frozen
    ) -> Stored:
        """Store a submission and, when accepted, its document, its outbox row and its claim on an
        expectation, atomically, in a group commit of this process's writers (`store.group_commit`); returns
        the ids once that commit is done, or raises the error that failed it. `journal(submission_id)`
        may give the journal row of the exchange, written in the same transaction (trimmed as in
        `add_journal`). Submissions refused for their credentials (result 401: anyone can send them, nothing
        was examined) are kept up to the newest `retention.unauthenticated_submissions` (0: all). The rows
        are read off the objects now: changing them afterwards changes nothing stored."""
        document_values = _values(document) if document is not None else None
        write = SubmissionWrite(self.workspace, _values(submission), document_values, journal, retention)
        return self._commits.commit(write)

    def _write_submissions(self, writes: Sequence[SubmissionWrite]) -> list[Stored | Exception]:
        """The group commit's writer: every write of the batch in one transaction (a few statements for
        the batch, not a few per submission). When one write's rows fail, the transaction is rolled back
        and each write is made again in a transaction of its own, so a bad submission fails alone; when
        the commit fails, this raises and every write of the batch fails (none is acknowledged)."""
        with self._held(), self.engine.connect() as c:
            transaction = c.begin()
            try:
                stored: list[Stored | Exception] = list(self._insert_submissions(c, writes))
            except Exception:
                transaction.rollback()
                if len(writes) == 1:
                    raise
                return [self._write_alone(write) for write in writes]
            try:
                transaction.commit()
            except Exception:
                c.invalidate()  # what a failed COMMIT left behind is unknown: the connection is never reused
                raise
            return stored

    def _write_alone(self, write: SubmissionWrite) -> Stored | Exception:
        try:
            return self._write_submissions([write])[0]
        except Exception as exc:
            return exc

    def _insert_submissions(self, c: Connection, writes: Sequence[SubmissionWrite]) -> list[Stored]:
        """The rows of `writes` in the connection's transaction, each kind in one statement (in order of
        the writes, so ids rise in the order they were queued); their ids."""
        submission_ids = _insert_many(c, Submission, [{**w.submission, "workspace_id": w.workspace} for w in writes])
        accepted = [(w, sid) for w, sid in zip(writes, submission_ids, strict=True) if w.document is not None]
        documents = [
            {**w.document, "workspace_id": w.workspace, "submission_id": sid} for w, sid in accepted if w.document
        ]
        document_ids = _insert_many(c, Document, documents)
        for document, document_id in zip(documents, document_ids, strict=True):
            if document.get("expectation_id") is not None:
                claimed = c.execute(
                    update(Expectation)
                    .where(Expectation.id == document["expectation_id"], Expectation.document_id.is_(None))
                    .values(document_id=document_id)
                )
                if claimed.rowcount == 0:  # another document claimed it first
                    c.execute(update(Document).where(Document.id == document_id).values(expectation_id=None))
        outbox = [
            {"document_id": d, "created_at": w.submission["received_at"], "shared_at": None}
            for (w, _), d in zip(accepted, document_ids, strict=True)
        ]
        _insert_many(c, OutboxEntry, outbox)
        entries = [
            (w, w.journal(sid) if w.journal is not None else None)
            for w, sid in zip(writes, submission_ids, strict=True)
        ]
        journal = [{**_values(e), "workspace_id": w.workspace} for w, e in entries if e is not None]
        journal_ids = iter(_insert_many(c, JournalEntry, journal))
        stored = []
        for (write, entry), submission_id in zip(entries, submission_ids, strict=True):
            journal_id = next(journal_ids) if entry is not None else None
            mine = self.scoped(write.workspace)
            if journal_id is not None and journal_id % 256 == 0:
                mine._trim_journal(c, write.retention)
            keep_unauthenticated = write.retention.unauthenticated_submissions
            unauthenticated = write.submission["result"] == UNAUTHENTICATED
            if unauthenticated and keep_unauthenticated and submission_id % 64 == 0:
                mine._trim(c, Submission, keep_unauthenticated, Submission.result == UNAUTHENTICATED)
            stored.append(Stored(submission_id, journal_id))
        return stored

    def _trim(self, s: Session | Connection, model: Any, keep: int, *where: Any) -> None:
        """Drop all but this workspace's newest `keep` rows of `model` matching `where`: ids are shared by
        every workspace, so the cutoff is counted in this workspace's rows alone. Used for the journal and
        for unauthenticated submissions (no document, no outbox row points at them; journal entries keep
        their own copy of what matters). At most `MAINTENANCE_CHUNKS[model]` rows, the oldest, per call: a
        trim runs in a wire submission's transaction (maybe inline on the event loop), so a retention
        lowered by thousands must not be caught up at once; each later trim deletes another chunk while
        only 256 (64) new rows come in between."""
        mine = (self._mine(model), *where)
        cutoff = s.scalar(select(model.id).where(*mine).order_by(model.id.desc()).offset(keep).limit(1))
        if cutoff is not None:
            chunk_end = self._oldest_chunk_end(s, model, *where)
            s.execute(delete(model).where(*mine, model.id <= (cutoff if chunk_end is None else min(cutoff, chunk_end))))

    def _oldest_chunk_end(self, s: Session | Connection, model: Any, *where: Any) -> int | None:
        """The id of the last of this workspace's oldest `MAINTENANCE_CHUNKS[model]` rows of `model` matching
        `where`; None when there are fewer."""
        offset = MAINTENANCE_CHUNKS[model] - 1
        return s.scalar(select(model.id).where(self._mine(model), *where).order_by(model.id).offset(offset).limit(1))

    # expectations
    def add_expectation(self, expectation: Expectation) -> Expectation:
        expectation.workspace_id = self.workspace
        with self.session() as s:
            s.add(expectation)
        return expectation

    def get_expectation(self, expectation_id: int) -> Expectation | None:
        with self._sessions() as s:
            return self._own(_get_by_id(s, Expectation, expectation_id))

    def pending_expectations(self, facility_code: str, doc_type: str) -> Sequence[Expectation]:
        with self._reads.connect() as c:
            return self._pending(c, facility_code, doc_type)

    def _pending(self, c: Connection, facility_code: str, doc_type: str) -> list[Expectation]:
        found = c.execute(_PENDING, {"workspace": self.workspace, "facility": facility_code, "doc_type": doc_type})
        return [Expectation(**row._mapping) for row in found]

    def unclaimed_documents(self, facility_code: str, doc_type: str) -> Sequence[Document]:
        query = select(Document).where(
            self._mine(Document),
            Document.facility_code == facility_code,
            Document.doc_type == doc_type,
            Document.expectation_id.is_(None),
        )
        with self._sessions() as s:
            return s.scalars(query.order_by(Document.id)).all()

    def link_expectation(self, expectation_id: int, document: Document) -> bool:
        """Tie an already accepted document to an expectation registered after it, with its new deadline."""
        with self.session() as s:
            claimed = s.execute(
                update(Expectation)
                .where(Expectation.id == expectation_id, Expectation.document_id.is_(None))
                .values(document_id=document.id)
            )
            if claimed.rowcount == 0:  # type: ignore[attr-defined]  # Session.execute is typed Result; a DML statement's is a CursorResult
                return False
            s.merge(document)
        return True

    def get_document(self, document_id: int) -> Document | None:
        with self._sessions() as s:
            return self._own(_get_by_id(s, Document, document_id))

    def get_submission(self, submission_id: int) -> Submission | None:
        with self._sessions() as s:
            return self._own(_get_by_id(s, Submission, submission_id))

    def list_submissions(
        self, *, facility: str | None, result: str | None, limit: int, before_id: int | None
    ) -> Sequence[Submission]:
        return self._newest_page(Submission, limit, before_id, facility_code=facility, result=result)

    def count_submissions(self, *, result: str | None = None) -> int:
        query = select(func.count()).select_from(Submission).where(self._mine(Submission))
        if result:
            query = query.where(Submission.result == result)
        with self._sessions() as s:
            return s.scalar(query) or 0

    def documents_by_code(self, code: str) -> Sequence[Document]:
        with self._sessions() as s:
            query = select(Document).where(self._mine(Document), Document.code == code)
            return s.scalars(query.order_by(Document.id)).all()

    def list_documents(
        self, *, facility: str | None, deadline_status: str | None, limit: int, before_id: int | None
    ) -> Sequence[Document]:
        """Accepted documents, newest first, a page of `limit` below `before_id` (the dashboard's deadline view)."""
        return self._newest_page(Document, limit, before_id, facility_code=facility, deadline_status=deadline_status)

    def _newest_page(
        self, model: type[_Paged], limit: int, before_id: int | None, **equal: str | None
    ) -> Sequence[_Paged]:
        """This workspace's rows of `model`, newest first, `limit` below `before_id`, each named column equal
        to its value when one is given (the paged lists of the API and the dashboard)."""
        query = select(model).where(self._mine(model)).order_by(model.id.desc()).limit(limit)
        for column, value in equal.items():
            if value:
                query = query.where(getattr(model, column) == value)
        if before_id:
            query = query.where(model.id < min(before_id, MAX_ROW_ID))
        with self._sessions() as s:
            return s.scalars(query).all()

    def awaited_expectations(
        self, *, facility: str | None, due_before: datetime | None, due_after: datetime | None, limit: int
    ) -> Sequence[Expectation]:
        """Expectations no document has met yet, newest first; `due_before` / `due_after` bound their
        deadline, so a caller can ask for the overdue or the still pending ones."""
        query = select(Expectation).where(self._mine(Expectation), Expectation.document_id.is_(None))
        if facility:
            query = query.where(Expectation.facility_code == facility)
        if due_before is not None:
            query = query.where(Expectation.deadline < due_before)
        if due_after is not None:
            query = query.where(Expectation.deadline >= due_after)
        with self._sessions() as s:
            return s.scalars(query.order_by(Expectation.id.desc()).limit(limit)).all()

    def count_documents(self) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(Document).where(self._mine(Document))) or 0

    def document_of_submission(self, submission_id: int) -> Document | None:
        with self._sessions() as s:
            return s.scalar(select(Document).where(self._mine(Document), Document.submission_id == submission_id))

    def list_cas(self) -> Sequence[CertificateAuthority]:
        with self._sessions() as s:
            query = select(CertificateAuthority).where(self._mine(CertificateAuthority))
            return s.scalars(query.order_by(CertificateAuthority.id)).all()

    # workspaces
    def add_workspace(self, workspace: Workspace) -> None:
        try:
            with self.session() as s:
                s.add(workspace)
        except IntegrityError as exc:
            raise AlreadyExists(workspace.id) from exc

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        with self._sessions() as s:
            return s.get(Workspace, workspace_id)

    def list_workspaces(self) -> Sequence[Workspace]:
        with self._sessions() as s:
            return s.scalars(select(Workspace).order_by(Workspace.created_at, Workspace.id)).all()

    # the portal's attestation keys: the deployment's, not a workspace's
    def attestation_keys(self) -> Sequence[AttestationKey]:
        """Every key, the oldest first (the active one last)."""
        with self._sessions() as s:
            return s.scalars(select(AttestationKey).order_by(AttestationKey.created_at, AttestationKey.id)).all()

    def active_attestation_key(self) -> AttestationKey | None:
        with self._sessions() as s:
            return s.scalars(select(AttestationKey).where(AttestationKey.active.is_(True))).first()

    def add_attestation_key(self, key: AttestationKey, *, retire_at: datetime | None = None) -> bool:
        """Make `key` the active one; with `retire_at`, first retire the active key then (its private half
        erased), in the same transaction. False when another process made a key active first (the unique
        `active` column refused this one)."""
        try:
            with self.session() as s:
                if retire_at is not None:
                    s.execute(
                        update(AttestationKey)
                        .where(AttestationKey.active.is_(True))
                        .values(active=None, retired_at=retire_at, private_pem=None)
                    )
                    s.flush()
                s.add(key)
        except IntegrityError:
            return False
        return True
