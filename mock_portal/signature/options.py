"""The command-line options that name a trust store's files, spelled once for every command that reads
them (`trust.trust_from_files`); argparse only, so building a parser imports no cryptography."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_trust_options"]


def add_trust_options(parser: argparse.ArgumentParser, *, judged: str) -> None:
    """`--trust` and `--crl` (repeatable, into `args.trust` and `args.crl`); `judged` names what they judge."""
    parser.add_argument(
        "--trust", type=Path, action="append", default=[], metavar="CA.pem",
        help=f"a CA certificate {judged} trusts, PEM or DER (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--crl", type=Path, action="append", default=[], metavar="CRL",
        help=f"a CRL {judged} reads, PEM or DER (repeatable)",
    )  # fmt: skip
