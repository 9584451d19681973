"""Judge one logged send as the sandbox would, in both modes, at the instant it was sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mock_portal.portal.intake import IntakePolicy, Verdict, examine
from mock_portal.results.findings import first_error
from mock_portal.results.grades import Strictness
from mock_portal.signature.trust import TrustStore


@dataclass(frozen=True)
class Sent:
    """One submission as a hospital sent it to the real portal, and the reply it got."""

    facility_code: str
    """maCskcb as sent."""
    loai_hs: str
    file_b64: str
    """fileBase64Str as sent."""
    sent_at: datetime
    """When it was sent (aware): the sandbox judges at this instant (certificate validity, CRL, rules)."""
    real_code: str
    """MaKetQua as received; "" when no reply came (a timeout or a reset)."""


@dataclass(frozen=True)
class Cause:
    """The first error finding in one mode: why that mode refused, without the message (it quotes values)."""

    code: str
    path: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "path": self.path}

    def __str__(self) -> str:
        return f"{self.code} at {self.path or '-'}"


@dataclass(frozen=True)
class Judged:
    """A send and what the sandbox answers to it in each mode."""

    sent: Sent
    verdicts: Mapping[Strictness, Verdict]

    def code(self, mode: Strictness) -> str:
        """The MaKetQua the sandbox answers in `mode`."""
        return self.verdicts[mode].result.value

    def cause(self, mode: Strictness) -> Cause | None:
        """Why `mode` refused: its first error finding; None when it found none."""
        first = first_error(self.verdicts[mode].findings)
        return Cause(first.code, first.path) if first else None


class Examine(Protocol):
    def __call__(self, *, trust: TrustStore) -> Verdict: ...


def as_registered(run: Examine, trust: TrustStore, facility_code: str) -> Verdict:
    """The verdict with the file's own signing certificate taken as registered for the facility.

    Away from the portal that holds it there is no "Danh mục chứng thư số" (the certificates each
    facility registered): everything else (schema, rules, digests, chain, validity, CRL, key usage) is
    judged as the portal judges it."""
    first = run(trust=trust)
    certificate = first.signature.certificate if first.signature else None
    if certificate is None:
        return first
    registered = TrustStore(
        cas=trust.cas, crls=trust.crls, registrations={facility_code: frozenset({certificate.sha256})}
    )
    return run(trust=registered)


def judge(sent: Sent, *, trust: TrustStore, policy: IntakePolicy) -> Judged:
    """The sandbox's verdict on `sent` in each mode, judged at `sent.sent_at` with `trust`."""

    def in_mode(mode: Strictness) -> Verdict:
        def run(*, trust: TrustStore) -> Verdict:
            return examine(
                sent.loai_hs,
                sent.file_b64,
                facility_code=sent.facility_code,
                received_at=sent.sent_at,
                trust=trust,
                policy=policy,
                strictness=mode,
            )

        return as_registered(run, trust, sent.facility_code)

    return Judged(sent, {mode: in_mode(mode) for mode in Strictness})
