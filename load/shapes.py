"""Load shapes, chosen with `--shape`: steady, morning-peak, outage-recovery.

Stage tables are given in fractions of the run time (`-t`) and of the user count (`-u`), so the
same shape scales from a 5-second CI run to an hour. `outage-recovery` also sets a portal outage
(HTTP 503 on every wire request) through `PUT /sandbox/faults` when its outage stage begins and
lifts it (`DELETE /sandbox/faults`) when it ends, so the run measures how the hospitals' backlog
drains. The shape runs on the master (or the single local process) only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from locust import LoadTestShape

from conformance.portal import SandboxAdmin

__all__ = ["OUTAGE_PLAN", "SHAPES", "DeadlineShape", "Stage"]

log = logging.getLogger("load.shapes")

OUTAGE_PLAN: dict[str, Any] = {
    "seed": 1,
    "faults": [{"name": "load-outage", "effect": "http_error", "status": 503, "operations": ["token", "submit"]}],
}
"""The global fault plan of the outage: every token and submit request answers HTTP 503."""


@dataclass(frozen=True)
class Stage:
    until: float
    """End of the stage, as a fraction of the run time."""
    users: float
    """Users during the stage, as a fraction of -u (at least 1 user)."""
    outage: bool = False


SHAPES: dict[str, tuple[Stage, ...]] = {
    "steady": (Stage(1.0, 1.0),),
    # a quiet night, the 07:00-10:00 rush of discharges and births, then back to normal
    "morning-peak": (Stage(0.2, 0.3), Stage(0.4, 0.7), Stage(0.7, 1.0), Stage(0.85, 0.6), Stage(1.0, 0.3)),
    # full load throughout; the portal is down from 25 % to 50 % of the run, then recovers
    "outage-recovery": (Stage(0.25, 1.0), Stage(0.5, 1.0, outage=True), Stage(1.0, 1.0)),
}


class DeadlineShape(LoadTestShape):
    """The stage table named by `--shape`, scaled by -u, -r and -t (`use_common_options`)."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._outage_on = False

    def _options(self) -> Any:
        runner = self.runner
        return runner.environment.parsed_options if runner is not None else None

    def tick(self) -> tuple[int, float] | None:
        options = self._options()
        name = getattr(options, "shape", None) or "steady"
        stages = SHAPES[name]
        users = int(getattr(options, "num_users", None) or 1)
        rate = float(getattr(options, "spawn_rate", None) or users)
        run_time = getattr(options, "run_time", None)
        elapsed = self.get_run_time()
        fraction = elapsed / run_time if run_time else 0.0
        if run_time and fraction >= 1.0:
            self.lift_outage()
            return None
        stage = next((s for s in stages if fraction < s.until), stages[-1])
        if stage.outage and not self._outage_on:
            self._set_outage(options, True)
        elif not stage.outage and self._outage_on:
            self._set_outage(options, False)
        return max(1, round(users * stage.users)), rate

    def lift_outage(self) -> None:
        if self._outage_on:
            self._set_outage(self._options(), False)

    def _set_outage(self, options: Any, on: bool) -> None:
        host = self.runner.environment.host if self.runner is not None else None
        token = getattr(options, "admin_token", None)
        if not host or not token:
            log.error("outage-recovery needs -H and --admin-token to set the outage; running without it")
            self._outage_on = on
            return
        admin = SandboxAdmin(host, token)
        try:
            if on:
                admin.set_global_faults(OUTAGE_PLAN)
            else:
                admin.clear_global_faults()
        finally:
            admin.close()
        self._outage_on = on
        log.warning("portal outage %s at %.1f s", "SET" if on else "LIFTED", self.get_run_time())
