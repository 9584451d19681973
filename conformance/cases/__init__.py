"""The case catalogue, one module per area; importing this package registers every case."""

from conformance.cases import api, deadline, documents, flows, once, pressure, signature
from conformance.registry import Registry, registry

__all__ = ["api", "deadline", "documents", "flows", "load_cases", "once", "pressure", "signature"]


def load_cases() -> Registry:
    """The global registry, complete: importing this package imported every case module."""
    return registry
