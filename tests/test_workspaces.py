"""Workspaces (issue 17): one served portal, several tenants that see nothing of each other.

Real HTTP on one live portal: the operator creates workspaces A and B, each provisions the SAME
facility code (with its own account), trusts the test root, sends signed documents over the wire.
Then every sandbox, IPSS and dashboard route — enumerated from openapi.yaml and the Flask url map,
so a new route cannot escape — is called with A's key on B's resources.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fixtures.hospital.wire import SUBMIT_PATH, TokenRefused
from fixtures.pki import TestPKI, cert_pem, crl_pem
from mock_portal import store
from mock_portal.app import SPEC, create_app
from mock_portal.config import Settings
from mock_portal.portal.service import build_portal
from mock_portal.store.repository import JournalFilter, Retention
from tests.conftest import Hospital, new_facility_code, provision, trust_root
from tests.live import IPSS_KEY, LiveServer, dashboard_login
from tests.wire import sample, send

PEM = {"Content-Type": "application/x-pem-file"}


@dataclass
class Tenant:
    id: str
    key: str
    api: httpx.Client
    """Bearer: the workspace key."""
    ipss: httpx.Client
    """X-API-Key: the workspace key."""
    hospital: Hospital
    """Facility `SHARED_CODE` of this workspace."""


def open_workspace(operator: httpx.Client, server: LiveServer, pki: TestPKI, code: str, **quotas: Any) -> Tenant:
    workspace_id = f"t{secrets.token_hex(4)}"
    created = operator.post(
        "/sandbox/workspaces", json={"id": workspace_id, "name": f"Vendor {workspace_id}", "quotas": quotas}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith(f"wsk_{workspace_id}_")
    api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0)
    ipss = httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}, timeout=30.0)
    trust_root(api, pki)
    hospital = provision(api, pki, server.base_url, code=code, username=f"{code}_{workspace_id}")
    return Tenant(workspace_id, key, api, ipss, hospital)


def close_workspace(operator: httpx.Client, tenant: Tenant) -> None:
    assert operator.delete(f"/sandbox/workspaces/{tenant.id}").status_code in {204, 404}
    tenant.api.close()
    tenant.ipss.close()


@pytest.fixture(scope="module")
def shared_code() -> str:
    return new_facility_code()


@pytest.fixture(scope="module")
def pair(
    admin: httpx.Client, server: LiveServer, trusted: TestPKI, shared_code: str
) -> Iterator[tuple[Tenant, Tenant]]:
    a = open_workspace(admin, server, trusted, shared_code)
    b = open_workspace(admin, server, trusted, shared_code)
    yield a, b
    close_workspace(admin, a)
    close_workspace(admin, b)


def accepted(tenant: Tenant, kind: str = "GCS", hospital: Hospital | None = None) -> dict[str, Any]:
    hospital = hospital or tenant.hospital
    sent = send(tenant.api, hospital, sample(hospital, kind), kind)
    assert sent.reply.ma_ket_qua == "200", sent.submission["findings"]
    return sent.submission


def shared(tenant: Tenant, kind: str, code: str) -> dict[str, Any]:
    path = {"GCS": "birth-certificates", "GBT": "death-certificates"}[kind]
    deadline = time.monotonic() + 15
    while True:
        found = tenant.ipss.get(f"/ipss/v1/{path}/{code}")
        if found.status_code == 200:
            return found.json()
        assert time.monotonic() < deadline, found.text
        time.sleep(0.1)


def problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["detail_vi"] and body["detail_en"]
    if code is not None:
        assert body["code"] == code, body
    return body


# keys and roles ------------------------------------------------------------------------------------
def test_the_operator_manages_workspaces_and_a_key_only_its_own(
    admin: httpx.Client, pair: tuple[Tenant, Tenant]
) -> None:
    a, b = pair
    listed = {w["id"] for w in admin.get("/sandbox/workspaces").json()}
    assert {"default", a.id, b.id} <= listed
    assert "key" not in admin.get(f"/sandbox/workspaces/{a.id}").json()
    me = a.api.get("/sandbox/workspace").json()
    assert (me["id"], me["role"], me["usage"]["facilities"]) == (a.id, "workspace", 1)
    assert admin.get("/sandbox/workspace").json()["id"] == "default"
    for method, path, body in (
        ("GET", "/sandbox/workspaces", None),
        ("POST", "/sandbox/workspaces", {"name": "mine"}),
        ("GET", f"/sandbox/workspaces/{b.id}", None),
        ("DELETE", f"/sandbox/workspaces/{b.id}", None),
    ):
        problem(a.api.request(method, path, json=body), 403, "WORKSPACE_OPERATOR_ONLY")
    problem(admin.delete("/sandbox/workspaces/default"), 409, "WORKSPACE_DEFAULT_KEPT")
    problem(admin.post("/sandbox/workspaces", json={"id": a.id}), 409, "WORKSPACE_EXISTS")
    problem(admin.post("/sandbox/workspaces", json={"id": "default"}), 409, "WORKSPACE_EXISTS")
    problem(admin.post("/sandbox/workspaces", json={"id": "Not_Valid"}), 400, "REQUEST_INVALID")
    problem(admin.get("/sandbox/workspaces/Not_Valid"), 400, "WORKSPACE_ID_INVALID")
    problem(admin.post("/sandbox/workspaces", json={"quotas": {"max_documents": -1}}), 400)
    problem(admin.get("/sandbox/workspaces/nosuch"), 404, "WORKSPACE_NOT_FOUND")
    forged = a.key[:-4] + ("AAAA" if not a.key.endswith("AAAA") else "BBBB")
    problem(httpx.get(f"{a.api.base_url}/sandbox/facilities", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_one_facility_code_lives_in_both_workspaces_each_with_its_own_data(pair: tuple[Tenant, Tenant]) -> None:
    a, b = pair
    assert a.hospital.code == b.hospital.code and a.hospital.username != b.hospital.username
    mine, theirs = accepted(a), accepted(b)
    listed = [s["id"] for s in a.api.get("/sandbox/submissions").json()]
    assert mine["id"] in listed and theirs["id"] not in listed
    assert {e["username"] for e in a.api.get("/sandbox/journal").json()} == {a.hospital.username}
    assert [f["accounts"][0]["username"] for f in a.api.get("/sandbox/facilities").json()] == [a.hospital.username]
    problem(a.api.get(f"/sandbox/submissions/{theirs['id']}"), 404, "SUBMISSION_NOT_FOUND")


def test_a_clock_set_in_a_leaves_b_and_default_with_their_clocks_and_tokens(
    admin: httpx.Client, pair: tuple[Tenant, Tenant]
) -> None:
    a, b = pair
    a.hospital.client.take_token()
    b.hospital.client.take_token()
    later = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    moved = a.api.put("/sandbox/clock", json={"now": later.isoformat(), "rate": 0})
    assert moved.status_code == 200 and moved.json()["mode"] == "frozen", moved.text
    try:
        for other in (b.api, admin):
            clock = other.get("/sandbox/clock").json()
            assert clock["mode"] == "real", clock
            assert abs(datetime.fromisoformat(clock["now"]) - datetime.now(UTC)) < timedelta(minutes=1)
        expired = send(a.api, a.hospital, sample(a.hospital), "GCS")
        assert expired.reply.ma_ket_qua == "401", expired.submission["findings"]
        assert "AUTH_TOKEN_EXPIRED" in expired.codes
        assert send(b.api, b.hospital, sample(b.hospital), "GCS").reply.ma_ket_qua == "200"
        token = a.hospital.client.take_token()  # a token taken now lives on A's clock
        assert datetime.fromisoformat(token.expires_in.replace("Z", "+00:00")) > later
    finally:
        assert a.api.delete("/sandbox/clock").status_code == 200
        a.hospital.client.take_token()


def test_fault_plans_and_expectations_stay_in_their_workspace(admin: httpx.Client, pair: tuple[Tenant, Tenant]) -> None:
    a, b = pair
    plan = {"faults": [{"name": "down", "effect": "http_error", "status": 503, "operations": ["submit"]}]}
    assert a.api.put("/sandbox/faults", json=plan).status_code == 200
    try:
        assert b.api.get("/sandbox/faults").json()["plan"]["faults"] == []
        assert admin.get("/sandbox/faults").json()["plan"]["faults"] == []
        form = a.hospital.client.form("61", sample(a.hospital))
        assert a.hospital.client.http.post("/api/hososuckhoe/guiGiayToDienTu", data=form).status_code == 503
        assert send(b.api, b.hospital, sample(b.hospital), "GCS").reply.ma_ket_qua == "200"
    finally:
        assert a.api.delete("/sandbox/faults").status_code == 204
    issued = datetime.now(UTC).isoformat()
    made = a.api.post("/sandbox/expectations", json={"type": "GCS", "facility": a.hospital.code, "issued_at": issued})
    assert made.status_code == 201, made.text
    problem(b.api.get(f"/sandbox/expectations/{made.json()['id']}"), 404, "EXPECTATION_NOT_FOUND")


# every route, A's key on B's resources -------------------------------------------------------------
def _spec_operations() -> set[tuple[str, str]]:
    spec = yaml.safe_load(SPEC.read_text())
    methods = {"get", "put", "post", "delete", "patch"}
    return {(m.upper(), path) for path, item in spec["paths"].items() for m in item if m in methods}


WIRE = {("POST", "/api/token/take"), ("POST", "/api/hososuckhoe/guiGiayToDienTu")}
"""The wire picks the workspace by account: proven by the tests above, not by a key."""
PUBLIC = {
    ("GET", "/sandbox/health"),
    ("GET", "/sandbox/ready"),
    ("GET", "/sandbox/rules"),
    ("GET", "/sandbox/fidelity"),
    ("GET", "/sandbox/attestation-keys"),
}
"""Nothing of a workspace in them (health counts the default workspace's submissions)."""
OPERATOR_ONLY = {
    ("GET", "/sandbox/workspaces"),
    ("POST", "/sandbox/workspaces"),
    ("GET", "/sandbox/workspaces/{id}"),
    ("DELETE", "/sandbox/workspaces/{id}"),
}
ON_B_RESOURCE: dict[tuple[str, str], Any] = {
    ("GET", "/sandbox/facilities/{code}"): None,
    ("POST", "/sandbox/facilities/{code}/lock"): None,
    ("POST", "/sandbox/facilities/{code}/unlock"): None,
    ("PUT", "/sandbox/facilities/{code}/strictness"): {"strictness": "strict"},
    ("POST", "/sandbox/facilities/{code}/certificates"): "pem",
    ("DELETE", "/sandbox/facilities/{code}/certificates/{fingerprint}"): None,
    ("GET", "/sandbox/facilities/{code}/faults"): None,
    ("PUT", "/sandbox/facilities/{code}/faults"): {"faults": []},
    ("DELETE", "/sandbox/facilities/{code}/faults"): None,
    ("GET", "/sandbox/submissions/{id}"): None,
    ("GET", "/sandbox/submissions/{id}/file"): None,
    ("GET", "/sandbox/documents/{code}"): None,
    ("GET", "/sandbox/expectations/{id}"): None,
    ("POST", "/sandbox/attestations"): "attestation",
    ("GET", "/ipss/v1/birth-certificates/{ma_gcs}"): None,
    ("GET", "/ipss/v1/death-certificates/{ma_gbt}"): None,
}
"""A route naming one of B's resources: 404 for A's key (as for a resource that exists nowhere)."""
COLLECTIONS = {
    ("GET", "/sandbox/workspace"),
    ("GET", "/sandbox/facilities"),
    ("GET", "/sandbox/trust/cas"),
    ("GET", "/sandbox/submissions"),
    ("GET", "/sandbox/clock"),
    ("GET", "/sandbox/faults"),
    ("GET", "/sandbox/journal"),
    ("GET", "/sandbox/journal/count"),
    ("GET", "/sandbox/sharing"),
    ("GET", "/sandbox/reports/semiannual"),
    ("GET", "/ipss/v1/feed"),
}
"""Reads of A's own collection: none of B's rows in the answer."""
WRITES_OF_A: dict[tuple[str, str], Any] = {
    ("POST", "/sandbox/facilities"): "facility",
    ("POST", "/sandbox/trust/cas"): "ca",
    ("POST", "/sandbox/trust/crls"): "crl",
    ("PUT", "/sandbox/clock"): {"rate": 0},
    ("POST", "/sandbox/clock/advance"): {"minutes": 600},
    ("DELETE", "/sandbox/clock"): None,
    ("PUT", "/sandbox/faults"): {"faults": [{"name": "x", "effect": "http_error", "status": 500}]},
    ("DELETE", "/sandbox/faults"): None,
    ("POST", "/sandbox/expectations"): "expectation",
    ("POST", "/ipss/v1/birth-registrations"): "birth",
    ("POST", "/ipss/v1/death-registrations"): "death",
    ("POST", "/sandbox/reset"): None,
}
"""Writes that name no resource: they act on A only (B is checked unchanged afterwards); those that
name one of B's (an expectation for B's facility, a registration of B's certificate) are refused."""


def test_every_route_is_classified() -> None:
    classified = WIRE | PUBLIC | OPERATOR_ONLY | set(ON_B_RESOURCE) | COLLECTIONS | set(WRITES_OF_A)
    assert _spec_operations() == classified, "classify the new route in tests/test_workspaces.py"


def _state(tenant: Tenant) -> dict[str, Any]:
    """Everything of a workspace its key can read, to compare before and after A's calls."""
    api = tenant.api
    return {
        "facilities": api.get("/sandbox/facilities").json(),
        "cas": api.get("/sandbox/trust/cas").json(),
        "submissions": [s["id"] for s in api.get("/sandbox/submissions").json()],
        "journal": api.get("/sandbox/journal/count").json(),
        "faults": api.get("/sandbox/faults").json(),
        "mode": api.get("/sandbox/clock").json()["mode"],
        "feed": [i["feed_id"] for i in tenant.ipss.get("/ipss/v1/feed").json()["items"]],
    }


def test_a_key_reaches_nothing_of_another_workspace_on_any_route(
    admin: httpx.Client, server: LiveServer, trusted: TestPKI, shared_code: str
) -> None:
    a = open_workspace(admin, server, trusted, shared_code)
    b = open_workspace(admin, server, trusted, shared_code)
    try:
        only_b = provision(b.api, trusted, server.base_url, username=None)  # a code A does not have
        birth = accepted(b, "GCS", only_b)
        death = accepted(b, "GBT", only_b)
        gcs, gbt = birth["document"]["code"], death["document"]["code"]
        shared(b, "GCS", gcs)
        shared(b, "GBT", gbt)
        expectation = b.api.post(
            "/sandbox/expectations",
            json={"type": "GCS", "facility": only_b.code, "issued_at": datetime.now(UTC).isoformat()},
        ).json()
        fingerprint = b.api.get(f"/sandbox/facilities/{only_b.code}").json()["certificates"][0]["fingerprint"]
        accepted(a)
        before = _state(b)
        values = {"code": only_b.code, "fingerprint": fingerprint, "ma_gcs": gcs, "ma_gbt": gbt}
        b_markers = [only_b.username, b.hospital.username, gcs, gbt, b.id]

        for (method, path), body in ON_B_RESOURCE.items():
            url = path.format(**values, id=expectation["id"] if "expectations" in path else birth["id"])
            if path.startswith("/sandbox/documents/"):
                url = f"/sandbox/documents/{gcs}"
            client = a.ipss if path.startswith("/ipss/") else a.api
            if body == "pem":
                response = client.post(url, content=cert_pem(only_b.credential.cert), headers=PEM)
            elif body == "attestation":  # B's facility and journal, attested for A: refused
                ranges = [{"code": only_b.code, "journal_after": 0, "journal_until": 2**62}]
                claim = {"run_id": "r", "suite_version": "1", "facilities": ranges, "cases": [], "summary": {}}
                response = client.post(url, json={**claim, "manifest_sha256": "0" * 64})
            else:
                response = client.request(method, url, json=body)
            problem(response, 404)

        for method, path in COLLECTIONS:
            client = a.ipss if path.startswith("/ipss/") else a.api
            today = datetime.now(UTC)
            period = {"period": f"{today.year}-H{1 if today.month <= 6 else 2}"}
            response = client.request(method, path, params=period if "reports" in path else None)
            assert response.status_code == 200, (path, response.text)
            assert not [m for m in b_markers if m in response.text], (path, response.text[:500])

        for method, path in OPERATOR_ONLY:
            problem(a.api.request(method, path.format(id=b.id), json={} if method == "POST" else None), 403)

        refused_birth = a.ipss.post(
            "/ipss/v1/birth-registrations",
            json={"ma_gcs": gcs, "mother_id_number": "079123456789", "child_name": "Nguyễn Văn A"},
        )
        assert problem(refused_birth, 422)["reasons"][0]["code"] == "CERTIFICATE_NOT_FOUND"
        refused_death = a.ipss.post("/ipss/v1/death-registrations", json={"ma_gbt": gbt, "deceased_id_number": "1"})
        assert problem(refused_death, 422)["reasons"][0]["code"] == "CERTIFICATE_NOT_FOUND"
        issued = datetime.now(UTC).isoformat()
        problem(
            a.api.post("/sandbox/expectations", json={"type": "GCS", "facility": only_b.code, "issued_at": issued}),
            404,
            "FACILITY_NOT_FOUND",
        )
        own = provision(a.api, trusted, server.base_url, code=only_b.code, username=f"{only_b.code}_{a.id}")
        assert own.code == only_b.code  # the same code is free in A
        for method, path in WRITES_OF_A:
            body = WRITES_OF_A[(method, path)]
            if isinstance(body, str) and body in {"facility", "expectation", "birth", "death"}:
                continue  # exercised above, with B's names
            if isinstance(body, str) and body == "ca":
                response = a.api.post(path, content=cert_pem(trusted.root.cert), headers=PEM)
                assert response.status_code == 409  # A trusts it already; B's copy is not A's concern
            elif isinstance(body, str) and body == "crl":
                response = a.api.post(path, content=crl_pem(trusted.crl()), headers=PEM)
                assert response.status_code == 201, response.text
            else:
                response = a.api.request(method, path, json=body)
                assert response.status_code in {200, 204}, (path, response.text)
        assert _state(b) == before
        assert a.api.get("/sandbox/facilities").json() == []  # A's reset emptied A
        assert b.api.get("/sandbox/documents/" + gcs).status_code == 200
    finally:
        close_workspace(admin, a)
        close_workspace(admin, b)


# dashboard -----------------------------------------------------------------------------------------
def _dashboard_routes(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'routes.sqlite3'}", sharing_enabled=False))
    return {
        (method, rule.rule)
        for rule in app.app.url_map.iter_rules()
        if rule.rule.startswith("/sandbox/ui") and "static" not in rule.rule
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }


DASHBOARD_PAGES = {
    "/sandbox/ui/",
    "/sandbox/ui/facilities",
    "/sandbox/ui/journal",
    "/sandbox/ui/journal/rows",
    "/sandbox/ui/deadlines",
    "/sandbox/ui/deadlines/documents",
    "/sandbox/ui/clock",
    "/sandbox/ui/report",
    "/sandbox/ui/report/download",
}
DASHBOARD_OTHER = {
    ("GET", "/sandbox/ui/login"),
    ("POST", "/sandbox/ui/login"),
    ("POST", "/sandbox/ui/logout"),
    ("GET", "/sandbox/ui/submissions/<int:submission_id>"),
    ("POST", "/sandbox/ui/clock"),
    ("POST", "/sandbox/ui/faults"),
}


@contextmanager
def _login(base_url: str, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30.0, follow_redirects=True) as client:
        page = dashboard_login(client, key)
        assert page.status_code == 200, page.text
        yield client


def test_the_dashboard_shows_the_workspace_and_nothing_of_another(
    admin: httpx.Client, server: LiveServer, pair: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    a, b = pair
    assert _dashboard_routes(tmp_path) == {("GET", p) for p in DASHBOARD_PAGES} | DASHBOARD_OTHER
    theirs = accepted(b)
    mine = accepted(a)
    with _login(server.base_url, a.key) as ui:
        for page in sorted(DASHBOARD_PAGES):
            shown = ui.get(page)
            assert shown.status_code == 200, (page, shown.text[:300])
            assert b.hospital.username not in shown.text and theirs["document"]["code"] not in shown.text, page
        journal = ui.get("/sandbox/ui/journal").text
        assert mine["document"]["code"] in journal and f"#{mine['id']}<" in journal
        assert f"#{theirs['id']}<" not in journal
        assert a.hospital.username in ui.get("/sandbox/ui/facilities").text
        assert mine["document"]["code"] in ui.get("/sandbox/ui/deadlines/documents").text  # issue 25: scoped reads
        assert re.search(rf'id="workspace"[^>]*>Workspace: <strong>{a.id}</strong>', journal)
        assert ui.get(f"/sandbox/ui/submissions/{theirs['id']}").status_code == 404
        csrf = re.search(r'name="csrf" value="([^"]+)"', journal)
        assert csrf is not None
        frozen = ui.post("/sandbox/ui/clock", data={"csrf": csrf.group(1), "action": "set", "rate": "0"})
        assert frozen.status_code == 200, frozen.text
        assert a.api.get("/sandbox/clock").json()["mode"] == "frozen"
        assert b.api.get("/sandbox/clock").json()["mode"] == "real"
        a.api.delete("/sandbox/clock")
    with _login(server.base_url, "test-admin-token") as ui:
        assert re.search(r"Workspace: <strong>default</strong>", ui.get("/sandbox/ui/journal").text)


# deleting ------------------------------------------------------------------------------------------
def test_a_deleted_workspace_leaves_no_key_no_account_and_no_rows(
    admin: httpx.Client, server: LiveServer, trusted: TestPKI
) -> None:
    gone = open_workspace(admin, server, trusted, new_facility_code())
    accepted(gone)
    unauthenticated = {"identity": "unauthenticated"}
    default_before = [admin.get("/sandbox/journal/count", params=p).json()["count"] for p in (None, unauthenticated)]
    assert admin.delete(f"/sandbox/workspaces/{gone.id}").status_code == 204
    problem(gone.api.get("/sandbox/facilities"), 401)
    assert gone.ipss.get("/ipss/v1/feed").status_code == 401
    with pytest.raises(TokenRefused):
        gone.hospital.client.take_token()
    problem(admin.delete(f"/sandbox/workspaces/{gone.id}"), 404, "WORKSPACE_NOT_FOUND")
    default_after = [admin.get("/sandbox/journal/count", params=p).json()["count"] for p in (None, unauthenticated)]
    assert default_after == [default_before[0], default_before[1] + 1]  # the refused login: journalled apart


def test_the_ipss_key_of_the_portal_still_reads_the_default_workspace(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": IPSS_KEY}) as ipss:
        assert ipss.get("/ipss/v1/feed").status_code == 200


# quotas --------------------------------------------------------------------------------------------
def _same_minute(seconds_needed: float) -> None:
    """Wait for a fresh real minute when this one has too little left (the rate quota counts per minute)."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.05)


def test_quotas_answer_busy_on_the_wire_and_leave_the_other_workspace_alone(
    admin: httpx.Client, server: LiveServer, trusted: TestPKI, pair: tuple[Tenant, Tenant]
) -> None:
    a, _ = pair
    busy = open_workspace(admin, server, trusted, new_facility_code(), max_submissions_per_minute=3, max_facilities=1)
    full = open_workspace(admin, server, trusted, new_facility_code(), max_documents=1)
    try:
        code = new_facility_code()
        refused = busy.api.post(
            "/sandbox/facilities", json={"code": code, "name": "BV", "username": f"{code}_{busy.id}", "password": "pw"}
        )
        problem(refused, 409, "WORKSPACE_QUOTA_EXCEEDED")
        _same_minute(15)
        busy.hospital.client.take_token()
        forged = busy.hospital.client.form("61", sample(busy.hospital)) | {"token": "not-a-token-of-this-account"}
        for _ in range(5):  # anyone can name the account: sends without its token use none of its quota
            assert httpx.post(f"{server.base_url}{SUBMIT_PATH}", data=forged).json()["MaKetQua"] == "401"
        replies = [busy.hospital.client.send("GCS", sample(busy.hospital)) for _ in range(5)]
        assert [r.ma_ket_qua for r in replies] == ["200", "200", "200", "500", "500"]
        assert replies[3].explain and replies[3].explain.startswith("WORKSPACE_BUSY: more than 3 submissions")
        assert replies[3].submission_id is None  # refused before the portal examined or stored it
        assert [r.ma_ket_qua for r in (a.hospital.client.send("GCS", sample(a.hospital)) for _ in range(5))] == [
            "200"
        ] * 5
        journal = busy.api.get("/sandbox/journal", params={"operation": "submit"}).json()
        assert [e["outcome"] for e in journal][:2] == ["500", "500"]
        assert len(busy.api.get("/sandbox/submissions").json()) == 3 + 5  # three accepted, the forged five 401

        assert full.hospital.client.send("GCS", sample(full.hospital)).ma_ket_qua == "200"
        over = full.hospital.client.send("GCS", sample(full.hospital))
        assert over.ma_ket_qua == "500" and over.explain and "quota max_documents" in over.explain
        assert full.api.get("/sandbox/workspace").json()["usage"] == {"facilities": 1, "documents": 1}
    finally:
        close_workspace(admin, busy)
        close_workspace(admin, full)


def test_the_ipss_lag_follows_the_workspace_clock(pair: tuple[Tenant, Tenant]) -> None:
    """Frozen an hour ahead in A: accepted and shared at the same A instant (lag 0), not an hour "before"
    acceptance as the default clock would say."""
    a, _ = pair
    ahead = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    assert a.api.put("/sandbox/clock", json={"now": ahead.isoformat(), "rate": 0}).status_code == 200
    try:
        a.hospital.client.take_token()
        document = accepted(a)["document"]
        copy = shared(a, "GCS", document["code"])["latest"]
        assert copy["lag_ms"] == 0 and copy["shared_at"].startswith(ahead.strftime("%Y-%m-%dT%H:%M:%S")), copy
    finally:
        assert a.api.delete("/sandbox/clock").status_code == 200
        a.hospital.client.take_token()


def test_conformance_opens_its_own_workspace_and_deletes_it_unless_kept(
    admin: httpx.Client, server: LiveServer, pair: tuple[Tenant, Tenant], capsys: pytest.CaptureFixture[str]
) -> None:
    """The harness's `own_workspace` (used by `conformance run --reference --portal`; `make workspaces`
    runs two such runs at once): the operator key opens one, a workspace key is used as given."""
    from conformance.portal import SandboxAdmin, own_workspace

    operator = SandboxAdmin(server.base_url, server.admin_token)
    seen = []
    for keep in (False, True):
        with own_workspace(operator, "conformance run", keep=keep) as inner:
            assert inner.workspace is not None and inner.whoami()["id"] == inner.workspace
            inner.set_clock(rate=600)
            seen.append(inner.workspace)
        assert admin.get("/sandbox/clock").json()["mode"] == "real"
    listed = {w["id"] for w in admin.get("/sandbox/workspaces").json()}
    assert seen[0] not in listed and seen[1] in listed
    assert f"workspace {seen[1]} kept; its key: wsk_{seen[1]}_" in capsys.readouterr().err
    assert admin.delete(f"/sandbox/workspaces/{seen[1]}").status_code == 204
    given = SandboxAdmin(server.base_url, pair[0].key)
    with own_workspace(given, "conformance run") as inner:
        assert inner is given and inner.whoami()["id"] == pair[0].id
    operator.close()
    given.close()


def test_trimming_one_workspace_journal_leaves_the_others_alone(database_url: str) -> None:
    """Journal ids are shared by every workspace: the newest `keep` are counted in each one's own rows."""
    repo = store.Repository(store.create_engine_for(database_url))
    repo.create_schema()
    quiet, busy = repo.scoped("quiet"), repo.scoped("busy")
    now = datetime.now(UTC)

    def entry() -> store.JournalEntry:
        return store.JournalEntry(
            at=now,
            real_at=now,
            facility_code="",
            username="",
            operation="token",
            outcome="401",
            faults=[],
            findings=[],
            duration_ms=0.0,
        )

    for _ in range(10):
        quiet.add_journal(entry(), Retention(journal=100))
    for _ in range(600):
        busy.add_journal(entry(), Retention(journal=100))
    everything = JournalFilter()
    assert quiet.count_journal(everything) == 10
    assert 100 <= busy.count_journal(everything) < 100 + 256


def test_a_workspace_deleted_and_made_again_elsewhere_is_not_served_from_a_stale_cache(tmp_path: Path) -> None:
    """Two processes on one database (two portals here): one caches a workspace's portal, the other deletes
    the workspace and makes it again, whose clock versions start afresh; the first must follow the new one."""
    from mock_portal.portal import workspaces

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'portal.sqlite3'}", admin_token="op-" + "x" * 40)
    first, second = build_portal(settings), build_portal(settings)
    _, key = workspaces.create(second, workspaces.NewWorkspace("twice", "Twice", workspaces.Quotas()))
    old = workspaces.authenticate(first, key)
    assert old is not None
    cached = first.workspace("twice", old.generation)
    for hour in (9, 10, 11, 12):  # the old incarnation's clock version runs ahead
        cached.clock.set(now=datetime(2030, 1, 1, hour, tzinfo=UTC), rate=0)
    workspaces.delete(second, "twice")
    _, key = workspaces.create(second, workspaces.NewWorkspace("twice", "Twice", workspaces.Quotas()))
    second.workspace("twice").clock.set(now=datetime(2031, 6, 2, 8, tzinfo=UTC), rate=0)
    new = workspaces.authenticate(first, key)
    assert new is not None and new.generation != old.generation
    served = first.workspace("twice", new.generation)
    served.clock.refresh()
    assert served is not cached and served.clock.now() == datetime(2031, 6, 2, 8, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["abc\n", "a", "-ab", "ABC", "x" * 21])
def test_a_workspace_id_is_matched_whole(admin: httpx.Client, bad: str) -> None:
    problem(admin.post("/sandbox/workspaces", json={"id": bad, "name": "x"}), 400)


def test_a_reset_in_one_process_brings_every_process_back_to_real_time_and_keeps_the_quota_count(
    tmp_path: Path,
) -> None:
    from mock_portal.portal import workspaces

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'portal.sqlite3'}", admin_token="op-" + "x" * 40)
    first, second = build_portal(settings), build_portal(settings)
    for hour in (9, 10, 11):  # the first process's clock version runs ahead
        first.clock.set(now=datetime(2030, 1, 1, hour, tzinfo=UTC), rate=0)
    workspaces.reset(second)
    first.clock.refresh()
    assert abs(first.clock.now() - datetime.now(UTC)) < timedelta(minutes=1)

    workspaces.create(second, workspaces.NewWorkspace("counted", "Counted", workspaces.Quotas()))
    tenant = second.workspace("counted")
    tenant.repo.update_setting(workspaces.RATE_KEY, lambda _old: {"minute": 1, "count": 5})
    workspaces.reset(tenant)
    assert tenant.repo.get_settings([workspaces.RATE_KEY])[workspaces.RATE_KEY][1] == {"minute": 1, "count": 5}


def test_login_throttles_count_per_claimed_workspace() -> None:
    from mock_portal.portal.workspaces import claimed

    assert claimed("wsk_team-a_secret") == "team-a"
    assert claimed("wsk_team-b_secret") == "team-b"
    assert claimed("the operator key") == claimed("wsk_Bad_id") == claimed("wsk_a\n_x") == ""


# Issue 26: workspace scoping only through the repository ------------------------------------------
def test_ipss_views_and_reports_of_two_workspaces_with_one_facility_code_stay_apart(database_url: str) -> None:
    """The IPSS queries and the six-monthly report read through `Repository.query`: workspaces A and B
    each accept one GCS of the same facility and code; only A shares it. Each counts its own alone."""
    from mock_portal.control.clock import vn_local
    from mock_portal.deadline.working_time import WorkingCalendar
    from mock_portal.reports import semiannual
    from mock_portal.store import ipss as ipss_store

    root = store.Repository(store.create_engine_for(database_url))
    root.create_schema()
    now = datetime.now(UTC).replace(microsecond=0)
    a, b = root.scoped("scope-a"), root.scoped("scope-b")
    for repo in (a, b):
        repo.add_facility(
            store.Facility(code="79001", name=f"BV {repo.workspace}", created_at=now),
            store.Account(username=f"79001_{repo.workspace}", facility_code="79001", password_hash="scrypt$x"),
        )
        submission = store.Submission(
            received_at=now, facility_code="79001", username=f"79001_{repo.workspace}", loai_hs="61", result="200",
            ma_gd="MGD", file=None, file_sha256=None, file_size=0, document_code="C1", explain="", findings=[],
            signature_report=None,
        )  # fmt: skip
        document = store.Document(
            doc_type="GCS", code="C1", facility_code="79001", ma_gd="MGD", first_issue=True, issue_date="",
            signing_time=None, accepted_at=now, fields={"MA_GCS": "C1"}, issue_instant=now, deadline=now,
            deadline_status="ON_TIME",
        )  # fmt: skip
        repo.record_submission(submission, document)
    assert len(ipss_store.pending_entries(a, 10)) == 1 and ipss_store.pending_workspaces(root) == ["scope-a", "scope-b"]
    assert ipss_store.share_entries(a, [outbox for outbox, _ in ipss_store.pending_entries(a, 10)], now) == 1

    today = vn_local(now).date().isoformat()  # the report's periods are Vietnam dates
    for repo, shared in ((a, 1), (b, 0)):
        stats = ipss_store.sharing_stats(repo)
        assert (stats.pending, stats.shared) == (1 - shared, shared), repo.workspace
        assert len(ipss_store.pending_entries(repo, 10)) == 1 - shared
        assert len(ipss_store.feed(repo, 0, 10)) == len(ipss_store.shared_by_code(repo, "GCS", "C1")) == shared
        assert ipss_store.accepted_count(repo, "GCS", "C1") == 1
        report = semiannual.build(
            repo, semiannual.parse_period(date_from=today, date_to=today), WorkingCalendar.always_open(), now=now
        )
        assert [f.name for f in report.facilities] == [f"BV {repo.workspace}"]
        row = report.total["GCS"]
        assert (row.issued, row.sent, row.accepted, row.on_time, row.shared_ipss) == (1, 1, 1, 1, shared)
