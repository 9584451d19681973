"""The dashboard in a real browser: Playwright driving Debian's Chromium (`/usr/bin/chromium`, no
browser download) against a real portal of this module's own. Screenshots of the main pages are
written under the test's tmp_path.

Skipped only when /usr/bin/chromium is absent and CI is not set; in CI they must run (`.ci/run`
installs chromium through apt when missing).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from fixtures.pki import TestPKI
from tests.conftest import Hospital, provision
from tests.live import LiveServer
from tests.wire import sample

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

if os.environ.get("CI"):
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api")
TIMEOUT_MS = 15_000
# a portal of its own: the pages list every facility, and the tests move the global clock and fault plan
pytestmark = pytest.mark.portal()


@pytest.fixture(scope="module")
def ui_admin(admin: httpx.Client, trusted: TestPKI) -> httpx.Client:
    """The admin client of the module's portal, which trusts the test PKI."""
    return admin


@pytest.fixture(scope="module")
def site(ui_admin: httpx.Client, pki: TestPKI, portal: LiveServer) -> Hospital:
    return provision(ui_admin, pki, portal.base_url)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            accept_downloads=True,
            viewport={"width": 1360, "height": 900},
        )
        launched.set_default_timeout(TIMEOUT_MS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser: object, portal: LiveServer) -> object:
    """A logged-in page (the login itself is the first test's subject)."""
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.goto(f"{portal.base_url}/sandbox/ui/journal")
    if "/login" in page.url:
        page.fill("#token", portal.admin_token)
        submit(page, "#login")
        page.wait_for_url("**/sandbox/ui/journal")
    return page


def submit(page: object, selector: str) -> None:
    """Click a form's button and wait for the page the server answers with."""
    with page.expect_navigation():
        page.click(selector)


def shot(page: object, folder: Path, name: str) -> Path:
    path = folder / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000
    return path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "journal",
        "journal/rows",
        "facilities",
        "deadlines",
        "deadlines/documents",
        "clock",
        "report",
        "report/download?period=2025-H1&format=csv",
        "submissions/1",
    ],
)
def test_every_page_requires_the_login(portal: LiveServer, path: str) -> None:
    reply = httpx.get(f"{portal.base_url}/sandbox/ui/{path}", follow_redirects=False)
    assert reply.status_code == 302 and "/sandbox/ui/login" in reply.headers["location"]


def test_log_in_with_the_admin_token(portal: LiveServer, browser: object, tmp_path: Path) -> None:
    browser.clear_cookies()
    anonymous = browser.new_page()
    anonymous.goto(f"{portal.base_url}/sandbox/ui/clock")
    assert "/sandbox/ui/login" in anonymous.url
    anonymous.fill("#token", "not-the-token")
    submit(anonymous, "#login")
    assert anonymous.locator("#login-error").is_visible()
    shot(anonymous, tmp_path, "login")
    anonymous.fill("#token", portal.admin_token)
    submit(anonymous, "#login")
    anonymous.wait_for_url("**/sandbox/ui/clock")
    [cookie] = [c for c in browser.cookies() if c["name"] == "portal_ui"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert portal.admin_token not in cookie["value"]
    anonymous.close()


def test_a_submission_arrives_in_the_journal_and_its_findings_open(
    page: object, portal: LiveServer, ui_admin: httpx.Client, site: Hospital, tmp_path: Path
) -> None:
    page.goto(f"{portal.base_url}/sandbox/ui/journal")
    before = page.locator("#journal-rows tr").count()
    reply = site.client.send("GCS", sample(site, invalid="tampered"))  # while the page is open
    assert reply.ma_ket_qua == "205"
    row = page.locator(f"#journal-rows tr:has(a:text-is('#{reply.submission_id}'))")
    row.wait_for()  # prepended by the page's poll, without a reload
    assert page.locator("#journal-rows tr").count() > before
    assert "SIG_DIGEST_MISMATCH" in row.inner_text()
    shot(page, tmp_path, "journal")
    row.locator("a.submission-link").click()
    page.wait_for_url(f"**/sandbox/ui/submissions/{reply.submission_id}")
    assert "MaKetQua 205" in page.locator("#verdict").inner_text()
    finding = page.locator("#findings tr.finding").first
    text = finding.inner_text()
    assert "SIG_DIGEST_MISMATCH" in text and "error" in text and "CONFIRMED" in text  # its evidence grade
    assert page.locator("#signature-indication").inner_text().startswith("TOTAL_FAILED")
    assert page.locator("#signature-checks tbody tr").count() >= 3
    shot(page, tmp_path, "submission")


def test_facilities_and_deadlines(page: object, portal: LiveServer, site: Hospital, tmp_path: Path) -> None:
    assert site.client.send("GCS", sample(site)).ma_ket_qua == "200"
    page.goto(f"{portal.base_url}/sandbox/ui/facilities")
    assert "SHA-256" in page.locator(f"#facility-{site.code}").inner_text()
    assert page.locator(f"#facility-{site.code} td.strictness").inner_text().startswith("portal")
    shot(page, tmp_path, "facilities")
    page.goto(f"{portal.base_url}/sandbox/ui/deadlines")
    assert page.locator(f"#deadlines-{site.code}").is_visible()
    assert page.locator("#deadline-chart svg rect.mark-on_time").count() >= 1
    shot(page, tmp_path, "deadlines")


def test_the_clock_and_the_fault_plan_change_from_the_page(
    page: object, portal: LiveServer, ui_admin: httpx.Client, tmp_path: Path
) -> None:
    page.goto(f"{portal.base_url}/sandbox/ui/clock")
    page.fill("#clock-now", "2025-08-29T15:59:00+07:00")
    page.fill("#clock-rate", "0")
    submit(page, "#clock-set button")
    assert "2025-08-29T15:59:00+07:00" in page.locator("#clock-now-vn").inner_text()
    assert ui_admin.get("/sandbox/clock").json()["now_vn"] == "2025-08-29T15:59:00+07:00"
    page.fill("#clock-amount", "240")
    page.select_option("#clock-unit", "working_minutes")
    submit(page, "#clock-advance button")
    assert "2025-09-03T10:59:00+07:00" in page.locator("#clock-now-vn").inner_text()  # over 1–2/9
    page.fill("#faults-plan", '{"faults": [{"name": "outage", "effect": "http_error", "status": 503}]}')
    submit(page, "#faults-set button")
    assert "outage" in page.locator("#faults-summary").inner_text()
    assert ui_admin.get("/sandbox/faults").json()["plan"]["faults"][0]["name"] == "outage"
    shot(page, tmp_path, "clock")
    page.fill("#faults-plan", '{"faults": [{"effect": "teapot"}]}')
    submit(page, "#faults-set button")
    assert page.locator("#flash-error").is_visible()
    submit(page, "#faults-clear")
    assert ui_admin.get("/sandbox/faults").json()["plan"]["faults"] == []
    submit(page, "#clock-reset")
    assert ui_admin.get("/sandbox/clock").json()["mode"] == "real"


def test_the_report_downloads(page: object, portal: LiveServer, site: Hospital, tmp_path: Path) -> None:
    page.goto(f"{portal.base_url}/sandbox/ui/report")
    assert page.locator("#report-gcs").is_visible() and page.locator("svg.chart").count() == 2
    shot(page, tmp_path, "report")
    with page.expect_download() as info:
        page.click("#download-csv")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(str(target))
    assert target.name.startswith("bao-cao-4410-") and target.suffix == ".csv"
    rows = list(csv.DictReader(io.StringIO(target.read_bytes().decode("utf-8-sig"), newline="")))
    [mine] = [r for r in rows if r["Mã CSKCB (Facility code)"] == site.code]
    assert int(mine["Số GCS đã gửi (GCS sent)"]) >= 2 and int(mine["Số GCS bị từ chối (GCS refused)"]) >= 1


# Issue 25: every page looks right to a person (styles applied, readable controls, charts inside their box)
LOOKS = """() => {
  const problems = [];
  const rgba = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) { return [255, 255, 255, 1]; }
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3])).concat([1]);
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const colour = rgba(getComputedStyle(e).backgroundColor);
      if (colour[3] > 0) { layers.push(colour); }
      if (colour[3] >= 1) { break; }
    }
    return layers.reduceRight((below, top) => over(top, below), [255, 255, 255, 1]);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    " '" + (e.innerText || e.value || e.placeholder || "").trim().slice(0, 30) + "'";
  const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility === "visible";
  // 1. every button, link and field reads against what is behind it (WCAG AA: 4.5)
  for (const e of document.querySelectorAll("button, a, input:not([type=hidden]), select, textarea")) {
    if (!visible(e)) { continue; }
    const behind = background(e);
    const text = over(rgba(getComputedStyle(e).color), behind);
    const [hi, lo] = [luminance(text), luminance(behind)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) { problems.push(`${name(e)}: contrast ${ratio.toFixed(2)}`); }
  }
  // 2. every custom property a rule of the page's stylesheets uses is defined where the rule applies
  const rules = (list) => Array.from(list).flatMap((r) => r.cssRules && !r.selectorText ? rules(r.cssRules) : [r]);
  for (const sheet of document.styleSheets) {
    for (const rule of rules(sheet.cssRules)) {
      if (!rule.selectorText || !rule.cssText.includes("var(")) { continue; }
      const names = Array.from(rule.cssText.matchAll(/var\\(\\s*(--[\\w-]+)/g), (m) => m[1]);
      const selector = rule.selectorText.replace(/:(hover|focus|active|visited)/g, "");
      const targets = Array.from(document.querySelectorAll(selector));
      for (const target of targets.length ? targets : [document.documentElement]) {
        for (const property of names) {
          if (!getComputedStyle(target).getPropertyValue(property).trim()) {
            problems.push(`${rule.selectorText}: ${property} is not defined`);
          }
        }
      }
    }
  }
  // 3. the text of every chart lies inside its drawing
  for (const svg of document.querySelectorAll("svg")) {
    const box = svg.viewBox.baseVal && svg.viewBox.baseVal.width ? svg.viewBox.baseVal
      : { x: 0, y: 0, width: svg.width.baseVal.value, height: svg.height.baseVal.value };
    for (const text of svg.querySelectorAll("text")) {
      const b = text.getBBox();
      if (b.x < box.x - 0.5 || b.y < box.y - 0.5 || b.x + b.width > box.x + box.width + 0.5 ||
          b.y + b.height > box.y + box.height + 0.5) {
        problems.push(`chart text '${text.textContent}' at ${b.x.toFixed(0)},${b.y.toFixed(0)} ` +
          `${b.width.toFixed(0)}x${b.height.toFixed(0)} outside ${box.width}x${box.height}`);
      }
    }
  }
  // 4. every kind of marker a chart draws has its legend entry
  for (const svg of document.querySelectorAll("svg")) {
    const kinds = (prefix) => new Set(Array.from(svg.querySelectorAll(`[class*="${prefix}"]`),
      (e) => Array.from(e.classList).filter((c) => c.startsWith(prefix)).map((c) => c.slice(prefix.length))).flat());
    const explained = kinds("legend-");
    for (const kind of kinds("mark-")) {
      if (!explained.has(kind)) { problems.push(`chart marker ${kind} has no legend entry`); }
    }
  }
  return Array.from(new Set(problems));
}"""


def looks_wrong(page: object) -> list[str]:
    """What a person would see wrong on the page: unreadable controls, styles that did not apply, cut text."""
    return [f"{page.url}: {problem}" for problem in page.evaluate(LOOKS)]


LONG_NAME = "Bệnh viện Đa khoa Trung ương Cần Thơ (cơ sở 2)"
NOT_PAGES = {"static", "dashboard.static", "dashboard.home", "dashboard.journal_rows", "dashboard.report_download"}
"""GET routes that answer with no page of their own: files, a redirect, the journal's poll fragment."""


def test_every_page_looks_right_to_a_person(
    portal: LiveServer, browser: object, ui_admin: httpx.Client, pki: TestPKI
) -> None:
    from flask import Flask

    from mock_portal.web.dashboard import bp

    long = provision(ui_admin, pki, portal.base_url, name=LONG_NAME)
    sent = long.client.send("GCS", sample(long))
    assert sent.ma_ket_qua == "200"
    pages = {
        "dashboard.journal": ["journal"],
        "dashboard.facilities": ["facilities"],
        "dashboard.deadlines": ["deadlines"],
        "dashboard.deadline_documents": ["deadlines/documents", "deadlines/documents?status=bad"],
        "dashboard.clock": ["clock"],
        "dashboard.report": ["report", "report?period=2025-H3"],
        "dashboard.submission": [f"submissions/{sent.submission_id}", "submissions/999999"],
    }
    app = Flask(__name__)
    app.register_blueprint(bp)
    routes = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert routes - NOT_PAGES == {"dashboard.login", *pages}  # a new page must be looked at here too

    browser.clear_cookies()
    viewer = browser.new_page()
    try:
        problems = []
        viewer.goto(f"{portal.base_url}/sandbox/ui/login")  # the login page first: it has no header
        problems += looks_wrong(viewer)
        viewer.fill("#token", portal.admin_token)
        submit(viewer, "#login")
        for path in (path for paths in pages.values() for path in paths):
            viewer.goto(f"{portal.base_url}/sandbox/ui/{path}")
            problems += looks_wrong(viewer)
        assert not problems, "\n".join(problems)
    finally:
        viewer.close()


# Issue 25: times in Vietnam time, and the deadline of each document
VN_SHOWN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? \(UTC\+7\)$")


def assert_vietnam_times(page: object, selector: str) -> int:
    """Every <time> under `selector` shows Vietnam time and keeps the UTC instant in `datetime`."""
    times = page.locator(f"{selector} time")
    for i in range(times.count()):
        instant, shown = times.nth(i).get_attribute("datetime"), times.nth(i).inner_text()
        assert instant.endswith("Z") and VN_SHOWN.match(shown), (instant, shown)
        local = datetime.fromisoformat(instant).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
        assert shown.startswith(local.strftime("%Y-%m-%d %H:%M")), (instant, shown)
    return times.count()


def test_times_are_shown_in_vietnam_time(page: object, portal: LiveServer, site: Hospital) -> None:
    sent = site.client.send("GCS", sample(site))
    page.goto(f"{portal.base_url}/sandbox/ui/submissions/{sent.submission_id}")
    assert assert_vietnam_times(page, "#deadline") == 3  # issued, deadline, accepted
    assert "Z" not in page.locator("#deadline").inner_text()
    page.goto(f"{portal.base_url}/sandbox/ui/journal")
    assert assert_vietnam_times(page, "#journal-rows") >= 1
    page.goto(f"{portal.base_url}/sandbox/ui/report")
    assert assert_vietnam_times(page, "section.report") == 1  # generated at


def test_the_deadline_of_each_document(
    page: object, portal: LiveServer, ui_admin: httpx.Client, pki: TestPKI, tmp_path: Path
) -> None:
    own = provision(ui_admin, pki, portal.base_url)
    codes = []
    for _ in range(3):
        reply = own.client.send("GCS", sample(own))
        assert reply.ma_ket_qua == "200"
        codes.append(ui_admin.get(f"/sandbox/submissions/{reply.submission_id}").json()["document_code"])
    expectation = {"type": "GCS", "facility": own.code, "issued_at": "2025-03-03T08:00:00+07:00"}
    assert (
        ui_admin.post("/sandbox/expectations", json={**expectation, "match": {"MA_GCS": "CHO-0001"}}).status_code == 201
    )
    base = f"{portal.base_url}/sandbox/ui/deadlines/documents"

    page.goto(f"{portal.base_url}/sandbox/ui/deadlines")
    page.click(f"#deadlines-{own.code} a")  # a facility's row opens its documents
    page.wait_for_url(f"**/deadlines/documents?facility={own.code}")
    awaited = page.locator("#documents-awaited tr.document")
    assert awaited.count() == 1 and "CHO-0001" in awaited.inner_text()
    assert awaited.locator("td.status").inner_text().startswith("OVERDUE")
    accepted = page.locator("#documents-accepted tr.document")
    assert [accepted.nth(i).locator("code").first.inner_text() for i in range(3)] == codes[::-1]  # newest first
    assert all(accepted.nth(i).locator("td.status").inner_text() == "ON_TIME" for i in range(3))
    assert assert_vietnam_times(page, "#documents-accepted") == 9
    shot(page, tmp_path, "documents")

    page.goto(f"{base}?facility={own.code}&status=overdue")
    assert page.locator("#documents-awaited tr.document").count() == 1
    assert page.locator("#documents-accepted tr.document").count() == 0
    page.goto(f"{base}?facility={own.code}&status=ON_TIME&limit=2")  # a page of two, then the rest
    assert page.locator("#documents-awaited").count() == 0
    assert page.locator("#documents-accepted tr.document").count() == 2
    page.click("#documents-older")
    assert (
        page.locator("#documents-accepted tr.document").count() == 1 and page.locator("#documents-older").count() == 0
    )
    assert codes[0] in page.locator("#documents-accepted").inner_text()

    hostile = [
        "facility=<script>alert(1)</script>",
        "facility=7900",
        "status=ON_TIME' OR 1=1--",
        "status=%00",
        "before=-1",
        "before=1e999",
        "before=" + "9" * 40,
        "limit=0",
        "limit=100000",
        "limit=abc",
    ]
    for query in hostile:
        reply = page.goto(f"{base}?{query}")
        assert reply.status == 400 and page.locator("#documents-error").is_visible(), query


# Issue 25: the documents page's facility filter is five digits and nothing after (a line break was let through)


def test_a_facility_filter_ending_in_a_line_break_is_refused_on_the_documents_page(
    page: object, portal: LiveServer
) -> None:
    reply = page.goto(f"{portal.base_url}/sandbox/ui/deadlines/documents?facility=79001%0A")
    assert reply.status == 400 and "5 digits" in page.locator("#documents-error").inner_text()
