"""`mock-portal shadow`: a transparent proxy whose upstream is a second sandbox configured to disagree (a
strict facility, fault plans with a 500, a portal error, a reset and a timeout). Through the proxy the
hospital receives exactly the bytes the upstream sent (recorded by a tap between the two), and the proxy's
report lists exactly the disagreements that configuration implies; nothing personal is written."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from fixtures.pki import TestPKI, cert_pem, crl_pem
from fixtures.ports import free_port
from mock_portal.evidence.log import LoggedSend, read_log
from mock_portal.evidence.shadow import SideJudge
from tests.conftest import Hospital, load_crl, provision, trust_root
from tests.live import LiveServer, start_server
from tests.shadow import Scripted, Shadow, Tap, raw_exchange, start_shadow, without_connection_close
from tests.wire import sample

SUBMIT = "/api/hososuckhoe/guiGiayToDienTu"
FORM = "application/x-www-form-urlencoded"
UPSTREAM_TIMEOUT = 3


@dataclass
class Send:
    """One exchange through the proxy: what the hospital received, what the upstream had sent."""

    name: str
    received: bytes
    upstream: bytes
    file_sha256: str | None = None


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("upstream"))
    with live.admin() as admin:
        trust_root(admin, pki)
        load_crl(admin, pki)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tap(upstream: LiveServer) -> Iterator[Tap]:
    relay = Tap(int(upstream.base_url.rsplit(":", 1)[1]))
    yield relay
    relay.close()


@pytest.fixture(scope="module")
def trust_files(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> list[str]:
    directory = tmp_path_factory.mktemp("trust")
    (directory / "ca.pem").write_bytes(cert_pem(pki.root.cert))
    (directory / "crl.pem").write_bytes(crl_pem(pki.crl()))
    return ["--trust", str(directory / "ca.pem"), "--crl", str(directory / "crl.pem")]


@pytest.fixture(scope="module")
def shadow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shadow")


@pytest.fixture(scope="module")
def shadow(shadow_dir: Path, tap: Tap, trust_files: list[str]) -> Iterator[Shadow]:
    proxy = start_shadow(
        shadow_dir, f"http://127.0.0.1:{tap.port}", *trust_files, "--upstream-timeout", str(UPSTREAM_TIMEOUT)
    )
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def facility(upstream: LiveServer, shadow: Shadow, pki: TestPKI) -> Hospital:
    """A strict facility of the upstream, whose hospital client points at the proxy."""
    with upstream.admin() as admin:
        return provision(admin, pki, shadow.base_url, strictness="strict")


def _faults(upstream: LiveServer, facility: Hospital, *faults: dict[str, object]) -> None:
    with upstream.admin() as admin:
        put = admin.put(f"/sandbox/facilities/{facility.code}/faults", json={"faults": list(faults)})
        assert put.status_code == 200, put.text


@pytest.fixture(scope="module")
def sends(upstream: LiveServer, shadow: Shadow, tap: Tap, facility: Hospital) -> list[Send]:
    """Every exchange of the scenario, in order, each through the proxy as raw HTTP."""
    done: list[Send] = []

    def exchange(name: str, method: str, path: str, body: bytes = b"", **options: float) -> bytes:
        received = raw_exchange(shadow.port, method, path, body, kind=FORM if body else "", **options)
        done.append(Send(name, received, tap.take()))
        return received

    def submit(name: str, xml: bytes, *faults: dict[str, object], **options: float) -> None:
        body = urlencode(facility.client.form("61", xml)).encode()
        _faults(upstream, facility, *faults)
        tap.take()  # a token taken through the proxy, and the sandbox API's replies, are not this exchange's
        exchange(name, "POST", SUBMIT, body, **options)
        done[-1].file_sha256 = _sha256(xml)

    token = {"username": facility.username, "password": facility.client.password_md5}
    tap.take()
    exchange("token", "POST", "/api/token/take", urlencode(token).encode())
    exchange("health", "GET", "/sandbox/health")
    submit("valid", sample(facility))
    submit("strict-only", sample(facility, invalid="bad_weight"))
    submit("tampered", sample(facility, invalid="tampered"))
    submit("http-500", sample(facility), {"name": "down", "effect": "http_error", "status": 500})
    submit("portal-500", sample(facility), {"name": "busy", "effect": "portal_error", "code": "500"})
    submit("reset", sample(facility), {"name": "rst", "effect": "reset"})
    slow = {"name": "slow", "effect": "latency", "latency": {"distribution": "fixed", "ms": 2500}}
    submit("hospital-gave-up", sample(facility), slow, timeout=1)
    slower = {"name": "slower", "effect": "latency", "latency": {"distribution": "fixed", "ms": 5000}}
    submit("upstream-silent", sample(facility), slower)
    _faults(upstream, facility)
    time.sleep(3)  # the held requests end upstream before the module's other tests
    return done


def _sha256(xml: bytes) -> str:
    import hashlib

    return hashlib.sha256(xml).hexdigest()


def test_the_hospital_receives_the_upstreams_bytes(sends: list[Send], shadow_dir: Path) -> None:
    by_name = {send.name: send for send in sends}
    for name in ("token", "health", "valid", "strict-only", "tampered", "http-500", "portal-500"):
        send = by_name[name]
        assert send.upstream.startswith(b"HTTP/1.1 "), name
        assert without_connection_close(send.received) == send.upstream, name
    assert b"x-sandbox-explain: FAULT down" in by_name["http-500"].received  # the upstream's own headers pass
    for name in ("reset", "hospital-gave-up", "upstream-silent"):  # no reply upstream: none to the hospital
        assert by_name[name].received == b"" and by_name[name].upstream == b"", name
    assert "ASGI callable" not in (shadow_dir / "shadow.out").read_text(), "a failure passed on is no error"


def test_the_report_lists_exactly_the_disagreements_the_upstream_implies(shadow: Shadow, sends: list[Send]) -> None:
    submitted = {send.file_sha256: send.name for send in sends if send.file_sha256}
    report = shadow.wait_judged(len(submitted))
    seen = {submitted[c["file_sha256"]]: c for c in report["comparisons"]}
    assert set(seen) == set(submitted.values())
    expected = {  # name: (real, portal mode, strict mode)
        "valid": ("200", "200", "200"),
        "strict-only": ("205", "200", "205"),
        "tampered": ("205", "205", "205"),
        "http-500": ("HTTP 500", "200", "200"),
        "portal-500": ("500", "200", "200"),
        "reset": ("reset", "200", "200"),
        "hospital-gave-up": ("timeout", "200", "200"),
        "upstream-silent": ("timeout", "200", "200"),
    }
    assert {name: (c["real"], c["sandbox"]["portal"], c["sandbox"]["strict"]) for name, c in seen.items()} == expected
    disagree = {mode: {name for name, c in seen.items() if not c["agrees"][mode]} for mode in ("portal", "strict")}
    failures = {"http-500", "portal-500", "reset", "hospital-gave-up", "upstream-silent"}
    assert disagree == {"portal": failures | {"strict-only"}, "strict": failures}
    assert seen["strict-only"]["sentences"]["portal"] == "real 205 — sandbox 200"
    assert seen["strict-only"]["sentences"]["strict"] == "real 205 — sandbox 205: RULE_BIRTH_WEIGHT"
    assert seen["tampered"]["causes"]["portal"].startswith("SIG_")
    page = httpx.get(f"{shadow.base_url}/shadow/").text
    assert "real 205 — sandbox 205: RULE_BIRTH_WEIGHT" in page and "real reset — sandbox 200" in page
    counts = report["counts"]
    assert counts["submit"] == len(submitted) and counts["token"] == 2 and counts["judged"] == len(submitted)
    assert counts["portal_disagree"] == 6 and counts["strict_disagree"] == 5 and "dropped" not in counts


def test_the_log_is_a_rejudge_input_without_credentials_or_personal_data(
    shadow: Shadow, shadow_dir: Path, sends: list[Send], facility: Hospital
) -> None:
    submitted = [send for send in sends if send.file_sha256]
    shadow.wait_judged(len(submitted))
    lines = {line["file_sha256"]: line for line in shadow.lines()}
    assert set(lines) == {send.file_sha256 for send in submitted}
    for line in lines.values():
        datetime.fromisoformat(line["sent_at"]).astimezone(UTC)  # RFC 3339 with an offset
        assert set(line["form"]) == {"maCskcb", "username", "loaiHs"}
        assert line["sandbox"]["portal"] and line["sandbox"]["strict"]
    with shadow.log.open("rb") as log:  # `rejudge`'s own reader: every line fits the schema, none holds a file
        read = list(read_log(log, folder=shadow.log.parent, max_file_bytes=5 << 20))
    assert [(type(r).__name__, getattr(r, "code", None)) for r in read] == [("LineError", "LOG_NO_FILE")] * len(lines)
    by_name = {send.name: lines[send.file_sha256] for send in submitted if send.file_sha256}
    assert by_name["valid"]["reply"]["MaKetQua"] == "200" and "failure" not in by_name["valid"]
    assert by_name["http-500"]["reply"] is None
    assert (by_name["http-500"]["failure"], by_name["http-500"]["http_status"]) == ("http", 500)
    assert by_name["reset"] == {**by_name["reset"], "reply": None, "failure": "reset"}
    assert by_name["upstream-silent"]["failure"] == by_name["hospital-gave-up"]["failure"] == "timeout"
    token = httpx.post(
        f"{shadow.base_url}/api/token/take",
        data={"username": facility.username, "password": facility.client.password_md5},
    ).json()
    secrets = [
        facility.client.password_md5,
        facility.password,
        token["APIKey"]["access_token"],
        token["APIKey"]["id_token"],
    ]
    form = facility.client.form("61", sample(facility))
    secrets += [form["token"], form["id_token"]]
    xml = base64.b64decode(form["fileBase64Str"]).decode()
    people = [_field(xml, name) for name in ("HOTEN_NND", "SO_CCCD_NND", "HO_TEN_CHA", "SO_CCCD_CHA_NND")]
    assert all(people)
    httpx.post(f"{shadow.base_url}{SUBMIT}", data=form)
    shadow.wait_judged(len(submitted) + 1)
    written = {path: path.read_bytes().decode() for path in shadow_dir.rglob("*") if path.is_file()}
    assert shadow.log in written
    written["page"] = httpx.get(f"{shadow.base_url}/shadow/").text
    written["json"] = httpx.get(f"{shadow.base_url}/shadow/comparisons").text
    for where, text in written.items():
        for secret in [*secrets, *people]:
            assert secret not in text, (where, secret)


def _field(xml: str, name: str) -> str:
    start = xml.index(f"<{name}>") + len(name) + 2
    return xml[start : xml.index(f"</{name}>", start)]


def test_side_judge_drops_and_counts_what_it_has_no_room_for() -> None:
    from mock_portal.evidence.shadow import ShadowBook

    book = ShadowBook()
    side = SideJudge(trust=None, policy=None, journal=None, book=book, max_pending=2, max_bytes=100)  # type: ignore[arg-type]
    assert side.reserve(40) and side.reserve(40)
    assert not side.reserve(1), "two pending: no room for a third"
    side.release(40)
    assert not side.reserve(61), "bytes bound"
    assert side.reserve(60)
    assert book.counts["dropped"] == 2


@pytest.fixture(scope="module")
def explaining(
    tmp_path_factory: pytest.TempPathFactory, tap: Tap, trust_files: list[str], sends: list[Send]
) -> Iterator[Shadow]:
    """A second proxy on the same upstream, with --explain and --keep-files (after the scenario: one tap)."""
    directory = tmp_path_factory.mktemp("explaining")
    proxy = start_shadow(
        directory, f"http://127.0.0.1:{tap.port}", *trust_files, "--explain", "--keep-files", str(directory / "files")
    )
    yield proxy
    proxy.stop()


def test_explain_adds_the_sandboxs_verdict_and_keep_files_keeps_the_file(
    explaining: Shadow, tap: Tap, facility: Hospital
) -> None:
    xml = sample(facility, invalid="bad_weight")
    body = urlencode(facility.client.form("61", xml)).encode()
    tap.take()
    received = without_connection_close(raw_exchange(explaining.port, "POST", SUBMIT, body, kind=FORM))
    upstream = tap.take()
    head, _, payload = received.partition(b"\r\n\r\n")
    explain = [line for line in head.split(b"\r\n") if line.startswith(b"x-sandbox-explain: ")]
    assert len(explain) == 1 and explain[0].startswith(b"x-sandbox-explain: SHADOW portal 200: ACCEPTED")
    assert b"strict 205: RULE_BIRTH_WEIGHT" in explain[0]
    assert [line for line in head.split(b"\r\n") if not line.startswith(b"x-sandbox-explain")] == [
        line for line in upstream.partition(b"\r\n\r\n")[0].split(b"\r\n") if not line.startswith(b"x-sandbox-explain")
    ]
    assert payload == upstream.partition(b"\r\n\r\n")[2]
    [line] = explaining.lines()  # judged before the reply left: already logged
    kept = explaining.log.parent / line["form"]["file"]
    assert kept.read_bytes() == xml and line["file_sha256"] == _sha256(xml)
    with explaining.log.open("rb") as log:  # with its file the line is `rejudge` input that judges again
        [again] = read_log(log, folder=explaining.log.parent, max_file_bytes=5 << 20)
    assert isinstance(again, LoggedSend) and again.real == "205" and again.sent.facility_code == facility.code


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--upstream", "portal.example.vn"], "--upstream portal.example.vn: expected an http(s) URL"),
        (["--upstream", "ftp://portal.example.vn"], "expected an http(s) URL"),
        (["--upstream", "https://portal.example.vn", "--trust", "/nonexistent/ca.pem"], "--trust /nonexistent/ca.pem:"),
        (["--upstream", "https://portal.example.vn", "--upstream-timeout", "0"], "must be positive"),
        (["--upstream", "https://portal.example.vn", "--upstream-timeout", "nan"], "must be positive"),
        (["--upstream", "http://[::1"], "--upstream http://[::1: expected an http(s) URL"),
        (["--upstream", "https://bv:S3CRET@portal.example.vn"], "a user or password in the URL is not passed on"),
        (["--upstream", "https://portal.example.vn", "--keep-files", "/"], "must be inside the log's folder"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    options: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mock_portal.cli import main

    with socket.create_server(("127.0.0.1", 0)) as busy:  # an option let through fails on the port, never serves
        port = str(busy.getsockname()[1])
        assert main(["shadow", "--log", str(tmp_path / "log.jsonl"), "--port", port, *options]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("mock-portal shadow: ") and said in error, error
    assert "S3CRET" not in error


def test_an_unknown_log_level_is_a_usage_error(tmp_path: Path) -> None:
    from mock_portal.cli import main

    with pytest.raises(SystemExit) as exited:
        main(
            ["shadow", "--upstream", "https://portal.example.vn", "--log", str(tmp_path / "l"), "--log-level", "bogus"]
        )
    assert exited.value.code == 2


def test_an_upstream_that_cannot_be_reached_closes_the_hospitals_connection(
    tmp_path: Path, facility: Hospital, trust_files: list[str]
) -> None:
    body = urlencode(facility.client.form("61", sample(facility))).encode()
    proxy = start_shadow(tmp_path, f"http://127.0.0.1:{free_port()}", *trust_files)  # nothing listens there
    try:
        assert raw_exchange(proxy.port, "POST", SUBMIT, body, kind=FORM) == b""
        assert proxy.wait_judged(1)["comparisons"][0]["real"] == "reset"
    finally:
        proxy.stop()
    [line] = proxy.lines()
    assert line["reply"] is None and line["failure"] == "reset" and "http_status" not in line


def test_the_upstreams_base_path_comes_first(tmp_path: Path) -> None:
    from mock_portal.api.shadow import ShadowProxy
    from mock_portal.config import Settings
    from mock_portal.evidence.shadow import ShadowBook, ShadowLog
    from mock_portal.portal.intake import IntakePolicy
    from mock_portal.signature.trust import TrustStore

    book = ShadowBook()
    journal = ShadowLog(tmp_path / "log.jsonl")
    side = SideJudge(trust=TrustStore(), policy=IntakePolicy.of(Settings()), journal=journal, book=book)
    proxy = ShadowProxy("https://portal.example.vn/hiap/", side, book, max_body_bytes=1 << 20)
    scope = {"path": "/api/token/take", "raw_path": b"/api/token/take", "query_string": b"a=%20"}
    assert str(proxy.target(scope)) == "https://portal.example.vn/hiap/api/token/take?a=%20"
    journal.close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    upstream = Scripted()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def blunt(tmp_path_factory: pytest.TempPathFactory, scripted: Scripted) -> Iterator[Shadow]:
    """A proxy with --explain in front of an upstream whose replies the tests choose; a reply without
    Content-Length is streamed, so judged on the worker thread."""
    proxy = start_shadow(tmp_path_factory.mktemp("blunt"), f"http://127.0.0.1:{scripted.port}", "--explain")
    yield proxy
    proxy.stop()


ODD_FORM = {"maCskcb": "79001", "username": "bv79001", "loaiHs": "61", "fileBase64Str": "PHg+"}


def _through(
    proxy: Shadow, scripted: Scripted, reply: bytes, body: bytes, kind: str = FORM, **answer: Any
) -> dict[str, Any]:
    """One submission through `proxy` whose upstream answers `reply` (`answer`: its length, header lines):
    the page's JSON once it is done with."""
    counts = proxy.comparisons()["counts"]
    done = sum(counts.get(what, 0) for what in ("judged", "dropped", "unkept", "errors"))
    scripted.answer(reply, **answer)
    assert raw_exchange(proxy.port, "POST", SUBMIT, body, kind=kind).startswith(b"HTTP/1.1 200 ")
    return proxy.wait_judged(done + 1, timeout=20)


def test_odd_replies_are_logged_as_the_schema_has_them_and_shown_bounded(blunt: Shadow, scripted: Scripted) -> None:
    replies = {  # reply as sent: (real on the page, reply in the log)
        b'{"MaKetQua":"200","MaGD":"\\ud800"}': ("200", {"MaKetQua": "200", "MaGD": "\ud800"}),
        b'{"MaKetQua":205,"MaGD":12345,"Extra":"x"}': ("205", {"MaKetQua": 205}),
        b'{"MaKetQua":"<b>' + b"9" * 1000 + b'</b>"}': ("HTTP 200", None),
        b'{"MaKetQua":true}': ("HTTP 200", None),
    }
    long_code = {**ODD_FORM, "maCskcb": "7" * 100_000}
    for reply in replies:
        report = _through(blunt, scripted, reply, urlencode(long_code).encode())
    assert "errors" not in report["counts"]
    assert [c["real"] for c in report["comparisons"][: len(replies)]] == [real for real, _ in replies.values()][::-1]
    assert {c["maCskcb"] for c in report["comparisons"]} == {""}, "a form value that is no facility code"
    lines = blunt.lines()[-len(replies) :]
    assert [line["reply"] for line in lines] == [logged for _, logged in replies.values()]
    assert {len(line["form"]["maCskcb"]) for line in lines} == {64}
    with blunt.log.open("rb") as log:  # every line passes `rejudge`'s schema: it lacks only the file
        assert {getattr(r, "code", None) for r in read_log(log, folder=blunt.log.parent, max_file_bytes=1 << 20)} == {
            "LOG_NO_FILE"
        }


def test_a_body_that_is_no_urlencoded_form_is_passed_on_not_judged(blunt: Shadow, scripted: Scripted) -> None:
    reply = b'{"MaKetQua":"200"}'
    multipart = b'--b\r\nContent-Disposition: form-data; name="maCskcb"\r\n\r\n79001\r\n--b--\r\n'
    before = blunt.comparisons()["counts"]
    _through(blunt, scripted, reply, multipart, kind="multipart/form-data; boundary=b")
    report = _through(blunt, scripted, reply, b"maCskcb=\xff\xfe")  # urlencoded, not UTF-8
    counts = report["counts"]
    assert counts["unkept"] - before.get("unkept", 0) == 2 and counts.get("judged") == before.get("judged")


def test_a_request_without_a_body_goes_on_without_one(blunt: Shadow, scripted: Scripted) -> None:
    scripted.answer(b"{}", 2)
    assert raw_exchange(blunt.port, "GET", "/sandbox/health").startswith(b"HTTP/1.1 200 ")
    head, _, body = scripted.requests[-1].partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and body == b""


def test_a_target_no_url_can_carry_is_the_proxys_400(blunt: Shadow) -> None:
    assert raw_exchange(blunt.port, "OPTIONS", "*").startswith(b"HTTP/1.1 400 ")


def test_explain_cuts_a_reply_cut_midway_at_the_same_byte(blunt: Shadow, scripted: Scripted) -> None:
    scripted.answer(b'{"MaKetQua":"2', 100)
    received = raw_exchange(blunt.port, "POST", SUBMIT, urlencode(ODD_FORM).encode(), kind=FORM)
    assert received.startswith(b"HTTP/1.1 200 ") and received.endswith(b'\r\n\r\n{"MaKetQua":"2'), received
    assert b"content-length: 100" in received.lower()


def test_a_reply_cut_midway_is_a_reset_on_the_page_as_in_the_log(blunt: Shadow, scripted: Scripted) -> None:
    report = _through(blunt, scripted, b'{"MaKetQua":"2', urlencode(ODD_FORM).encode(), length=100)
    assert report["comparisons"][0]["real"] == "reset"
    assert (blunt.lines()[-1]["reply"], blunt.lines()[-1]["failure"]) == (None, "reset")


@pytest.mark.parametrize("length", [True, False], ids=["explained", "streamed"])
def test_a_compressed_reply_is_judged_on_what_it_says(blunt: Shadow, scripted: Scripted, length: bool) -> None:
    """The hospital's client undoes a Content-Encoding: so does the judging, on its copy (the bytes passed on
    stay compressed)."""
    packed = gzip.compress(b'{"MaKetQua":"205","MaGD":"g1"}')
    kind = {"length": len(packed) if length else None, "head": b"content-encoding: gzip\r\n"}
    report = _through(blunt, scripted, packed, urlencode(ODD_FORM).encode(), **kind)
    assert report["comparisons"][0]["real"] == "205"
    assert blunt.lines()[-1]["reply"] == {"MaKetQua": "205", "MaGD": "g1"}


def test_a_status_beyond_599_is_logged_as_any_other(tmp_path: Path) -> None:
    from mock_portal.config import Settings
    from mock_portal.evidence.shadow import Seen, ShadowLog, compare
    from mock_portal.portal.intake import IntakePolicy
    from mock_portal.signature.trust import TrustStore

    seen = Seen(datetime.now(UTC), urlencode(ODD_FORM).encode(), 999, b"<html>")
    comparison = compare(seen, ODD_FORM, trust=TrustStore(), policy=IntakePolicy.of(Settings()))
    journal = ShadowLog(tmp_path / "log.jsonl")
    assert comparison.real == "HTTP 999" and journal.write(seen, ODD_FORM, comparison, 1 << 20)
    journal.close()
    [line] = [json.loads(text) for text in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert (line["failure"], line["http_status"]) == ("http", 999)


def test_a_write_after_the_log_is_closed_writes_nothing(tmp_path: Path) -> None:
    from mock_portal.config import Settings
    from mock_portal.evidence.shadow import Seen, ShadowLog, compare
    from mock_portal.portal.intake import IntakePolicy
    from mock_portal.signature.trust import TrustStore

    seen = Seen(datetime.now(UTC), urlencode(ODD_FORM).encode(), 200, b'{"MaKetQua":"200"}')
    comparison = compare(seen, ODD_FORM, trust=TrustStore(), policy=IntakePolicy.of(Settings()))
    journal = ShadowLog(tmp_path / "log.jsonl")
    assert journal.write(seen, ODD_FORM, comparison, 1 << 20)
    journal.close()  # SideJudge.stop's join timed out: the judging it waited for ends later
    assert not journal.write(seen, ODD_FORM, comparison, 1 << 20)
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_the_judging_runs_niced_in_a_process_of_its_own_and_one_that_dies_is_replaced(tmp_path: Path) -> None:
    """Judging in the proxy's process took the interpreter from its event loop (11-15 ms added to replies
    sent back to back); Ctrl-C does not stop it; a judging process killed (SIGKILL) costs one judging,
    counted as an error."""
    from mock_portal.config import Settings
    from mock_portal.evidence.shadow import JUDGE_NICENESS, Seen, ShadowBook, ShadowLog
    from mock_portal.portal.intake import IntakePolicy
    from mock_portal.signature.trust import TrustStore

    book = ShadowBook()
    side = SideJudge(
        trust=TrustStore(), policy=IntakePolicy.of(Settings()), journal=ShadowLog(tmp_path / "log.jsonl"), book=book
    )
    seen = Seen(datetime.now(UTC), urlencode(ODD_FORM).encode(), 200, b'{"MaKetQua":"200"}')

    def judged() -> object:
        assert side.reserve(len(seen.body))
        return side.judge_now(seen)

    side.start()
    try:
        pid = side._judging_process().submit(os.getpid).result()
        assert pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + JUDGE_NICENESS)
        assert getattr(judged(), "real", None) == "200"
        os.kill(pid, signal.SIGINT)  # Ctrl-C reaches the whole process group: the proxy decides when it stops
        assert getattr(judged(), "real", None) == "200" and not book.counts["errors"]
        os.kill(pid, signal.SIGKILL)
        assert judged() is None and book.counts["errors"] == 1
        assert getattr(judged(), "real", None) == "200" and book.counts["judged"] == 3
    finally:
        side.stop()
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3
