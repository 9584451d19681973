"""`mock-portal`: run the mock portal.

mock-portal serve [--host H] [--port P] [--workers N] [--demo]
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from mock_portal.config import Settings


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = Settings.from_env(**overrides)
    # Every worker process must agree on the admin token and the database.
    os.environ["PORTAL_ADMIN_TOKEN"] = settings.admin_token
    os.environ["PORTAL_DATABASE_URL"] = settings.database_url
    os.environ["PORTAL_IPSS_API_KEY"] = settings.ipss_api_key
    if args.demo:
        from fixtures.demo import provision_demo

        print(provision_demo(settings), flush=True)
    print(f"mock portal on http://{settings.host}:{settings.port}  (Swagger UI: /ui)", flush=True)
    print(f"admin token (PORTAL_ADMIN_TOKEN): {settings.admin_token}", flush=True)
    print(f"IPSS API key (PORTAL_IPSS_API_KEY): {settings.ipss_api_key}", flush=True)
    uvicorn.run(
        "mock_portal.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
    )
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
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
