"""ASGI entry point for `uvicorn mock_portal.asgi:app` (settings from `PORTAL_*`).

After the app is built, its ~138,000 long-lived objects (the contract, the XSDs, the libraries) are
moved out of the garbage collector's reach (`gc.freeze`): a full collection over them took ~36 ms on
the 2-core VM, holding the GIL and so the event loop, and the element proxies of heavy documents make
such collections frequent. `bench/stall.py`, 4 / 8 connections of the heaviest small form: health p99
29-68 ms and valid-submission p99 48-256 ms without, 20-35 ms and 26-39 ms with (two runs each).
"""

import gc

from mock_portal.app import create_asgi

app = create_asgi()
gc.freeze()
