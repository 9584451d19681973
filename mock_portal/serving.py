"""Run the portal's ASGI app under uvicorn: one process, or N processes with a socket each.

With `--workers N` uvicorn's own supervisor shares one listening socket between its workers, and
asyncio accepts every pending connection in one go (up to the backlog) in whichever process wakes
first: a client that opens its keep-alive connections in a burst (a load generator, a hospital
with a connection pool) ends up with all of them on one worker while the others idle. Here each
worker binds its own socket with `SO_REUSEPORT`, so the kernel spreads new connections over the
workers. All workers share the database (SQLite in WAL mode, or PostgreSQL) and the settings from
the environment; the supervisor restarts a worker that dies and stops them all on SIGINT/SIGTERM.
Without `SO_REUSEPORT` (not Linux/BSD) uvicorn's supervisor is used.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

import uvicorn

__all__ = ["cannot_listen", "serve"]

log = logging.getLogger("mock_portal.serving")
APP = "mock_portal.asgi:app"
MAX_RESTARTS = 5
"""Restarts of crashed workers before the supervisor gives up (a worker that cannot bind fails fast)."""


def serve(*, host: str, port: int, workers: int, log_level: str, access_log: bool, app: str = APP) -> int:
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, log_level=log_level, access_log=access_log)
        return 0
    return _Supervisor(app, host, port, workers, log_level, access_log).run()


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


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(app: str, host: str, port: int, log_level: str, access_log: bool) -> None:
    """One server process: its own SO_REUSEPORT socket, uvicorn on it until SIGINT/SIGTERM."""
    sock = _listen(host, port)
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log)
    uvicorn.Server(config).run(sockets=[sock])


class _Supervisor:
    def __init__(self, app: str, host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
        self.args: tuple[Any, ...] = (app, host, port, log_level, access_log)
        self.count = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.stopping = False
        self.restarts = 0

    def _start_one(self) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=_worker, args=self.args, name="mock-portal-worker")
        process.start()
        return process

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        # the port must be free: fail here, not in N workers
        busy = cannot_listen(self.args[1], self.args[2])
        if busy:
            print(f"mock portal: {busy}", file=sys.stderr)
            return 1
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
                if self.restarts >= MAX_RESTARTS:
                    print(f"mock portal: worker {process.pid} exited ({process.exitcode}); giving up", file=sys.stderr)
                    self.stopping, code = True, 1
                    break
                self.restarts += 1
                print(f"mock portal: worker {process.pid} exited ({process.exitcode}); restarting", file=sys.stderr)
                self.processes[index] = self._start_one()
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)
        return code
