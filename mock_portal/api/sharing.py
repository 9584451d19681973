"""[sandbox] handler of `GET /sandbox/sharing`: how far HIAP -> IPSS sharing has got. Thin."""

from __future__ import annotations

from flask import current_app

from mock_portal.api.render import Reply, reply
from mock_portal.portal.service import Portal
from mock_portal.store import ipss as ipss_store


def get_sharing() -> Reply:
    portal: Portal = current_app.config["PORTAL"]
    stats = ipss_store.sharing_stats(portal.repo)
    return reply(
        {
            "pending": stats.pending,
            "shared": stats.shared,
            "last_lag_ms": stats.last_lag_ms,
            "max_lag_ms": stats.max_lag_ms,
            "worker_enabled": portal.settings.sharing_enabled,
            "interval_ms": portal.settings.sharing_interval_ms,
        }
    )
