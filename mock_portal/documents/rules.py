"""Business rules over a document's fields: `check_rules` runs them, `list_rules` enumerates them."""

from __future__ import annotations

from collections.abc import Mapping

from ..results.findings import Finding
from . import rules_common, rules_gbt, rules_gcs, rules_identity  # noqa: F401  (registers the rules)
from .doctypes import DocumentType
from .rulebook import REGISTRY, Rule, RuleContext, run_rules


def check_rules(doc_type: DocumentType, fields: Mapping[str, str], ctx: RuleContext) -> list[Finding]:
    """Every applicable rule's findings, in registry order; never raises on odd field values."""
    return run_rules(doc_type, fields, ctx)


def list_rules(doc_type: DocumentType | None = None) -> list[Rule]:
    """The registered rules (for one document type if given), for docs and the conformance suite."""
    return [r for r in REGISTRY if doc_type is None or doc_type in r.doc_types]
