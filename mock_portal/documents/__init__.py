"""GCS/GBT documents: hardened parsing, structure and XSD checks, field extraction, business rules.

Pure domain code: nothing here imports Flask or the HTTP layer. Exceptions::

    DocumentError   (parsing.py) the bytes are not a usable document; `.finding` says why
"""

from __future__ import annotations

from .doctypes import DocumentType
from .parsing import DocumentError, ParseLimits, parse_xml
from .rulebook import Rule, RuleContext
from .rules import check_rules, list_rules
from .schema import check_structure, compile_schemas, fields_of, validate_schema

__all__ = [
    "DocumentError",
    "DocumentType",
    "ParseLimits",
    "Rule",
    "RuleContext",
    "check_rules",
    "check_structure",
    "compile_schemas",
    "fields_of",
    "list_rules",
    "parse_xml",
    "validate_schema",
]
