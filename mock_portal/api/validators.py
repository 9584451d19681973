"""Connexion's request body validators, with the portal's limits (its documented `validator_map` hook).

* Forms: Starlette's parsers refuse any field over 1 MiB with an exception Connexion turns into a 500
  — below the portal's own cap, so a valid 0.9–5 MiB file was refused. The field limit here is the
  whole-body cap, which the layers in front already enforce (`RequestGuard`, `PortalMiddleware`).
* JSON: Python's `json` takes `NaN`/`Infinity` (not JSON, RFC 8259), turns `1e400` into infinity and
  overflows its stack on deep nesting (`RecursionError`, a 500). All are refused as 400
  REQUEST_INVALID, as is nesting deeper than `MAX_JSON_DEPTH` (no sandbox body needs more than 4).
  A string with a lone surrogate (`"\\ud800"`: valid JSON, not Unicode text; no database or header can
  hold it, a 500 once) is 400 JSON_TEXT_INVALID on the sandbox API; the wire reads it as U+FFFD
  (`without_lone_surrogates`), as it reads bytes of a form that are not UTF-8, so the portal's own answer
  follows. A JSON body without a Content-Type is 415 (Connexion validated it as JSON, then handed the
  handler bytes: a 500 once).
"""

from __future__ import annotations

import functools
import json
import math
import re
from contextvars import ContextVar
from typing import Any, ClassVar

import starlette.requests
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import VALIDATOR_MAP, FormDataValidator, JSONRequestBodyValidator, MultiPartFormDataValidator
from jsonschema import Draft4Validator
from python_multipart import QuerystringParser
from starlette.datastructures import FormData, Headers
from starlette.formparsers import FormParser, MultiPartParser
from starlette.types import Receive, Scope

from mock_portal.api import blocking
from mock_portal.results.errors import InvalidInput

MAX_JSON_DEPTH = 32
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point left in a decoded string: JSON's `\\ud800` unpaired (a pair decodes to one
character)."""


def without_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate read as U+FFFD, the replacement character. ASCII (a file's base64)
    is returned as it is: `isascii` takes ~1 ms for 7 MB, the pattern's scan ~47 ms, on the event loop."""
    return text if text.isascii() else LONE_SURROGATE.sub("\ufffd", text)


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


ON_LOOP_BODY_BYTES = 64 * 1024
"""Bodies (forms, JSON) up to this size are parsed on the event loop (~0.1 ms for a certificate's), whatever the
database: parsing costs less than a thread hand-off; bigger ones go to a thread (here and in the wire
gateway)."""


class SchemaBuiltOnce:
    """Connexion builds a body's JSON Schema validator at each access of `_validator`, so once per request;
    an operation's body schema is one object for the life of its app, so each is built once here. Each
    subclass keeps its own (the classes of `validator_map` are made per app)."""

    _schema: dict[str, Any]
    _built: ClassVar[dict[int, tuple[dict[str, Any], Draft4Validator]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._built = {}

    @property
    def _validator(self) -> Draft4Validator:
        schema = self._schema
        found = self._built.get(id(schema))
        if found is None or found[0] is not schema:  # the schema is held with it: its id is not reused
            found = (schema, Draft4RequestValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER))
            self._built[id(schema)] = found
        return found[1]


class StrictJSONValidator(SchemaBuiltOnce, JSONRequestBodyValidator):
    refuse_lone_surrogates = True
    """False on the wire, whose handlers read lone surrogates as U+FFFD."""

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """A body sent without a Content-Type is refused: Connexion guesses JSON and validates it, but the
        handler would get it as bytes."""
        headers = Headers(scope=scope)
        has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
        if "content-type" not in headers and has_body:
            raise UnsupportedMediaTypeProblem(detail="No Content-Type: send the JSON body as application/json")
        wrapped: tuple[Receive, Scope] = await super().wrap_receive(receive, scope=scope)
        return wrapped

    async def _parse(self, stream: Any, scope: Any) -> Any:
        raw = b"".join([message async for message in stream])
        if not raw:
            return None
        try:  # 1 MB of `[0,0,…]` costs ~0.34 s of CPU: a big body is parsed off the event loop
            value = await blocking.run(parse_json, raw.decode(self._encoding), inline=len(raw) <= ON_LOOP_BODY_BYTES)
        except ValueError as exc:
            raise BadRequestProblem(detail=str(exc)) from exc
        if self.refuse_lone_surrogates and LONE_SURROGATE.search(json.dumps(value, ensure_ascii=False)):
            raise InvalidInput(
                "JSON_TEXT_INVALID",
                "Một chuỗi JSON chứa ký tự surrogate đơn lẻ (ví dụ \\ud800): không phải văn bản Unicode hợp lệ",
                "A JSON string holds a lone surrogate (such as \\ud800): not valid Unicode text",
            )
        return value


_LAST_FORM: ContextVar[tuple[bytes, int | float, int, FormData] | None] = ContextVar("last_form", default=None)
"""The last form parsed in this request's context: its body, the parser's limits and the fields."""


class OffLoopFormParser(FormParser):
    """Starlette's form parser (the same python-multipart parser and callbacks) over the whole body at
    once, on a worker thread when it is big (Starlette's own parses on the event loop, ~50 ms for a
    7 MB form; bench/README.md, "Stall targets"), and once per request: Connexion reads a form twice,
    its validator and then the handler's `Request.form()`, from the same bytes, so the second read is
    the first one's fields (kept in the request's context, for the same body and limits)."""

    async def parse(self) -> FormData:
        body = b"".join([chunk async for chunk in self.stream])
        last = _LAST_FORM.get()
        if last is not None and last[1] == self.max_fields and last[2] == self.max_part_size and last[0] == body:
            return last[3]
        form = await blocking.run(self._parse, body, inline=len(body) <= ON_LOOP_BODY_BYTES)
        _LAST_FORM.set((body, self.max_fields, self.max_part_size, form))
        return form

    def _parse(self, body: bytes) -> FormData:
        parser = QuerystringParser(
            {
                "on_field_start": self.on_field_start,
                "on_field_name": self.on_field_name,
                "on_field_data": self.on_field_data,
                "on_field_end": self.on_field_end,
            }
        )
        parser.write(body)
        parser.finalize()
        return FormData(self._items)


def allow_form_fields_up_to(limit: int) -> None:
    """The handlers read the form again through Starlette's `Request.form()`, which Connexion calls
    without arguments: its default field limit is raised to the body cap as well (it only ever grows:
    several apps in one process, e.g. the tests), and it parses with `OffLoopFormParser` (Starlette
    looks the class up in `starlette.requests` at each parse)."""
    defaults = starlette.requests.Request.form.__kwdefaults__
    assert defaults is not None, "Request.form has keyword-only defaults"
    defaults["max_part_size"] = max(defaults["max_part_size"], limit)
    starlette.requests.FormParser = OffLoopFormParser  # type: ignore[attr-defined]  # not re-exported: patched


def validator_map(max_field_bytes: int, *, wire: bool = False) -> dict[str, Any]:
    """Connexion's default validators with the limits above; `wire`: lone surrogates are the handlers' to read."""

    class JSON(StrictJSONValidator):
        refuse_lone_surrogates = not wire

    class Form(SchemaBuiltOnce, FormDataValidator):
        @property
        def _form_parser_cls(self) -> Any:
            return functools.partial(OffLoopFormParser, max_part_size=max_field_bytes)

    class MultiPartForm(SchemaBuiltOnce, MultiPartFormDataValidator):
        @property
        def _form_parser_cls(self) -> Any:
            return functools.partial(MultiPartParser, max_part_size=max_field_bytes)

    body = MediaTypeDict(
        {
            "*/*json": JSON,
            "application/x-www-form-urlencoded": Form,
            "multipart/form-data": MultiPartForm,
        }
    )
    return {**VALIDATOR_MAP, "body": body}
