"""`python -m load [LOCUST OPTIONS]`: Locust with the kit's locustfile, and a `--help` that lists the kit's options.

`locust -f load/locustfile.py --help` prints Locust's help before it imports the locustfile, so the
options the kit registers at import (`--shape`, `--clock-rate`, `--max-late`, `LOAD_*` …) are missing
there. Here the locustfile is imported first; every other argument goes to Locust unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        from locust.argument_parser import get_parser

        import load.locustfile  # noqa: F401 - registers the kit's options on Locust's parser

        get_parser().print_help()
        return 0
    from locust.main import main as locust_main

    sys.argv = ["locust", "-f", str(LOCUSTFILE), *args]
    return int(locust_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
