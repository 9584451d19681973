"""The portal core: what the HTTP handlers and the dashboard call. Knows nothing of HTTP or Flask.

`service.Portal` holds the settings, the store, the clock, the fault plans, the journal and the trust
cache, and takes tokens and submissions; `auth` judges credentials and tokens; `intake` examines one
submitted file (envelope, XML, schema, rules, signature) into a verdict; `exchange` derives a wire
exchange's reply and journal row from their results, once.
Above the core sit the sandbox's own services on a `Portal`: `facilities` (accounts, certificates,
CAs, CRLs) and `expectations` (certificates the conformance harness announced); `workspaces` (tenants: keys,
roles, quotas); `records`, the JSON shapes the sandbox API serves stored records in (the attestation digests
the same shapes). May import `config` and every domain package below it (`results`, `documents`,
`signature`, `control`, `deadline`, `store`, `fidelity`, `wire`, `faults`).
"""
