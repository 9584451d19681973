"""Reply helpers: an explicit JSON content type on every reply (Connexion needs it when an operation
also declares problem+json, see connexion #1956)."""

from __future__ import annotations

from typing import Any

JSON = {"Content-Type": "application/json"}
Reply = tuple[Any, int, dict[str, str]]


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return body, status, {**JSON, **(headers or {})}


def empty(status: int = 204) -> tuple[str, int]:
    return "", status
