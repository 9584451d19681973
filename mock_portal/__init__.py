"""Mock Health Insurance Assessment Portal (HIAP) for signed GCS/GBT data."""

import warnings
from importlib.metadata import PackageNotFoundError, version

# connexion imports starlette's TestClient at import time, which warns about httpx; the portal never uses it.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")


def sandbox_version() -> str:
    """The installed distribution's version, the one source of every version the tools state: `mock-portal
    --version`, `conformance --version`, `GET /sandbox/health`, a conformance report's `tool_version`, and every
    re-judged report and evidence file (a later version may judge otherwise)."""
    try:
        return version("vn-civil-cert-sandbox")
    except PackageNotFoundError:
        return "0+unknown"
