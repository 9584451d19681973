"""Conformance suite that certifies a hospital's integration (docs/ARCHITECTURE.md, docs/vendor-guide.md).

`SUITE_VERSION` names the case catalogue (bump it when a case is added, removed or its judgement
changes); the tool's version is the installed distribution's (`mock_portal.sandbox_version`, the one
`conformance --version` and `mock-portal --version` print). Both go into every report.
"""

from __future__ import annotations

SUITE_VERSION = "1.4"

EXIT_USAGE = 2
"""Exit code of a run that could not start (a missing file, a bad option); 1 means "refused" / a MUST failed."""
EXIT_INCONCLUSIVE = 3
"""Exit code of a run no MUST case failed but one stayed INCONCLUSIVE: the machine's timing could not
settle it, even at a slower clock (`conformance.timing`). No certificate; run it again on a quieter machine."""


class UsageError(Exception):
    """What the user gave cannot be used: a missing file, a --trust that is no certificate, a trigger the
    portal cannot reach. The CLI prints the message and exits `EXIT_USAGE`, never a traceback."""
