"""The contract is usable, not only valid: a client generated from the served `/openapi.json` by
`openapi-python-client` (into a temp dir at test time, never committed) walks a hospital's whole path
against the live portal — facility, token, a signed document sent, then the submission, the document,
the journal and the certificate IPSS holds — parsing every reply with the models it generated.

The PEM uploads are the one part done with plain httpx: openapi-python-client serialises request bodies
only as JSON, forms, multipart or binary, and the contract's PEM bodies are text (`text/plain`; the portal
reads `application/x-pem-file` as it), as the portal's users send them.
"""

from __future__ import annotations

import base64
import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from fixtures.hospital.wire import LOAI_HS
from fixtures.pki import TestPKI, cert_pem
from fixtures.samples import signed_sample
from mock_portal.documents import DocumentType
from mock_portal.portal.auth import md5_upper
from tests.conftest import PEM, new_facility_code
from tests.live import IPSS_KEY, LiveServer

PACKAGE = "portal_client"


@pytest.fixture(scope="module")
def generated(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package, generated from the served contract as a vendor would generate it."""
    out = tmp_path_factory.mktemp("generated")
    config = out / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: the code is used, not read
    command = [
        str(Path(sys.executable).with_name("openapi-python-client")),
        "generate",
        "--url",
        f"{server.base_url}/openapi.json",
        "--meta",
        "none",
        "--output-path",
        str(out / PACKAGE),
        "--config",
        str(config),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _wait(call: Any, timeout: float = 15.0) -> Any:
    """The first reply of `call` that is not a Problem (IPSS shares asynchronously)."""
    problem = _module("models").Problem
    deadline = time.monotonic() + timeout
    while isinstance(found := call(), problem) or found is None:
        assert time.monotonic() < deadline, f"still {found}"
        time.sleep(0.2)
    return found


def test_generated_client_walks_a_hospital_through(
    generated: ModuleType, server: LiveServer, admin: httpx.Client, trusted: TestPKI
) -> None:
    models = _module("models")
    sandbox = {
        name: _module(f"api.sandbox.{name}")
        for name in ("create_facility", "get_submission", "get_document", "list_journal", "get_facility")
    }
    wire = {name: _module(f"api.wire.{name}") for name in ("take_token", "send_document")}
    ipss = _module("api.ipss.get_birth_certificate")
    admin_client = generated.AuthenticatedClient(base_url=server.base_url, token=server.admin_token)
    wire_client = generated.Client(base_url=server.base_url)
    ipss_client = generated.AuthenticatedClient(
        base_url=server.base_url, token=IPSS_KEY, prefix="", auth_header_name="X-API-Key"
    )

    # a facility and its account
    code = new_facility_code()
    username, password = f"{code}_BV", f"Mk@{code}"
    facility = sandbox["create_facility"].sync(
        client=admin_client,
        body=models.NewFacility(code=code, name=f"Bệnh viện {code}", username=username, password=password),
    )
    assert isinstance(facility, models.Facility) and facility.code == code, facility
    credential = trusted.issue_facility_cert(code, "valid")
    registered = admin.post(f"/sandbox/facilities/{code}/certificates", content=cert_pem(credential.cert), headers=PEM)
    assert registered.status_code == 201, registered.text
    found = sandbox["get_facility"].sync(code, client=admin_client)
    assert [c.fingerprint for c in found.certificates] == [credential.fingerprint]

    # a token, as a form
    token = wire["take_token"].sync(
        client=wire_client, body=models.TokenForm(username=username, password=md5_upper(password))
    )
    assert isinstance(token, models.TokenReply) and token.ma_ket_qua == "200", token
    # a signed birth certificate
    xml = signed_sample(DocumentType.GCS, credential, facility_code=code, serial=1)
    sent = wire["send_document"].sync_detailed(
        client=wire_client,
        body=models.SubmitForm(
            ma_cskcb=code,
            token=token.api_key.access_token,
            id_token=token.api_key.id_token,
            username=username,
            password=md5_upper(password),
            loai_hs=LOAI_HS["GCS"],
            file_base_64_str=base64.b64encode(xml).decode("ascii"),
        ),
    )
    assert sent.status_code == 200 and sent.parsed.ma_ket_qua == "200", sent.headers.get("x-sandbox-explain")
    submission_id = int(sent.headers["x-sandbox-submission"])

    # what the portal kept: the submission, the document, the journal, and what IPSS holds
    submission = sandbox["get_submission"].sync(submission_id, client=admin_client)
    assert isinstance(submission, models.Submission) and submission.result == "200", submission
    assert submission.findings is not None and submission.document.facility == code
    documents = sandbox["get_document"].sync(submission.document_code, client=admin_client)
    assert [d.ma_gd for d in documents] == [sent.parsed.ma_gd] and documents[0].first_issue
    journal = sandbox["list_journal"].sync(client=admin_client, facility=code)
    assert [(e.operation.value, e.outcome) for e in journal] == [("submit", "200"), ("token", "200")]
    assert journal[0].submission_id == submission_id
    shared = _wait(lambda: ipss.sync(submission.document_code, client=ipss_client))
    assert isinstance(shared, models.IpssCertificate), shared
    assert shared.latest.ma_gd == sent.parsed.ma_gd and shared.latest.fields["MA_GCS"] == submission.document_code
