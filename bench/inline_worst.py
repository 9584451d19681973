"""The worst wire submission the gateway still serves on the event loop: how long it holds the loop.

    .venv/bin/python bench/inline_worst.py [--repeat N]

The gateway serves a submission inline when its body is within `Settings.inline_limit` and its file
passes the pre-scan (`mock_portal.portal.intake.light`); everything else goes to a thread. This
builds hostile signed GCS files (the hostile part inside the signed data element, so the signature's
digests cover it and every check runs; character references, which signing writes out, and extra
references and certificates are added after signing: their digest or signature then fails, after the
same work) — many empty elements, deep nesting, many attributes, many
namespace declarations, long text, many character references, comments, many references, many
certificates, and all of them at once — each grown as far as it still goes inline (found by bisection
with the gateway's own test), and times the full handling of each in the ASGI app `mock-portal serve`
runs (`bench/stack.py`: gateway, Connexion, handler, examination, store), one request at a time: that
is the time the event loop is held (wall, and the loop thread's CPU time). One form over the pre-scan
(4,200 empty elements, issue 24) is timed too, on its thread. The last line is machine-readable; see
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fixtures.certificates import build_xml
from fixtures.hospital import SUBMIT_PATH
from fixtures.pki import Credential, TestPKI
from fixtures.samples import sample_fields
from fixtures.signer import sign_document
from mock_portal.app import create_asgi
from mock_portal.config import Settings
from mock_portal.documents import DocumentType
from mock_portal.portal.intake import light

sys.path.insert(0, str(Path(__file__).parent))
from ingest import FACILITY, sign_pool  # noqa: E402  (the same documents as the HTTP benchmark)
from stack import _post, _provision  # noqa: E402  (the same in-process stack)

GCS = DocumentType.GCS
END = f"</{GCS.data_tag}>".encode()
REFERENCE = re.compile(rb"<Reference URI=\"#Id-.*?</Reference>")
CERTIFICATE = re.compile(rb"<X509Certificate>.*?</X509Certificate>")


def _signed(credential: Credential, inside: bytes, serial: int = 1) -> bytes:
    """A signed GCS with `inside` just before its data element's end tag."""
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    fields = sample_fields(GCS, facility_code=FACILITY, serial=serial, issued_at=when, seed=serial)
    xml = build_xml(GCS, fields).replace(END, inside + END, 1)
    return sign_document(xml, credential.key, credential.cert, signing_time=when, chain=credential.chain)


def _repeated(pattern: re.Pattern[bytes], xml: bytes, n: int) -> bytes:
    """`xml` with the first match of `pattern` written n + 1 times (after signing: the SignatureValue no
    longer matches, but every reference is dereferenced and digested, every certificate parsed)."""
    found = pattern.search(xml)
    assert found is not None
    return xml[: found.end()] + found.group(0) * n + xml[found.end() :]


def variants(credential: Credential) -> dict[str, Callable[[int], bytes]]:
    """Hostile files by name, each grown by its parameter n."""
    attributes = b" ".join(b'a%d="v"' % i for i in range(31))
    namespaces = b" ".join(b'xmlns:p%d="urn:p%d"' % (i, i) for i in range(31))
    long_text = b"<t>" + b"x" * 14_000 + b"</t>"
    text = b"<GHI_CHU>" + b"x" * 1000  # a field the schema knows nothing of: long text, n KB of it
    return {
        "empty elements": lambda n: _signed(credential, b"<x/>" * n),
        "deep nesting (60 levels)": lambda n: _signed(credential, (b"<d>" * 60 + b"</d>" * 60) * n),
        "31 attributes per element": lambda n: _signed(credential, b"<x %s/>" % attributes * n),
        "31 namespaces per element": lambda n: _signed(credential, b"<x %s/>" % namespaces * n),
        "long text (n KB)": lambda n: _signed(credential, text + b"x" * 1000 * n + b"</GHI_CHU>"),
        "character references": lambda n: _signed(credential, b"<c>X</c>").replace(b"<c>X", b"<c>" + b"&#x41;" * n),
        "comments": lambda n: _signed(credential, b"<!---->" * n),
        "references to long text": lambda n: _repeated(REFERENCE, _signed(credential, long_text), n),
        "certificates": lambda n: _repeated(CERTIFICATE, _signed(credential, b""), n),
        "all at once": lambda n: _repeated(
            REFERENCE, _repeated(CERTIFICATE, _signed(credential, b"<x/>" * n + b"<y %s/>" % attributes * 2), 3), 2
        ),
    }


def body_of(form: dict[str, str], xml: bytes) -> bytes:
    return urlencode({**form, "fileBase64Str": base64.b64encode(xml).decode()}).encode()


def inline(body: bytes, xml: bytes, settings: Settings) -> bool:
    """The gateway's test (`api/gateway.py`): small enough, and the file passes the pre-scan."""
    return len(body) <= settings.inline_limit and light(base64.b64encode(xml).decode(), settings.max_file_bytes)


def largest(make: Callable[[int], bytes], form: dict[str, str], settings: Settings) -> int:
    """The largest n whose file still goes inline (bisection; n = 0 always does)."""
    low, high = 0, 1
    while inline(body_of(form, make(high)), make(high), settings):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if inline(body_of(form, make(middle)), make(middle), settings) else (low, middle)
    return low


async def timed(app: Any, bodies: list[bytes]) -> tuple[list[float], list[float], set[str]]:
    """Each request's handling time and the loop thread's CPU time in it (ms), and the codes answered. An
    inline request never suspends, so its handling time is the time the loop is held (the wall time also
    counts the process being descheduled and the commit's fsync: on a shared machine, CPU time is the
    steadier figure)."""
    times, cpu, codes = [], [], set()
    for body in bodies:
        started, started_cpu = time.perf_counter(), time.thread_time()
        status, raw = await _post(app, SUBMIT_PATH, body)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        codes.add(str(json.loads(raw).get("MaKetQua")) if status == 200 else f"HTTP {status}")
    return times, cpu, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per form")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="inline-worst-") as tmp:
        admin_token = secrets.token_urlsafe(24)
        settings = Settings.from_env({}, database_url=f"sqlite:///{tmp}/bench.sqlite3", admin_token=admin_token)
        app = create_asgi(settings)
        loop = asyncio.new_event_loop()
        pki = TestPKI.create({FACILITY: "Bệnh viện Bench"})
        form = loop.run_until_complete(_provision(app, admin_token, pki))
        credential: Credential = form.pop("_cred")  # type: ignore[assignment]
        cases: list[tuple[str, int, list[bytes], bool]] = []
        pool = sign_pool(credential, FACILITY, args.repeat + 3)
        cases.append(("certificate's GCS", 0, pool, True))
        for name, make in variants(credential).items():
            n = largest(make, form, settings)
            cases.append((name, n, [make(n)] * (args.repeat + 3), True))
        over = _signed(credential, b"<x/>" * 4200)  # issue 24: 22 KB of file, under the byte limit
        cases.append(("4,200 empty elements (over)", 4200, [over] * (args.repeat + 3), False))
        worst = worst_cpu = 0.0
        columns = ("n", "body", "inline", "median", "max", "cpu med", "cpu max")
        print(f"{'form':32} " + " ".join(f"{c:>7}" for c in columns) + "  codes")
        for name, n, docs, expected in cases:
            bodies = [body_of(form, xml) for xml in docs]
            goes_inline = all(inline(body, xml, settings) for body, xml in zip(bodies, docs, strict=True))
            assert goes_inline == expected, name
            loop.run_until_complete(timed(app, bodies[:3]))  # warm
            times, cpu, codes = loop.run_until_complete(timed(app, bodies[3:]))
            if goes_inline:
                worst, worst_cpu = max(worst, max(times)), max(worst_cpu, max(cpu))
            print(
                f"{name:32} {n:>7} {len(bodies[0]):>7} {goes_inline!s:>7} {statistics.median(times):>7.2f}"
                f" {max(times):>7.2f} {statistics.median(cpu):>7.2f} {max(cpu):>7.2f}"
                f"  {','.join(sorted(codes))}"
            )
        summary = {"worst_inline_max_ms": round(worst, 2), "worst_inline_cpu_ms": round(worst_cpu, 2)}
        print(json.dumps({**summary, "inline_limit": settings.inline_limit}))
        return 0


if __name__ == "__main__":
    sys.exit(main())
