"""Certificate checks of the signature profile, each a named `CheckResult` (docs/signature-profile.md, "Trust").

Why separate checks instead of one chain verdict: a hospital needs to hear "your certificate expired
on 12/03" or "registered for 79002, not for 79001", not "untrusted". `TrustStore` finds the path to a
trusted CA without judging any instant; this module then judges validity, revocation, key usage and
registration on that path, each a bilingual check with an ETSI sub-indication. A check that cannot
run names the check that stopped it (`stopped_by`).

The signer's SigningTime is a claim: it can convict (signed after expiry, before validity, after
revocation: TOTAL_FAILED) but never acquit — a certificate valid at SigningTime but not at receipt is
INDETERMINATE `OUT_OF_BOUNDS_NO_POE`, one revoked after SigningTime `REVOKED_NO_POE` (no proof of
existence before), as in ETSI EN 319 102-1.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from mock_portal.signature.checks import check, passed, skipped, stopped_by
from mock_portal.signature.model import CheckName, CheckOutcome, CheckResult, SignaturePolicy, SubIndication
from mock_portal.signature.trust import ChainResult, RevocationStatus, TrustStore

__all__ = ["trust_checks"]


def trust_checks(
    leaf: x509.Certificate,
    intermediates: tuple[x509.Certificate, ...],
    trust: TrustStore,
    facility_code: str,
    signing: CheckResult,
    signing_time: datetime | None,
    received_at: datetime,
    policy: SignaturePolicy,
) -> list[CheckResult]:
    """The certificate checks in cause order (`CheckName`). `signing` is the SigningTime check: validity
    at SigningTime is judged only on a SigningTime it passed."""
    chain = trust.build_chain(leaf, intermediates)
    path = chain.chain if chain.ok else (leaf,)
    trusted_signing_time = signing_time if signing.outcome is CheckOutcome.PASSED else None
    return [
        _chain_check(chain),
        _at_signing_time(path, signing, trusted_signing_time),
        _validity(path, received_at, CheckName.VALID_AT_RECEIPT),
        _revocation(trust, path, trusted_signing_time, policy)
        if chain.ok
        else stopped_by(
            CheckName.NOT_REVOKED,
            CheckName.CHAIN_TRUSTED,
            "đã chặn việc dựng chuỗi: không có CA phát hành tin cậy để tra CRL",
            "stopped the chain: no trusted issuer to look up a CRL for",
        ),
        _key_usage(trust, leaf),
        _registration(trust, leaf, facility_code),
    ]


def _chain_check(chain: ChainResult) -> CheckResult:
    if chain.ok:
        return passed(
            CheckName.CHAIN_TRUSTED,
            "Chứng thư số được cấp bởi CA tin cậy.",
            "The certificate chains to a configured CA.",
            " <- ".join(c.subject.rfc4514_string() for c in chain.chain),
        )
    return check(
        CheckName.CHAIN_TRUSTED,
        CheckOutcome.INDETERMINATE,
        "Chứng thư số không được cấp bởi tổ chức chứng thực (CA) mà cổng tin cậy.",
        "The certificate does not chain to a CA the portal trusts.",
        chain.reason,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )


def _at_signing_time(
    path: tuple[x509.Certificate, ...], signing: CheckResult, signing_time: datetime | None
) -> CheckResult:
    name = CheckName.VALID_AT_SIGNING_TIME
    if signing_time is not None:
        return _validity(path, signing_time, name)
    if signing.outcome in (CheckOutcome.FAILED, CheckOutcome.INDETERMINATE):
        return stopped_by(
            name,
            CheckName.SIGNING_TIME_VALID,
            "nên không có SigningTime đáng tin để kiểm tra",
            "left no SigningTime to judge the certificate at",
        )
    return skipped(name, "không có SigningTime đã xác minh", "no verified SigningTime")


_WHEN = {
    CheckName.VALID_AT_SIGNING_TIME: ("lúc ký", "at SigningTime"),
    CheckName.VALID_AT_RECEIPT: ("lúc tiếp nhận", "at receipt"),
}


def _validity(path: tuple[x509.Certificate, ...], at: datetime, name: CheckName) -> CheckResult:
    """The first certificate of the path (leaf first) outside its validity at `at`, named."""
    when_vi, when_en = _WHEN[name]
    for position, cert in enumerate(path):
        state = TrustStore.validity_at(cert, at)
        if state is None:
            continue
        period = f"{cert.not_valid_before_utc.isoformat()} .. {cert.not_valid_after_utc.isoformat()}"
        who_vi, who_en = ("Chứng thư số", "The certificate") if position == 0 else _ca(cert)
        expired = state == "EXPIRED"
        if name is CheckName.VALID_AT_RECEIPT:
            sub = SubIndication.OUT_OF_BOUNDS_NO_POE
        else:
            sub = SubIndication.EXPIRED if expired else SubIndication.NOT_YET_VALID
        edge = cert.not_valid_after_utc if expired else cert.not_valid_before_utc
        state_vi = f"đã hết hạn từ {edge.isoformat()}" if expired else f"chưa có hiệu lực (từ {edge.isoformat()})"
        state_en = f"had expired on {edge.isoformat()}" if expired else f"was not yet valid (from {edge.isoformat()})"
        return check(
            name,
            CheckOutcome.FAILED,
            f"{who_vi} {state_vi} {when_vi} ({at.isoformat()}).",
            f"{who_en} {state_en} {when_en} ({at.isoformat()}).",
            period,
            sub,
        )
    return passed(
        name,
        f"Chứng thư số còn hiệu lực {when_vi}.",
        f"The certificate is valid {when_en}.",
        f"{path[0].not_valid_before_utc.isoformat()} .. {path[0].not_valid_after_utc.isoformat()}",
    )


def _ca(cert: x509.Certificate) -> tuple[str, str]:
    subject = cert.subject.rfc4514_string()
    return f"Chứng thư số của CA {subject} trong chuỗi", f"The CA certificate {subject} in the chain"


def _revocation(
    trust: TrustStore, path: tuple[x509.Certificate, ...], signing_time: datetime | None, policy: SignaturePolicy
) -> CheckResult:
    name = CheckName.NOT_REVOKED
    status = trust.revocation(path[0], path[1])
    if status.status is RevocationStatus.GOOD:
        return passed(name, "Chứng thư số không bị thu hồi (CRL).", "The certificate is not revoked (CRL).")
    if status.status is RevocationStatus.REVOKED:
        return _revoked(status.revoked_at, signing_time)
    if policy.require_crl:
        return check(
            name,
            CheckOutcome.INDETERMINATE,
            "Không có CRL của CA phát hành để kiểm tra thu hồi.",
            "No CRL from the issuing CA: revocation status unknown.",
            status.reason,
            SubIndication.TRY_LATER,
        )
    return skipped(
        name,
        f"không rõ tình trạng thu hồi ({status.reason}); chính sách không bắt buộc CRL",
        f"revocation status unknown ({status.reason}); the policy does not require a CRL",
    )


def _revoked(revoked_at: datetime | None, signing_time: datetime | None) -> CheckResult:
    when = revoked_at.isoformat() if revoked_at else "?"
    if revoked_at is None or signing_time is None or signing_time >= revoked_at:
        claimed_vi = f", trước SigningTime {signing_time.isoformat()}" if signing_time else ""
        claimed_en = f", before its SigningTime {signing_time.isoformat()}" if signing_time else ""
        sub = SubIndication.REVOKED
    else:
        claimed_vi = f", sau SigningTime {signing_time.isoformat()} nhưng không có bằng chứng đã ký trước đó"
        claimed_en = f", after the SigningTime {signing_time.isoformat()} it claims, with no proof it was signed before"
        sub = SubIndication.REVOKED_NO_POE
    return check(
        CheckName.NOT_REVOKED,
        CheckOutcome.FAILED,
        f"Chứng thư số đã bị thu hồi từ {when}{claimed_vi}.",
        f"The certificate was revoked on {when}{claimed_en}.",
        when,
        sub,
    )


def _key_usage(trust: TrustStore, leaf: x509.Certificate) -> CheckResult:
    if trust.key_usage_ok(leaf):
        return passed(CheckName.KEY_USAGE, "Mục đích sử dụng khoá cho phép ký số.", "Key usage allows signing.")
    return check(
        CheckName.KEY_USAGE,
        CheckOutcome.FAILED,
        "Chứng thư số không có mục đích digitalSignature hoặc nonRepudiation.",
        "The certificate's KeyUsage has neither digitalSignature nor nonRepudiation.",
        None,
        SubIndication.CHAIN_CONSTRAINTS_FAILURE,
    )


def _registration(trust: TrustStore, leaf: x509.Certificate, facility_code: str) -> CheckResult:
    name = CheckName.REGISTERED
    if trust.is_registered(leaf, facility_code):
        return passed(
            name,
            f"Chứng thư số đã đăng ký cho cơ sở {facility_code}.",
            f"The certificate is registered for facility {facility_code}.",
        )
    others = trust.facilities_of(leaf)
    detail = f"registered for {', '.join(others)}" if others else "not registered"
    return check(
        name,
        CheckOutcome.FAILED,
        f"Chứng thư số chưa được đăng ký cho cơ sở {facility_code} (Danh mục chứng thư số).",
        f"The certificate is not registered for facility {facility_code} (Digital certificate list); {detail}.",
        detail,
        SubIndication.SIG_CONSTRAINTS_FAILURE,
    )
