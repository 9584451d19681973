"""Faults, decided and applied: where a rehearsal's fault plan meets a wire request.

`plan` parses a plan and decides what it does to one request (latency, an HTTP error, the portal's own
error code, a locked account, a reset, a reply dropped after commit), reading a workspace's plans from
the store; `apply` derives the reply a fault answers with and names the faults in the reply that passes
on. The wire gateway (`api/gateway.py`) only moves the bytes: it waits the latency, closes the
connection for a reset or a dropped reply, and writes the reply `apply` derived. May import `results`,
`store` and `wire`; never the portal core, HTTP or Flask.
"""
