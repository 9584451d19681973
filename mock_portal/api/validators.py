"""Connexion's request body validators, with the portal's limits (its documented `validator_map` hook).

* Forms: Starlette's parsers refuse any field over 1 MiB with an exception Connexion turns into a 500
  — below the portal's own cap, so a valid 0.9–5 MiB file was refused. The field limit here is the
  whole-body cap, which the layers in front already enforce (`RequestGuard`, `PortalMiddleware`).
* JSON: Python's `json` takes `NaN`/`Infinity` (not JSON, RFC 8259), turns `1e400` into infinity and
  overflows its stack on deep nesting (`RecursionError`, a 500). All are refused as 400
  REQUEST_INVALID, as is nesting deeper than `MAX_JSON_DEPTH` (no sandbox body needs more than 4).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import starlette.requests
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.validators import VALIDATOR_MAP, FormDataValidator, JSONRequestBodyValidator, MultiPartFormDataValidator
from starlette.formparsers import FormParser, MultiPartParser

MAX_JSON_DEPTH = 32


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def parse_json(text: str) -> Any:
    """Strict JSON: no NaN/Infinity, bounded nesting; raises ValueError."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a deep document must not overflow the stack here either)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


class StrictJSONValidator(JSONRequestBodyValidator):
    async def _parse(self, stream: Any, scope: Any) -> Any:
        body = b"".join([message async for message in stream]).decode(self._encoding)
        if not body:
            return None
        try:
            return parse_json(body)
        except ValueError as exc:
            raise BadRequestProblem(detail=str(exc)) from exc


def allow_form_fields_up_to(limit: int) -> None:
    """The handlers read the form again through Starlette's `Request.form()`, which Connexion calls
    without arguments: its default field limit is raised to the body cap as well. It only ever grows
    (several apps in one process, e.g. the tests)."""
    defaults = starlette.requests.Request.form.__kwdefaults__
    defaults["max_part_size"] = max(defaults["max_part_size"], limit)


def validator_map(max_field_bytes: int) -> dict[str, Any]:
    """Connexion's default validators with the limits above."""

    class Form(FormDataValidator):
        @property
        def _form_parser_cls(self) -> Any:
            return functools.partial(FormParser, max_part_size=max_field_bytes)

    class MultiPartForm(MultiPartFormDataValidator):
        @property
        def _form_parser_cls(self) -> Any:
            return functools.partial(MultiPartParser, max_part_size=max_field_bytes)

    body = MediaTypeDict(
        {
            "*/*json": StrictJSONValidator,
            "application/x-www-form-urlencoded": Form,
            "multipart/form-data": MultiPartForm,
        }
    )
    return {**VALIDATOR_MAP, "body": body}
