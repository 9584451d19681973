"""The portal's signed word on a conformance run (issue 23): what it observed, and which verdicts the suite
claimed for it. The portal does not judge; it attests.

`canonical` is the wire form anyone can recompute (canonical JSON, record digests, the Ed25519 check) and
knows nothing of the database, so the verifier (`conformance verify`) uses the same code; `keys` is the
deployment's signing key (made on first need, rotated by the operator, retired keys still published);
`statement` builds and signs the attestation of one run from the portal's own records. May import
`portal`, `results` and `store`.
"""
