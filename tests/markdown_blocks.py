"""Fenced code blocks of the project's Markdown, so tests can run the commands the docs show."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>[^>]*?)\s*-->")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int
    """1-based line of the opening fence."""
    not_run: str | None
    """The reason given in a `<!-- not run: … -->` comment on the line before the fence, if any."""


def blocks(path: Path) -> list[Block]:
    """Every fenced block of `path`, in order, with its language and whether it is marked not to run."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening.group("lang"):
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = NOT_RUN.search(previous)
        code = textwrap.dedent("\n".join(lines[index + 1 : end]))
        found.append(Block(opening.group("lang"), code, index + 1, marker.group("reason") if marker else None))
        index = end + 1
    return found


def shell_script(path: Path, replacements: dict[str, str]) -> str:
    """The runnable `sh` blocks of `path` as one bash script that stops at the first failing command and
    says which block it was in; `replacements` adapt addresses and scratch paths to the test."""
    # a command that fails while a block's background process runs (the README's stand-in HIS) must end
    # the script at once: left running, that process holds the output pipes open until the test times out
    parts = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for block in blocks(path):
        if block.lang != "sh" or block.not_run is not None:
            continue
        code = block.code
        for old, new in replacements.items():
            code = code.replace(old, new)
        parts.append(f"echo '>>> {path.name}:{block.line}'\n{code}")
    return "\n".join(parts) + "\n"
