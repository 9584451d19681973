"""`mock-portal`: run the mock portal.

mock-portal --version
mock-portal serve [--host H] [--port P] [--workers N] [--demo]
mock-portal report (--period 2025-H1 | --from 2025-01-01 --to 2025-06-30) [--workspace ID]
                   [--format csv|json|html] [--out FILE]
mock-portal attestation-key (show | rotate) [--json]
mock-portal migrate
mock-portal shadow --upstream URL [--host H] [--port P] [--log FILE] [--keep-files DIR]
                   [--trust CA.pem ...] [--crl CRL ...] [--explain] [--upstream-timeout S]
mock-portal rejudge LOG [--trust CA.pem ...] [--crl CRL ...] [--format text|json|html] [--out FILE]
                    [--export FILE (with --trust)]
mock-portal fidelity [--write FILE | --fields FILE | --evidence FILE [FILE ...] [--json]]
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from mock_portal import sandbox_version
from mock_portal.config import Settings, SettingsError
from mock_portal.signature.options import add_trust_options

if TYPE_CHECKING:
    import httpx

DEMO_GROUP = "mock_portal.demo"
"""The entry point group where `serve --demo` finds the demo's seeding (`fixtures/demo.py`, which makes the
hospital side's test PKI): the portal names it in no import, as fixtures builds on the portal."""


class Demo(Protocol):
    """What `serve --demo` needs of the demo's seeding."""

    def demo_secret(self, name: str) -> str:
        """A secret (`admin_token`, `ipss_api_key`) kept across restarts."""
        ...

    def provision_demo(self, settings: Settings) -> str:
        """Creates the demo facility (idempotent); what to print about it."""
        ...


def _settings(defaults: dict[str, object] | None = None, **flags: object) -> Settings:
    """The command's settings, read from `PORTAL_*` once (over `defaults`, under the command's `flags`);
    the calendar is loaded here too, so a bad one stops the command before anything starts."""
    from mock_portal.deadline.working_time import load_calendar

    settings = Settings.from_env(defaults=defaults, **flags)
    try:
        load_calendar(settings.calendar)
    except ValueError as exc:
        raise SettingsError([f"PORTAL_CALENDAR={settings.calendar!r}: {exc}"]) from None
    return settings


def _installed_demo() -> Demo | None:
    """The demo's seeding, found through its entry point; None when it is not installed."""
    found = entry_points(group=DEMO_GROUP)
    return cast(Demo, next(iter(found)).load()) if found else None


def _serve(args: argparse.Namespace) -> int:
    flags = {name: value for name, value in (("host", args.host), ("port", args.port)) if value}
    demo = _installed_demo() if args.demo else None
    if args.demo and demo is None:
        print(
            f"mock-portal serve --demo: no demo installed (entry point {DEMO_GROUP}: run make install)", file=sys.stderr
        )
        return 2
    # the demo keeps its admin token and IPSS key across restarts (var/demo, mode 0600) unless PORTAL_* set them
    defaults: dict[str, object] = (
        {name: demo.demo_secret(name) for name in ("admin_token", "ipss_api_key")} if demo else {}
    )
    settings = _settings(defaults, **flags)
    from mock_portal.evidence.field import loaded_field_evidence

    loaded_field_evidence(settings)  # a bad file stops the command here, not each worker as it starts
    from mock_portal.serving import cannot_listen, serve  # the app's imports, once the settings are good

    busy = cannot_listen(settings.host, settings.port)
    if busy:  # before any token is printed: a second start must not look like it worked
        print(f"mock portal: {busy} (another portal running? set PORTAL_PORT or --port)", file=sys.stderr)
        return 1
    if demo:
        print(demo.provision_demo(settings), flush=True)
    print(_banner(settings), flush=True)
    return serve(settings, workers=args.workers, log_level=args.log_level, access_log=args.access_log)


def _banner(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    return (
        f"mock portal on {base}\n"
        f"  dashboard:  {base}/sandbox/ui/  (log in with the admin token)\n"
        f"  Swagger UI: {base}/ui\n"
        f"  for the README's commands, in your shell:\n"
        f"    export PORTAL_ADMIN_TOKEN={settings.admin_token}\n"
        f"    export PORTAL_IPSS_API_KEY={settings.ipss_api_key}"
    )


def _report(args: argparse.Namespace) -> int:
    """The six-monthly report from the database named by PORTAL_DATABASE_URL (no server needed)."""
    from mock_portal.portal import workspaces
    from mock_portal.portal.service import build_portal
    from mock_portal.reports import formats, semiannual
    from mock_portal.results.errors import PortalError

    root = build_portal(_settings())
    try:
        period = semiannual.parse_period(args.period, args.date_from, args.date_to)
        if args.workspace != workspaces.DEFAULT:
            workspaces.check_id(args.workspace)
            if root.repo.get_workspace(args.workspace) is None:
                raise workspaces.not_found(args.workspace)
    except PortalError as exc:
        print(f"mock-portal report: {exc.detail_en}", file=sys.stderr)
        return 2
    portal = root.workspace(args.workspace)
    return _write("report", formats.render(semiannual.for_portal(portal, period), args.format), args.out)


def _write(command: str, body: bytes, out: str | None) -> int:
    """`body` to `out` (standard output for None or "-"); a file that cannot be written is a usage error."""
    if out in (None, "-"):
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return 0
    try:
        Path(out).write_bytes(body)
    except OSError as exc:
        print(f"mock-portal {command} --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def _rejudge(args: argparse.Namespace) -> int:
    """A log of exchanges with the real portal judged again, offline (no server, no database): where the
    sandbox and the real portal disagree, in both modes, at the instant each was sent."""
    from mock_portal.evidence.field import EvidenceExport
    from mock_portal.evidence.log import read_log
    from mock_portal.evidence.rejudge import rejudge
    from mock_portal.evidence.render import render
    from mock_portal.portal.intake import IntakePolicy
    from mock_portal.signature.trust import TrustFileError, trust_from_files

    if args.export and not args.trust:
        print(
            "mock-portal rejudge --export: give --trust: without a CA every certificate chain fails, and the file"
            " would contradict the signature grades",
            file=sys.stderr,
        )
        return 2
    unwritable = _unwritable("--out", args.out) or _unwritable("--export", args.export)
    if unwritable:  # before the run, not after a long one
        print(f"mock-portal rejudge {unwritable}", file=sys.stderr)
        return 2
    settings = _settings()
    log = Path(args.log)
    try:
        trust = trust_from_files(args.trust, args.crl)
        with log.open("rb") as lines:
            entries = read_log(lines, folder=log.parent, max_file_bytes=settings.max_file_bytes)
            export = EvidenceExport(Path(args.export)) if args.export else None
            sink = export.add if export else None
            report = rejudge(entries, trust=trust, policy=IntakePolicy.of(settings), log=log.name, sink=sink)
            written = export.close() if export else []
    except TrustFileError as exc:
        print(f"mock-portal rejudge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mock-portal rejudge {exc.filename or log}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not args.trust:
        print("mock-portal rejudge: no --trust CA given, so no certificate chain can be found", file=sys.stderr)
    for path in written:
        print(f"mock-portal rejudge: evidence without personal data written to {path}", file=sys.stderr)
    written_out = _write("rejudge", render(report, args.format).encode("utf-8"), args.out)
    if report.unjudgeable and not written_out:
        print(
            f"mock-portal rejudge: the sandbox failed on {report.unjudgeable} send(s) (LOG_UNJUDGEABLE, tracebacks"
            " above): a bug to report",
            file=sys.stderr,
        )
        return 1
    return written_out


def _unwritable(option: str, out: str | None) -> str | None:
    """Why a file to write later (`--out FILE`, `--export FILE`) cannot be, said as `_write` says it; None
    when it looks writable (standard output, a file in a writable folder). It only looks: nothing is made."""
    if out in (None, "-"):
        return None
    path = Path(out)
    if not path.parent.is_dir():
        problem = "No such file or directory"
    elif path.is_dir():
        problem = "Is a directory"
    elif not os.access(path if path.exists() else path.parent, os.W_OK):
        problem = "Permission denied"
    else:
        return None
    return f"{option} {out}: {problem}"


def _fidelity(args: argparse.Namespace) -> int:
    from mock_portal import fidelity

    if args.evidence:
        return _field_evidence(args.evidence, as_json=args.json)
    if args.fields:
        page = Path(args.fields)
        try:  # a file that cannot be read or has no tables to fill is the user's mistake: say so, no traceback
            page.write_text(fidelity.with_field_tables(page.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else exc
            print(
                f"mock-portal fidelity --fields {page}: {why} (give docs/documents.md, which has them)", file=sys.stderr
            )
            return 2
        return 0
    text = fidelity.render_markdown()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _field_evidence(paths: list[str], *, as_json: bool) -> int:
    """Which grades the evidence files would move, and what they contradict (docs/field-evidence.md)."""
    import json

    from mock_portal.evidence.field import EvidenceFileError, load_evidence
    from mock_portal.evidence.moves import render_text, review

    try:
        done = review(load_evidence(paths))
    except EvidenceFileError as exc:
        print(f"mock-portal fidelity --evidence: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(done.to_dict(), ensure_ascii=False, indent=2) + "\n" if as_json else render_text(done))
    return 0


def _attestation_key(args: argparse.Namespace) -> int:
    """The deployment's attestation keys from the database named by PORTAL_DATABASE_URL (no server
    needed; running servers sign with the new key from their next attestation on)."""
    import json

    from mock_portal.attestation import keys
    from mock_portal.portal.service import build_portal

    repo = build_portal(_settings()).repo
    if args.action == "rotate":
        new, retired = keys.rotate(repo)
        print(f"new active key {new.id}" + (f"; {retired.id} retired (still published)" if retired else ""))
    published = [key.to_dict() for key in keys.published(repo)]
    if args.json:
        print(json.dumps(published, indent=2))
        return 0
    for key in published:
        until = key["valid_until"] or "now"
        print(f"{key['id']}  {key['algorithm']}  {key['status']:<7}  {key['valid_from']} → {until}")
        if key["status"] == "active":
            print(str(key["public_pem"]).rstrip())
    return 0


def _migrate(_: argparse.Namespace) -> int:
    """Bring the database PORTAL_DATABASE_URL names to the newest schema and stop: the one-shot step of a
    deployment, run before the replicas start (each would upgrade on its own start too, one at a time under
    a lock; run first, they find the schema at head and start at once)."""
    from mock_portal.portal.service import build_portal
    from mock_portal.store import migrate

    settings = _settings()
    repo = build_portal(settings).repo
    print(f"database at revision {migrate.current(repo.engine)} (head {migrate.head()})", flush=True)
    return 0


def _shadow(args: argparse.Namespace) -> int:
    """A transparent proxy to `--upstream` that judges each submission on the side (`api/shadow.py`)."""
    import math
    import ssl

    from mock_portal.api.shadow import ShadowProxy, serve_shadow
    from mock_portal.evidence.shadow import ShadowBook, ShadowLog, SideJudge
    from mock_portal.portal.intake import IntakePolicy, prepare
    from mock_portal.serving import cannot_listen
    from mock_portal.signature.trust import trust_from_files

    settings = _settings()
    try:
        upstream = _upstream(args.upstream)
        if (
            not math.isfinite(args.upstream_timeout)
            or args.upstream_timeout <= 0
            or args.queue < 1
            or args.max_log_mb < 1
        ):
            raise ValueError("--upstream-timeout, --queue and --max-log-mb must be positive (and finite)")
        trust = trust_from_files(args.trust, args.crl)
        verify = ssl.create_default_context(cafile=str(args.upstream_ca)) if args.upstream_ca else True
        if args.keep_files and not args.keep_files.resolve().is_relative_to(args.log.resolve().parent):
            raise ValueError(
                f"--keep-files {args.keep_files}: must be inside the log's folder (a log names its files so)"
            )
        if args.keep_files:
            args.keep_files.mkdir(parents=True, exist_ok=True)
        args.log.parent.mkdir(parents=True, exist_ok=True)
        journal = ShadowLog(args.log, keep_files=args.keep_files, max_bytes=args.max_log_mb << 20)
    except (ValueError, OSError, ssl.SSLError) as exc:  # TrustError is a ValueError that names its file
        why = exc.strerror if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) else exc
        print(f"mock-portal shadow: {why}", file=sys.stderr)
        return 2
    busy = cannot_listen(args.host, args.port)
    if busy:
        print(f"mock-portal shadow: {busy}", file=sys.stderr)
        return 1
    prepare()  # the XSDs, before the judge's thread
    book = ShadowBook()
    side = SideJudge(trust=trust, policy=IntakePolicy.of(settings), journal=journal, book=book, max_pending=args.queue)
    proxy = ShadowProxy(
        str(upstream),
        side,
        book,
        timeout=args.upstream_timeout,
        explain=args.explain,
        verify=verify,
        max_body_bytes=settings.max_body_bytes,
    )
    base = f"http://{args.host}:{args.port}"
    print(f"shadow proxy on {base} -> {upstream}\n  page: {base}/shadow/\n  log:  {args.log}", flush=True)
    return serve_shadow(proxy, args.host, args.port, log_level=args.log_level)


def _upstream(text: str) -> httpx.URL:
    """`--upstream`: an http(s) URL without a user or password (httpx would send them as its own Authorization,
    replacing the hospital's, and the URL is printed and shown on the page)."""
    import httpx

    try:
        url = httpx.URL(text) if "://" in text else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"--upstream {text}: expected an http(s) URL, e.g. https://portal.example.vn")
    if url.userinfo:
        raise ValueError("--upstream: a user or password in the URL is not passed on; give the portal's bare URL")
    return url


def _port(text: str) -> int:
    """`--port`, held to the rule `PORTAL_PORT` is held to (a usage error, not a traceback from the socket)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port number, 1-65535")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mock-portal", description="Mock HIAP portal for GCS/GBT data")
    parser.add_argument("--version", action="version", version=f"mock-portal {sandbox_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the portal (uvicorn)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1, PORTAL_HOST)")
    serve.add_argument("--port", type=_port, help="port (default 8080, PORTAL_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the database")
    serve.add_argument("--demo", action="store_true", help="provision a demo facility, account and certificate")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=_serve)
    report = commands.add_parser("report", help="six-monthly report (Dispatch 4410/BYT-KCB Appendix 02)")
    report.add_argument("--period", help="2025-H1 or 2025-H2 (Vietnam time)")
    report.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (with --to)")
    report.add_argument("--to", dest="date_to", help="last day, inclusive")
    report.add_argument("--workspace", default="default", help="the workspace reported on (default: default)")
    report.add_argument("--format", choices=["csv", "json", "html"], default="csv")
    report.add_argument("--out", help="file to write (default: standard output)")
    report.set_defaults(func=_report)
    attestation = commands.add_parser(
        "attestation-key", help="the portal's key that signs conformance runs: show it, or rotate it"
    )
    attestation.add_argument("action", choices=["show", "rotate"], help="rotate: new key; the old one is retired")
    attestation.add_argument("--json", action="store_true", help="print every key as GET /sandbox/attestation-keys")
    attestation.set_defaults(func=_attestation_key)
    commands.add_parser(
        "migrate", help="bring the database (PORTAL_DATABASE_URL) to the newest schema, then stop"
    ).set_defaults(func=_migrate)
    table = commands.add_parser("fidelity", help="the graded behaviours as Markdown (docs/fidelity.md)")
    one = table.add_mutually_exclusive_group()  # each is its own command: a second one would be ignored
    one.add_argument("--write", metavar="FILE", help="write to FILE (e.g. docs/fidelity.md) instead of stdout")
    one.add_argument(
        "--fields", metavar="FILE", help="rewrite the field tables in FILE (docs/documents.md): what each mode answers"
    )
    one.add_argument(
        "--evidence",
        nargs="+",
        metavar="FILE",
        help="field-evidence files (rejudge --export): which grades they would move, what they contradict",
    )
    table.add_argument("--json", action="store_true", help="with --evidence: the review as JSON")
    table.set_defaults(func=_fidelity)
    shadow = commands.add_parser(
        "shadow",
        help="a transparent proxy of the wire API to the real portal that judges each submission on the side",
        description="The hospital points at the proxy instead of the portal: every request goes to --upstream "
        "unchanged and its reply comes back unchanged; after the reply has left, the sandbox judges the submission "
        "in portal and strict mode and logs the comparison (JSON Lines, a `rejudge` input) and shows it at "
        "/shadow/. Never written: passwords, tokens, the token request; the file only with --keep-files.",
    )
    shadow.add_argument("--upstream", required=True, help="the real portal's base URL (TLS verified)")
    shadow.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)")
    shadow.add_argument("--port", type=_port, default=8081, help="port (default 8081)")
    shadow.add_argument(
        "--log", type=Path, default=Path("shadow.jsonl"), help="the exchange log, appended (default: shadow.jsonl)"
    )
    shadow.add_argument(
        "--keep-files",
        type=Path,
        metavar="DIR",
        help="keep each submitted file in DIR, inside the log's folder (default: only its SHA-256)",
    )
    add_trust_options(shadow, judged="the shadow's judging")
    shadow.add_argument("--upstream-ca", type=Path, metavar="PEM", help="verify the upstream's TLS with this CA")
    shadow.add_argument(
        "--upstream-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="an upstream silent this long: the hospital's connection is closed without a reply (default 120)",
    )
    shadow.add_argument("--explain", action="store_true", help="judge before replying; add X-Sandbox-Explain")
    shadow.add_argument("--queue", type=int, default=64, help="submissions waiting to be judged, at most (default 64)")
    shadow.add_argument(
        "--max-log-mb", type=int, default=1024, help="log and kept files, at most, in MiB (default 1024)"
    )
    shadow.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    shadow.set_defaults(func=_shadow)
    again = commands.add_parser(
        "rejudge", help="judge a log of exchanges with the real portal again: where the sandbox disagrees"
    )
    again.add_argument("log", metavar="LOG", help="JSON Lines, one exchange a line (docs/field-evidence.md)")
    add_trust_options(again, judged="the re-judging")
    again.add_argument("--format", choices=["text", "json", "html"], default="text")
    again.add_argument("--out", help="file to write (default: standard output)")
    again.add_argument(
        "--export",
        metavar="FILE",
        help="also write the field-evidence file (no personal data; FILE-2.json, ... when one would be too large);"
        " needs --trust",
    )
    again.set_defaults(func=_rejudge)
    args = parser.parse_args(argv)
    if args.command == "fidelity" and args.json and not args.evidence:
        table.error("--json: only with --evidence (the table itself is Markdown)")
    try:
        return int(args.func(args))
    except SettingsError as exc:  # what is wrong and what is accepted, no traceback
        for problem in exc.problems:
            print(f"mock-portal: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
