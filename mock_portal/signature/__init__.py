"""The XML signature of a GCS/GBT document, checked against the portal's profile and trust store.

`verify.verify_signature` runs the named checks (`checks`: structure and references, `crypto`: digests
and signature value, `chain`: certificate, CA, CRL, registration) over the parsed `model`, with the
C14N building blocks of `xmldsig` shared with the reference signer, and returns one report. `trust`
is the frozen snapshot of CAs, CRLs and registered certificates the portal builds from its store.
May import `results`; never the store, the portal core, HTTP or Flask.
"""
