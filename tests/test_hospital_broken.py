"""The reference hospital's document bugs (`fixtures.hospital.broken`), offline: each broken variant's
signed file shows the portal its bug, or carries other data than ordered where the portal says nothing.
(`make selftest` proves, live, that the case naming each bug is the first to fail.)"""

from __future__ import annotations

import itertools
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from conformance.offline import check_file
from fixtures.certificates import scenario
from fixtures.hospital import Hospital, HospitalConfig, OrderQueue, Variant, parse_order
from fixtures.pki import TestPKI
from mock_portal.signature.trust import TrustStore

FACILITY = "79001"
_serials = itertools.count(1)


def signed(pki: TestPKI, tmp_path: Path, variant: Variant | None, story: str) -> tuple[bytes, dict[str, str]]:
    """The file the hospital (`variant`) signs for one order of `story`, and the fields ordered."""
    issued_at = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    serial = next(_serials)
    order = parse_order(
        {
            "request_id": f"broken-{serial}",
            "type": "GCS" if story.startswith("gcs") else "GBT",
            "facility": FACILITY,
            "issued_at": issued_at.isoformat(),
            "data": scenario(story, facility_code=FACILITY, serial=serial, issued_at=issued_at, seed=serial)[0][1],
        }
    )
    config = HospitalConfig(
        "http://127.0.0.1:9", FACILITY, f"{FACILITY}_BV", "unused", pki.issue_facility_cert(FACILITY), variant=variant
    )
    hospital = Hospital(config, OrderQueue(tmp_path / str(serial)))
    try:
        return hospital.sign(order, datetime.now(UTC)), order.data
    finally:
        hospital.close()


def verdict_codes(pki: TestPKI, tmp_path: Path, data: bytes) -> dict[str, str]:
    path = tmp_path / "signed.xml"
    path.write_bytes(data)
    found = check_file(path, facility_code=FACILITY, trust=TrustStore(cas=pki.ca_certs))
    return {f.code: f.severity.value for f in found.verdict.findings}


def data_fields(data: bytes) -> dict[str, str]:
    return {child.tag: child.text or "" for child in etree.fromstring(data)[0]}


@pytest.mark.parametrize(
    ("variant", "story", "code", "severity"),
    [
        (Variant.WINDOWS_1258, "gcs_normal", "XML_ENCODING", "error"),
        (Variant.DMY_DATES, "gcs_normal", "SCHEMA_PATTERN", "error"),
        (Variant.GBT_SECONDS, "gbt_inpatient", "SCHEMA_PATTERN", "error"),
        (Variant.UNPADDED_CODE, "gcs_normal", "RULE_CODE_FORMAT", "warning"),
        (Variant.GBT_CODE_KIND, "gbt_normal", "RULE_CODE_FORMAT", "warning"),
        (Variant.HEAD_OFFICE_CODE, "gcs_normal", "RULE_CODE_FACILITY", "warning"),
        (Variant.GBT_HEAD_OFFICE, "gbt_normal", "RULE_FACILITY_MISMATCH", "warning"),
        (Variant.PRETTY_PRINT, "gcs_normal", "SIG_DIGEST_MISMATCH", "error"),
        (Variant.COUNTERSIGN, "gcs_normal", "SIG_MISSING", "error"),
        (Variant.SIGNING_TIME_LOCALE, "gbt_normal", "SIG_SIGNING_TIME_INVALID", "error"),
    ],
    ids=str,
)
def test_a_broken_file_shows_the_portal_its_bug(
    pki: TestPKI, tmp_path: Path, variant: Variant, story: str, code: str, severity: str
) -> None:
    assert verdict_codes(pki, tmp_path, signed(pki, tmp_path, None, story)[0]) == {}
    data, _ordered = signed(pki, tmp_path, variant, story)
    assert verdict_codes(pki, tmp_path, data).get(code) == severity


def test_windows_1258_keeps_the_vowel_marks_and_writes_the_tones_apart(pki: TestPKI, tmp_path: Path) -> None:
    data, ordered = signed(pki, tmp_path, Variant.WINDOWS_1258, "gcs_normal")
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert data.count(b"?") == 2  # the declaration's: every letter found its code page 1258 form
    text = unicodedata.normalize("NFC", data.decode("cp1258"))
    assert ordered["HOTEN_NND"] in text and ordered["NOI_SINH_CON"] in text


def test_the_portal_takes_the_files_that_carry_other_data_than_ordered(pki: TestPKI, tmp_path: Path) -> None:
    """What FLOW-005 (text), FLOW-001 (twins) and FLOW-004 (inpatient) see and the portal does not."""
    decomposed, ordered = signed(pki, tmp_path, Variant.NFD_TEXT, "gcs_normal")
    fields = data_fields(decomposed)
    assert verdict_codes(pki, tmp_path, decomposed) == {}
    assert fields["HOTEN_NND"] != ordered["HOTEN_NND"] == unicodedata.normalize("NFC", fields["HOTEN_NND"])
    twin, ordered = signed(pki, tmp_path, Variant.TWINS_SO_CON, "gcs_twins")
    assert ordered["SO_CON"] == "2" and data_fields(twin)["SO_CON"] == "1"
    inpatient, ordered = signed(pki, tmp_path, Variant.NO_ADMISSION, "gbt_inpatient")
    assert ordered["NGAYGIO_VV"] and ordered["MA_HSBA"]
    assert verdict_codes(pki, tmp_path, inpatient) == {}
    assert {"NGAYGIO_VV", "MA_HSBA"}.isdisjoint(data_fields(inpatient))
