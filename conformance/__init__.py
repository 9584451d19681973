"""Conformance suite that certifies a hospital's integration (see DESIGN §7).

`SUITE_VERSION` names the case catalogue (bump it when a case is added, removed or its judgement
changes); `tool_version()` is the installed package's version. Both go into every report.
"""

from __future__ import annotations

from importlib import metadata

SUITE_VERSION = "1.0"


def tool_version() -> str:
    try:
        return metadata.version("vn-civil-cert-sandbox")
    except metadata.PackageNotFoundError:
        return "unknown"
