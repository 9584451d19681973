"""Helpers for wire tests: send a file as a hospital does, then read the sandbox's explanation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from fixtures.hospital import SubmitReply
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType
from tests.conftest import Hospital

_serials = itertools.count(1)


@dataclass
class Sent:
    reply: SubmitReply
    submission: dict[str, Any]

    @property
    def codes(self) -> list[str]:
        return [finding["code"] for finding in self.submission["findings"]]

    @property
    def error_codes(self) -> list[str]:
        return [finding["code"] for finding in self.submission["findings"] if finding["severity"] == "error"]


def sample(hospital: Hospital, kind: str = "GCS", *, invalid: str | None = None, **options: Any) -> bytes:
    """A signed document of `hospital` with a fresh serial, so every MA_GCS / MA_GBT is distinct."""
    return signed_sample(
        DocumentType[kind],
        hospital.credential,
        facility_code=hospital.code,
        serial=next(_serials),
        invalid=invalid,
        **options,
    )


def explain(admin: httpx.Client, reply: SubmitReply) -> dict[str, Any]:
    assert reply.submission_id, "every submission reply names its stored submission"
    found = admin.get(f"/sandbox/submissions/{reply.submission_id}")
    assert found.status_code == 200, found.text
    return found.json()


def send(admin: httpx.Client, hospital: Hospital, xml: bytes, kind: str = "GCS") -> Sent:
    reply = hospital.client.send(kind, xml)
    return Sent(reply, explain(admin, reply))


def send_form(admin: httpx.Client, hospital: Hospital, form: dict[str, str]) -> Sent:
    reply = hospital.client.send_form(form)
    return Sent(reply, explain(admin, reply))
