"""Sandbox control-plane operations: facilities, accounts, certificates, trust material, reset.

Pure domain over the repository; errors are `PortalError`s that the HTTP layer renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from mock_portal import store
from mock_portal.portal import workspaces
from mock_portal.portal.auth import hash_password_md5
from mock_portal.portal.service import Portal
from mock_portal.results.codes import md5_upper
from mock_portal.results.errors import Conflict, InvalidInput, NotFound
from mock_portal.results.findings import Finding, Severity
from mock_portal.results.grades import Strictness

FACILITY_CODE = re.compile(r"[0-9]{5}")
USERNAME_SUFFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,57}")
"""What follows `<MA_CSKCB>_` in an account name: the portal reads the facility from the prefix, so an
account named otherwise (`../..`, a NUL byte, another facility's code) could never log in."""


T = TypeVar("T")


@dataclass(frozen=True)
class NewFacility:
    code: str
    name: str
    username: str
    password: str


def create_facility(portal: Portal, new: NewFacility) -> store.Facility:
    if not FACILITY_CODE.fullmatch(new.code):  # `$` would let a trailing newline through
        raise InvalidInput(
            "FACILITY_CODE_INVALID",
            "Mã cơ sở KCB phải gồm 5 chữ số",
            "A facility code (MA_CSKCB) is 5 digits, the first two being the province",
        )
    if not new.username or not new.password:
        raise InvalidInput("ACCOUNT_INVALID", "Cần tên đăng nhập và mật khẩu", "username and password are required")
    prefix, _, suffix = new.username.partition("_")
    if prefix != new.code or not USERNAME_SUFFIX.fullmatch(suffix):
        raise InvalidInput(
            "ACCOUNT_USERNAME_INVALID",
            f"Tên đăng nhập phải có dạng {new.code}_<tên> (chữ, số, . _ -), ví dụ {new.code}_BV",
            f"The username must be {new.code}_<name> (letters, digits, . _ -), e.g. {new.code}_BV: the portal "
            "reads the facility from the prefix",
        )
    workspaces.check_facility_quota(portal)
    facility = store.Facility(code=new.code, name=new.name, created_at=portal.clock.now())
    account = store.Account(
        username=new.username, facility_code=new.code, password_hash=hash_password_md5(md5_upper(new.password))
    )
    try:
        portal.repo.add_facility(facility, account)
    except store.repository.AlreadyExists as exc:
        raise Conflict(
            "FACILITY_EXISTS",
            f"Cơ sở {new.code} hoặc tài khoản {new.username} đã tồn tại",
            f"Facility {new.code} or account {new.username} already exists",
        ) from exc
    return facility


def require_facility(portal: Portal, code: str) -> store.Facility:
    facility = portal.repo.get_facility(code)
    if facility is None:
        raise NotFound("FACILITY_NOT_FOUND", f"Không có cơ sở {code}", f"No facility {code}")
    return facility


def load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InvalidInput(
            "CERTIFICATE_INVALID",
            "Không đọc được chứng thư số (cần PEM)",
            f"Not a PEM X.509 certificate: {exc}",
        ) from exc


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class Registered(Generic[T]):
    """What registering trust material stored, and what the sandbox warns about it (registered all the same)."""

    row: T
    warnings: tuple[Finding, ...]


def validity_warnings(cert: x509.Certificate, now: datetime) -> tuple[Finding, ...]:
    """CERT_NOT_VALID_NOW when the certificate is outside its validity at `now`, the workspace's sandbox
    instant of the registration (not the wall clock: a rehearsal may run months ahead).

    Registration still succeeds: nothing shows the real portal's "Danh mục chứng thư số" refuses such a
    certificate, and each document signed with it is judged at its own SigningTime and receipt. The
    warning saves a vendor from learning it only from refused documents."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if start <= now <= end:
        return ()
    period = f"{start.isoformat()} .. {end.isoformat()}"
    if now > end:
        vi, en = f"đã hết hạn lúc {end.isoformat()}", f"expired at {end.isoformat()}"
    else:
        vi, en = f"chưa có hiệu lực (từ {start.isoformat()})", f"is not valid yet (from {start.isoformat()})"
    return (
        Finding(
            "CERT_NOT_VALID_NOW",
            Severity.WARNING,
            f"Đã đăng ký, nhưng chứng thư số {vi} theo đồng hồ sandbox ({now.isoformat()}): tài liệu có nó trong"
            " chuỗi chứng thư sẽ bị từ chối nếu nó không còn hiệu lực lúc ký hoặc lúc tiếp nhận.",
            f"Registered, but the certificate {en} on the sandbox clock ({now.isoformat()}): documents whose"
            " chain holds it are refused unless it is valid at their SigningTime and at receipt.",
            expected=period,
            received=now.isoformat(),
        ),
    )


def register_certificate(portal: Portal, facility_code: str, pem: bytes) -> Registered[store.RegisteredCertificate]:
    require_facility(portal, facility_code)
    cert, now = load_certificate(pem), portal.clock.now()
    row = store.RegisteredCertificate(
        facility_code=facility_code,
        fingerprint=fingerprint(cert),
        subject=cert.subject.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        pem=pem.decode("ascii", "replace"),
        registered_at=now,
    )
    try:
        return Registered(portal.repo.register_certificate(row), validity_warnings(cert, now))
    except store.repository.AlreadyExists as exc:
        raise Conflict(
            "CERTIFICATE_EXISTS",
            "Chứng thư số đã được đăng ký cho cơ sở này",
            "This certificate is already registered for the facility",
        ) from exc


def unregister_certificate(portal: Portal, facility_code: str, fp: str) -> None:
    require_facility(portal, facility_code)
    try:
        portal.repo.unregister_certificate(facility_code, fp.lower())
    except store.repository.RowNotFound as exc:
        raise NotFound(
            "CERTIFICATE_NOT_FOUND",
            "Cơ sở không đăng ký chứng thư số này",
            f"No certificate with SHA-256 fingerprint {fp} is registered for {facility_code}",
        ) from exc


def add_ca(portal: Portal, pem: bytes) -> Registered[store.CertificateAuthority]:
    cert = load_certificate(pem)
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise InvalidInput(
            "CA_NOT_A_CA",
            "Chứng thư số này không phải của CA (BasicConstraints ca=true)",
            "This certificate is not a CA certificate (BasicConstraints ca=true is required)",
        )
    now = portal.clock.now()
    row = store.CertificateAuthority(
        fingerprint=fingerprint(cert),
        subject=cert.subject.rfc4514_string(),
        pem=pem.decode("ascii", "replace"),
        added_at=now,
    )
    try:
        return Registered(portal.repo.add_ca(row), validity_warnings(cert, now))
    except store.repository.AlreadyExists as exc:
        raise Conflict("CA_EXISTS", "CA đã có trong kho tin cậy", "This CA is already trusted") from exc


def add_crl(portal: Portal, data: bytes) -> store.RevocationList:
    try:
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise InvalidInput(
            "CRL_INVALID", "Không đọc được CRL (PEM hoặc DER)", f"Not a CRL in PEM or DER: {exc}"
        ) from exc
    row = store.RevocationList(
        issuer=crl.issuer.rfc4514_string(),
        der=crl.public_bytes(Encoding.DER),
        revoked_count=len(crl),
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        added_at=portal.clock.now(),
    )
    return portal.repo.add_crl(row)


def set_locked(portal: Portal, facility_code: str, locked: bool) -> None:
    require_facility(portal, facility_code)
    portal.repo.set_account_locked(facility_code, locked)


def set_strictness(portal: Portal, facility_code: str, strictness: str | None) -> None:
    """Give a facility its own strictness (None: follow PORTAL_STRICTNESS)."""
    require_facility(portal, facility_code)
    portal.repo.set_facility_strictness(facility_code, Strictness.parse(strictness).value if strictness else None)
