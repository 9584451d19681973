"""The PKCS#12 key store the C# and Java clients sign with (fixtures.keystore)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from fixtures.keystore import main, write_keystore_pki


@pytest.mark.parametrize("intermediate", [False, True], ids=["root-only", "with-intermediate"])
def test_p12_holds_the_key_the_certificate_and_the_intermediates(tmp_path: Path, intermediate: bool) -> None:
    files = write_keystore_pki(tmp_path, "79002", "s3cret", intermediate=intermediate)
    key, cert, extra = pkcs12.load_key_and_certificates(files["79002.p12"].read_bytes(), b"s3cret")
    pem_chain = x509.load_pem_x509_certificates(files["79002.cert.pem"].read_bytes())
    assert key is not None and cert == pem_chain[0]
    assert extra == pem_chain[1:]  # the intermediate (if any), never the root
    assert len(extra) == int(intermediate)
    root = x509.load_pem_x509_certificate(files["ca.pem"].read_bytes())
    assert (extra[-1] if extra else cert).issuer == root.subject
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(files["79002.p12"].read_bytes(), b"wrong")


def test_cli_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dir", str(tmp_path), "--facility", "01002", "--password", "pw"]) == 0
    written = {Path(line).name for line in capsys.readouterr().out.split()}
    assert written == {"ca.pem", "crl.pem", "01002.key.pem", "01002.cert.pem", "01002.p12"}
