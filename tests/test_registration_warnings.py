"""Issue 25: the portal's warnings about registered trust material (`CERT_NOT_VALID_NOW` in a 201 reply)
reach the vendor through the tools: a conformance run's notes, the load kit's log."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from conformance.harness import FacilityUnderTest, Provisioning, provision
from conformance.portal import SandboxAdmin
from fixtures.pki import TestPKI, cert_pem
from load import portal_io
from tests.conftest import new_facility_code
from tests.live import LiveServer


def test_a_conformance_run_notes_an_expired_certificate_it_registers(server: LiveServer, pki: TestPKI) -> None:
    code = new_facility_code()
    expired = pki.issue_facility_cert(code, "expired").cert
    material = Provisioning(ca_pems=(cert_pem(pki.root.cert),), certificates={code: cert_pem(expired)})
    admin = SandboxAdmin(server.base_url, server.admin_token)
    try:
        notes = provision(admin, [FacilityUnderTest(code, f"{code}_BV", "pw")], material)
    finally:
        admin.close()
    [note] = notes
    assert note.startswith(f"the certificate of facility {code}: CERT_NOT_VALID_NOW: ") and "expired at" in note, note


def test_the_load_kit_logs_a_warning_for_material_not_valid_on_the_sandbox_clock(
    server: LiveServer, pki: TestPKI, caplog: pytest.LogCaptureFixture
) -> None:
    """The kit's certificates are fresh, but a sandbox clock moved years ahead makes them expired."""
    operator = SandboxAdmin(server.base_url, server.admin_token)
    workspace, key = operator.create_workspace(f"i25-warn-{new_facility_code()}")
    admin = SandboxAdmin(server.base_url, key)
    try:
        admin.set_clock(now=(pki.now + timedelta(days=4000)).isoformat(), rate=0)
        code = new_facility_code()
        with caplog.at_level(logging.WARNING, logger="load"):
            portal_io.provision(admin, [code], account=workspace, workspace_key=key)
    finally:
        admin.close()
        operator.delete_workspace(workspace)
        operator.close()
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("the load kit's CA: CERT_NOT_VALID_NOW: ") for m in said), said
    assert any(m.startswith(f"the certificate of facility {code}: CERT_NOT_VALID_NOW: ") for m in said), said
