"""TrustStore: chain, validity, CRL, key usage and registration answered separately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fixtures.pki import CertVariant, Credential, TestPKI, _build, _name, cert_pem
from mock_portal.signature.trust import (
    RevocationStatus,
    TrustError,
    TrustStore,
    fingerprint,
    load_certificates,
    load_crl,
)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create(intermediate=True)


def _store(pki: TestPKI, **kwargs: object) -> TrustStore:
    return TrustStore(cas=pki.ca_certs, crls=(pki.crl(),), **kwargs)  # type: ignore[arg-type]


def test_chain_through_intermediate(pki: TestPKI) -> None:
    cred = pki.issue_facility_cert("79001")
    result = _store(pki).build_chain(cred.cert, cred.chain)
    assert result.ok and result.chain == (cred.cert, pki.intermediate.cert, pki.root.cert)  # type: ignore[union-attr]
    assert not _store(pki).build_chain(cred.cert).ok  # intermediate missing


@pytest.mark.parametrize("variant", [CertVariant.EXPIRED, CertVariant.NOT_YET_VALID, CertVariant.WRONG_KEY_USAGE])
def test_chain_is_judged_apart_from_validity_and_usage(pki: TestPKI, variant: CertVariant) -> None:
    cred = pki.issue_facility_cert("79001", variant)
    assert _store(pki).build_chain(cred.cert, cred.chain).ok


def test_chain_is_found_at_no_instant(pki: TestPKI) -> None:
    """A 2024 certificate still chains to its CA's certificate renewed in 2025 (same name, same key):
    judged at one instant, as `cryptography`'s verifier does, the path would not exist (issue 23)."""
    renewed = pki.renewed_root(datetime(2025, 3, 1, tzinfo=UTC))
    old = pki.issue_facility_cert(
        "79001", not_before=datetime(2024, 1, 1, tzinfo=UTC), not_after=datetime(2025, 1, 1, tzinfo=UTC)
    )
    found = TrustStore(cas=(renewed,)).build_chain(old.cert, old.chain)
    assert found.ok and found.chain == (old.cert, pki.intermediate.cert, renewed)  # type: ignore[union-attr]


def test_a_ca_named_like_the_trusted_one_with_another_key_issues_nothing(pki: TestPKI) -> None:
    impostor = Credential(pki.untrusted_root.key, pki.root.cert)  # signs under the trusted root's name
    cert = _build(_name("x", "x"), pki.untrusted_root.key.public_key(), impostor, pki.now, pki.now, 7, ca=False)
    refused = _store(pki).build_chain(cert)
    assert not refused.ok and "VN Sandbox Test Root CA" in refused.reason


def test_untrusted_ca_and_empty_store(pki: TestPKI) -> None:
    cred = pki.issue_facility_cert("79001", CertVariant.UNTRUSTED_CA)
    assert not _store(pki).build_chain(cred.cert).ok
    empty = TrustStore().build_chain(cred.cert)
    assert not empty.ok and empty.reason == "no CA configured"


def test_validity_at(pki: TestPKI) -> None:
    cert = pki.issue_facility_cert("79001").cert
    assert TrustStore.validity_at(cert, pki.now) is None
    assert TrustStore.validity_at(cert, cert.not_valid_after_utc + timedelta(seconds=1)) == "EXPIRED"
    assert TrustStore.validity_at(cert, cert.not_valid_before_utc - timedelta(seconds=1)) == "NOT_YET_VALID"
    assert TrustStore.validity_at(cert, pki.now.replace(tzinfo=None)) is None  # naive = UTC


def test_revocation(pki: TestPKI) -> None:
    good = pki.issue_facility_cert("79001")
    revoked = pki.issue_facility_cert("79001", CertVariant.REVOKED)
    issuer = pki.intermediate.cert  # type: ignore[union-attr]
    store = _store(pki)
    assert store.revocation(good.cert, issuer).status is RevocationStatus.GOOD
    result = store.revocation(revoked.cert, issuer)
    assert result.status is RevocationStatus.REVOKED and result.revoked_at == pki.now - timedelta(days=1)
    assert TrustStore(cas=pki.ca_certs).revocation(revoked.cert, issuer).status is RevocationStatus.UNKNOWN


def test_crl_not_signed_by_the_issuer_is_ignored(pki: TestPKI) -> None:
    revoked = pki.issue_facility_cert("79001", CertVariant.REVOKED)
    forged = pki.crl(issuer=pki.untrusted_root)  # wrong issuer name and key
    store = TrustStore(cas=pki.ca_certs, crls=(forged,))
    assert store.revocation(revoked.cert, pki.intermediate.cert).status is RevocationStatus.UNKNOWN  # type: ignore[union-attr]


def test_key_usage(pki: TestPKI) -> None:
    assert TrustStore.key_usage_ok(pki.issue_facility_cert("79001").cert)
    assert not TrustStore.key_usage_ok(pki.issue_facility_cert("79001", CertVariant.WRONG_KEY_USAGE).cert)


def test_registration_is_per_facility(pki: TestPKI) -> None:
    cert = pki.issue_facility_cert("79001").cert
    store = TrustStore(registrations={"79002": frozenset({fingerprint(cert).upper()})})
    assert store.is_registered(cert, "79002")
    assert not store.is_registered(cert, "79001")
    assert store.facilities_of(cert) == ("79002",)


def test_store_is_immutable(pki: TestPKI) -> None:
    store = TrustStore(cas=list(pki.ca_certs), registrations={"79001": frozenset()})  # type: ignore[arg-type]
    assert isinstance(store.cas, tuple)
    with pytest.raises(TypeError):
        store.registrations["79002"] = frozenset()  # type: ignore[index]


def test_loaders(pki: TestPKI) -> None:
    both = cert_pem(pki.root.cert, pki.intermediate.cert)  # type: ignore[union-attr]
    assert len(load_certificates(both)) == 2
    with pytest.raises(TrustError):
        load_certificates(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(TrustError):
        load_certificates(b"\x30\x03garbage")
    with pytest.raises(TrustError):
        load_crl(b"not a crl")


def test_a_store_pickled_for_another_process_judges_the_same(pki: TestPKI) -> None:
    """The shadow proxy's judging process gets the store pickled (as DER: cryptography's objects do not
    pickle): same chain, same revocation, same registrations."""
    import pickle

    good, revoked = pki.issue_facility_cert("79001"), pki.issue_facility_cert("79002", CertVariant.REVOKED)
    store = _store(pki, registrations={"79001": {fingerprint(good.cert).upper()}})
    copy = pickle.loads(pickle.dumps(store))
    assert copy is not store and copy.cas == store.cas and copy.crls == store.crls
    assert copy.registrations == store.registrations == {"79001": frozenset({fingerprint(good.cert)})}
    assert copy.build_chain(good.cert, good.chain).chain == store.build_chain(good.cert, good.chain).chain
    [crl] = copy.crls
    assert crl.get_revoked_certificate_by_serial_number(revoked.cert.serial_number) is not None
