"""The field log (fixtures/field_log.py) sent to a portal in `strict` mode, as one facility in the portal's
`strict` mode and one in `portal` mode: every exchange logged as sent and answered, each kind of file
answered as the sandbox grades it; `mock-portal rejudge` on those logs answers every logged code in the
mode the portal judged in and differs in the other on exactly the files graded WARN; a log broken on
purpose is reported line by line; and nothing rejudge (or the shadow proxy) writes holds the seeded
people, ID numbers, dates of birth, password or tokens.

`FIELD_EVIDENCE_COUNT` sets the number of exchanges per log (default 150: every kind of the mix comes
up); `make field-evidence` runs this module with 500. Marked `proof`: `make test` leaves it out (with 150 it
took 30-40 s of CPU there: the SQLite pass went from 3:56 to 4:40); tests/test_rejudge.py keeps rejudge's
own matrix, bad-line and privacy tests in `make test`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import subprocess
import sys
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from fixtures.field_log import ANSWERS, KINDS, Generated, Sender, generate
from tests.live import LiveServer
from tests.shadow import start_shadow

pytestmark = [pytest.mark.portal(env={"PORTAL_STRICTNESS": "strict"}), pytest.mark.proof]

COUNT = int(os.environ.get("FIELD_EVIDENCE_COUNT", "150"))
SEED = 27
FACILITY = {"strict": "79271", "portal": "79272"}


def log_in(mode: str, portal: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """A log of COUNT exchanges with the module's portal as a facility in `strict` mode (the portal's) or
    in `portal` mode; a fifth of the files valid, so that in 150 every deviant kind comes up."""
    sender = Sender(code=FACILITY[mode], username=f"{FACILITY[mode]}_BV")
    out = tmp_path_factory.mktemp(f"field-log-{mode}")
    strictness = None if mode == "strict" else mode  # strict: the portal's own
    made = generate(
        portal.base_url, portal.admin_token, out, count=COUNT, seed=SEED, sender=sender, strictness=strictness,
        accept_share=0.2,
    )  # fmt: skip
    assert made.mode == mode
    return made


@pytest.fixture(scope="module")
def strict_log(portal: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return log_in("strict", portal, tmp_path_factory)


@pytest.fixture(scope="module")
def portal_log(portal: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return log_in("portal", portal, tmp_path_factory)


@pytest.fixture(params=["strict", "portal"])
def field_log(request: pytest.FixtureRequest) -> Generated:
    """The log of each mode in turn."""
    return request.getfixturevalue(f"{request.param}_log")


def lines_of(log: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in log.read_text(encoding="utf-8").splitlines()]


def file_of(line: dict[str, Any], folder: Path) -> bytes:
    """The file a line sent; b"" for a base64 that does not decode (a kind of file the portal refuses)."""
    form = line["form"]
    if "file" in form:
        return (folder / form["file"]).read_bytes()
    with contextlib.suppress(ValueError):
        return base64.b64decode(form["fileBase64Str"], validate=True)
    return b""


def test_each_exchange_is_logged_as_sent_and_answered_as_its_kind_is_graded(field_log: Generated) -> None:
    """In `strict` mode a deviation graded WARN is refused like any other; in `portal` mode it is accepted."""
    logged = lines_of(field_log.log)
    assert len(logged) == len(field_log.lines) == COUNT
    instants = [datetime.fromisoformat(line["sent_at"]) for line in logged]
    assert all(at.utcoffset() is not None for at in instants) and instants == sorted(instants)
    for line, made in zip(logged, field_log.lines, strict=True):
        form = line["form"]
        assert {"maCskcb", "token", "id_token", "username", "password", "loaiHs"} <= set(form), form.keys()
        assert ("fileBase64Str" in form) != ("file" in form)
        if made.real_code in ANSWERS:
            assert line["reply"]["MaKetQua"] == made.real_code == made.kind.code(field_log.mode), (made, line)
        else:  # the facility's fault plan: no reply, or not the portal's verdict
            assert line["reply"] is None or line["reply"]["MaKetQua"] == made.real_code == "500", line
    pairs = {(kind.name, doc_type) for kind in KINDS for doc_type in kind.doc_types}
    assert {(made.kind.name, made.doc_type) for made in field_log.lines} == pairs
    assert {made.real_code for made in field_log.lines} == {"200", "205", "500", "http_502", "reset"}


def test_resends_send_the_same_file_and_files_beside_the_log_are_the_ones_sent(field_log: Generated) -> None:
    logged, folder = lines_of(field_log.log), field_log.log.parent
    resent = [n for n, made in enumerate(field_log.lines) if made.resend]
    failed = [n for n, made in enumerate(field_log.lines[:-1]) if made.real_code not in ANSWERS]
    assert resent[0] > 0 and failed and {n + 1 for n in failed} < set(resent)  # a failed send is sent again
    for n in resent:
        assert [logged[n]["form"].get(name) for name in ("fileBase64Str", "file", "loaiHs")] == [
            logged[n - 1]["form"].get(name) for name in ("fileBase64Str", "file", "loaiHs")
        ]
    as_files = [line for line in logged if "file" in line["form"]]
    assert as_files, "some files are logged as files"
    for line in as_files:
        assert hashlib.sha256((folder / line["form"]["file"]).read_bytes()).hexdigest() == line["file_sha256"]


def test_the_trust_material_is_the_portals(strict_log: Generated) -> None:
    """The CA that issued the certificates and the CRL that revokes one: `rejudge --trust --crl` judges
    with what the portal judged with."""
    ca = x509.load_pem_x509_certificate(strict_log.ca.read_bytes())
    crl = x509.load_pem_x509_crl(strict_log.crl.read_bytes())
    assert crl.is_signature_valid(ca.public_key()) and len(list(crl)) == 1


def test_command_writes_a_log_and_refuses_a_wrong_admin_token(portal: LiveServer, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "fixtures", "field-log", "--portal", portal.base_url, "--out", str(tmp_path)]
    done = subprocess.run(
        [*command, "--count", "3", "--admin-token", portal.admin_token], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert len(lines_of(tmp_path / "exchanges.jsonl")) == 3 and "mock-portal rejudge" in done.stdout
    refused = subprocess.run([*command, "--admin-token", "wrong"], capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "/sandbox/clock → 401" in refused.stderr


# --- mock-portal rejudge on the log ----------------------------------------------------------------


def rejudge(log: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mock-portal rejudge LOG` with the log's own trust material (ca.pem, crl.pem beside it)."""
    trust = ["--trust", str(log.parent / "ca.pem"), "--crl", str(log.parent / "crl.pem")]
    command = [sys.executable, "-m", "mock_portal.cli", "rejudge", str(log), *trust, *options]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def report_of(log: Path, out: Path) -> dict[str, Any]:
    done = rejudge(log, "--format", "json", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text(encoding="utf-8")))


def test_rejudge_answers_as_the_portal_did_and_differs_in_the_other_mode_on_warn_graded_files(
    field_log: Generated, tmp_path: Path
) -> None:
    """The diagonal: in the mode the portal judged in, every code `rejudge` gives is the one logged. In the
    other mode exactly the files graded WARN differ (accepted in `portal` mode, refused in `strict`)."""
    report = report_of(field_log.log, tmp_path / "report.json")
    upstream = field_log.mode
    other = "portal" if upstream == "strict" else "strict"
    failed = sum(made.real_code not in ANSWERS for made in field_log.lines)
    assert report["counts"]["lines"] == report["counts"]["judged"] == COUNT and report["line_errors"] == []
    assert report["counts"]["agreements"][upstream] == report["counts"]["comparable"] == COUNT - failed
    for mode in (upstream, other):
        expected: dict[str, dict[str, int]] = {}
        for made in field_log.lines:
            row = expected.setdefault(made.real_code, {})
            row[made.kind.code(mode)] = row.get(made.kind.code(mode), 0) + 1
        assert report["matrices"][mode] == expected, mode
    warned = {
        n
        for n, made in enumerate(field_log.lines, start=1)
        if made.kind.grading == "warn" and made.real_code in ANSWERS
    }
    assert warned and {d["line"] for d in report["disagreements"]} == warned
    assert {tuple(d["disagree_in"]) for d in report["disagreements"]} == {(other,)}
    assert all(d["first_error"]["strict"] and d["first_error"]["portal"] is None for d in report["disagreements"])


def test_rejudge_reports_each_broken_line_and_judges_the_others(strict_log: Generated) -> None:
    """A log broken on purpose, line by line (the generator never writes such lines): each is reported with
    its number and a code, never its value, and the run goes on to the end."""
    logged = lines_of(strict_log.log)
    accepted = next(
        line for line in logged if "fileBase64Str" in line["form"] and (line["reply"] or {}).get("MaKetQua") == "200"
    )
    as_file = next(line for line in logged if "file" in line["form"])
    naive = accepted["sent_at"][:-6]
    broken = [
        accepted,
        '{"sent_at": "2026-03-02T09:15:00+07:00", "form": {',
        {name: value for name, value in accepted.items() if name != "sent_at"},
        {**accepted, "sent_at": naive},
        {**accepted, "form": {**accepted["form"], "loaiHs": "62"}},
        {**as_file, "form": {**as_file["form"], "file": "files/not-there.xml"}},
        {**accepted, "form": {**accepted["form"], "fileBase64Str": "A" * 8_000_000}},
        {**as_file, "form": {name: value for name, value in as_file["form"].items() if name != "file"}},
        as_file,
    ]
    log = strict_log.log.parent / "broken.jsonl"
    log.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in broken), encoding="utf-8")
    report = report_of(log, log.with_suffix(".json"))
    errors = {error["line"]: error["code"] for error in report["line_errors"]}
    assert errors == {
        2: "LOG_NOT_JSON",
        3: "LOG_SCHEMA",
        4: "LOG_TIME_NAIVE",
        6: "LOG_FILE_MISSING",
        7: "LOG_LINE_TOO_LONG",
        8: "LOG_NO_FILE",
    }
    assert report["counts"] == {**report["counts"], "lines": 9, "judged": 3, "line_errors": 6}
    [unknown] = [d for d in report["disagreements"] if d["line"] == 5]  # judged: refused as the portal refuses it
    assert unknown["disagree_in"] == ["portal", "strict"]
    assert {cause["code"] for cause in unknown["first_error"].values()} == {"FILE_LOAIHS_UNKNOWN"}
    messages = " ".join(error["message_en"] + error["message_vi"] for error in report["line_errors"])
    assert "sent_at" in messages and "file_sha256" in messages and naive not in messages
    text = rejudge(log)
    assert text.returncode == 0 and all(f"line {n}: {code}" in text.stdout for n, code in errors.items())


# --- privacy: nothing personal in anything rejudge (or the shadow proxy) writes ----------------------------

PRIVATE = Sender(code="79273", username="79273_RiengTu-Zq7", password="Mật-khẩu-Zq-2718")
"""An account whose name and password are distinctive: found anywhere but in the log, they leaked."""


@pytest.fixture(scope="module")
def private_log(portal: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """A short log with its own people (seed 2718), half the files accepted, a third of them beside the log."""
    out = tmp_path_factory.mktemp("private-log")
    return generate(
        portal.base_url, portal.admin_token, out, count=40, seed=2718, sender=PRIVATE, accept_share=0.5,
        file_share=0.3,
    )  # fmt: skip


def seeded(made: Generated) -> set[str]:
    """What a written file must never hold: every name, ID number and date of birth sent, the password
    (plain, and its MD5 as sent, in either case) and every token taken."""
    md5 = {secret.lower() for secret in made.secrets if len(secret) == 32}
    return made.personal | made.secrets | md5


def readable(data: bytes) -> str:
    """A written file as a person (or a program) would read it: JSON's \\u escapes and HTML's entities
    undone, Vietnamese letters in one normal form (a file sent in NFD must not hide a name)."""
    text = data.decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), ensure_ascii=False)
    return unicodedata.normalize("NFC", html.unescape(text))


def leaks(written: dict[str, bytes], values: set[str]) -> dict[str, set[str]]:
    """Per written thing, the values found in it."""
    normal = {unicodedata.normalize("NFC", value) for value in values}
    found = {name: {value for value in normal if value in readable(data)} for name, data in written.items()}
    return {name: values for name, values in found.items() if values}


def test_seeded_people_and_secrets_are_in_the_log_only(private_log: Generated, tmp_path: Path) -> None:
    """rejudge in every format, and its evidence file: none of the people's names,
    ID numbers (CCCD, BHXH, BHYT) or dates of birth, the password or the tokens is in anything it writes,
    nor the account; all of them are in the log (so the search can find them)."""
    values = seeded(private_log)
    folder = private_log.log.parent
    sent = {"files sent": b"".join(file_of(line, folder) for line in lines_of(private_log.log))}
    people = leaks(sent, private_log.personal)["files sent"]  # all but what a kind of file leaves out
    assert len(people) > 0.9 * len(private_log.personal) > 100 and any(len(v) == 12 and v.isdigit() for v in people)
    logged = leaks({"log": private_log.log.read_bytes()}, values)["log"]
    assert logged == private_log.secrets - {PRIVATE.password}  # the MD5 as sent, the tokens
    written: dict[str, bytes] = {}
    for form in ("json", "text", "html"):
        options = [
            "--format",
            form,
            "--out",
            str(tmp_path / f"report.{form}"),
            "--export",
            str(tmp_path / "evidence.json"),
        ]
        done = rejudge(private_log.log, *options)
        assert done.returncode == 0, done.stderr
        written |= {f"stdout of {form}": done.stdout.encode(), f"stderr of {form}": done.stderr.encode()}
    written |= {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert {"report.text", "report.json", "report.html", "evidence.json"} <= set(written)
    assert len(written["report.html"]) > 1000 and written["evidence.json"].count(b'"real_code"') == len(
        lines_of(private_log.log)
    )
    assert leaks(written, values | {PRIVATE.username}) == {}


def test_the_shadow_proxy_writes_and_shows_nothing_personal(
    portal: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The log sent through `mock-portal shadow` (no --keep-files): its log, its output, its page and its
    JSON hold no name, ID number, date of birth, password or token (the account's username it logs)."""
    directory = tmp_path_factory.mktemp("shadow")
    proxy = start_shadow(directory, portal.base_url)
    try:
        sender = Sender(code="79274", username="79274_QuaBong-Zq8", password="Mật-khẩu-bóng-Zq-3141")
        out = tmp_path_factory.mktemp("through-shadow")
        made = generate(
            portal.base_url, portal.admin_token, out, count=30, seed=3141, sender=sender, accept_share=0.5,
            via=proxy.base_url, fail_every=None,
        )  # fmt: skip
        proxy.wait_judged(30)
        shown = {page: httpx.get(f"{proxy.base_url}/shadow/{page}", timeout=10).content for page in ("", "comparisons")}
    finally:
        proxy.stop()
    written = {path.name: path.read_bytes() for path in directory.rglob("*") if path.is_file()}
    assert len(written["shadow.jsonl"].splitlines()) == 30
    assert leaks(written | shown, seeded(made)) == {}
