"""Serve `/openapi.json` as written, with the origin the client used in `servers`.

Connexion rewrites `servers` to the mount's base path, which is empty here, so Swagger UI at /ui showed
an empty server list. The origin the browser reached the portal on is the one "Try it out" should use.

Connexion also serves the spec with every `$ref` inlined, so client generators lost the component names
(a `Facility` became `CreateFacilityResponse201`): the spec served is the file itself, references kept.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SPEC_PATH = "/openapi.json"
SPEC_FILE = Path(__file__).resolve().parents[1] / "openapi.yaml"


@cache
def written_spec() -> dict[str, Any]:
    """The contract as written (references kept), parsed once per process, with libyaml where PyYAML has it
    (the pure-Python parser took ~0.18 s of CPU, libyaml ~0.02 s). Read it, never change it: `fresh_spec`
    is the copy to change."""
    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    spec: dict[str, Any] = yaml.load(SPEC_FILE.read_text(encoding="utf-8"), Loader=loader)
    return spec


def fresh_spec() -> dict[str, Any]:
    """A copy of the contract its caller may change (Connexion resolves and rewrites the one it is given)."""
    return copy.deepcopy(written_spec())


class SpecServers:
    """ASGI middleware rewriting the JSON spec's `servers` to `[{url: <scheme>://<host>}]`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != SPEC_PATH:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host") or "{}:{}".format(*(scope.get("server") or ("127.0.0.1", 80)))
        origin = f"{scope.get('scheme', 'http')}://{host}"
        start: Message = {}
        body = b""

        async def buffered(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            body += message.get("body", b"")
            if message.get("more_body"):
                return
            if start.get("status") == 200:
                spec = {**written_spec(), "servers": [{"url": origin, "description": "this sandbox portal"}]}
                body = json.dumps(spec, ensure_ascii=False, default=str).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
