"""Helpers for the shadow proxy's tests and bench: start `mock-portal shadow`, a recording tap in front of
its upstream, and a hospital that speaks raw HTTP/1.1 (so what it receives is compared byte for byte)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from conformance.portal import stop_process, wait_until_up
from fixtures.ports import free_port


@dataclass
class Shadow:
    """A `mock-portal shadow` a test started."""

    base_url: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def comparisons(self) -> dict[str, Any]:
        reply = httpx.get(f"{self.base_url}/shadow/comparisons", timeout=10)
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def wait_judged(self, count: int, timeout: float = 60.0) -> dict[str, Any]:
        """The page's JSON once `count` submissions are done with: judged, dropped, not kept or failed."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.comparisons()
            counts = found["counts"]
            if sum(counts.get(what, 0) for what in ("judged", "dropped", "unkept", "errors")) >= count:
                return found
            assert time.monotonic() < deadline, counts
            time.sleep(0.1)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def stop(self) -> None:
        stop_process(self.process, 30)


def start_shadow(directory: Path, upstream: str, *options: str) -> Shadow:
    """`mock-portal shadow --upstream upstream` on a free loopback port, its log and output in `directory`."""
    port = free_port()
    log = directory / "shadow.jsonl"
    output = directory / "shadow.out"
    command = [sys.executable, "-m", "mock_portal.cli", "shadow", "--upstream", upstream, "--port", str(port)]
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    with output.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [*command, "--log", str(log), *options], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    shadow = Shadow(f"http://127.0.0.1:{port}", port, log, process)
    try:
        wait_until_up(f"{shadow.base_url}/shadow/comparisons", process, output, 30)
    except BaseException:
        shadow.stop()
        raise
    return shadow


class Tap:
    """A TCP relay in front of a server that records every byte the server sends (what a proxy behind it
    received), so a test can compare it with what the proxy's client received."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._recorded = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def take(self) -> bytes:
        """What the server sent since the last `take`."""
        with self._lock:
            data = bytes(self._recorded)
            self._recorded.clear()
        return data

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        try:
            while data := source.recv(65536):
                if record:
                    with self._lock:
                        self._recorded += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)


def raw_exchange(
    port: int, method: str, path: str, body: bytes = b"", *, kind: str = "", timeout: float = 30.0
) -> bytes:
    """One request as raw HTTP/1.1 (`Connection: close`) and every byte of the reply; b"" when the
    connection was closed or reset without one, or nothing came within `timeout` (then the client hangs up)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    if kind:
        head += f"Content-Type: {kind}\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while data := sock.recv(65536):
                chunks.append(data)
    return b"".join(chunks)


def without_connection_close(reply: bytes) -> bytes:
    """`reply` without the `connection: close` uvicorn adds when the client asked for it (hop-by-hop)."""
    return reply.replace(b"\r\nconnection: close\r\n\r\n", b"\r\n\r\n", 1)


class Scripted:
    """A raw HTTP/1.1 upstream: answers every request with the reply a test sets (`answer`), then closes,
    and keeps each request's bytes as received (head and body)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self._reply = b""
        threading.Thread(target=self._accept, daemon=True).start()

    def answer(self, body: bytes, length: int | None = None, head: bytes = b"") -> None:
        """Reply `body` to what comes next, with `Content-Length: length` (None: no length, the close ends it)
        and the header lines `head`."""
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + head
        if length is not None:
            head += b"content-length: %d\r\n" % length
        self._reply = head + b"connection: close\r\n\r\n" + body

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
            head = data.partition(b"\r\n\r\n")[0].lower()
            length = next(
                (int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k == b"content-length"), 0
            )
            chunked = b"transfer-encoding: chunked" in head
            while (not data.endswith(b"0\r\n\r\n") if chunked else len(data) < len(head) + 4 + length) and (
                chunk := conn.recv(65536)
            ):
                data += chunk
            self.requests.append(data)
            conn.sendall(self._reply)
