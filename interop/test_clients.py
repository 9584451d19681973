"""The C# and Java reference clients (examples/) against the portal, and XMLDSig interop in all directions.

Run by `make interop` (not by `make test`: this directory is outside the default testpath). Needs
Mono (`mcs`, `mono`), a JDK 17 (`javac`, `java`) and `xmlsec1`; a missing tool fails the run
instead of skipping, because `make interop` installs them.

* Each client passes every MUST case of `conformance run --trigger-cmd …` (its worker runs beside it).
* A restart of a client's worker sends nothing twice; an order taken twice is sent once.
* Signers {python reference, xmlsec1, C#, Java} × verifiers {portal, xmlsec1, C#, Java}: every
  signature verifies everywhere else, and a tampered file fails in every verifier.
* The clients' field order equals the portal's XSD order.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509

from conformance.harness import FacilityUnderTest, Provisioning, provision
from conformance.offline import check_file
from conformance.portal import SandboxAdmin
from fixtures.certificates import build_xml, scenario
from fixtures.keystore import write_keystore_pki
from fixtures.pki import load_credential
from fixtures.signer import sign_document, tamper_field
from mock_portal.documents import DocumentType
from mock_portal.results.codes import SubmitResult
from mock_portal.signature.trust import trust_from_files
from mock_portal.signature.xmldsig import C14N_10, DS_NS
from tests.live import LiveServer, start_server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FACILITY = "79001"
USERNAME, PASSWORD = f"{FACILITY}_BV", "interop-pass"
P12_PASSWORD = "changeit"
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class Client:
    name: str
    command: tuple[str, ...]

    def run(self, *args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(  # noqa: S603 - our own example clients
            [*self.command, *args], input=stdin, capture_output=True, timeout=timeout, check=False
        )

    def line(self, *args: str) -> str:
        return " ".join([*self.command, *args])


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make interop`, which installs it")
    return path


def _build(script: Path) -> None:
    done = subprocess.run([str(script)], capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def clients() -> dict[str, Client]:
    for tool in ("mcs", "mono", "javac", "java", "xmlsec1"):
        _tool(tool)
    _build(EXAMPLES / "dotnet" / "build.sh")
    _build(EXAMPLES / "java" / "build.sh")
    return {
        "dotnet": Client("dotnet", ("mono", str(EXAMPLES / "dotnet/build/HospitalClient.exe"))),
        "java": Client("java", ("java", "-cp", str(EXAMPLES / "java/build"), "vn.sandbox.hospital.Main")),
    }


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Root CA → facility certificate: what the live runs use."""
    return write_keystore_pki(tmp_path_factory.mktemp("pki"), FACILITY, P12_PASSWORD)


@pytest.fixture(scope="session", params=[False, True], ids=["root-only", "with-intermediate"])
def any_pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both shapes, for the signature matrix: an intermediate must travel in X509Data after the leaf."""
    return write_keystore_pki(tmp_path_factory.mktemp("pki"), FACILITY, P12_PASSWORD, intermediate=request.param)


def _order(story: str, request_id: str, issued_at: datetime, serial: int = 1) -> bytes:
    doc_type, fields = scenario(story, facility_code=FACILITY, serial=serial, issued_at=issued_at)[0]
    order = {
        "request_id": request_id,
        "type": doc_type.name,
        "facility": FACILITY,
        "issued_at": issued_at.isoformat(),
        "data": fields,
    }
    return json.dumps(order, ensure_ascii=False).encode()


# --- the field order of each client is the portal's ------------------------------------------------


@pytest.mark.parametrize("name", ["dotnet", "java"])
@pytest.mark.parametrize("doc_type", list(DocumentType), ids=lambda t: t.name)
def test_field_order_is_the_portal_schema_order(name: str, doc_type: DocumentType) -> None:
    sources = {
        "dotnet": (EXAMPLES / "dotnet/Certificate.cs", rf'new DocumentKind\("{doc_type.loai_hs}"(.*?)\}}\);'),
        "java": (
            EXAMPLES / "java/src/vn/sandbox/hospital/DocumentKind.java",
            rf'{doc_type.name}\("{doc_type.loai_hs}"(.*?)\)\)',
        ),
    }
    path, pattern = sources[name]
    block = re.search(pattern, path.read_text(encoding="utf-8"), re.S)
    assert block is not None, f"no {doc_type.name} field list in {path}"
    names = re.findall(r'"([A-Z0-9_]+)"', block.group(1))[3:]  # after root tag, data tag, code field
    assert tuple(names) == doc_type.field_names


# --- conformance run against each client ---------------------------------------------------------------


@pytest.fixture
def portal(tmp_path: Path, pki: dict[str, Path]) -> Iterator[LiveServer]:
    live = start_server(tmp_path)
    admin = SandboxAdmin(live.base_url, live.admin_token)
    material = Provisioning(
        ca_pems=(pki["ca.pem"].read_bytes(),),
        crl_pems=(pki["crl.pem"].read_bytes(),),
        certificates={FACILITY: pki[f"{FACILITY}.cert.pem"].read_bytes()},
    )
    provision(admin, [FacilityUnderTest(FACILITY, USERNAME, PASSWORD)], material)
    admin.close()
    yield live
    live.stop()


def _worker_args(portal: LiveServer, pki: dict[str, Path], state: Path) -> list[str]:
    return [
        "work", "--state-dir", str(state), "--portal", portal.base_url, "--facility", FACILITY,
        "--username", USERNAME, "--password", PASSWORD,
        "--p12", str(pki[f"{FACILITY}.p12"]), "--p12-password", P12_PASSWORD,
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["dotnet", "java"])
def test_client_is_conformant(
    name: str, clients: dict[str, Client], pki: dict[str, Path], portal: LiveServer, tmp_path: Path
) -> None:
    client, state, report = clients[name], tmp_path / "state", tmp_path / "report"
    log = (tmp_path / "worker.log").open("wb")
    command = [*client.command, *_worker_args(portal, pki, state)]
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own client
    try:
        done = subprocess.run(  # noqa: S603
            [
                sys.executable, "-m", "conformance.cli", "run",
                "--trigger-cmd", client.line("order", "--state-dir", str(state)),
                "--portal", portal.base_url, "--admin-token", portal.admin_token,
                "--facility", FACILITY, "--username", USERNAME, "--password", PASSWORD,
                "--cert", str(pki[f"{FACILITY}.cert.pem"]), "--trust", str(pki["ca.pem"]), "--crl", str(pki["crl.pem"]),
                "--report-dir", str(report),
            ],
            capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
        )  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=10)
        log.close()
    out = done.stdout + done.stderr + (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    assert done.returncode == 0, out
    assert "CONFORMANT" in done.stdout, out
    cases = json.loads((report / "report.json").read_text())["cases"]
    must = [c for c in cases if c["level"] == "MUST"]
    assert must and all(c["verdict"] == "pass" for c in must), out


# --- the queue on disk: a restart sends nothing twice ---------------------------------------------------


@pytest.mark.parametrize("name", ["dotnet", "java"])
def test_restart_sends_nothing_twice(
    name: str, clients: dict[str, Client], pki: dict[str, Path], portal: LiveServer, tmp_path: Path
) -> None:
    client, state = clients[name], tmp_path / "state"
    now = datetime.now(UTC).replace(microsecond=0)
    first, second = _order("gcs_normal", "restart-1", now, 1), _order("gbt_normal", "restart-2", now, 2)
    taken = [client.run("order", "--state-dir", str(state), stdin=order) for order in (first, second, first)]
    assert [t.returncode for t in taken] == [0, 0, 0], [t.stderr for t in taken]
    assert taken[2].stdout.decode().startswith("already taken"), taken[2].stdout
    drain = [*_worker_args(portal, pki, state), "--drain"]
    for _ in range(2):  # the second start finds both orders sent and sends nothing
        run = client.run(*drain)
        assert run.returncode == 0, run.stderr
    assert client.run("order", "--state-dir", str(state), stdin=second).returncode == 0  # re-ordered after sending
    assert client.run(*drain).returncode == 0
    admin = SandboxAdmin(portal.base_url, portal.admin_token)
    try:
        journal = admin.journal(FACILITY)
    finally:
        admin.close()
    # one login, its token reused for both files; the later starts had nothing to send
    assert [(e["operation"], e["outcome"]) for e in journal] == [("token", "200"), ("submit", "200"), ("submit", "200")]
    status = client.run("status", "--state-dir", str(state)).stdout.decode()
    assert status.count("\tsent HS_") == 2, status


@pytest.mark.parametrize("name", ["dotnet", "java"])
def test_invalid_order_is_refused_with_a_reason(name: str, clients: dict[str, Client], tmp_path: Path) -> None:
    order = json.loads(_order("gcs_normal", "bad-1", datetime.now(UTC)))
    order["data"]["NOT_A_FIELD"] = "x"
    run = clients[name].run("order", "--state-dir", str(tmp_path), stdin=json.dumps(order).encode())
    assert run.returncode == 2
    assert "NOT_A_FIELD" in run.stderr.decode()
    assert not list((tmp_path / "orders").glob("*.order.json"))


@pytest.mark.parametrize("name", ["dotnet", "java"])
def test_the_optional_portal_object_is_taken(name: str, clients: dict[str, Client], tmp_path: Path) -> None:
    """`conformance run --order-portal` adds `portal` (trigger.schema.json): each client takes such an order."""
    order = json.loads(_order("gcs_normal", "portal-1", datetime.now(UTC)))
    order["portal"] = {"base_url": "http://127.0.0.1:8080", "clock_rate": 600, "sandbox_time": order["issued_at"]}
    run = clients[name].run("order", "--state-dir", str(tmp_path), stdin=json.dumps(order).encode())
    assert run.returncode == 0, run.stderr.decode()


# --- XMLDSig interop: every signer against every other verifier -------------------------------------------

SIGNERS = ("python", "xmlsec1", "dotnet", "java")
VERIFIERS = ("portal", "xmlsec1", "dotnet", "java")
SIGNED_AT = datetime.now(UTC).replace(microsecond=0)


def _xmlsec_template(unsigned: bytes, data_id: str, signing_time: datetime, subject: str) -> bytes:
    """The profile's empty Signature for `xmlsec1 --sign`, which fills X509Certificate but not
    X509SubjectName (the JDK's unmarshaller fails on an empty one, so the template carries it)."""
    sig_id = f"CHUKYDONVI-{data_id}"
    local = signing_time.astimezone(VN_TZ).strftime("%Y-%m-%dT%H:%M:%S")
    digest = '<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/>'
    signature = (
        f'<Signature xmlns="{DS_NS}" Id="{sig_id}"><SignedInfo><CanonicalizationMethod Algorithm="{C14N_10}"/>'
        '<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        f'<Reference URI="#Object-{sig_id}">{digest}</Reference><Reference URI="#{data_id}">{digest}</Reference>'
        f"</SignedInfo><SignatureValue/><KeyInfo><X509Data><X509SubjectName>{escape(subject)}</X509SubjectName>"
        "<X509Certificate/></X509Data></KeyInfo>"
        f'<Object Id="Object-{sig_id}"><SignatureProperties xmlns=""><SignatureProperty Target="#{sig_id}" '
        f'Id="SignatureProperty-{sig_id}"><SigningTime>{local}</SigningTime></SignatureProperty>'
        "</SignatureProperties></Object></Signature>"
    )
    return unsigned.replace(b"<CHUKYDONVI/>", f"<CHUKYDONVI>{signature}</CHUKYDONVI>".encode())


def _sign(signer: str, clients: dict[str, Client], pki: dict[str, Path], order: bytes, out: Path) -> bytes:
    key, certs = pki[f"{FACILITY}.key.pem"], pki[f"{FACILITY}.cert.pem"]
    if signer in clients:
        args = ["sign", "--p12", str(pki[f"{FACILITY}.p12"]), "--p12-password", P12_PASSWORD]
        if signer == "dotnet":  # Mono reads only the keyed certificate from a .p12: the chain comes as PEM
            args += ["--chain", str(certs)]
        run = clients[signer].run(*args, stdin=order)
        assert run.returncode == 0, run.stderr
        return run.stdout
    parsed = json.loads(order)
    doc_type = DocumentType[parsed["type"]]
    unsigned = build_xml(doc_type, parsed["data"], data_id="Id-interop")
    signing_time = datetime.fromisoformat(parsed["issued_at"])
    if signer == "python":
        cred = load_credential(key, certs)
        return sign_document(unsigned, cred.key, cred.cert, signing_time=signing_time, chain=cred.chain)
    cert_files = _split_pem(certs, out)
    subject = x509.load_pem_x509_certificate(cert_files[0].read_bytes()).subject.rfc4514_string()
    (out / "template.xml").write_bytes(_xmlsec_template(unsigned, "Id-interop", signing_time, subject))
    run = subprocess.run(  # noqa: S603
        [
            "xmlsec1", "--sign", "--privkey-pem", ",".join(map(str, [key, *cert_files])),
            "--id-attr:Id", doc_type.data_tag, "--id-attr:Id", "Object",
            "--output", str(out / "xmlsec1.xml"), str(out / "template.xml"),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return (out / "xmlsec1.xml").read_bytes()


def _split_pem(bundle: Path, out: Path) -> list[Path]:
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", bundle.read_bytes(), re.S)
    paths = [out / f"cert{i}.pem" for i in range(len(blocks))]
    for path, block in zip(paths, blocks, strict=True):
        path.write_bytes(block)
    return paths


def _verify(verifier: str, clients: dict[str, Client], pki: dict[str, Path], path: Path) -> tuple[bool, str]:
    """Whether `verifier` accepts the signature of the file at `path`, and what it said."""
    if verifier in clients:
        run = clients[verifier].run("verify", str(path))
        return run.returncode == 0, (run.stdout + run.stderr).decode(errors="replace")
    if verifier == "portal":
        trust = trust_from_files([pki["ca.pem"]], [pki["crl.pem"]])
        verdict = check_file(path, facility_code=FACILITY, trust=trust).verdict
        return verdict.result is SubmitResult.OK, "; ".join(f.code for f in verdict.findings)
    data_tag = "GIAYCHUNGSINH" if b"<HSDLGCS" in path.read_bytes()[:200] else "GIAYBAOTU"
    run = subprocess.run(  # noqa: S603
        [
            "xmlsec1", "--verify", "--trusted-pem", str(pki["ca.pem"]),
            "--untrusted-pem", str(pki[f"{FACILITY}.cert.pem"]),
            "--id-attr:Id", data_tag, "--id-attr:Id", "Object", str(path),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="session")
def signed_files(
    clients: dict[str, Client], any_pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """One birth certificate signed by each signer (SigningTime = issue = a minute ago), plus a tampered copy."""
    out = tmp_path_factory.mktemp("signed")
    order = _order("gcs_normal", "interop-1", SIGNED_AT.replace(second=0).astimezone(VN_TZ))
    files = {}
    for signer in SIGNERS:
        files[signer] = out / f"{signer}.xml"
        files[signer].write_bytes(_sign(signer, clients, any_pki, order, out))
    files["tampered"] = out / "tampered.xml"
    files["tampered"].write_bytes(tamper_field(files["python"].read_bytes(), "HOTEN_NND", "GIẢ MẠO"))
    return files


@pytest.mark.parametrize(
    ("signer", "verifier"), [(s, v) for s in SIGNERS for v in VERIFIERS if s != v and {s, v} != {"python", "portal"}]
)
def test_signature_verifies_across_implementations(
    signer: str, verifier: str, clients: dict[str, Client], any_pki: dict[str, Path], signed_files: dict[str, Path]
) -> None:
    ok, said = _verify(verifier, clients, any_pki, signed_files[signer])
    assert ok, f"{verifier} rejects what {signer} signed: {said}"


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_tampered_file_fails_in_every_verifier(
    verifier: str, clients: dict[str, Client], any_pki: dict[str, Path], signed_files: dict[str, Path]
) -> None:
    ok, said = _verify(verifier, clients, any_pki, signed_files["tampered"])
    assert not ok, f"{verifier} accepted a file changed after signing: {said}"
