"""Fill the `servers` list of the served `/openapi.json` with the origin the client used.

Connexion rewrites `servers` to the mount's base path, which is empty here, so Swagger UI at /ui showed
an empty server list. The origin the browser reached the portal on is the one "Try it out" should use.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SPEC_PATH = "/openapi.json"


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
                spec = json.loads(body)
                spec["servers"] = [{"url": origin, "description": "this sandbox portal"}]
                body = json.dumps(spec, ensure_ascii=False).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
