"""`mock-portal`: run the mock portal.

mock-portal serve [--host H] [--port P] [--workers N] [--demo]
mock-portal report (--period 2025-H1 | --from 2025-01-01 --to 2025-06-30) [--workspace ID]
                   [--format csv|json|html] [--out FILE]
mock-portal attestation-key (show | rotate) [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mock_portal.config import Settings
from mock_portal.serving import cannot_listen, serve


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.demo:  # the demo keeps its admin token and IPSS key across restarts (var/demo, mode 0600)
        from fixtures.demo import demo_secret

        for name in ("admin_token", "ipss_api_key"):
            if not os.environ.get(f"PORTAL_{name.upper()}"):
                overrides[name] = demo_secret(name)
    settings = Settings.from_env(**overrides)
    busy = cannot_listen(settings.host, settings.port)
    if busy:  # before any token is printed: a second start must not look like it worked
        print(f"mock portal: {busy} (another portal running? set PORTAL_PORT or --port)", file=sys.stderr)
        return 1
    # Every worker process must agree on the admin token and the database.
    os.environ["PORTAL_ADMIN_TOKEN"] = settings.admin_token
    os.environ["PORTAL_DATABASE_URL"] = settings.database_url
    os.environ["PORTAL_IPSS_API_KEY"] = settings.ipss_api_key
    if args.demo:
        from fixtures.demo import provision_demo

        print(provision_demo(settings), flush=True)
    print(_banner(settings), flush=True)
    return serve(
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
    )


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
    from mock_portal.app import build_portal
    from mock_portal.portal import workspaces
    from mock_portal.reports import formats, semiannual
    from mock_portal.results.errors import PortalError

    root = build_portal(Settings.from_env())
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
    body = formats.render(semiannual.for_portal(portal, period), args.format)
    if args.out in (None, "-"):
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        with open(args.out, "wb") as out:
            out.write(body)
    return 0


def _fidelity(args: argparse.Namespace) -> int:
    from mock_portal import fidelity

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


def _attestation_key(args: argparse.Namespace) -> int:
    """The deployment's attestation keys from the database named by PORTAL_DATABASE_URL (no server
    needed; running servers sign with the new key from their next attestation on)."""
    import json

    from mock_portal.app import build_portal
    from mock_portal.attestation import keys

    repo = build_portal(Settings.from_env()).repo
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mock-portal", description="Mock HIAP portal for GCS/GBT data")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the portal (uvicorn)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1, PORTAL_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080, PORTAL_PORT)")
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
    table = commands.add_parser("fidelity", help="the graded behaviours as Markdown (docs/fidelity.md)")
    table.add_argument("--write", metavar="FILE", help="write to FILE (e.g. docs/fidelity.md) instead of stdout")
    table.add_argument(
        "--fields", metavar="FILE", help="rewrite the field tables in FILE (docs/documents.md): what each mode answers"
    )
    table.set_defaults(func=_fidelity)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
