"""Whether this server process is stopping: `serving.py` sets it on SIGTERM/SIGINT, `GET /sandbox/ready`
answers 503 while it is set, so a load balancer's check takes the process out while it finishes its
requests. One server per process, so the flag is the process's."""

from __future__ import annotations

import threading

DRAINING = threading.Event()
