"""The case catalogue, one module per area; importing this package registers every case."""

from conformance.cases import api, deadline, documents, flows, once, pressure, signature

__all__ = ["api", "deadline", "documents", "flows", "once", "pressure", "signature"]
