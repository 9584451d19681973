"""The portal as a service: what the HTTP handlers call. Knows nothing of HTTP or Flask.

It owns the settings, the repository, the clock and a per-process cache of the trust store
(rebuilt when the shared trust version in the database moves, so several processes agree).
"""

from __future__ import annotations

import copy
import hashlib
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mock_portal import store
from mock_portal.config import Settings
from mock_portal.control.clock import SandboxClock
from mock_portal.deadline.accounting import first_match, issue_instant
from mock_portal.deadline.working_time import judge, load_calendar
from mock_portal.documents import DocumentType
from mock_portal.faults.plan import FaultPlans
from mock_portal.portal.auth import (
    Credentials,
    LoginThrottle,
    PasswordCheck,
    SenderBudget,
    TokenGrant,
    budgeted_password_check,
    judge_credentials,
    take_token,
    upgrade_legacy_passwords,
)
from mock_portal.portal.exchange import WireExchange, journal_row, submission_reply
from mock_portal.portal.intake import IntakePolicy, Verdict, examine, file_digest, prepare
from mock_portal.results.codes import SubmitResult
from mock_portal.results.findings import EXPLAIN_CHARS, Finding
from mock_portal.results.grades import Strictness
from mock_portal.signature.trust import TrustStore, load_certificates, load_crl
from mock_portal.store.repository import Retention
from mock_portal.wire.journal import Journal


@dataclass(frozen=True)
class SubmissionForm:
    """The seven form fields of `guiGiayToDienTu`, wire names mapped to Python names here."""

    credentials: Credentials
    loai_hs: str
    file_b64: str


@dataclass(frozen=True)
class Outcome:
    """A stored submission: its id, its verdict, the MaGD when accepted, and when it was received."""

    submission_id: int
    verdict: Verdict
    ma_gd: str
    received_at: datetime
    journal_id: int | None = None
    """The journal row written with the submission, when the caller asked for one."""
    file_sha256: str | None = None
    """SHA-256 of the decoded file (also of one refused before examination), when it decodes."""


class Portal:
    def __init__(self, settings: Settings, repo: store.Repository, clock: SandboxClock) -> None:
        self.settings = settings
        self.repo = repo
        self.clock = clock
        self.faults = FaultPlans(repo)
        self.journal = Journal(
            repo,
            Retention(
                settings.journal_max_entries,
                settings.unauthenticated_journal_max_entries,
                settings.unauthenticated_max_submissions,
            ),
        )
        self.calendar = load_calendar(settings.calendar)
        self.policy = IntakePolicy.of(settings)
        self._trust_lock = threading.Lock()
        self._trust: tuple[int, TrustStore] | None = None
        prepare()  # the XSDs, before any request or thread
        self.login_throttle = LoginThrottle(settings.login_max_failures, settings.login_window_seconds)
        self.password_budget = SenderBudget()
        self._root = self
        self._workspaces: dict[str, tuple[str, Portal]] = {}
        self._workspaces_lock = threading.Lock()

    # workspaces
    @property
    def workspace_id(self) -> str:
        return self.repo.workspace

    def workspace(self, workspace_id: str, generation: str | None = None) -> Portal:
        """The portal of a workspace — the context every handler and domain call of a request in that
        workspace gets: the repository scoped to it, its own clock, fault plans, journal and trust
        store; settings, calendar, intake policy and login throttle are shared. Built once per process
        and per `generation` of the workspace (None: whichever is cached): a workspace deleted and
        created again by another process restarts its version counters, which a portal cached for the
        old one would take for stale and ignore."""
        root = self._root
        if workspace_id == root.workspace_id:
            return root
        with root._workspaces_lock:
            cached = root._workspaces.get(workspace_id)
            if cached is None or generation not in (None, cached[0]):
                portal = copy.copy(root)
                portal.repo = root.repo.scoped(workspace_id)
                portal.clock = root.clock.over(portal.repo)
                portal.faults, portal.journal = FaultPlans(portal.repo), Journal(portal.repo, root.journal.retention)
                portal._trust_lock, portal._trust = threading.Lock(), None
                cached = root._workspaces[workspace_id] = (generation or "", portal)
            return cached[1]

    def forget_workspace(self, workspace_id: str) -> None:
        """Drop the cached portal of a deleted workspace (a new one of that name starts afresh)."""
        with self._root._workspaces_lock:
            self._root._workspaces.pop(workspace_id, None)

    # strictness
    def strictness(self, override: str | None) -> Strictness:
        """A facility's own strictness when it has one, else the portal's default."""
        return Strictness.parse(override or self.settings.strictness)

    # wire
    def take_token(
        self,
        username: str,
        password_md5: str,
        notes: tuple[Finding, ...] = (),
        client: str = "",
        checked: PasswordCheck | None = None,
    ) -> TokenGrant:
        """`client`: the address the request came from (the login throttle counts per username and
        address); `checked`: the password as the wire gateway already checked it (scrypt once)."""
        facility = username.split("_", 1)[0]
        return take_token(
            self.repo,
            username=username,
            password_md5=password_md5,
            now=self.clock.now(),
            ttl=timedelta(minutes=self.faults.token_ttl_minutes(facility, self.settings.token_ttl_minutes)),
            strictness=self.strictness(self.repo.facility_strictness(facility) if facility else None),
            notes=notes,
            throttle=self.login_throttle,
            client=client,
            checked=checked,
        )

    def submit(
        self,
        form: SubmissionForm,
        handed: WireExchange | None = None,
        client: str = "",
    ) -> Outcome:
        """Examine and store one submission (in a group commit of this process's writers,
        `store.group_commit`): it returns once the commit that covers it is done, so a reply may be sent.
        `handed`: what the wire gateway knows of the exchange: its journal row is completed from the
        reply (`exchange.journal_row`) and written in the same transaction, and its receipt instant (when
        it arrived, plus any injected latency) is the submission's, never later than now; without one,
        now — so the portal's own queueing before this call does not count against the hospital.
        `client`: the client address: with the account, whose budget an unknown password's scrypt spends
        (`SenderBudget`)."""
        now = self.clock.now()
        received_at = min(handed.received_at, now) if handed is not None and handed.received_at else now
        creds = form.credentials
        kind = _kind_of(form.loai_hs)
        expectations_for = (creds.facility_code, kind) if kind else None
        token, account, trust_version, override, pending = self.repo.submission_context(
            creds.access_token, creds.username, expectations_for
        )
        strictness = self.strictness(override)
        elsewhere = account is not None and account.facility_code != creds.facility_code
        known = not elsewhere or self.repo.get_facility(creds.facility_code) is not None
        caller, auth_findings = judge_credentials(
            creds,
            token,
            account,
            now=received_at,
            strictness=strictness,
            facility_known=known,
            password_check=budgeted_password_check(self.password_budget, client),
        )
        if caller is None:
            verdict = Verdict(SubmitResult.AUTH_ERROR, auth_findings, file_size=len(form.file_b64))
        else:
            verdict = examine(
                form.loai_hs,
                form.file_b64,
                facility_code=form.credentials.facility_code,
                signer_facility=caller.facility_code,
                received_at=received_at,
                trust=self.trust(trust_version),
                policy=self.policy,
                strictness=strictness,
            )
            verdict = replace(verdict, findings=auth_findings + verdict.findings)
        ma_gd = _ma_gd(verdict, form.credentials.facility_code) if verdict.result is SubmitResult.OK else ""
        digest = (
            hashlib.sha256(verdict.file).hexdigest()
            if verdict.file
            else file_digest(form.file_b64, self.policy.max_file_bytes)  # refused before it was decoded
        )
        submission, document = _rows(verdict, form, received_at, ma_gd, digest)
        if document is not None:
            if (document.facility_code, document.doc_type) != expectations_for:  # not the ones read up front
                pending = self.repo.pending_expectations(document.facility_code, document.doc_type)
            expected = first_match(pending, document.fields)
            self.account(document, expected)
        row = None
        if handed is not None and handed.exchange is not None:

            def row(submission_id: int) -> store.JournalEntry | None:
                reply = submission_reply(verdict, submission_id, ma_gd, received_at, digest)
                return self.journal.entry(journal_row(handed, reply))

        stored = self.repo.record_submission(submission, document, row, self.journal.retention)
        return Outcome(stored.submission_id, verdict, ma_gd, received_at, stored.journal_id, digest)

    def account(self, document: store.Document, expectation: store.Expectation | None) -> None:
        """Set the document's issue instant, deadline and ON_TIME / LATE (Decree 63/2024 Art. 25.1)."""
        expected = expectation.issued_at if expectation else None
        instant = issue_instant(DocumentType[document.doc_type], document.fields, document.signing_time, expected)
        document.expectation_id = expectation.id if expectation else None
        if instant is None:
            return
        try:
            verdict = judge(instant.at, document.accepted_at, self.calendar, self.settings.deadline_working_minutes)
        except OverflowError:  # issued on 0001-01-01 (UTC+7 is year 0) or a deadline after 9999: none counted
            return
        document.issue_instant = instant.at
        document.issue_source = instant.source
        document.deadline = verdict.deadline
        document.deadline_status = verdict.status.value
        document.working_minutes_late = verdict.working_minutes_late

    def trust(self, version: int | None = None) -> TrustStore:
        """The trust store of this process, reloaded when another process changed trust material
        (`version`: the shared trust version when the caller read it already)."""
        version = self.repo.trust_version() if version is None else version
        with self._trust_lock:
            if self._trust is None or self._trust[0] != version:
                cas, crls, regs = self.repo.trust_material()
                self._trust = (version, _trust_store(cas, crls, regs))
            return self._trust[1]


def build_portal(settings: Settings) -> Portal:
    """The portal over the database `settings` names (schema made or upgraded), as a server process or a
    command builds it; here, not in `app.py`, so that a command that serves nothing (`mock-portal report`)
    imports no web framework (0.7 s of a 1.5 s run)."""
    repo = store.Repository(store.create_engine_for(settings.database_url))
    repo.create_schema()
    upgrade_legacy_passwords(repo)
    return Portal(settings, repo, SandboxClock(repo))


def _trust_store(ca_pems: list[str], crl_ders: list[bytes], registrations: list[tuple[str, str]]) -> TrustStore:
    by_facility: dict[str, set[str]] = {}
    for facility_code, fp in registrations:
        by_facility.setdefault(facility_code, set()).add(fp)
    return TrustStore(
        cas=tuple(cert for pem in ca_pems for cert in load_certificates(pem.encode())),
        crls=tuple(load_crl(der) for der in crl_ders),
        registrations={code: frozenset(fps) for code, fps in by_facility.items()},
    )


def _kind_of(loai_hs: str) -> str | None:
    """GCS / GBT for the wire's loaiHs (None for a value the examination will refuse)."""
    try:
        return DocumentType.from_loai_hs(loai_hs).name
    except ValueError:
        return None


def _ma_gd(verdict: Verdict, facility_code: str) -> str:
    """A transaction code in the shape seen on the real portal (`HS_<KIND><CSKCB>_<GUID>`, reconstructed)."""
    kind = verdict.doc_type.name if verdict.doc_type else "HS"
    return f"HS_{kind}{facility_code}_{str(uuid.uuid4()).upper()}"


def _rows(
    verdict: Verdict, form: SubmissionForm, received_at: datetime, ma_gd: str, digest: str | None
) -> tuple[store.Submission, store.Document | None]:
    submission = store.Submission(
        received_at=received_at,
        facility_code=form.credentials.facility_code[:64],
        username=form.credentials.username[:64],
        loai_hs=form.loai_hs[:16],
        result=verdict.result.value,
        ma_gd=ma_gd or None,
        file=verdict.file,
        file_sha256=digest if verdict.file else None,
        file_size=verdict.file_size,
        document_code=(verdict.document_code or "")[:64] or None,
        explain=verdict.explain()[:EXPLAIN_CHARS],
        findings=[f.to_dict() for f in verdict.findings],
        signature_report=verdict.signature.to_dict() if verdict.signature else None,
    )
    if verdict.result is not SubmitResult.OK or verdict.doc_type is None:
        return submission, None
    doc_type, fields = verdict.doc_type, verdict.fields
    signing_time = verdict.signature.signing_time if verdict.signature else None
    document = store.Document(
        doc_type=doc_type.name,
        code=fields.get(doc_type.code_field, ""),
        facility_code=form.credentials.facility_code,
        ma_gd=ma_gd,
        first_issue=_first_issue(doc_type.name, fields),
        issue_date=fields.get(doc_type.issue_date_field, ""),
        signing_time=signing_time,
        accepted_at=received_at,
        fields=fields,
    )
    return submission, document


def _first_issue(kind: str, fields: dict[str, str]) -> bool:
    if kind == "GCS":
        return fields.get("CAP_LAN_DAU", "1") != "0"
    return not (fields.get("SO_BAOTU_BD") or fields.get("QUYEN_SO_BD"))
