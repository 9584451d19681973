"""The six-monthly report (Dispatch 4410/BYT-KCB Appendix 02) against a seeded scenario across the
30/4–4/5/2025 holiday (Wed 30/4 … Sun 4/5 off; the 29th is a Tuesday, the 5th a Monday).

A server of this module's own (the clock is global). Facility A (GCS):

======  =================  ===============  ================================  ============
doc     issued (VN)        accepted (VN)    working minutes issue→acceptance  verdict
======  =================  ===============  ================================  ============
a1      Tue 29/4 15:00     29/4 16:00       60                                ON_TIME
a2      29/4 15:00         Mon 5/5 09:30    120 + 90 = 210                    ON_TIME
a3      29/4 15:00         5/5 11:00        120 + 180 = 300                   LATE (60)
a7      29/4 14:00 (exp.)  5/5 09:45        180 + 105 = 285                   LATE (45)
a6      5/5 09:00          5/5 10:00        60 (reissue of a1)                ON_TIME
======  =================  ===============  ================================  ============

plus two refusals (a tampered file, a wrong year in MA_GCS) and an expectation that never arrives.
Facility A (GBT): one on time (29/4 16:30 → 5/5 08:30, 60 min), one refused (HO_TEN missing).
Facility B (GCS): issued on the 2/5 holiday, accepted 5/5 08:00 (0 working minutes), and one
accepted 1/7/2025 06:30 in Vietnam — 30/6 23:30 UTC, so in H2, not H1.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fixtures.certificates import build_xml, scenario
from fixtures.pki import TestPKI
from fixtures.samples import signed_sample
from fixtures.signer import sign_document
from mock_portal.documents import DocumentType
from mock_portal.reports import semiannual as reports
from tests.conftest import Hospital, provision, trust_root
from tests.live import LiveServer, start_server

REPORT = "/sandbox/reports/semiannual"


def vn(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}+07:00")


@dataclass
class Seeded:
    a: str
    b: str


@pytest.fixture(scope="module")
def reporting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # strict: a wrong year in MA_GCS is one of the refusals counted (portal mode only warns about it)
    live = start_server(tmp_path_factory.mktemp("reports"), extra_env={"PORTAL_STRICTNESS": "strict"})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def report_admin(reporting: LiveServer) -> Iterator[httpx.Client]:
    with reporting.admin() as admin:
        yield admin


class Desk:
    """Sends a facility's documents at given sandbox times."""

    def __init__(self, admin: httpx.Client, site: Hospital) -> None:
        self.admin, self.site = admin, site

    def at(self, when: str) -> None:
        assert self.admin.put("/sandbox/clock", json={"now": vn(when).isoformat(), "rate": 0}).status_code == 200
        self.site.client.take_token()  # the previous token may have expired with the jump

    def send(self, kind: str, xml: bytes, expect: str) -> None:
        reply = self.site.client.send(kind, xml)
        assert reply.ma_ket_qua == expect, self.admin.get(f"/sandbox/submissions/{reply.submission_id}").json()

    def doc(self, serial: int, issued: str, kind: str = "GCS", invalid: str | None = None) -> bytes:
        at = vn(issued)
        return signed_sample(
            DocumentType[kind],
            self.site.credential,
            facility_code=self.site.code,
            serial=serial,
            issued_at=at,
            signing_time=at,
            invalid=invalid,
        )

    def reissue(self, serial: int, first_issued: str, reissued: str) -> bytes:
        """The same MA_GCS as the first issue (same serial and year), CAP_LAN_DAU=0, signed when reissued."""
        (_kind, fields), *_ = scenario(
            "gcs_normal", facility_code=self.site.code, serial=serial, issued_at=vn(reissued)
        )
        first = scenario("gcs_normal", facility_code=self.site.code, serial=serial, issued_at=vn(first_issued))[0][1]
        assert fields["MA_GCS"] == first["MA_GCS"]
        cred = self.site.credential
        xml = build_xml(DocumentType.GCS, {**fields, "CAP_LAN_DAU": "0"})
        return sign_document(xml, cred.key, cred.cert, signing_time=vn(reissued), chain=cred.chain)


def code_of(xml: bytes) -> str:
    return re.search(rb"<MA_GCS>([^<]+)</MA_GCS>", xml).group(1).decode()


@pytest.fixture(scope="module")
def seeded(reporting: LiveServer, report_admin: httpx.Client) -> Seeded:
    pki = TestPKI.create(
        {"79701": "Bệnh viện Hùng Vương", "79702": "Bệnh viện Nhi Đồng"}, now=datetime(2025, 4, 1, tzinfo=UTC)
    )
    trust_root(report_admin, pki)
    report_admin.put("/sandbox/clock", json={"now": vn("2025-04-29T08:00:00").isoformat(), "rate": 0})
    site_a = provision(report_admin, pki, reporting.base_url, code="79701")
    site_b = provision(report_admin, pki, reporting.base_url, code="79702")
    a, b = Desk(report_admin, site_a), Desk(report_admin, site_b)

    a7 = a.doc(7, "2025-04-29T14:00:00")
    for issued, match in (("2025-04-29T14:00:00", code_of(a7)), ("2025-04-29T10:00:00", "99999.GCS.79701.25")):
        created = report_admin.post(
            "/sandbox/expectations",
            json={"type": "GCS", "facility": "79701", "issued_at": vn(issued).isoformat(), "match": {"MA_GCS": match}},
        )
        assert created.status_code == 201, created.text

    a.at("2025-04-29T16:00:00")
    a.send("GCS", a.doc(1, "2025-04-29T15:00:00"), "200")
    b.at("2025-05-05T08:00:00")
    b.send("GCS", b.doc(10, "2025-05-02T10:00:00"), "200")
    a.at("2025-05-05T08:30:00")
    a.send("GBT", a.doc(8, "2025-04-29T16:30:00", "GBT"), "200")
    a.at("2025-05-05T09:30:00")
    a.send("GCS", a.doc(2, "2025-04-29T15:00:00"), "200")
    a.at("2025-05-05T09:45:00")
    a.send("GCS", a7, "200")
    a.at("2025-05-05T10:00:00")
    a.send("GCS", a.reissue(1, "2025-04-29T15:00:00", "2025-05-05T09:00:00"), "200")
    a.send("GCS", a.doc(4, "2025-05-05T09:00:00", invalid="tampered"), "205")
    a.send("GCS", a.doc(5, "2025-05-05T09:00:00", invalid="wrong_year"), "205")
    a.send("GBT", a.doc(9, "2025-05-05T09:00:00", "GBT", invalid="missing_required"), "205")
    a.at("2025-05-05T11:00:00")
    a.send("GCS", a.doc(3, "2025-04-29T15:00:00"), "200")
    b.at("2025-07-01T06:30:00")
    b.send("GCS", b.doc(11, "2025-07-01T06:00:00"), "200")

    deadline = time.monotonic() + 20
    while report_admin.get("/sandbox/sharing").json()["pending"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert report_admin.get("/sandbox/sharing").json()["pending"] == 0
    return Seeded("79701", "79702")


def report_json(admin: httpx.Client, **params: str) -> dict:
    reply = admin.get(REPORT, params=params)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


def facility(report: dict, code: str) -> dict:
    [found] = [f for f in report["facilities"] if f["code"] == code]
    return found


EMPTY = {
    "issued": 0,
    "sent": 0,
    "accepted": 0,
    "refused": 0,
    "refused_by_reason": {},
    "on_time": 0,
    "late": 0,
    "median_working_minutes": None,
    "p95_working_minutes": None,
    "shared_ipss": 0,
    "reissues": 0,
}
A_GCS = {
    "issued": 5,  # two expectations (one never arrived) + a1, a2, a3; a7 is the expectation's, a6 a reissue
    "sent": 7,
    "accepted": 5,
    "refused": 2,
    "refused_by_reason": {"RULE_CODE_YEAR": 1, "SIG_DIGEST_MISMATCH": 1},
    "on_time": 3,
    "late": 2,
    "median_working_minutes": 210.0,  # 60, 60, 210, 285, 300
    "p95_working_minutes": 300.0,
    "shared_ipss": 5,
    "reissues": 1,
}
A_GBT = {
    **EMPTY,
    "issued": 1,
    "sent": 2,
    "accepted": 1,
    "refused": 1,
    "refused_by_reason": {"SCHEMA_REQUIRED_MISSING": 1},
    "on_time": 1,
    "median_working_minutes": 60.0,
    "p95_working_minutes": 60.0,
    "shared_ipss": 1,
}
B_GCS_H1 = {
    **EMPTY,
    "issued": 1,
    "sent": 1,
    "accepted": 1,
    "on_time": 1,
    "median_working_minutes": 0.0,
    "p95_working_minutes": 0.0,
    "shared_ipss": 1,
}


def test_h1_numbers_per_facility_and_in_total(report_admin: httpx.Client, seeded: Seeded) -> None:
    report = report_json(report_admin, period="2025-H1")
    assert report["period"] == {
        "label": "2025-H1",
        "from": "2025-01-01",
        "to": "2025-06-30",
        "timezone": "Asia/Ho_Chi_Minh",
    }
    assert facility(report, seeded.a)["GCS"] == A_GCS
    assert facility(report, seeded.a)["GBT"] == A_GBT
    assert facility(report, seeded.b)["GCS"] == B_GCS_H1
    assert facility(report, seeded.b)["GBT"] == EMPTY
    assert report["total"]["GCS"] == {
        **A_GCS,
        "issued": 6,
        "sent": 8,
        "accepted": 6,
        "on_time": 4,
        "median_working_minutes": 135.0,  # 0, 60, 60, 210, 285, 300
        "p95_working_minutes": 300.0,
        "shared_ipss": 6,
    }
    assert report["total"]["GBT"] == A_GBT


def test_refusal_reason_is_the_first_error_finding(report_admin: httpx.Client, seeded: Seeded) -> None:
    refused = report_admin.get("/sandbox/submissions", params={"facility": seeded.a, "result": "205"}).json()
    firsts = []
    for row in refused:
        findings = report_admin.get(f"/sandbox/submissions/{row['id']}").json()["findings"]
        firsts.append(next(f["code"] for f in findings if f["severity"] == "error"))
    assert sorted(firsts) == ["RULE_CODE_YEAR", "SCHEMA_REQUIRED_MISSING", "SIG_DIGEST_MISMATCH"]


def test_h2_holds_what_was_accepted_after_midnight_in_vietnam(report_admin: httpx.Client, seeded: Seeded) -> None:
    report = report_json(report_admin, period="2025-H2")
    assert facility(report, seeded.b)["GCS"] == B_GCS_H1  # accepted 30/6 23:30 UTC = 1/7 06:30 in Vietnam
    assert facility(report, seeded.a)["GCS"] == EMPTY
    assert report["total"]["GBT"] == EMPTY


def test_from_to_dates_are_inclusive(report_admin: httpx.Client, seeded: Seeded) -> None:
    only_29 = report_json(report_admin, **{"from": "2025-04-29", "to": "2025-04-29"})
    assert only_29["period"]["label"] == "2025-04-29..2025-04-29"
    row = facility(only_29, seeded.a)["GCS"]
    assert (row["issued"], row["sent"], row["accepted"], row["on_time"]) == (5, 1, 1, 1)  # a1 only; a7 left after
    may_5 = facility(report_json(report_admin, **{"from": "2025-05-05", "to": "2025-05-05"}), seeded.a)["GCS"]
    assert (may_5["issued"], may_5["sent"], may_5["accepted"], may_5["late"]) == (0, 6, 4, 2)


def test_csv_opens_with_vietnamese_and_english_headings(report_admin: httpx.Client, seeded: Seeded) -> None:
    reply = report_admin.get(REPORT, params={"period": "2025-H1", "format": "csv"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert 'filename="bao-cao-4410-2025-H1.csv"' in reply.headers["content-disposition"]
    assert reply.content.startswith(b"\xef\xbb\xbf"), "a BOM, so Excel reads UTF-8"
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"), newline="")))
    headings = list(rows[0])
    assert headings[:4] == [
        "Kỳ báo cáo (Period)",
        "Mã CSKCB (Facility code)",
        "Tên cơ sở KCB (Facility name)",
        "Số GCS đã cấp (GCS issued)",
    ]
    assert headings == reports.csv_headings() and len(headings) == 3 + 2 * len(reports.COLUMNS)
    assert "Số GBT trễ hạn (GBT accepted late)" in headings
    by_code = {row["Mã CSKCB (Facility code)"]: row for row in rows}
    a = by_code[seeded.a]
    assert a["Tên cơ sở KCB (Facility name)"] == "Bệnh viện 79701"
    assert a["Số GCS đã cấp (GCS issued)"] == "5"
    assert a["Số GCS trễ hạn (GCS accepted late)"] == "2"
    assert a["Lý do từ chối GCS (GCS refusal reasons)"] == "RULE_CODE_YEAR: 1; SIG_DIGEST_MISMATCH: 1"
    assert a["Trung vị phút làm việc từ cấp đến tiếp nhận GCS (GCS median working minutes)"] == "210.0"
    assert by_code[seeded.b]["P95 phút làm việc từ cấp đến tiếp nhận GBT (GBT p95 working minutes)"] == ""
    total = rows[-1]
    assert total["Tên cơ sở KCB (Facility name)"] == "Tổng cộng (Total)"
    assert total["Số GCS được tiếp nhận (GCS accepted)"] == "6"
    assert total["Số GBT bị từ chối (GBT refused)"] == "1"


def test_html_is_one_self_contained_page_with_charts(report_admin: httpx.Client, seeded: Seeded) -> None:
    reply = report_admin.get(REPORT, params={"period": "2025-H1", "format": "html"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    page = reply.text
    assert page.count("<svg") == 2 and 'class="mark-late"' in page and 'class="mark-refused"' in page
    assert "Số GCS đã cấp" in page and "Bệnh viện 79701" in page and "SIG_DIGEST_MISMATCH" in page
    external = re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", page)
    assert not external, "nothing loaded from elsewhere"
    assert "<link" not in page and "<script" not in page


def test_json_lists_the_columns_with_their_headings(report_admin: httpx.Client, seeded: Seeded) -> None:
    report = report_json(report_admin, period="2025-H1", format="json")
    assert [c["key"] for c in report["columns"]] == list(A_GCS)
    assert report["columns"][0] == {"key": "issued", "vi": "Số {t} đã cấp", "en": "{t} issued"}
    assert report["deadline_working_minutes"] == 240 and report["calendar"] == "default"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"period": "2025-H3"}, "REPORT_PERIOD_INVALID"),  # the documented code, also for a pattern miss
        ({"period": "2025"}, "REPORT_PERIOD_INVALID"),
        ({"period": "2025-H1", "format": "xlsx"}, "REQUEST_INVALID"),
        ({"from": "2025-13-01", "to": "2025-12-31"}, "REPORT_PERIOD_INVALID"),
        ({}, "REPORT_PERIOD_INVALID"),
        ({"from": "2025-01-01"}, "REPORT_PERIOD_INVALID"),
        ({"period": "2025-H1", "from": "2025-01-01", "to": "2025-02-01"}, "REPORT_PERIOD_INVALID"),
        ({"from": "2025-06-30", "to": "2025-01-01"}, "REPORT_PERIOD_INVALID"),
        ({"period": "1066-H2"}, "REPORT_PERIOD_INVALID"),
    ],
    ids=["H3", "year-only", "xlsx", "month-13", "nothing", "from-only", "both", "backwards", "year-1066"],
)
def test_bad_periods_are_400_problems(report_admin: httpx.Client, params: dict, code: str) -> None:
    reply = report_admin.get(REPORT, params=params)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["code"] == code


def test_the_report_needs_the_admin_token(reporting: LiveServer) -> None:
    reply = httpx.get(reporting.base_url + REPORT, params={"period": "2025-H1"})
    assert reply.status_code == 401


@pytest.mark.parametrize("fmt", ["csv", "json", "html"])
def test_cli_writes_the_same_report(
    reporting: LiveServer, report_admin: httpx.Client, seeded: Seeded, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"report.{fmt}"
    env = {"PORTAL_DATABASE_URL": reporting.database_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "mock_portal.cli", "report", "--period", "2025-H1", "--format", fmt, "--out", str(out)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    served = report_admin.get(REPORT, params={"period": "2025-H1", "format": fmt})
    if fmt == "csv":
        assert out.read_bytes() == served.content
    elif fmt == "json":
        written = json.loads(out.read_text(encoding="utf-8"))
        assert {**written, "generated_at": ""} == {**served.json(), "generated_at": ""}
    else:
        assert "<svg" in out.read_text(encoding="utf-8")


def test_cli_refuses_a_bad_period(reporting: LiveServer, tmp_path: Path) -> None:
    env = {"PORTAL_DATABASE_URL": reporting.database_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "mock_portal.cli", "report", "--period", "2025-H9", "--out", str(tmp_path / "x")],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and b"2025-H9" in done.stderr


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [("2025-H1", "2025-01-01", "2025-06-30"), ("2025-H2", "2025-07-01", "2025-12-31")],
)
def test_half_years_are_read_in_vietnam_time(text: str, first: str, last: str) -> None:
    period = reports.parse_period(text)
    assert (period.first_day.isoformat(), period.last_day.isoformat()) == (first, last)
    start, end = period.start.astimezone(UTC), period.end.astimezone(UTC)
    assert start.hour == 17 and end.hour == 17  # midnight in Vietnam is 17:00 UTC the day before


def test_cli_reports_on_the_workspace_it_is_given(
    reporting: LiveServer, report_admin: httpx.Client, seeded: Seeded, tmp_path: Path
) -> None:
    """`--workspace` reports on one tenant (an empty one here), not on `default`; an unknown one is refused."""
    assert report_admin.post("/sandbox/workspaces", json={"id": "report-cli"}).status_code == 201
    env = {"PORTAL_DATABASE_URL": reporting.database_url, "PATH": "/usr/bin:/bin"}

    def cli(*extra: str) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "mock_portal.cli", "report", "--period", "2025-H1", "--format", "json"]
        return subprocess.run([*command, *extra], env=env, capture_output=True, timeout=60, check=False)

    default, tenant, unknown = cli(), cli("--workspace", "report-cli"), cli("--workspace", "nobody-here")
    for bad in ("Not_Valid", "\udcff", "abc\n"):  # an id no workspace can have: said so, never looked up
        refused = cli("--workspace", bad)
        assert refused.returncode == 2 and b"A workspace id is 2-20 lowercase" in refused.stderr, refused.stderr
    assert default.returncode == tenant.returncode == 0, default.stderr + tenant.stderr
    assert json.loads(default.stdout) != json.loads(tenant.stdout)
    assert "79701" in default.stdout.decode() and "79701" not in tenant.stdout.decode()
    assert unknown.returncode == 2 and b"No workspace nobody-here" in unknown.stderr
