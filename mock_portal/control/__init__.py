"""The rehearsal controls the portal consults on every request: the sandbox clock and fault plans.

`clock` is sandbox time (frozen, shifted or accelerated; shared through the store's settings), `faults`
turns a fault plan into a decision for one request, and `gate` applies that decision at the wire and
journals the exchange. May import `results`, `store` and `fidelity`; never the portal core, HTTP or Flask.
"""
