"""Certificate checks of the signature profile, each a named `CheckResult` (docs/signature-profile.md, "Trust").

Why separate checks instead of one chain verdict: a hospital needs to hear "your certificate expired
on 12/03" or "registered for 79002, not for 79001", not "untrusted". `TrustStore` answers the
questions; this module turns the answers into bilingual checks with ETSI sub-indications.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from mock_portal.signature.checks import check, passed, skipped
from mock_portal.signature.model import CheckName, CheckResult, Outcome, SignaturePolicy, SubIndication
from mock_portal.signature.trust import RevocationStatus, TrustStore

__all__ = ["trust_checks"]


def trust_checks(
    leaf: x509.Certificate,
    intermediates: tuple[x509.Certificate, ...],
    trust: TrustStore,
    facility_code: str,
    signing_time: datetime | None,
    received_at: datetime,
    policy: SignaturePolicy,
) -> list[CheckResult]:
    chain = trust.build_chain(leaf, intermediates)
    results = [_chain_check(chain.ok, chain.reason)]
    if signing_time is None:
        results.append(
            skipped(CheckName.VALID_AT_SIGNING_TIME, "không có SigningTime đã xác minh", "no verified SigningTime")
        )
    else:
        results.append(_validity(leaf, signing_time, CheckName.VALID_AT_SIGNING_TIME, "lúc ký", "at SigningTime"))
    results.append(_validity(leaf, received_at, CheckName.VALID_AT_RECEIPT, "lúc tiếp nhận", "at receipt"))
    if chain.ok and len(chain.chain) > 1:
        results.append(_revocation(trust, leaf, chain.chain[1], policy))
    else:
        results.append(
            skipped(
                CheckName.NOT_REVOKED,
                "không có CA phát hành tin cậy để tra CRL",
                "no trusted issuer to look up a CRL for",
            )
        )
    results += [_key_usage(trust, leaf), _registration(trust, leaf, facility_code)]
    return results


def _chain_check(ok: bool, reason: str) -> CheckResult:
    if ok:
        return passed(
            CheckName.CHAIN_TRUSTED,
            "Chứng thư số được cấp bởi CA tin cậy.",
            "The certificate chains to a configured CA.",
        )
    return check(
        CheckName.CHAIN_TRUSTED,
        Outcome.INDETERMINATE,
        "Chứng thư số không được cấp bởi tổ chức chứng thực (CA) mà cổng tin cậy.",
        "The certificate does not chain to a CA the portal trusts.",
        reason,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )


def _validity(cert: x509.Certificate, at: datetime, name: CheckName, when_vi: str, when_en: str) -> CheckResult:
    state = TrustStore.validity_at(cert, at)
    period = f"{cert.not_valid_before_utc.isoformat()} .. {cert.not_valid_after_utc.isoformat()}"
    if state is None:
        return passed(name, f"Chứng thư số còn hiệu lực {when_vi}.", f"The certificate is valid {when_en}.", period)
    if state == "EXPIRED":
        return check(
            name,
            Outcome.FAILED,
            f"Chứng thư số đã hết hạn {when_vi} ({at.isoformat()}).",
            f"The certificate had expired {when_en} ({at.isoformat()}).",
            period,
            SubIndication.EXPIRED,
        )
    return check(
        name,
        Outcome.FAILED,
        f"Chứng thư số chưa có hiệu lực {when_vi} ({at.isoformat()}).",
        f"The certificate was not yet valid {when_en} ({at.isoformat()}).",
        period,
        SubIndication.NOT_YET_VALID,
    )


def _revocation(
    trust: TrustStore, leaf: x509.Certificate, issuer: x509.Certificate, policy: SignaturePolicy
) -> CheckResult:
    name = CheckName.NOT_REVOKED
    status = trust.revocation(leaf, issuer)
    if status.status is RevocationStatus.GOOD:
        return passed(name, "Chứng thư số không bị thu hồi (CRL).", "The certificate is not revoked (CRL).")
    if status.status is RevocationStatus.REVOKED:
        when = status.revoked_at.isoformat() if status.revoked_at else "?"
        return check(
            name,
            Outcome.FAILED,
            f"Chứng thư số đã bị thu hồi từ {when}.",
            f"The certificate was revoked on {when}.",
            when,
            SubIndication.REVOKED,
        )
    if policy.require_crl:
        return check(
            name,
            Outcome.INDETERMINATE,
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


def _key_usage(trust: TrustStore, leaf: x509.Certificate) -> CheckResult:
    if trust.key_usage_ok(leaf):
        return passed(CheckName.KEY_USAGE, "Mục đích sử dụng khoá cho phép ký số.", "Key usage allows signing.")
    return check(
        CheckName.KEY_USAGE,
        Outcome.FAILED,
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
        Outcome.FAILED,
        f"Chứng thư số chưa được đăng ký cho cơ sở {facility_code} (Danh mục chứng thư số).",
        f"The certificate is not registered for facility {facility_code} (Digital certificate list); {detail}.",
        detail,
        SubIndication.SIG_CONSTRAINTS_FAILURE,
    )
