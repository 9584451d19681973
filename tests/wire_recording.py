"""A fixed, deterministic set of wire exchanges, recorded through real HTTP (issue 26).

`record(server)` drives a served portal, whose sandbox clock it freezes, through token requests,
accepted and refused submissions, duplicates, every fault effect, unauthenticated and oversize
requests and a workspace over its quota; it keeps each reply's status, headers (without Date and
Server) and body, then the journal. What is random by design (tokens, MaGD, digests of files signed
with keys made afresh, identifiers) is replaced by its kind and order of appearance, so two runs on
the same code give the same bytes. `tests/data/wire_exchanges.json` was recorded on the code before
the wire exchange was derived in one place; `tests/test_wire_recording.py` replays and compares.

    .venv/bin/python -m tests.wire_recording   # writes tests/data/wire_exchanges.json again
"""

from __future__ import annotations

import base64
import json
import re
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from fixtures.hospital.wire import SUBMIT_PATH, TOKEN_PATH
from fixtures.pki import Credential, TestPKI, cert_pem
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType
from mock_portal.portal.auth import md5_upper
from tests.live import LiveServer, start_server

RECORDING = Path(__file__).with_name("data") / "wire_exchanges.json"
T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
"""09:00 in Hanoi on a working Tuesday: the PKI's instant, the files' issue and signing instant."""
FROZEN = T0 + timedelta(minutes=30)
MAX_FILE_BYTES = 100_000
SERVER_ENV = {"PORTAL_MAX_FILE_BYTES": str(MAX_FILE_BYTES)}
"""A small cap, so the oversize requests are cheap; 1 process (`start_server`'s default)."""
PEM = {"Content-Type": "application/x-pem-file"}
DROPPED_HEADERS = {"date", "server"}
VOLATILE = [
    ("MAGD", re.compile(r"HS_[A-Z]*\d+_[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")),
    ("UUID", re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")),
    ("HEX", re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")),
]
"""Values random by design, replaced by `<KIND#n>` in order of appearance (tokens are named when taken)."""


class Recorder:
    """The exchanges of one recording, in order, and the tokens they saw."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        self.exchanges: list[dict[str, Any]] = []
        self.secrets: list[str] = []

    def post(self, label: str, path: str, **request: Any) -> httpx.Response | None:
        try:
            reply = self.http.post(path, **request)
        except httpx.TransportError as exc:  # a reset or a dropped reply: no reply at all
            self.exchanges.append({"label": label, "error": type(exc).__name__})
            return None
        headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in reply.headers.raw]
        self.exchanges.append(
            {
                "label": label,
                "status": reply.status_code,
                "headers": [h for h in headers if h[0].lower() not in DROPPED_HEADERS],
                "body": reply.content.decode("utf-8", "backslashreplace"),
            }
        )
        return reply

    def token(self, label: str, username: str, password: str) -> dict[str, str]:
        reply = self.post(label, TOKEN_PATH, data={"username": username, "password": md5_upper(password)})
        ok = reply is not None and reply.status_code == 200
        key = reply.json()["APIKey"] if ok and reply is not None else None
        if not key:
            return {}
        self.secrets += [key["access_token"], key["id_token"]]
        return {"token": key["access_token"], "id_token": key["id_token"]}


def form(code: str, password: str, token: dict[str, str], loai_hs: str, file_b64: str) -> dict[str, str]:
    return {
        "maCskcb": code,
        "token": token.get("token", ""),
        "id_token": token.get("id_token", ""),
        "username": f"{code}_BV",
        "password": md5_upper(password),
        "loaiHs": loai_hs,
        "fileBase64Str": file_b64,
    }


CREDENTIALS: dict[str, Credential] = {}
"""The certificate of each facility of the recording (made afresh by each `record`)."""


def signed(code: str, kind: str = "GCS", serial: int = 1, invalid: str | None = None) -> str:
    xml = signed_sample(
        DocumentType[kind],
        CREDENTIALS[code],
        facility_code=code,
        serial=serial,
        issued_at=T0,
        signing_time=T0,
        invalid=invalid,
    )
    return base64.b64encode(xml).decode("ascii")


def provision(api: httpx.Client, pki: TestPKI, code: str) -> str:
    password = f"pw-{code}"
    made = api.post(
        "/sandbox/facilities", json={"code": code, "name": f"BV {code}", "username": f"{code}_BV", "password": password}
    )
    assert made.status_code == 201, made.text
    CREDENTIALS[code] = pki.issue_facility_cert(code, "valid")
    registered = api.post(
        f"/sandbox/facilities/{code}/certificates", content=cert_pem(CREDENTIALS[code].cert), headers=PEM
    )
    assert registered.status_code == 201, registered.text
    return password


def freeze(api: httpx.Client, at: datetime) -> None:
    assert api.put("/sandbox/clock", json={"now": at.isoformat(), "rate": 0}).status_code == 200


def faults(api: httpx.Client, *plan: dict[str, Any]) -> None:
    reply = api.put("/sandbox/faults", json={"faults": list(plan), "seed": 1})
    assert reply.status_code == 200, reply.text


def record(server: LiveServer) -> dict[str, Any]:
    """Drive the exchanges and return them with the journal, normalised."""
    pki = TestPKI.create({"79001": "Bệnh viện Từ Dũ", "01002": "Bệnh viện Bạch Mai"}, now=T0)
    CREDENTIALS.clear()
    rec = Recorder(server.base_url)
    with server.admin() as admin:
        assert admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM).status_code == 201
        freeze(admin, FROZEN)
        code, other = "79001", "01002"
        password = provision(admin, pki, code)
        _strict(rec, admin, pki, other)
        _drive(rec, admin, code, password)
        _workspace(rec, admin, pki)
        journal = admin.get("/sandbox/journal", params={"identity": "all", "limit": 1000}).json()
    rows = [{k: v for k, v in row.items() if k not in {"real_at", "duration_ms"}} for row in journal]
    return normalise({"exchanges": rec.exchanges, "journal": rows}, rec.secrets)


def _drive(rec: Recorder, admin: httpx.Client, code: str, password: str) -> None:
    token = rec.token("token ok", f"{code}_BV", password)
    rec.token("token wrong password", f"{code}_BV", "wrong")
    rec.token("token unknown account", "99999_BV", "whatever")

    def send(
        label: str, file_b64: str, loai_hs: str = "61", tok: dict[str, str] | None = None, pw: str = password
    ) -> None:
        rec.post(label, SUBMIT_PATH, data=form(code, pw, token if tok is None else tok, loai_hs, file_b64))

    gcs = signed(code, "GCS", 1)
    send("accepted GCS", gcs)
    send("duplicate GCS", gcs)
    send("accepted GBT", signed(code, "GBT", 2), loai_hs="60")
    send("refused bad base64", "not base64 at all!!")
    send("refused schema", signed(code, "GCS", 3, invalid="missing_required"))
    send("refused signature", signed(code, "GCS", 4, invalid="tampered"))
    send("refused rule", signed(code, "GCS", 5, invalid="wrong_year"))
    send("refused rule: other facility", signed(code, "GCS", 7, invalid="other_facility"))
    send("refused rule: impossible date", signed(code, "GCS", 8, invalid="impossible_date"))
    send("refused schema: bad pattern", signed(code, "GCS", 9, invalid="bad_pattern"))
    send("refused parsing", base64.b64encode("<GIAYCHUNGSINH><a>Tiếng Việt".encode()).decode())
    send("refused loaiHs", gcs, loai_hs="99")
    send(
        "unauthenticated wrong password",
        signed(code, "GCS", 6),
        tok={"token": "forged", "id_token": "forged"},
        pw="wrong",
    )
    rec.post("unauthenticated no fields", SUBMIT_PATH, data={"loaiHs": "61", "fileBase64Str": "PA=="})
    rec.post("wrong media type", SUBMIT_PATH, content=b"{}", headers={"Content-Type": "text/plain"})
    rec.post("oversize submission", SUBMIT_PATH, data=form(code, password, token, "61", "A" * (MAX_FILE_BYTES * 2)))
    rec.post("oversize token", TOKEN_PATH, data={"username": "x" * (MAX_FILE_BYTES * 2), "password": "A"})
    plans: list[tuple[str, dict[str, Any]]] = [
        ("http error", {"name": "down", "effect": "http_error", "status": 503}),
        ("portal error", {"name": "flaky", "effect": "portal_error", "code": "500"}),
        ("account locked", {"name": "locked", "effect": "account_locked"}),
        ("latency", {"name": "slow", "effect": "latency", "latency": {"ms": 40}}),
        ("reset", {"name": "cut", "effect": "reset"}),
        ("drop after commit", {"name": "lost", "effect": "drop_after_commit"}),
    ]
    for n, (label, fault) in enumerate(plans):
        faults(admin, fault)
        send(f"fault {label}: submit", signed(code, "GCS", 10 + n))
        rec.token(f"fault {label}: token", f"{code}_BV", password)
    faults(
        admin,
        {"name": "slow", "effect": "latency", "latency": {"ms": 20}},
        {"name": "flaky", "effect": "portal_error", "every_nth": 2},
    )
    send("latency + every 2nd: first", signed(code, "GCS", 20))
    send("latency + every 2nd: second", signed(code, "GCS", 21))
    send("latency + refused schema", signed(code, "GCS", 22, invalid="missing_required"))
    rec.post("fault, unauthenticated: no fault", SUBMIT_PATH, data=form(code, "wrong", {}, "61", "PA=="))
    assert admin.delete("/sandbox/faults").status_code == 204
    freeze(admin, FROZEN + timedelta(days=2))  # the token taken at FROZEN has expired
    send("expired token", signed(code, "GCS", 30), pw="wrong")
    freeze(admin, FROZEN)


def _strict(rec: Recorder, admin: httpx.Client, pki: TestPKI, code: str) -> None:
    """Refusals by the business rules, which `portal` strictness only warns of."""
    password = provision(admin, pki, code)
    assert admin.put(f"/sandbox/facilities/{code}/strictness", json={"strictness": "strict"}).status_code == 200
    token = rec.token("strict: token", f"{code}_BV", password)
    for serial, kind in enumerate(("wrong_year", "unknown_ethnicity", "impossible_date"), start=50):
        file_b64 = signed(code, "GCS", serial, invalid=kind)
        rec.post(f"strict: refused rule {kind}", SUBMIT_PATH, data=form(code, password, token, "61", file_b64))


def _workspace(rec: Recorder, admin: httpx.Client, pki: TestPKI) -> None:
    """A workspace over its document quota: the real portal's busy answer."""
    made = admin.post("/sandbox/workspaces", json={"id": "full", "name": "Full", "quotas": {"max_documents": 0}})
    assert made.status_code == 201, made.text
    with httpx.Client(base_url=admin.base_url, headers={"Authorization": f"Bearer {made.json()['key']}"}) as api:
        assert api.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM).status_code == 201
        freeze(api, FROZEN)
        password = provision(api, pki, "48001")
        token = rec.token("workspace token", "48001_BV", password)
        file_b64 = signed("48001", "GCS", 40)
        rec.post("workspace over quota", SUBMIT_PATH, data=form("48001", password, token, "61", file_b64))


def normalise(data: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """`data` with every value random by design replaced by its kind and order of appearance."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    for n, secret in enumerate(secrets):
        text = text.replace(secret, f"<TOKEN#{n}>")
    for kind, pattern in VOLATILE:
        text = _numbered(text, kind, pattern)
    return json.loads(text)


def _numbered(text: str, kind: str, pattern: re.Pattern[str]) -> str:
    seen: dict[str, str] = {}
    name: Callable[[re.Match[str]], str] = lambda m: seen.setdefault(m.group(0), f"<{kind}#{len(seen)}>")  # noqa: E731
    return pattern.sub(name, text)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        server = start_server(Path(directory), extra_env=SERVER_ENV)
        try:
            recorded = record(server)
        finally:
            server.stop()
    RECORDING.parent.mkdir(exist_ok=True)
    RECORDING.write_text(json.dumps(recorded, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(
        f"{len(recorded['exchanges'])} exchanges, {len(recorded['journal'])} journal rows -> {RECORDING}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
