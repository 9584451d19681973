"""Code lists (ethnicity, nationality, province) loaded once from `codes/*.json`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

_DIR = Path(__file__).with_name("codes")


@cache
def _load(name: str) -> dict[str, Any]:
    with (_DIR / f"{name}.json").open(encoding="utf-8") as fh:
        table: dict[str, Any] = json.load(fh)
    return table


def _names(name: str) -> MappingProxyType[str, str]:
    codes = _load(name)["codes"]
    return MappingProxyType(
        {code: value["name"] if isinstance(value, dict) else value for code, value in codes.items()}
    )


@cache
def ethnicities() -> MappingProxyType[str, str]:
    """`MA_DANTOC*` code -> ethnic group name (01..55, 56 undetermined)."""
    return _names("ethnicities")


@cache
def nationalities() -> MappingProxyType[str, str]:
    """`MA_QUOCTICH*` code -> country name; partial, see `provenance("nationalities")`."""
    return _names("nationalities")


@cache
def provinces() -> MappingProxyType[str, str]:
    """`MATINH_*` two-digit code -> province name (the 63 pre-2025 provinces)."""
    return _names("provinces")


def provenance(name: str) -> dict[str, Any]:
    """Where a list comes from and how complete it is (`name` as in codes/<name>.json)."""
    return dict(_load(name)["provenance"])
