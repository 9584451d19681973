"""The wire exchange's vocabulary: the two wire paths, a reply as data (status, JSON body, the
`X-Sandbox-*` values) and the journal row every exchange leaves.

Below the portal core, above `results`, `store` and `fidelity`: the portal derives replies and journal
rows in these terms (`portal/exchange.py`), the fault plans answer in them (`faults/apply.py`), and the
HTTP layer only writes them out. Knows nothing of HTTP frameworks.
"""
