"""The sandbox control API through real HTTP: auth, facilities, trust material, problem+json errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from cryptography import x509

from fixtures.pki import TestPKI, cert_pem, crl_der
from mock_portal.deadline.working_time import WorkingCalendar, load_calendar
from tests.conftest import new_facility_code, provision
from tests.live import LiveServer, start_server

PEM = {"Content-Type": "application/x-pem-file"}


def assert_problem(reply: httpx.Response, status: int, code: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body = reply.json()
    assert body["code"] == code and body["status"] == status
    assert body["detail_vi"] and body["detail_en"] and body["detail"] == f"{body['detail_vi']} | {body['detail_en']}"
    return body


def test_health_needs_no_token(server: LiveServer) -> None:
    body = httpx.get(f"{server.base_url}/sandbox/health").json()
    assert body["status"] == "ok" and body["version"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}],
    ids=["none", "wrong-token", "basic"],
)
def test_control_api_needs_the_admin_token(server: LiveServer, headers: dict[str, str]) -> None:
    assert_problem(httpx.get(f"{server.base_url}/sandbox/facilities", headers=headers), 401, "UNAUTHORIZED")


def test_facility_lifecycle(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    hospital = provision(admin, trusted, server.base_url)
    facility = admin.get(f"/sandbox/facilities/{hospital.code}").json()
    assert facility["accounts"] == [{"username": hospital.username, "locked": False}]
    [certificate] = facility["certificates"]
    assert certificate["fingerprint"] == hospital.credential.fingerprint
    assert hospital.code in [f["code"] for f in admin.get("/sandbox/facilities").json()]
    username = f"{hospital.code}_Y"
    again = admin.post(
        "/sandbox/facilities", json={"code": hospital.code, "name": "x", "username": username, "password": "z"}
    )
    assert_problem(again, 409, "FACILITY_EXISTS")
    twice = admin.post(
        f"/sandbox/facilities/{hospital.code}/certificates",
        content=cert_pem(hospital.credential.cert),
        headers=PEM,
    )
    assert_problem(twice, 409, "CERTIFICATE_EXISTS")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"code": "7900", "name": "x", "username": "u", "password": "p"}, 400, "REQUEST_INVALID"),
        ({"code": "79000", "name": "x"}, 400, "REQUEST_INVALID"),
        (
            {"code": "79000", "name": "x", "username": "u", "password": "p", "extra": 1},
            400,
            "REQUEST_INVALID",
        ),
    ],
    ids=["short-code", "missing-account", "unknown-field"],
)
def test_bad_facility_bodies(admin: httpx.Client, body: dict, status: int, code: str) -> None:
    assert_problem(admin.post("/sandbox/facilities", json=body), status, code)


def test_unknown_things_are_404_with_codes(admin: httpx.Client) -> None:
    assert_problem(admin.get("/sandbox/facilities/00000"), 404, "FACILITY_NOT_FOUND")
    assert_problem(admin.get("/sandbox/submissions/999999999"), 404, "SUBMISSION_NOT_FOUND")
    assert_problem(admin.get("/sandbox/documents/00001.GCS.00000.26"), 404, "DOCUMENT_NOT_FOUND")
    assert_problem(admin.delete(f"/sandbox/facilities/00000/certificates/{'a' * 64}"), 404, "FACILITY_NOT_FOUND")


def test_bad_trust_material_is_refused(admin: httpx.Client, trusted: TestPKI, server: LiveServer) -> None:
    hospital = provision(admin, trusted, server.base_url)
    assert_problem(admin.post("/sandbox/trust/cas", content=b"not a pem", headers=PEM), 400, "CERTIFICATE_INVALID")
    leaf = cert_pem(hospital.credential.cert)
    assert_problem(admin.post("/sandbox/trust/cas", content=leaf, headers=PEM), 400, "CA_NOT_A_CA")
    assert_problem(admin.post("/sandbox/trust/crls", content=b"garbage", headers=PEM), 400, "CRL_INVALID")
    assert_problem(
        admin.post(f"/sandbox/facilities/{hospital.code}/certificates", content=b"x", headers=PEM),
        400,
        "CERTIFICATE_INVALID",
    )
    assert_problem(
        admin.delete(f"/sandbox/facilities/{hospital.code}/certificates/{'b' * 64}"),
        404,
        "CERTIFICATE_NOT_FOUND",
    )


def test_crl_in_der_is_accepted(admin: httpx.Client, trusted: TestPKI) -> None:
    reply = admin.post(
        "/sandbox/trust/crls",
        content=crl_der(trusted.crl()),
        headers={"Content-Type": "application/pkix-crl"},
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["issuer"].startswith("CN=VN Sandbox Test Root CA")


def test_ca_listing_includes_the_trusted_root(admin: httpx.Client, trusted: TestPKI) -> None:
    subjects = [ca["subject"] for ca in admin.get("/sandbox/trust/cas").json()]
    assert trusted.root.cert.subject.rfc4514_string() in subjects


def test_rules_catalogue_is_bilingual(admin: httpx.Client) -> None:
    rules = admin.get("/sandbox/rules").json()
    codes = {rule["code"] for rule in rules}
    assert {"RULE_CODE_FORMAT", "RULE_CODE_FACILITY", "RULE_CODE_YEAR", "RULE_GHI_CHU_FLAGS"} <= codes
    assert all(rule["description_vi"] and rule["description_en"] for rule in rules)


def test_reset_empties_a_server(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> None:
    live = start_server(tmp_path_factory.mktemp("reset"))
    try:
        with live.admin() as admin:
            admin.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM)
            site = provision(admin, pki, live.base_url, code=new_facility_code("01"))
            down = {"faults": [{"name": "old", "effect": "http_error", "status": 503}]}
            assert admin.put("/sandbox/faults", json=down).status_code == 200
            assert admin.put(f"/sandbox/facilities/{site.code}/faults", json=down).status_code == 200
            token = {"username": site.username, "password": site.client.password_md5}  # faults meet accounts only
            assert httpx.post(f"{live.base_url}/api/token/take", data=token).status_code == 503
            assert admin.put("/sandbox/clock", json={"now": "2026-03-09T08:00:00+07:00", "rate": 0}).status_code == 200
            assert admin.post("/sandbox/reset").status_code == 204
            assert admin.get("/sandbox/facilities").json() == []
            assert admin.get("/sandbox/trust/cas").json() == []
            assert admin.get("/sandbox/clock").json()["mode"] == "real"
            emptied = admin.get("/sandbox/faults")  # empty after a reset, not "deleted" (404)
            assert emptied.status_code == 200 and emptied.json()["plan"]["faults"] == [], emptied.text
            # a new plan after the reset is not mistaken for the cached one of the same version
            slow = {"faults": [{"name": "new", "effect": "latency", "latency": {"ms": 1}}]}
            assert admin.put("/sandbox/faults", json=slow).status_code == 200
            again = provision(admin, pki, live.base_url, code=site.code)
            own = admin.get(f"/sandbox/facilities/{site.code}/faults")  # the re-created facility's plan is empty
            assert own.status_code == 200 and own.json()["plan"]["faults"] == [], own.text
            assert admin.delete(f"/sandbox/facilities/{site.code}/faults").status_code == 204
            gone = admin.get(f"/sandbox/facilities/{site.code}/faults")
            assert gone.status_code == 404 and gone.json()["code"] == "FAULT_PLAN_NOT_SET"
            taken = httpx.post(
                f"{live.base_url}/api/token/take",
                data={"username": again.username, "password": again.client.password_md5},
            )
            assert taken.json()["maKetQua"] == "200" and taken.headers["x-sandbox-explain"].startswith("FAULT new")
    finally:
        live.stop()


def test_swagger_ui_and_the_contract_are_served(server: LiveServer) -> None:
    ui = httpx.get(f"{server.base_url}/ui/", follow_redirects=True)
    assert ui.status_code == 200 and "swagger" in ui.text.lower()
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    assert {"/api/token/take", "/api/hososuckhoe/guiGiayToDienTu"} <= set(spec["paths"])


@pytest.mark.parametrize(
    ("code", "expected"),
    [("48203\n", "FACILITY_CODE_INVALID"), ("48203\r\n", "REQUEST_INVALID"), ("٤٨٢٠٣", "REQUEST_INVALID")],
)
def test_a_facility_code_is_five_ascii_digits_and_nothing_after(admin: httpx.Client, code: str, expected: str) -> None:
    """The spec's `^[0-9]{5}$` is exact for a client (ECMAScript), but the server matches it with Python's
    `$`, which also matches before a final newline: the domain checks the whole code (a lookahead in
    the published pattern would break Go and Rust tooling). `\\d` would also take any script's digits."""
    created = admin.post(
        "/sandbox/facilities", json={"code": code, "name": "BV", "username": "48203_BV", "password": "pw"}
    )
    assert created.status_code == 400, created.text
    assert created.json()["code"] == expected
    assert all(f["code"].isascii() and len(f["code"]) == 5 for f in admin.get("/sandbox/facilities").json())


def test_the_domain_checks_the_whole_facility_code_and_account_name() -> None:
    """Behind the spec (a caller that skips it, e.g. the dashboard): the same rules, matched whole."""
    from mock_portal.portal.facilities import FACILITY_CODE, USERNAME_SUFFIX

    assert FACILITY_CODE.fullmatch("48203") and not FACILITY_CODE.fullmatch("48203\n")
    assert not FACILITY_CODE.fullmatch("٤٨٢٠٣")
    assert USERNAME_SUFFIX.fullmatch("BV") and not USERNAME_SUFFIX.fullmatch("BV\n")


def test_the_clock_reply_publishes_the_default_working_calendar(admin: httpx.Client) -> None:
    """Clients (the conformance suite) place their scenarios on the calendar the portal counts on."""
    published = admin.get("/sandbox/clock").json()["calendar"]
    assert WorkingCalendar.from_mapping(published) == WorkingCalendar.default()
    assert published["windows"] == [["08:00", "12:00"], ["13:00", "17:00"]] and published["holidays"] == "VN"


def test_the_clock_reply_publishes_the_configured_calendar_in_every_workspace(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    hcmc = load_calendar("hcmc-0730")
    live = start_server(tmp_path_factory.mktemp("hcmc"), extra_env={"PORTAL_CALENDAR": "hcmc-0730"})
    try:
        with live.admin() as admin:
            assert WorkingCalendar.from_mapping(admin.get("/sandbox/clock").json()["calendar"]) == hcmc
            frozen = admin.put("/sandbox/clock", json={"now": "2026-03-09T11:00:00+07:00", "rate": 0}).json()
            advanced = admin.post("/sandbox/clock/advance", json={"working_minutes": 60}).json()
            # 11:00–11:30, the 11:30–13:30 lunch, 13:30–14:00: the portal counts on the calendar it publishes
            assert advanced["now_vn"] == "2026-03-09T14:00:00+07:00"
            assert frozen["calendar"] == advanced["calendar"] == admin.delete("/sandbox/clock").json()["calendar"]
            created = admin.post("/sandbox/workspaces", json={"id": "cal1", "name": "Calendar"})
            assert created.status_code == 201, created.text
            key = created.json()["key"]
            reply = httpx.get(f"{live.base_url}/sandbox/clock", headers={"Authorization": f"Bearer {key}"})
            assert reply.status_code == 200 and WorkingCalendar.from_mapping(reply.json()["calendar"]) == hcmc
    finally:
        live.stop()


# Issue 25: registering a certificate outside its validity (on the sandbox clock) warns, 201 all the same
@pytest.fixture()
def workspace(admin: httpx.Client, server: LiveServer) -> Iterator[httpx.Client]:
    """A workspace of its own: its sandbox clock may be moved without touching the other tests."""
    name = f"i25-cert-{new_facility_code()}"
    created = admin.post("/sandbox/workspaces", json={"id": name})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        yield client
    admin.delete(f"/sandbox/workspaces/{name}")


def _register(client: httpx.Client, pki: TestPKI, variant: str) -> tuple[x509.Certificate, dict]:
    code = new_facility_code()
    body = {"code": code, "name": f"BV {code}", "username": f"{code}_BV", "password": "pw"}
    assert client.post("/sandbox/facilities", json=body).status_code == 201
    cert = pki.issue_facility_cert(code, variant).cert
    reply = client.post(f"/sandbox/facilities/{code}/certificates", content=cert_pem(cert), headers=PEM)
    assert reply.status_code == 201, reply.text
    return cert, reply.json()


def _not_valid_now(reply: dict, cert: x509.Certificate, now: str | None = None) -> dict:
    [warning] = reply["warnings"]
    assert warning["code"] == "CERT_NOT_VALID_NOW" and warning["severity"] == "warning"
    assert warning["message_vi"] and warning["message_en"].isascii()
    period = f"{cert.not_valid_before_utc.isoformat()} .. {cert.not_valid_after_utc.isoformat()}"
    assert warning["expected"] == period
    if now is not None:
        assert datetime.fromisoformat(warning["received"]) == datetime.fromisoformat(now)
    return warning


@pytest.mark.parametrize(("variant", "says"), [("expired", "expired at"), ("not-yet-valid", "not valid yet")])
def test_a_certificate_outside_its_validity_is_registered_with_a_warning(
    workspace: httpx.Client, pki: TestPKI, variant: str, says: str
) -> None:
    cert, reply = _register(workspace, pki, variant)
    assert says in _not_valid_now(reply, cert)["message_en"]
    listed = workspace.get(f"/sandbox/facilities/{reply['facility']}").json()["certificates"]
    assert [c["fingerprint"] for c in listed] == [reply["fingerprint"]]


def test_a_valid_certificate_and_ca_are_registered_without_warning(workspace: httpx.Client, pki: TestPKI) -> None:
    assert _register(workspace, pki, "valid")[1]["warnings"] == []
    added = workspace.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM)
    assert added.status_code == 201 and added.json()["warnings"] == []


def test_validity_at_registration_is_judged_on_the_sandbox_clock(workspace: httpx.Client, pki: TestPKI) -> None:
    """A certificate valid by the wall clock is expired at the workspace's sandbox instant, and so is a CA."""
    later = (pki.now + timedelta(days=400)).isoformat()
    assert workspace.put("/sandbox/clock", json={"now": later, "rate": 0}).status_code == 200
    cert, reply = _register(workspace, pki, "valid")
    assert "expired at" in _not_valid_now(reply, cert, later)["message_en"]
    much_later = (pki.now + timedelta(days=4000)).isoformat()
    assert workspace.put("/sandbox/clock", json={"now": much_later, "rate": 0}).status_code == 200
    added = workspace.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=PEM)
    assert added.status_code == 201
    _not_valid_now(added.json(), pki.root.cert, much_later)


# Issue 25: only an exact `application/x-pem-file` is read as `text/plain`, and only on the three PEM uploads


@pytest.mark.parametrize("content_type", ["Application/X-PEM-File", "application/x-pem-file; charset=utf-8"])
def test_a_pem_file_media_type_in_any_case_or_with_a_charset_is_read_as_text(
    workspace: httpx.Client, pki: TestPKI, content_type: str
) -> None:
    code = new_facility_code()
    body = {"code": code, "name": f"BV {code}", "username": f"{code}_BV", "password": "pw"}
    assert workspace.post("/sandbox/facilities", json=body).status_code == 201
    pem = cert_pem(pki.issue_facility_cert(code).cert)
    headers = {"Content-Type": content_type}
    assert workspace.post(f"/sandbox/facilities/{code}/certificates", content=pem, headers=headers).status_code == 201
    added = workspace.post("/sandbox/trust/cas", content=cert_pem(pki.root.cert), headers=headers)
    assert added.status_code == 201, added.text


def test_a_415_names_the_media_type_the_client_sent(workspace: httpx.Client, pki: TestPKI) -> None:
    """`application/x-pem-filexyz` is not the PEM media type; on an operation that takes no PEM body,
    `application/x-pem-file` is refused as itself, not as a `text/plain` the client never sent."""
    code = new_facility_code()
    body = {"code": code, "name": f"BV {code}", "username": f"{code}_BV", "password": "pw"}
    assert workspace.post("/sandbox/facilities", json=body).status_code == 201
    pem = cert_pem(pki.issue_facility_cert(code).cert)
    odd = {"Content-Type": "application/x-pem-filexyz"}
    refused = workspace.post(f"/sandbox/facilities/{code}/certificates", content=pem, headers=odd)
    assert refused.status_code == 415 and "application/x-pem-filexyz" in refused.text, refused.text
    assert "text/plain" not in refused.json()["detail"].split("expected")[0], refused.text
    json_as_pem = workspace.post("/sandbox/facilities", content=b'{"code": "1"}', headers=PEM)
    assert json_as_pem.status_code == 415 and "application/x-pem-file" in json_as_pem.text, json_as_pem.text
    assert "text/plain" not in json_as_pem.text, json_as_pem.text
