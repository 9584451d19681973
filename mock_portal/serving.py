"""Run the portal's ASGI app under uvicorn: one process, or N processes with a socket each.

With `--workers N` uvicorn's own supervisor shares one listening socket between its workers, and
asyncio accepts every pending connection in one go (up to the backlog) in whichever process wakes
first: a client that opens its keep-alive connections in a burst (a load generator, a hospital
with a connection pool) ends up with all of them on one worker while the others idle. Here each
worker binds its own socket with `SO_REUSEPORT`, so the kernel spreads new connections over the
workers. All workers share the database (SQLite in WAL mode, or PostgreSQL) and the `Settings` the
command read: each worker is handed them (pickled by `multiprocessing`), none reads the environment
again. The supervisor restarts a worker that dies and stops them all on SIGINT/SIGTERM. Without
`SO_REUSEPORT` (not Linux/BSD/macOS) the workers share one socket bound by the supervisor.

Why not gunicorn's arbiter (with uvicorn workers): it binds in the master and the workers share
that socket — the imbalance above — and it restarts a dying worker forever or, when one fails
while booting, halts; neither gives a restart budget. This supervisor restarts a crashed worker
unless more than `worker_restarts` crashes fell within the last `worker_restart_window_seconds`
(a crash loop, e.g. an unreadable database): a few crashes over a week never take the portal down.

uvicorn has no time limit for request headers (its keep-alive timer is cancelled by any byte), so a
client trickling a header holds a connection for ever: `header_deadline` closes it.

Stopping (SIGTERM from `podman stop`, SIGINT from Ctrl-C) drains: after `PORTAL_DRAIN_DELAY_SECONDS` of
serving on with the readiness at 503 (0 unless set: behind a load balancer), the listening sockets close, every
request in progress gets its reply (with `Connection: close`), an idle keep-alive connection is kept
`DRAIN_LINGER_SECONDS` so a request the client is already sending on it is answered instead of reset,
and after `PORTAL_DRAIN_TIMEOUT_SECONDS` what is still running is cancelled. The process then exits 0
with its exit hooks run (the sharing worker finishes its round), where uvicorn alone re-raises the
signal and dies of it. The supervisor forwards the signal to its workers and waits for their drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import Config
from uvicorn.server import HANDLED_SIGNALS

from mock_portal.api.draining import DRAINING
from mock_portal.config import Settings

__all__ = ["cannot_listen", "serve", "server_app"]

log = logging.getLogger("mock_portal.serving")


def serve(settings: Settings, *, workers: int, log_level: str, access_log: bool) -> int:
    if workers <= 1:
        config = _config(settings, log_level, access_log, host=settings.host, port=settings.port)
        server = _Server(config, settings.drain_delay_seconds)
        server.run()  # exits 3 if it cannot bind
        return 0
    return _Supervisor(settings, workers, log_level, access_log).run()


def server_app(settings: Settings) -> ASGIApp:
    """The app of one server process. After it is built, its ~138,000 long-lived objects (the contract, the
    XSDs, the libraries) are moved out of the garbage collector's reach (`gc.freeze`): a full collection over
    them took ~36 ms on the 2-core VM, holding the GIL and so the event loop, and the element proxies of heavy
    documents make such collections frequent. `bench/stall.py`, 4 / 8 connections of the heaviest small form:
    health p99 29-68 ms and valid-submission p99 48-256 ms without, 20-35 ms and 26-39 ms with (two runs each)."""
    from mock_portal.app import create_asgi  # here, not at the top: a restarted worker binds its socket first

    app = create_asgi(settings)
    gc.freeze()
    return app


class _Server(uvicorn.Server):
    """uvicorn's server that marks the process draining when told to stop, goes on serving `delay` seconds
    (`PORTAL_DRAIN_DELAY_SECONDS`: a load balancer's check sees the 503 readiness and stops sending), then
    drains, and exits normally once drained. A second signal stops at once."""

    def __init__(self, config: Config, delay: float) -> None:
        super().__init__(config)
        self.delay = delay

    def handle_exit(self, sig: int, frame: Any) -> None:
        if DRAINING.is_set() or self.delay <= 0:
            DRAINING.set()
            super().handle_exit(sig, frame)
            return
        DRAINING.set()
        later = threading.Timer(self.delay, super().handle_exit, (sig, frame))
        later.daemon = True
        later.start()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, without raising the caught signal again after the drain: that killed the drained
        process (exit 143, exit hooks skipped)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def _config(settings: Settings, log_level: str, access_log: bool, **extra: Any) -> Config:
    """uvicorn's settings for the app of `settings`, with the header deadline on its HTTP protocol and
    the drain's time limit."""
    config = Config(
        server_app(settings),
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=settings.drain_timeout_seconds,
        **extra,
    )
    config.load()  # resolves the protocol class uvicorn picked (httptools or h11)
    config.http_protocol_class = header_deadline(config.http_protocol_class, settings.header_timeout_seconds)
    return config


MAX_HEADER_BYTES = 64 * 1024
"""Most bytes a request's head (request line and headers) may take; httptools sets no limit of its own."""

DRAIN_LINGER_SECONDS = 1.0
"""How long a stopping server keeps an idle keep-alive connection open for a request already on its way."""


def header_deadline(protocol: type[asyncio.Protocol], seconds: float) -> type[asyncio.Protocol]:
    """`protocol` (uvicorn's httptools or h11 protocol) closing a connection that has not finished a
    request's headers `seconds` after it opened or after its last response, or whose unfinished head
    grows past `MAX_HEADER_BYTES`; and lingering on an idle connection when the server stops."""

    class HeaderDeadline(protocol):  # type: ignore[misc, valid-type]  # a base class given at run time
        _deadline: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _stopping = False

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(seconds, self._overdue)
            self._head_bytes = 0

        def _in_request(self) -> bool:
            """Headers complete and the response not finished yet."""
            return self.cycle is not None and not self.cycle.response_complete

        def _overdue(self) -> None:
            if not self._in_request() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm()

        def shutdown(self) -> None:
            """uvicorn closes an idle connection at once, racing a request the client may be sending on
            it (a reset, no reply: was it stored?). Here it stays open `DRAIN_LINGER_SECONDS`, and a
            request arriving meanwhile is answered with `Connection: close`."""
            self._stopping = True
            if self._in_request():
                super().shutdown()
            else:
                self.loop.call_later(DRAIN_LINGER_SECONDS, self._overdue)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._stopping and self.cycle is not None:
                self.cycle.keep_alive = False
            if self._in_request() or self.transport.is_closing():
                return
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

    return HeaderDeadline


def cannot_listen(host: str, port: int) -> str | None:
    """Why nothing can listen on host:port now (a server already there), or None when it is free.

    The probe has no SO_REUSEPORT, so a server still listening there, even one of ours, makes it fail
    instead of sharing the port."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    finally:
        probe.close()
    return None


REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if REUSE_PORT:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(settings: Settings, log_level: str, access_log: bool, shared: socket.socket | None) -> None:
    """One server process: its own SO_REUSEPORT socket (or the supervisor's `shared` one), uvicorn on it
    until SIGINT/SIGTERM. The socket is bound before the app is imported (0.9 s on the 2-core VM, idle) and
    built: while a killed worker's replacement starts, connections the kernel gives its socket wait in the
    backlog, never refused."""
    sock = shared or _listen(settings.host, settings.port)
    _Server(_config(settings, log_level, access_log), settings.drain_delay_seconds).run(sockets=[sock])


class _Supervisor:
    def __init__(self, settings: Settings, workers: int, log_level: str, access_log: bool) -> None:
        self.settings = settings
        self.args: tuple[Any, ...] = (settings, log_level, access_log)
        self.count = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.stopping = False
        self.budget, self.window = settings.worker_restarts, float(settings.worker_restart_window_seconds)
        self.crashes: deque[float] = deque()
        self.shared: socket.socket | None = None

    def _start_one(self) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=_worker, args=(*self.args, self.shared), name="mock-portal-worker")
        process.start()
        return process

    def _may_restart(self, now: float) -> bool:
        """Count this crash; allowed while at most `budget` crashes fall within the sliding window."""
        self.crashes.append(now)
        while self.crashes and self.crashes[0] <= now - self.window:
            self.crashes.popleft()
        return len(self.crashes) <= self.budget

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        # the port must be free: fail here, not in N workers
        busy = cannot_listen(self.settings.host, self.settings.port)
        if busy:
            print(f"mock portal: {busy}", file=sys.stderr)
            return 1
        if not REUSE_PORT:
            self.shared = _listen(self.settings.host, self.settings.port)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        self.processes = [self._start_one() for _ in range(self.count)]
        print(f"mock portal: {self.count} worker processes (pids {[p.pid for p in self.processes]})", flush=True)
        code = 0
        while not self.stopping:
            time.sleep(0.2)
            for index, process in enumerate(self.processes):
                if process.is_alive() or self.stopping:
                    continue
                if not self._may_restart(time.monotonic()):
                    print(
                        f"mock portal: worker {process.pid} exited ({process.exitcode}); more than {self.budget} "
                        f"crashes within {self.window:g} s, giving up",
                        file=sys.stderr,
                    )
                    self.stopping, code = True, 1
                    break
                print(f"mock portal: worker {process.pid} exited ({process.exitcode}); restarting", file=sys.stderr)
                self.processes[index] = self._start_one()
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        # their delay and drain, then their exit
        deadline = time.monotonic() + self.settings.drain_delay_seconds + self.settings.drain_timeout_seconds + 5
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)
        return code
