"""Schemathesis CLI hooks of `make contract` (loaded through SCHEMATHESIS_HOOKS=tests.contract_hooks).

A QA team's hooks file: JSON Schema cannot say "decodes to an X.509 certificate" or "a token this portal
issued", so the spec's `x509-*` formats draw from real PEM, the DER CRL media type from a real CRL, and a
share of the wire cases carry the seeded account and complete signed submission forms. The data comes
from the JSON file named by CONTRACT_SEED, written by `tests/contract_cli.py` after seeding the portal.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st

SEED: dict[str, Any] = json.loads(Path(os.environ["CONTRACT_SEED"]).read_text())

schemathesis.openapi.format("x509-pem", st.sampled_from(SEED["cert_pems"] + SEED["ca_pems"]))
schemathesis.openapi.format("x509-ca-pem", st.sampled_from(SEED["ca_pems"]))
schemathesis.openapi.format("x509-crl-pem", st.just(SEED["crl_pem"]))
schemathesis.openapi.media_type("application/pkix-crl", st.just(base64.b64decode(SEED["crl_der"])))


def _realistic_bodies(label: str) -> list[Any]:
    """Bodies a real client sends to this operation (none for operations the schema alone covers)."""
    if label == "POST /api/token/take":
        account = SEED["account"]
        return [dict(account), {**account, "password": account["password"].lower()}]
    if label == "POST /api/hososuckhoe/guiGiayToDienTu":
        return [dict(form) for form in SEED["forms"]]
    return []


@schemathesis.hook
def flatmap_case(context: Any, case: schemathesis.Case) -> st.SearchStrategy[schemathesis.Case]:
    """About half the wire cases stay as generated; the rest become a realistic request."""
    bodies = _realistic_bodies(f"{case.operation.method.upper()} {case.operation.path}")
    if not bodies:
        return st.just(case)

    def apply(choice: int) -> schemathesis.Case:
        if choice >= 0:
            case.body = bodies[choice]
        return case

    return st.one_of(st.just(-1), st.integers(0, len(bodies) - 1)).map(apply)


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """The account name carries the new facility's code as prefix (the contract says so; no schema can):
    a schema-valid `<5 digits>_<name>` gets the case's own code, as a real client writes it."""
    body = case.body
    if case.method.upper() != "POST" or case.operation.path != "/sandbox/facilities" or not isinstance(body, dict):
        return
    code, username = body.get("code"), body.get("username")
    if isinstance(code, str) and isinstance(username, str) and username[:5].isdigit() and username[5:6] == "_":
        case.body = {**body, "username": code + username[5:]}
