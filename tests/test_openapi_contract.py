"""Contract test: schemathesis over every operation of `openapi.yaml`, against the live server.

The schema is read from the running server (`/openapi.json`), every request goes over real HTTP
on 127.0.0.1 and every built-in check runs (server errors, status codes, content types, response
and header schemas, positive acceptance, negative rejection, undeclared methods, ignored auth,
response time...). Besides schemathesis' own random data, schema-scoped `flatmap_case` hooks make
a share of the cases realistic, from data provisioned once per session (`World`):

* `/api/token/take` gets a provisioned facility's account with its uppercase-MD5 password (or the
  lowercase MD5, or a wrong one);
* `/api/hososuckhoe/guiGiayToDienTu` gets the seven fields as a hospital sends them: a live token,
  `loaiHs` 61/60 and a signed GCS/GBT (valid, or broken in one named way) in `fileBase64Str`;
* sandbox paths get existing facility codes, certificate fingerprints, submission ids and
  document codes; certificate, CA and CRL uploads get real PEM (and DER for CRLs).

Realistic values are written onto the generated case, so schemathesis re-validates it and knows
whether it is still a negative case. Nothing is filtered out.

The shared server is used by other modules, so this run keeps its side effects to itself: the
facilities it locks or strips of certificates are its own, the CA and CRL it uploads come from a
private CA (the session PKI's root is only re-posted, which must answer 409), and the facilities it
creates use the province prefix `99`, which no other test provisions. `POST /sandbox/reset` wipes
the database, so it runs against a second server of its own.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation
from schemathesis.transport.requests import ManagedCookiesSession

from fixtures.hospital import LOAI_HS
from fixtures.pki import TestPKI, cert_pem, crl_der, crl_pem
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType
from mock_portal.portal.auth import md5_upper
from tests.conftest import Hospital, new_facility_code, provision
from tests.live import IPSS_KEY, LiveServer, start_server

SEED = 20260310
MAX_EXAMPLES = 30
RESPONSE_TIME_LIMIT = 10.0
"""Seconds; generous on a loaded 2-core CI machine, it only catches a hung request."""
OWN_PROVINCE = "99"
"""Facilities created by the fuzzer live under this prefix, away from `new_facility_code()`."""
BROKEN_KINDS = (
    "tampered",
    "unsigned",
    "wrapping",
    "sha1",
    "missing_required",
    "other_facility",
    "bad_pattern",
    "future_issue",
)

_serials = itertools.count(90001)


def _config(admin_token: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "auth": {"openapi": {"adminBearer": {"bearer": admin_token}, "ipssKey": {"api_key": IPSS_KEY}}},
            "checks": {"enabled": True, "max_response_time": RESPONSE_TIME_LIMIT},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
            # A well-formed registration that names no shared, matching certificate is refused with 422.
            "operations": [
                {
                    "include-path-regex": "^/ipss/v1/(birth|death)-registrations$",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["201", "401", "422"]}},
                },
                # Well-formed query values can still name no period (none, both forms, to before from): 400.
                {
                    "include-path-regex": "^/sandbox/reports/semiannual$",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["200", "400", "401"]}},
                },
            ],
        }
    )


# A private CA: its certificate and CRL may be uploaded to the shared server without changing the
# trust decisions any other test relies on (the session PKI's keys are cached per process, so a
# second TestPKI would share them).
def _private_ca() -> tuple[bytes, bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Contract Test CA (not a trust anchor of any test)"),
        ]
    )
    now = datetime.now(UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=7))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(4242).revocation_date(now - timedelta(hours=2)).build()
        )
        .sign(key, hashes.SHA256())
    )
    return cert_pem(cert), crl_pem(crl), crl_der(crl)


@dataclass
class World:
    """Real data of the shared server, built once: what the realistic strategies draw from."""

    submitter: Hospital
    """Sends the documents; never locked, its certificate never unregistered by the fuzzer."""
    victims: list[Hospital]
    """Locked, unlocked and stripped of certificates by the fuzzer."""
    accounts: list[tuple[str, str]]
    """(username, plain password) of every facility above."""
    forms: list[dict[str, str]]
    """Complete submission forms, valid and broken."""
    fingerprints: list[tuple[str, str]]
    """(facility code, SHA-256 fingerprint) of registered certificates of the victims."""
    submission_ids: list[int]
    document_codes: list[str]
    cert_pems: list[bytes]
    """Leaf certificates (registrable) of the victims, one not registered yet."""
    ca_pems: list[bytes]
    """The session root (already trusted: 409) and a private CA (201, then 409)."""
    crls: list[bytes]
    """A private CA's CRL in PEM and DER."""
    facility_codes: list[str] = field(default_factory=list)
    document_fields: list[dict[str, str]] = field(default_factory=list)
    """The signed fields of the accepted documents (a GCS and a GBT), for IPSS registrations."""


def _forms(hospital: Hospital) -> list[dict[str, str]]:
    """Every form is built once; the token stays valid for the whole run (60 min)."""
    code = hospital.code
    token = hospital.client.take_token()

    def form(kind: str, xml: bytes, **changes: str) -> dict[str, str]:
        return {**hospital.client.form(LOAI_HS[kind], xml, token), **changes}

    def sample(kind: str, invalid: str | None = None) -> bytes:
        return signed_sample(
            DocumentType[kind], hospital.credential, facility_code=code, serial=next(_serials), invalid=invalid
        )

    gcs, gbt = sample("GCS"), sample("GBT")
    forms = [form("GCS", gcs), form("GBT", gbt), form("GCS", sample("GCS")), form("GBT", sample("GBT"))]
    forms += [
        form("GCS" if i % 2 else "GBT", sample("GCS" if i % 2 else "GBT", kind)) for i, kind in enumerate(BROKEN_KINDS)
    ]
    forms += [
        form("GCS", gcs, loaiHs=LOAI_HS["GBT"]),  # a GCS sent as a death notice
        form("GCS", gcs, loaiHs="62"),  # unknown document type
        form("GBT", gbt, token="0" * 32),  # token never issued
        form("GBT", gbt, password=md5_upper("wrong")),
        form("GCS", gcs, fileBase64Str="PD94bWwgdmVyc2lvbj0iMS4wIj8+PEdDUz48L0dDUz4"),  # bad padding
        form("GCS", gcs, fileBase64Str=base64.b64encode(b"<GIAYCHUNGSINH><x></GIAYCHUNGSINH>").decode()),
    ]
    return forms


@pytest.fixture(scope="module")
def world(server: LiveServer, admin: Any, trusted: TestPKI) -> World:
    submitter = provision(admin, trusted, server.base_url, code=new_facility_code())
    victims = [provision(admin, trusted, server.base_url, code=new_facility_code()) for _ in range(2)]
    forms = _forms(submitter)
    ids, codes, fields = [], [], []
    for data in forms[:2]:  # two accepted documents exist before the fuzzer starts
        reply = submitter.client.send_form(data)
        assert reply.ma_ket_qua == "200", reply.explain
        ids.append(int(reply.submission_id or 0))
        found = admin.get(f"/sandbox/submissions/{reply.submission_id}").json()
        codes.append(found["document_code"])
        fields.append(found["document"]["fields"])
    broken = submitter.client.send_form(forms[4])
    ids.append(int(broken.submission_id or 0))
    spare = trusted.issue_facility_cert(victims[0].code, "expired")
    private_ca, private_crl_pem, private_crl_der = _private_ca()
    return World(
        submitter=submitter,
        victims=victims,
        accounts=[(h.username, h.password) for h in (submitter, *victims)],
        forms=forms,
        fingerprints=[(h.code, h.credential.fingerprint) for h in victims],
        submission_ids=ids,
        document_codes=codes,
        cert_pems=[cert_pem(h.credential.cert) for h in victims] + [cert_pem(spare.cert)],
        ca_pems=[cert_pem(trusted.root.cert), private_ca],
        crls=[private_crl_pem, private_crl_der],
        facility_codes=[h.code for h in (submitter, *victims)],
        document_fields=fields,
    )


# realistic cases ----------------------------------------------------------------------------------
Case = schemathesis.Case
Edit = Callable[[Case], None]


def _body(case: Case, value: bytes) -> None:
    """PEM is text (the spec's string schemas); DER stays bytes, sent only as application/pkix-crl."""
    if value.startswith(b"-----"):
        case.body = value.decode("ascii")
    elif case.media_type == "application/pkix-crl":
        case.body = value


def _edits(world: World, case: Case) -> list[Edit]:
    """Ways to make this case realistic; the generated case itself is always kept as one choice."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    victim_codes = [h.code for h in world.victims]
    path = dict(case.path_parameters or {})

    def with_path(**values: Any) -> Edit:
        def edit(c: Case) -> None:
            c.path_parameters = {**path, **values}

        return edit

    if label == "POST /api/token/take":
        edits = [
            lambda c, u=u, p=p: setattr(c, "body", {"username": u, "password": md5_upper(p)}) for u, p in world.accounts
        ]
        username, password = world.accounts[0]
        edits.append(lambda c: setattr(c, "body", {"username": username, "password": md5_upper(password).lower()}))
        edits.append(lambda c: setattr(c, "body", {"username": username, "password": md5_upper("sai-mat-khau")}))
        return edits
    if label == "POST /api/hososuckhoe/guiGiayToDienTu":
        return [lambda c, f=f: setattr(c, "body", dict(f)) for f in world.forms]
    if label == "POST /sandbox/facilities":

        def realistic(c: Case) -> None:
            code = OWN_PROVINCE + f"{next(_serials) % 1000:03d}"
            c.body = {
                "code": code,
                "name": f"Bệnh viện Đa khoa {code}",
                "username": f"{code}_BV",
                "password": f"Mk@{code}",
            }

        existing = world.submitter
        return [
            realistic,
            lambda c: setattr(
                c,
                "body",
                {"code": existing.code, "name": "Trùng mã", "username": f"{existing.code}_BV2", "password": "x"},
            ),
        ]
    if label in ("POST /sandbox/facilities/{code}/lock", "POST /sandbox/facilities/{code}/unlock"):
        return [with_path(code=code) for code in victim_codes]
    if label == "GET /sandbox/facilities/{code}":
        return [with_path(code=code) for code in world.facility_codes]
    if label == "POST /sandbox/facilities/{code}/certificates":
        return [
            (lambda c, code=code, pem=pem: (_body(c, pem), setattr(c, "path_parameters", {**path, "code": code})))
            for code in victim_codes
            for pem in world.cert_pems
        ]
    if label == "DELETE /sandbox/facilities/{code}/certificates/{fingerprint}":
        return [with_path(code=code, fingerprint=fp) for code, fp in world.fingerprints] + [
            with_path(code=world.victims[0].code, fingerprint=world.fingerprints[1][1].upper())
        ]
    if label == "POST /sandbox/trust/cas":
        return [lambda c, pem=pem: _body(c, pem) for pem in world.ca_pems]
    if label == "POST /sandbox/trust/crls":
        return [lambda c, crl=crl: _body(c, crl) for crl in world.crls]
    if label in ("GET /sandbox/submissions/{id}", "GET /sandbox/submissions/{id}/file"):
        return [with_path(id=i) for i in world.submission_ids]
    if label == "GET /sandbox/documents/{code}":
        return [with_path(code=code) for code in world.document_codes]
    if label == "GET /sandbox/submissions":
        return [
            lambda c: setattr(c, "query", {**(c.query or {}), "facility": world.submitter.code}),
            lambda c: setattr(c, "query", {"facility": world.submitter.code, "result": "200", "limit": 5}),
            lambda c: setattr(c, "query", {"before": max(world.submission_ids), "limit": 1}),
        ]
    return _ipss_edits(world, label, with_path)


def _ipss_edits(world: World, label: str, with_path: Callable[..., Edit]) -> list[Edit]:
    """IPSS paths get the codes of the accepted documents and registrations that match them (or not)."""
    gcs = next(f for f in world.document_fields if "MA_GCS" in f)
    gbt = next(f for f in world.document_fields if "MA_GBT" in f)
    births = [{"ma_gcs": gcs["MA_GCS"], "mother_id_number": gcs["SO_CCCD_NND"], "child_name": gcs["TEN_CON"].lower()}]
    births.append({**births[0], "child_name": "TRẦN THỊ KHÁC"})
    deaths = [{"ma_gbt": gbt["MA_GBT"], "deceased_id_number": gbt["SO_GIAYTO"]}]
    deaths.append({**deaths[0], "deceased_id_number": "079199000000"})
    edits: dict[str, list[Edit]] = {
        "GET /ipss/v1/birth-certificates/{ma_gcs}": [with_path(ma_gcs=gcs["MA_GCS"]), with_path(ma_gcs=gbt["MA_GBT"])],
        "GET /ipss/v1/death-certificates/{ma_gbt}": [with_path(ma_gbt=gbt["MA_GBT"])],
        "GET /ipss/v1/feed": [lambda c: setattr(c, "query", {"after": 0, "limit": 1})],
        "POST /ipss/v1/birth-registrations": [lambda c, b=b: setattr(c, "body", dict(b)) for b in births],
        "POST /ipss/v1/death-registrations": [lambda c, b=b: setattr(c, "body", dict(b)) for b in deaths],
    }
    return edits.get(label, [])


def _own_province(case: Case) -> None:
    """Every schema-valid facility code the fuzzer creates is moved under `OWN_PROVINCE`, so that no
    later test's `provision()` (79xxx, 01xxx) or "unknown facility" probe (00000) meets it."""
    body = case.body
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, str) and len(code) == 5 and code.isdigit() and not code.startswith(OWN_PROVINCE):
        code = OWN_PROVINCE + code[2:]
        case.body = body = {**body, "code": code}
    # The account name must carry the facility's code as prefix, a cross-field rule no schema can state:
    # a schema-valid name gets the case's code, as a real client would write it.
    username = body.get("username") if isinstance(body, dict) else None
    if isinstance(code, str) and isinstance(username, str) and username[:5].isdigit() and username[5:6] == "_":
        case.body = {**body, "username": code + username[5:]}


def _realistic(world: World) -> Callable[[Any, Case], st.SearchStrategy[Case]]:
    def flatmap_case(context: Any, case: Case) -> st.SearchStrategy[Case]:
        edits = _edits(world, case)
        if not edits:
            return st.just(case)

        def apply(choice: int) -> Case:
            if choice >= 0:
                edits[choice](case)
            return case

        # About half the cases stay as generated; the rest take one realistic variant.
        return st.one_of(st.just(-1), st.integers(0, len(edits) - 1)).map(apply)

    return flatmap_case


# schemas ------------------------------------------------------------------------------------------
def _register_formats(world: World) -> None:
    """The spec's `x509-pem` / `x509-crl-pem` formats and the DER CRL media type: JSON Schema cannot say
    "decodes to a certificate", so schema-valid values are drawn from real ones."""
    schemathesis.openapi.format(
        "x509-pem", st.sampled_from([pem.decode("ascii") for pem in world.cert_pems + world.ca_pems])
    )
    schemathesis.openapi.format("x509-ca-pem", st.sampled_from([pem.decode("ascii") for pem in world.ca_pems]))
    schemathesis.openapi.format("x509-crl-pem", st.just(world.crls[0].decode("ascii")))
    schemathesis.openapi.media_type("application/pkix-crl", st.just(world.crls[1]))


def _no_crl_in_a_negative_body(case: Case) -> None:
    """A negative body sent as `application/pkix-crl` still comes from the media type's strategy, a real CRL
    the portal rightly takes: Schemathesis uses a custom media type strategy in negative mode too. Such a
    body is made what the case says it is, bytes that are no CRL."""
    body = case.meta.components.get(ParameterLocation.BODY) if case.meta else None
    if case.media_type == "application/pkix-crl" and body is not None and body.mode.is_negative:
        case.body = b"not a CRL"


@pytest.fixture(scope="module")
def shared_schema(server: LiveServer, world: World) -> Iterator[Any]:
    _register_formats(world)
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", config=_config(server.admin_token))
    schema.hook("flatmap_case")(_realistic(world))
    yield schema


@pytest.fixture(scope="module", autouse=True)
def _before_each_call() -> Iterator[None]:
    """On every case of every phase, of both schemas (coverage cases do not pass through the strategy hooks);
    `before_call` exists only as a global hook, so it is removed again after this module."""

    def before_call(context: Any, case: Case, kwargs: dict[str, Any]) -> None:
        if case.method.upper() == "POST" and case.operation.path == "/sandbox/facilities":
            _own_province(case)
        _no_crl_in_a_negative_body(case)
        _no_framing_headers(case)

    schemathesis.hook(before_call)
    yield
    schemathesis.hooks.unregister(before_call)


FRAMING_HEADERS = frozenset({"transfer-encoding", "content-length", "connection", "host", "te", "trailer", "upgrade"})


def _no_framing_headers(case: Case) -> None:
    """Headers that frame the HTTP message itself are the server's HTTP layer's, not an operation's: a made-up
    `Transfer-Encoding` on a GET gets uvicorn's own 400 ("Invalid HTTP request received.") before any route
    is chosen, as it must (a generated negative case of GET /sandbox/faults did, once, in CI). The contract
    is about the operations, so generated cases do not carry them."""
    if case.headers:
        case.headers = {name: value for name, value in case.headers.items() if name.lower() not in FRAMING_HEADERS}


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(Path(tmp_path_factory.mktemp("portal-reset")))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def reset_schema(private_server: LiveServer) -> Any:
    with private_server.admin() as admin:  # something to wipe
        created = admin.post(
            "/sandbox/facilities",
            json={"code": "99999", "name": "Bệnh viện tạm", "username": "99999_BV", "password": "x"},
        )
        assert created.status_code == 201, created.text
    return schemathesis.openapi.from_url(
        f"{private_server.base_url}/openapi.json", config=_config(private_server.admin_token)
    )


# Operations that change what every other test relies on (the data, the clock, the fault plans) run
# against a server of their own.
GLOBAL_STATE = r"^/sandbox/(reset|clock(/advance)?|faults|facilities/[^/]+/faults)$"
shared = schemathesis.pytest.from_fixture("shared_schema").exclude(path_regex=GLOBAL_STATE)
private = schemathesis.pytest.from_fixture("reset_schema").include(path_regex=GLOBAL_STATE)
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True
)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One keep-alive session for every case, as `schemathesis run` has (its own class: cookies dropped after
    each case). Without it each case opened a session and a connection and read the proxy and netrc settings
    from the environment again: a third of the test's CPU. No proxy stands between the tests and 127.0.0.1."""
    with ManagedCookiesSession() as keep_alive:
        keep_alive.trust_env = False
        yield keep_alive


@SETTINGS
@shared.parametrize()
def test_every_operation_conforms(case: Case, session: requests.Session) -> None:
    case.call_and_validate(session=session)


@SETTINGS
@private.parametrize()
def test_global_state_operations_conform_on_their_own_server(case: Case, session: requests.Session) -> None:
    case.call_and_validate(session=session)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy loader reads `item._nodeid`, which pytest 9.2 renamed; give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


# Issue 25: item 16, a plain Schemathesis run (no hooks) can serialise every operation; PEM is a whole block

CONTRACT = Path(__file__).resolve().parents[1] / "mock_portal" / "openapi.yaml"


def test_a_plain_schemathesis_serialises_every_operation() -> None:
    """`application/x-pem-file` bodies gave a plain `schemathesis run` 'No supported serializers' errors: every
    example and generated body of every operation is now sent as a media type Schemathesis knows."""
    schema = schemathesis.openapi.from_path(CONTRACT)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.get_request_payload_content_types():
            continue  # nothing to serialise
        for strategy in [*operation.get_strategies_from_examples(), operation.as_strategy()]:

            @hypothesis.settings(
                max_examples=2, database=None, deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
            )
            @hypothesis.given(strategy)
            def serialise(case: Case) -> None:
                case.as_transport_kwargs(base_url="http://127.0.0.1")

            try:
                serialise()
            except schemathesis.errors.SerializationNotPossible as exc:
                failures.append(f"{operation.label}: {exc}")
    assert failures == []


def test_a_bare_pem_header_is_outside_the_contract() -> None:
    """A bare `-----BEGIN CERTIFICATE-----` matched the old pattern, so a plain run counted its 400 as a
    schema-valid request rejected; the pattern now asks for a whole block, as a real PEM file has."""
    schemas = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))["components"]["schemas"]
    pki = TestPKI.create({"79001": "Bệnh viện Từ Dũ"}, now=datetime.now(UTC))
    real = {"CertificatePem": cert_pem(pki.root.cert), "CaCertificatePem": cert_pem(pki.root.cert)}
    real["CrlPem"] = crl_pem(pki.crl())
    for name, pem in real.items():
        pattern = schemas[name]["pattern"]
        header = pem.decode().splitlines()[0]
        assert re.search(pattern, pem.decode()) and re.search(pattern, pem.decode().replace("\n", "\r\n")), name
        assert not re.search(pattern, header) and not re.search(pattern, header + "\n" + pem.decode().splitlines()[-1])
