"""Errors of the sandbox control plane, as data the HTTP layer renders as problem+json.

PortalError
├── InvalidInput   (400)
├── NotFound       (404)
├── Conflict       (409)
└── Unavailable    (503)
"""

from __future__ import annotations


class PortalError(Exception):
    status = 500

    def __init__(self, code: str, detail_vi: str, detail_en: str) -> None:
        super().__init__(detail_en)
        self.code = code
        self.detail_vi = detail_vi
        self.detail_en = detail_en


class InvalidInput(PortalError):
    status = 400


class NotFound(PortalError):
    status = 404


class Conflict(PortalError):
    status = 409


class Unavailable(PortalError):
    status = 503
