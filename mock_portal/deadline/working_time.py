"""Working time and the Decree 63/2024 Art. 25.1 deadline ("no later than 4 working hours after issuing the paper").

Pure domain code: no Flask, no database. A `WorkingCalendar` says which instants are working time;
`deadline_for` adds 240 working minutes to the issue instant and `judge` says whether an acceptance
was ON_TIME or LATE. Rules (also in the README, "Controlling time"):

* Counting starts at the first working minute at or after the issue instant.
* `add_working_minutes(t, m)` is the *earliest* instant by which `m` working minutes have elapsed,
  so a deadline that falls at the end of a window is that instant (12:00, not 13:00 after lunch).
* Times may be given in any zone; naive datetimes are taken as UTC (the sandbox clock is UTC).
  Results are aware datetimes in the calendar's zone.

A day is a working day when, in this order: it is in `extra_working_days` (yes); it is in
`extra_days_off` (no); with `holidays="VN"`, it is a Vietnamese public holiday or decreed day off
from the `holidays` package (no) or a decreed make-up working Saturday (yes); otherwise its weekday
is in `weekdays`. The package only knows swaps once decreed, hence the local override lists.

Calendar files (`PORTAL_CALENDAR`, `load_calendar`) are TOML or JSON; every key is optional::

    timezone = "Asia/Ho_Chi_Minh"                       # IANA zone
    windows = [["07:30", "11:30"], ["13:30", "17:00"]]  # sorted, non-overlapping; "24:00" ends a day
    weekdays = [0, 1, 2, 3, 4]                          # Monday = 0 … Sunday = 6
    holidays = "VN"                                     # "VN" or "none"
    extra_days_off = ["2026-02-13"]                     # ISO dates (TOML dates also accepted)
    extra_working_days = ["2026-02-28"]

`mock_portal/deadline/calendars/` ships examples; `load_calendar("hcmc-0730")` finds them by name.
Every problem with a calendar (bad file, no working time at all) is a `ValueError`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_pkg

__all__ = [
    "CALENDAR_DIR",
    "DEADLINE_MINUTES",
    "DeadlineStatus",
    "DeadlineVerdict",
    "WorkingCalendar",
    "counted_minutes",
    "deadline_for",
    "judge",
    "load_calendar",
]

DEADLINE_MINUTES = 240
"""Decree 63/2024 Art. 25.1: 04 working hours."""
CALENDAR_DIR = Path(__file__).parent / "calendars"
"""Calendar files shipped with the package, loadable by bare name."""
DAY_MINUTES = 24 * 60
MAX_IDLE_DAYS = 400
"""Days scanned without any working time before a calendar is declared empty (Tết is ~9)."""
COUNTED_SPAN = timedelta(days=400)
"""`counted_minutes` counts at most this span before its end: the count walks day by day (~20 µs a day
uncached), and a document issued in year 2 (its NGAY_CT is the issuer's to write) cost 20 s of CPU. Over a
year and a month, so the lateness of a year's backlog is still exact."""
_FILE_KEYS = frozenset({"timezone", "windows", "weekdays", "holidays", "extra_days_off", "extra_working_days"})
_HHMM = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])")

Window = tuple[int, int]
"""A daily working window as (start, end) minutes after local midnight; end may be 1440."""


@functools.lru_cache(maxsize=64)
def _vn_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """Days off and make-up working days in `year`, from the `holidays` package, computed once per year.

    Neighbouring years are loaded too: a make-up Saturday can be decreed with the next year's Tết
    (27/12/2014 for 2/1/2015), and the package files it under the holiday's year.
    """
    vn = holidays_pkg.country_holidays("VN", years=(year - 1, year, year + 1))
    off = frozenset(d for d in vn if d.year == year)
    makeup = frozenset(d for d in vn.weekend_workdays if d.year == year)
    return off, makeup


class DeadlineStatus(StrEnum):
    """The closed verdict of one acceptance against Art. 25.1; values are what journals and reports store."""

    ON_TIME = "ON_TIME"
    LATE = "LATE"


@dataclass(frozen=True)
class WorkingCalendar:
    """Which instants count as working time. Immutable and hashable: share one per process."""

    timezone: str = "Asia/Ho_Chi_Minh"
    """IANA zone the windows are read in; also the zone of every result."""
    windows: tuple[Window, ...] = ((8 * 60, 12 * 60), (13 * 60, 17 * 60))
    """Daily windows in minutes after local midnight; default 08:00–12:00 and 13:00–17:00 (central agencies)."""
    weekdays: frozenset[int] = frozenset(range(5))
    """Ordinary working weekdays, Monday = 0 (QĐ 188/1999: Monday–Friday)."""
    holidays: str = "VN"
    """"VN" for Vietnamese public holidays, swaps and make-up days from the `holidays` package; "none"."""
    extra_days_off: frozenset[date] = frozenset()
    """Locally announced days off the package does not know yet."""
    extra_working_days: frozenset[date] = frozenset()
    """Locally announced make-up working days; they win over everything else."""

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        if not self.windows:
            raise ValueError("a calendar needs at least one daily window")
        previous_end = 0
        for start, end in self.windows:
            if not 0 <= start < end <= DAY_MINUTES:
                raise ValueError(f"window {_hhmm(start)}-{_hhmm(end)} must have 00:00 <= start < end <= 24:00")
            if start < previous_end:
                raise ValueError(f"windows must be sorted and must not overlap (at {_hhmm(start)})")
            previous_end = end
        if not self.weekdays and not self.extra_working_days:
            raise ValueError("a calendar needs working weekdays or extra working days: this one never works")
        if not self.weekdays <= frozenset(range(7)):
            raise ValueError(f"weekdays must be 0 (Monday) ... 6 (Sunday), got {sorted(self.weekdays)}")
        if self.holidays not in ("VN", "none"):
            raise ValueError(f'holidays must be "VN" or "none", got {self.holidays!r}')
        both = self.extra_days_off & self.extra_working_days
        if both:
            raise ValueError(f"dates both extra days off and extra working days: {sorted(map(str, both))}")

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def default(cls) -> WorkingCalendar:
        """Monday–Friday 08:00–12:00, 13:00–17:00 Asia/Ho_Chi_Minh, Vietnamese holidays."""
        return cls()

    @classmethod
    def always_open(cls, timezone: str = "Asia/Ho_Chi_Minh") -> WorkingCalendar:
        """24/7: every minute is working time, so the deadline is plain clock time (strict policy)."""
        return cls(timezone=timezone, windows=((0, DAY_MINUTES),), weekdays=frozenset(range(7)), holidays="none")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "calendar") -> WorkingCalendar:
        """Build a calendar from the file format in the module docstring; `source` names it in errors."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a table/object at the top level")
        unknown = set(data) - _FILE_KEYS
        if unknown:
            raise ValueError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(_FILE_KEYS)}")
        kwargs: dict[str, Any] = {}
        try:
            if "timezone" in data:
                kwargs["timezone"] = _expect(data["timezone"], str, "timezone")
            if "windows" in data:
                kwargs["windows"] = tuple(_parse_window(w) for w in _expect(data["windows"], list, "windows"))
            if "weekdays" in data:
                days = _expect(data["weekdays"], list, "weekdays")
                if not all(isinstance(d, int) and not isinstance(d, bool) for d in days):
                    raise ValueError(f"weekdays must be integers 0 (Monday) ... 6 (Sunday), got {days!r}")
                kwargs["weekdays"] = frozenset(days)
            if "holidays" in data:
                name = _expect(data["holidays"], str, "holidays")
                kwargs["holidays"] = {"vn": "VN", "none": "none"}.get(name.lower(), name)
            for key in ("extra_days_off", "extra_working_days"):
                if key in data:
                    kwargs[key] = frozenset(_parse_date(v, key) for v in _expect(data[key], list, key))
            return cls(**kwargs)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> WorkingCalendar:
        """Read a `.toml` or `.json` calendar file; any problem is a ValueError naming the file."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".toml", ".json"):
            raise ValueError(f"{path}: calendar files must end in .toml or .json")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read calendar file ({exc.strerror or exc})") from exc
        try:
            data = tomllib.loads(raw.decode("utf-8")) if suffix == ".toml" else json.loads(raw)
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    def to_mapping(self) -> dict[str, Any]:
        """This calendar in the file format `from_mapping` reads (JSON-ready), so clients can rebuild it exactly."""
        return {
            "timezone": self.timezone,
            "windows": [[_hhmm(start), _hhmm(end)] for start, end in self.windows],
            "weekdays": sorted(self.weekdays),
            "holidays": self.holidays,
            "extra_days_off": sorted(d.isoformat() for d in self.extra_days_off),
            "extra_working_days": sorted(d.isoformat() for d in self.extra_working_days),
        }

    # -- queries ------------------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        """The calendar's zone (ZoneInfo caches instances, so this is cheap)."""
        return ZoneInfo(self.timezone)

    def is_working_day(self, d: date) -> bool:
        """Whether `d` has working windows at all (overrides, then VN holidays and swaps, then weekdays)."""
        if d in self.extra_working_days:
            return True
        if d in self.extra_days_off:
            return False
        if self.holidays == "VN":
            off, makeup = _vn_year(d.year)
            if d in off:
                return False
            if d in makeup:
                return True
        return d.weekday() in self.weekdays

    def working_windows(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working windows of local date `d` as aware (start, end) in the calendar's zone; [] on a day off."""
        tz = self.tz
        return [(s.astimezone(tz), e.astimezone(tz)) for s, e in self._utc_windows(d)]

    def _utc_windows(self, d: date) -> tuple[tuple[datetime, datetime], ...]:
        """Windows in UTC: differences of aware datetimes in one zone are wall-clock, wrong across DST."""
        return _utc_windows(self, d)

    def add_working_minutes(self, instant: datetime, minutes: float) -> datetime:
        """The earliest instant by which `minutes` working minutes have elapsed since `instant`.

        Walks window by window, day by day (a 9-day Tết costs 9 cheap steps, not 13,000 minutes).
        `minutes == 0` returns `instant` itself. Raises ValueError for negative minutes or a calendar
        with no working time within MAX_IDLE_DAYS.
        """
        if not 0 <= minutes < math.inf:
            raise ValueError(f"minutes must be finite and >= 0, got {minutes!r}")
        cursor = _utc(instant)
        remaining = timedelta(minutes=minutes)
        if not remaining:
            return cursor.astimezone(self.tz)
        day = cursor.astimezone(self.tz).date() - timedelta(days=1)  # a DST-shifted window may start the day before
        idle = 0
        while True:
            windows = self._utc_windows(day)
            idle = idle + 1 if not windows else 0
            if idle > MAX_IDLE_DAYS:
                raise ValueError(f"calendar has no working time in {MAX_IDLE_DAYS} days after {day - timedelta(idle)}")
            for start, end in windows:
                if end <= cursor:
                    continue
                start = max(start, cursor)
                if remaining <= end - start:
                    return (start + remaining).astimezone(self.tz)
                remaining -= end - start
                cursor = end
            day += timedelta(days=1)

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in [start, end); 0.0 when end <= start. It walks every day between: for
        instants a sender wrote, count with `counted_minutes`."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return 0.0
        total, floor = timedelta(), start
        tz = self.tz
        day, last = start.astimezone(tz).date() - timedelta(days=1), end.astimezone(tz).date()
        while day <= last:
            for w_start, w_end in self._utc_windows(day):
                overlap = min(w_end, end) - max(w_start, floor)
                if overlap > timedelta():
                    total += overlap
                floor = max(floor, w_end)  # never count an instant twice, even if DST makes days overlap
            day += timedelta(days=1)
        return total / timedelta(minutes=1)


@dataclass(frozen=True)
class DeadlineVerdict:
    """Whether one accepted document reached the portal within the working-time limit."""

    issued_at: datetime
    """Issue instant the count started from (harness record, else SigningTime, else start of NGAY_CT)."""
    deadline: datetime
    """issued_at + the working-minute limit, in the calendar's zone."""
    accepted_at: datetime
    """When the portal accepted the document (sandbox clock)."""
    status: DeadlineStatus
    """LATE exactly when accepted_at > deadline."""
    working_minutes_late: int
    """Working minutes from deadline to acceptance, rounded up; 0 when on time (and for a LATE in a pause)."""
    working_minutes_elapsed: float
    """Working minutes from issue to acceptance."""

    def to_dict(self) -> dict[str, str | int | float]:
        return {
            "issued_at": self.issued_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "accepted_at": self.accepted_at.isoformat(),
            "status": self.status.value,
            "working_minutes_late": self.working_minutes_late,
            "working_minutes_elapsed": self.working_minutes_elapsed,
        }


def deadline_for(issued_at: datetime, calendar: WorkingCalendar, minutes: float = DEADLINE_MINUTES) -> datetime:
    """The Art. 25.1 deadline: `minutes` working minutes after `issued_at` (aware, calendar zone)."""
    return calendar.add_working_minutes(issued_at, minutes)


def judge(
    issued_at: datetime, accepted_at: datetime, calendar: WorkingCalendar, minutes: float = DEADLINE_MINUTES
) -> DeadlineVerdict:
    """Judge one acceptance against the deadline; same code for live runs and saved journals."""
    deadline = deadline_for(issued_at, calendar, minutes)
    accepted = _utc(accepted_at).astimezone(calendar.tz)
    late = _utc(accepted_at) > _utc(deadline)  # same-zone comparison is wall-clock, wrong in a DST fold
    return DeadlineVerdict(
        issued_at=_utc(issued_at).astimezone(calendar.tz),
        deadline=deadline,
        accepted_at=accepted,
        status=DeadlineStatus.LATE if late else DeadlineStatus.ON_TIME,
        working_minutes_late=math.ceil(counted_minutes(calendar, deadline, accepted)) if late else 0,
        working_minutes_elapsed=counted_minutes(calendar, issued_at, accepted),
    )


def counted_minutes(calendar: WorkingCalendar, start: datetime, end: datetime) -> float:
    """Working minutes in [start, end), counted over the last `COUNTED_SPAN` at most (a lower bound for an
    older start): what a document's issue instant is worth, whatever year its sender wrote."""
    end = _utc(end)
    return calendar.working_minutes_between(max(_utc(start), end - COUNTED_SPAN), end)


def load_calendar(name_or_path: str) -> WorkingCalendar:
    """Resolve the `PORTAL_CALENDAR` setting: "default", "24x7", a shipped calendar's name, or a file path."""
    key = name_or_path.strip()
    if key.lower() == "default":
        return WorkingCalendar.default()
    if key.lower() in ("24x7", "24/7", "always"):
        return WorkingCalendar.always_open()
    path = Path(key).expanduser()
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        return WorkingCalendar.from_file(path)
    for suffix in (".toml", ".json"):
        shipped = CALENDAR_DIR / f"{key}{suffix}"
        if re.fullmatch(r"[\w.-]+", key) and shipped.is_file():
            return WorkingCalendar.from_file(shipped)
    known = sorted(p.stem for p in CALENDAR_DIR.glob("*.toml")) + sorted(p.stem for p in CALENDAR_DIR.glob("*.json"))
    raise ValueError(f"unknown calendar {name_or_path!r}: use 'default', '24x7', one of {known}, or a .toml/.json path")


# -- helpers ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2048)
def _utc_windows(calendar: WorkingCalendar, d: date) -> tuple[tuple[datetime, datetime], ...]:
    """`calendar`'s windows of day `d` in UTC, kept for the last 2,048 (calendar, day) pairs: counting the
    `COUNTED_SPAN` before an acceptance walks the same ~400 days for every document (~20 µs a day uncached)."""
    if not calendar.is_working_day(d):
        return ()
    tz = calendar.tz
    out: list[tuple[datetime, datetime]] = []
    for start, end in calendar.windows:
        s = _local(d, start, tz).astimezone(UTC)
        e = _local(d, end, tz).astimezone(UTC)
        if out:  # around a DST gap a wall time maps to an instant inside the previous window
            s = max(s, out[-1][1])
        if e > s:  # a window swallowed by a DST gap simply vanishes
            out.append((s, e))
    return tuple(out)


def _utc(instant: datetime) -> datetime:
    """Aware UTC; naive input is UTC by convention (the sandbox clock's zone)."""
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def _local(d: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute == DAY_MINUTES:
        return datetime.combine(d + timedelta(days=1), time(), tzinfo=tz)
    return datetime.combine(d, time(minute // 60, minute % 60), tzinfo=tz)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _expect(value: Any, kind: type, key: str) -> Any:
    if not isinstance(value, kind):
        raise ValueError(f"{key} must be a {'list' if kind is list else 'string'}, got {value!r}")
    return value


def _parse_hhmm(text: Any) -> int:
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if not match or (match[1] == "24" and match[2] != "00"):
        raise ValueError(f'window times must be "HH:MM" between 00:00 and 24:00, got {text!r}')
    return int(match[1]) * 60 + int(match[2])


def _parse_window(pair: Any) -> Window:
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError(f'each window must be ["HH:MM", "HH:MM"], got {pair!r}')
    return _parse_hhmm(pair[0]), _parse_hhmm(pair[1])


def _parse_date(value: Any, key: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{key} entries must be ISO dates like 2026-02-13, got {value!r}")
