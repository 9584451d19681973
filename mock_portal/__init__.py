"""Mock Health Insurance Assessment Portal (HIAP) for signed GCS/GBT data."""

import warnings

# connexion imports starlette's TestClient at import time, which warns about httpx; the portal never uses it.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
