"""How finely a run can tell time: the probe that watches the machine, and each scenario's resolution.

At 600× a real second is ten sandbox minutes, so any delay of the machine the hospital runs on (a busy
CPU, a slow trigger, a portal queueing requests) would become the hospital's lateness or disorder.
Every run therefore measures, per scenario, how much real time the test bed itself may have added on
the way of a certificate, and turns it into sandbox minutes at the scenario's clock rate: its
*timing resolution*. A deadline or ordering verdict inside that resolution is not the hospital's
failure but INCONCLUSIVE (the runner then runs the scenario again at a lower clock rate, where the same
delays weigh less); beyond it, it is the hospital's.

What goes in (all measured in this run, in real seconds):

* `scheduling` — the worst oversleep of a probe thread that sleeps `PROBE_INTERVAL` in a loop in the
  harness process: how long a ready process waited for a CPU on this machine;
* `harness` — how late the harness handed an order over compared with its plan;
* `trigger` — the longest trigger call (the hospital taking an order);
* `portal` — the portal's own time on the facility's exchanges (each exchange's duration minus the
  latency a fault plan injected on purpose), added up: a hospital that waits for each reply before the
  next send carries all of it.

The sum, times `SAFETY`, is the resolution: the hospital's own steps between two sends also wait for a
CPU, and they are not seen from here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.evidence import Bundle, ScenarioRecord

__all__ = ["HARNESS_PARTS", "PROBE_INTERVAL", "SAFETY", "Resolution", "TimingProbe", "portal_delay", "resolution"]

PROBE_INTERVAL = 0.02
"""Seconds the probe sleeps between two readings."""
SAFETY = 2.0
"""The resolution is this many times the delays measured (see the module docstring)."""
HARNESS_PARTS = ("scheduling", "harness", "trigger")
"""The parts of the resolution the harness measures itself (`ScenarioRecord.timing`, in seconds)."""
MAX_SAMPLES = 200_000
"""About an hour of readings: a run keeps no more."""


class TimingProbe:
    """A daemon thread that sleeps `interval` in a loop and keeps how much longer each sleep took."""

    def __init__(self, interval: float = PROBE_INTERVAL) -> None:
        self.interval = interval
        self._samples: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timing-probe", daemon=True)

    def __enter__(self) -> TimingProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            before = time.monotonic()
            time.sleep(self.interval)
            after = time.monotonic()
            self._samples.append((after, max(0.0, after - before - self.interval)))

    def readings(self, since: float) -> list[float]:
        """The oversleeps (seconds) of the readings taken since a `time.monotonic()` instant, sorted."""
        return sorted(late for at, late in list(self._samples) if at >= since)

    def measure(self, since: float) -> dict[str, float]:
        """What a scenario records of the machine since it began: `scheduling`, the worst oversleep (a part
        of the resolution), and `jitter`, the 90th percentile (a typical delay, the noise of a pause)."""
        found = self.readings(since)
        return {"scheduling": found[-1] if found else 0.0, "jitter": found[int(len(found) * 0.9)] if found else 0.0}


@dataclass(frozen=True)
class Resolution:
    """How much a scenario's timing verdicts may be off because of the machine, not the hospital."""

    seconds: float
    """Real seconds."""
    minutes: float
    """The same on the sandbox clock at the scenario's rate."""
    rate: float
    parts: dict[str, float]
    """The measured delays it is made of (real seconds), by name (see the module docstring)."""

    def describe(self) -> str:
        shown = ", ".join(f"{name} {value:.2f} s" for name, value in self.parts.items() if value >= 0.005)
        return f"{self.minutes:.1f} sandbox min at {self.rate:g}× ({shown or 'no delay measured'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "minutes": round(self.minutes, 2),
            "rate": self.rate,
            "parts": {k: round(v, 3) for k, v in self.parts.items()},
        }


def portal_delay(bundle: Bundle, record: ScenarioRecord) -> float:
    """The portal's own time (seconds) on the scenario's exchanges, injected latencies left out."""
    injected = {
        str(fault.get("name")): float((fault.get("latency") or {}).get("ms") or 0) / 1000
        for fault in record.fault_plan.get("faults", [])
    }
    total = 0.0
    for entry in bundle.journal_of(record):
        held = max((injected.get(name, 0.0) for name in entry.get("faults") or ()), default=0.0)
        total += max(0.0, float(entry.get("duration_ms") or 0) / 1000 - held)
    return total


def resolution(bundle: Bundle, record: ScenarioRecord) -> Resolution:
    """The scenario's timing resolution from what the run measured (zero for evidence that has none)."""
    rate = record.rate or float(bundle.meta.get("clock_rate") or 0)
    parts = {name: float(record.timing.get(name) or 0.0) for name in HARNESS_PARTS}
    parts["portal"] = portal_delay(bundle, record) if record.timing else 0.0
    seconds = SAFETY * sum(parts.values())
    return Resolution(seconds, seconds * rate / 60, rate, parts)
