"""Working-time calendar and the Decree 63/2024 Art. 25.1 deadline (README, "Controlling time").

Table tests pin exact deadlines around the 2025/2026 Vietnamese holidays as holidays 0.109 knows
them; properties check the arithmetic on generated calendars, including zones with DST.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_portal.deadline import working_time as deadline_module
from mock_portal.deadline.working_time import (
    DeadlineStatus,
    DeadlineVerdict,
    WorkingCalendar,
    deadline_for,
    judge,
    load_calendar,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT = WorkingCalendar.default()
HCMC = load_calendar("hcmc-0730")
ALWAYS = WorkingCalendar.always_open()
PROPS = settings(max_examples=200, deadline=None, database=None)


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


def utc(instant: datetime) -> datetime:
    """Compare in UTC: Python compares datetimes of one zone by wall clock, and never equates a DST fold."""
    return instant.astimezone(UTC)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- what holidays 0.109 says about Vietnam --------------------------------------------------

DAYS_OFF = {
    # Tết 2025: 25/1–2/2 (Sat–Sun), weekdays 27–31/1 off; 1/2 is a listed Saturday.
    "tet-2025": [date(2025, 1, 27), date(2025, 1, 28), date(2025, 1, 29), date(2025, 1, 30), date(2025, 1, 31)],
    "hung-kings-2025": [date(2025, 4, 7)],
    "30-4-2025-bridge": [date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2)],
    "2-9-2025": [date(2025, 9, 1), date(2025, 9, 2)],
    "tet-2026": [date(2026, 2, 16), date(2026, 2, 17), date(2026, 2, 18), date(2026, 2, 19), date(2026, 2, 20)],
    "hung-kings-2026-observed": [date(2026, 4, 27)],
    "30-4-2026": [date(2026, 4, 30), date(2026, 5, 1)],
    "2-9-2026-bridge": [date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2)],
    "culture-day-2026": [date(2026, 11, 24)],
}
MAKEUP_SATURDAYS = [date(2025, 4, 26), date(2026, 8, 22)]


@pytest.mark.parametrize("days", list(DAYS_OFF.values()), ids=list(DAYS_OFF))
def test_vn_days_off(days: list[date]) -> None:
    assert [d for d in days if DEFAULT.is_working_day(d)] == []
    assert [DEFAULT.working_windows(d) for d in days] == [[] for _ in days]


@pytest.mark.parametrize("day", MAKEUP_SATURDAYS, ids=str)
def test_vn_makeup_saturdays_are_working_days(day: date) -> None:
    assert day.weekday() == 5
    assert DEFAULT.is_working_day(day)
    y, m, d = day.year, day.month, day.day
    assert DEFAULT.working_windows(day) == [(vn(y, m, d, 8), vn(y, m, d, 12)), (vn(y, m, d, 13), vn(y, m, d, 17))]
    assert not WorkingCalendar(holidays="none").is_working_day(day)


def test_ordinary_saturday_is_not_a_working_day() -> None:
    assert not DEFAULT.is_working_day(date(2025, 4, 19))


# -- exact deadlines on the default calendar -------------------------------------------------

DEADLINES = [
    ("monday-0900", vn(2025, 3, 10, 9), vn(2025, 3, 10, 14)),
    ("monday-0800-ends-at-noon", vn(2025, 3, 10, 8), vn(2025, 3, 10, 12)),
    ("seconds-kept", vn(2025, 3, 10, 9, 0, 30), vn(2025, 3, 10, 14, 0, 30)),
    ("lunch-1230", vn(2025, 3, 10, 12, 30), vn(2025, 3, 10, 17)),
    ("early-0600", vn(2025, 3, 11, 6), vn(2025, 3, 11, 12)),
    ("night-2200", vn(2025, 3, 11, 22), vn(2025, 3, 12, 12)),
    ("friday-1500-to-monday", vn(2025, 3, 14, 15), vn(2025, 3, 17, 10)),
    ("saturday-to-monday", vn(2025, 4, 19, 10), vn(2025, 4, 21, 12)),
    ("hung-kings-2025-holiday", vn(2025, 4, 7, 10), vn(2025, 4, 8, 12)),
    ("tet-2025-1159", vn(2025, 1, 24, 11, 59), vn(2025, 1, 24, 16, 59)),
    ("tet-2025-1201-ends-at-1700", vn(2025, 1, 24, 12, 1), vn(2025, 1, 24, 17)),
    ("tet-2025-1400", vn(2025, 1, 24, 14), vn(2025, 2, 3, 9)),
    ("tet-2025-1630", vn(2025, 1, 24, 16, 30), vn(2025, 2, 3, 11, 30)),
    ("tet-2025-during", vn(2025, 1, 29, 10), vn(2025, 2, 3, 12)),
    ("tet-2026-1159", vn(2026, 2, 13, 11, 59), vn(2026, 2, 13, 16, 59)),
    ("tet-2026-1400", vn(2026, 2, 13, 14), vn(2026, 2, 23, 9)),
    ("tet-2026-during", vn(2026, 2, 17, 10), vn(2026, 2, 23, 12)),
    ("30-4-2025-1159", vn(2025, 4, 29, 11, 59), vn(2025, 4, 29, 16, 59)),
    ("30-4-2025-1201", vn(2025, 4, 29, 12, 1), vn(2025, 4, 29, 17)),
    ("30-4-2025-1400-bridge", vn(2025, 4, 29, 14), vn(2025, 5, 5, 9)),
    ("makeup-saturday-2025-from-friday", vn(2025, 4, 25, 14), vn(2025, 4, 26, 9)),
    ("makeup-saturday-2025-issued", vn(2025, 4, 26, 10), vn(2025, 4, 26, 15)),
    ("30-4-2026", vn(2026, 4, 29, 14), vn(2026, 5, 4, 9)),
    ("hung-kings-2026-observed", vn(2026, 4, 24, 14), vn(2026, 4, 28, 9)),
    ("2-9-2025", vn(2025, 8, 29, 14), vn(2025, 9, 3, 9)),
    ("2-9-2026-bridge", vn(2026, 8, 28, 14), vn(2026, 9, 3, 9)),
    ("makeup-saturday-2026", vn(2026, 8, 21, 14), vn(2026, 8, 22, 9)),
    ("utc-input", datetime(2025, 3, 10, 2, tzinfo=UTC), vn(2025, 3, 10, 14)),
    ("naive-is-utc", datetime(2025, 3, 10, 2), vn(2025, 3, 10, 14)),
]


@pytest.mark.parametrize(("issued", "expected"), [c[1:] for c in DEADLINES], ids=[c[0] for c in DEADLINES])
def test_default_deadline(issued: datetime, expected: datetime) -> None:
    got = deadline_for(issued, DEFAULT)
    assert got == expected
    assert got.tzinfo == VN
    assert DEFAULT.working_minutes_between(issued, got) == 240


def test_hcmc_calendar_file_windows() -> None:
    assert deadline_for(vn(2025, 3, 10, 9), HCMC) == vn(2025, 3, 10, 15)  # 09:00–11:30, 13:30–15:00
    assert deadline_for(vn(2025, 3, 10, 7, 30), HCMC) == vn(2025, 3, 10, 11, 30)


def test_overrides_in_a_calendar_file_change_the_result(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "local.toml",
        'extra_days_off = ["2025-03-11"]\nextra_working_days = [2025-03-15, "2025-04-30"]\n',
    )
    local = WorkingCalendar.from_file(path)
    assert deadline_for(vn(2025, 3, 10, 14), DEFAULT) == vn(2025, 3, 11, 9)
    assert deadline_for(vn(2025, 3, 10, 14), local) == vn(2025, 3, 12, 9)
    assert deadline_for(vn(2025, 3, 14, 14), local) == vn(2025, 3, 15, 9)
    assert deadline_for(vn(2025, 4, 29, 14), local) == vn(2025, 4, 30, 9)  # an override beats a holiday


def test_json_file_and_always_open(tmp_path: Path) -> None:
    data = {"timezone": "UTC", "windows": [["00:00", "24:00"]], "weekdays": list(range(7)), "holidays": "none"}
    cal = WorkingCalendar.from_file(write(tmp_path, "open.json", json.dumps(data)))
    assert cal == WorkingCalendar.always_open("UTC")
    assert deadline_for(datetime(2025, 1, 29, 22, tzinfo=UTC), cal) == datetime(2025, 1, 30, 2, tzinfo=UTC)


# -- judging ---------------------------------------------------------------------------------

JUDGEMENTS = [
    ("before", vn(2025, 3, 10, 13, 59), DeadlineStatus.ON_TIME, 0, 239),
    ("exactly-at-deadline", vn(2025, 3, 10, 14), DeadlineStatus.ON_TIME, 0, 240),
    ("one-second-late", vn(2025, 3, 10, 14, 0, 1), DeadlineStatus.LATE, 1, 240 + 1 / 60),
    ("next-morning", vn(2025, 3, 11, 8, 30), DeadlineStatus.LATE, 210, 450),
    ("same-instant-as-issue", vn(2025, 3, 10, 9), DeadlineStatus.ON_TIME, 0, 0),
]


@pytest.mark.parametrize(
    ("accepted", "status", "late", "elapsed"), [j[1:] for j in JUDGEMENTS], ids=[j[0] for j in JUDGEMENTS]
)
def test_judge(accepted: datetime, status: DeadlineStatus, late: int, elapsed: float) -> None:
    verdict = judge(vn(2025, 3, 10, 9), accepted, DEFAULT)
    assert verdict.deadline == vn(2025, 3, 10, 14)
    assert (verdict.status, verdict.working_minutes_late) == (status, late)
    assert verdict.working_minutes_elapsed == pytest.approx(elapsed)


def test_late_during_a_pause_has_zero_working_minutes_late() -> None:
    verdict = judge(vn(2025, 3, 10, 8), vn(2025, 3, 10, 12, 30), DEFAULT)
    assert (verdict.deadline, verdict.status, verdict.working_minutes_late) == (
        vn(2025, 3, 10, 12),
        DeadlineStatus.LATE,
        0,
    )


def test_verdict_to_dict_and_immutability() -> None:
    verdict = judge(datetime(2025, 3, 10, 2, tzinfo=UTC), datetime(2025, 3, 10, 8, tzinfo=UTC), DEFAULT, minutes=60)
    assert verdict.to_dict() == {
        "issued_at": "2025-03-10T09:00:00+07:00",
        "deadline": "2025-03-10T10:00:00+07:00",
        "accepted_at": "2025-03-10T15:00:00+07:00",
        "status": "LATE",
        "working_minutes_late": 240,
        "working_minutes_elapsed": 300.0,
    }
    with pytest.raises(AttributeError):
        verdict.status = DeadlineStatus.ON_TIME  # type: ignore[misc]
    assert isinstance(verdict, DeadlineVerdict)


# -- loading and bad calendars ---------------------------------------------------------------


LOCAL = WorkingCalendar(
    timezone="Asia/Bangkok",
    windows=((0, 30), (9 * 60, 24 * 60)),
    weekdays=frozenset({0, 2, 5}),
    holidays="none",
    extra_days_off=frozenset({date(2026, 2, 13), date(2026, 1, 2)}),
    extra_working_days=frozenset({date(2026, 2, 28)}),
)


@pytest.mark.parametrize("calendar", [DEFAULT, ALWAYS, HCMC, LOCAL], ids=["default", "24x7", "hcmc-0730", "extra-days"])
def test_a_calendar_written_out_reads_back_the_same(calendar: WorkingCalendar, tmp_path: Path) -> None:
    """`to_mapping` is the file format: what the portal publishes in its clock reply rebuilds its calendar."""
    mapping = calendar.to_mapping()
    assert WorkingCalendar.from_mapping(mapping) == calendar
    assert set(mapping) == {"timezone", "windows", "weekdays", "holidays", "extra_days_off", "extra_working_days"}
    path = write(tmp_path, "c.json", json.dumps(mapping))  # JSON-ready: through a file and back
    assert WorkingCalendar.from_file(path) == calendar


def test_a_calendar_mapping_spells_times_and_dates_as_the_file_does() -> None:
    assert HCMC.to_mapping()["windows"] == [["07:30", "11:30"], ["13:30", "17:00"]]
    assert ALWAYS.to_mapping()["windows"] == [["00:00", "24:00"]]
    mapping = LOCAL.to_mapping()
    assert mapping["extra_days_off"] == ["2026-01-02", "2026-02-13"] and mapping["weekdays"] == [0, 2, 5]
    assert (mapping["holidays"], DEFAULT.to_mapping()["holidays"]) == ("none", "VN")


def test_load_calendar_names(tmp_path: Path) -> None:
    assert load_calendar("default") == DEFAULT
    assert load_calendar("24x7") == ALWAYS
    assert HCMC.windows == ((450, 690), (810, 1020))
    path = write(tmp_path, "c.toml", 'windows = [["09:00", "10:00"]]\n')
    assert load_calendar(str(path)).windows == ((540, 600),)
    with pytest.raises(ValueError, match="unknown calendar 'nope'.*hcmc-0730"):
        load_calendar("nope")


BAD_FILES = [
    ("unknown-key", "c.toml", 'windwos = [["08:00", "12:00"]]', "unknown keys \\['windwos'\\]"),
    ("bad-toml", "c.toml", "windows = [", "not valid TOML"),
    ("bad-json", "c.json", "{", "not valid JSON"),
    ("json-array", "c.json", "[]", "top level"),
    ("short-time", "c.toml", 'windows = [["8:00", "12:00"]]', 'must be "HH:MM"'),
    ("hour-25", "c.toml", 'windows = [["08:00", "25:00"]]', 'must be "HH:MM"'),
    ("after-24", "c.toml", 'windows = [["08:00", "24:30"]]', 'must be "HH:MM"'),
    ("not-a-pair", "c.toml", 'windows = [["08:00"]]', "each window must be"),
    ("start-after-end", "c.toml", 'windows = [["12:00", "08:00"]]', "start < end"),
    ("overlap", "c.toml", 'windows = [["08:00", "12:00"], ["11:00", "17:00"]]', "must not overlap"),
    ("no-windows", "c.toml", "windows = []", "at least one daily window"),
    ("weekday-7", "c.toml", "weekdays = [0, 7]", "weekdays must be 0"),
    ("weekday-name", "c.toml", 'weekdays = ["mon"]', "weekdays must be integers"),
    ("never-works", "c.toml", "weekdays = []", "never works"),
    ("holidays-us", "c.toml", 'holidays = "US"', 'holidays must be "VN" or "none"'),
    ("bad-date", "c.toml", 'extra_days_off = ["2026-13-01"]', "ISO dates"),
    ("both-lists", "c.json", '{"extra_days_off": ["2026-01-02"], "extra_working_days": ["2026-01-02"]}', "both"),
    ("bad-zone", "c.toml", 'timezone = "Mars/Olympus"', "unknown time zone"),
    ("wrong-suffix", "c.yaml", "windows: []", "must end in .toml or .json"),
]


@pytest.mark.parametrize(("name", "text", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_calendar_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ValueError, match=message) as info:
        WorkingCalendar.from_file(path)
    if path.suffix != ".yaml":
        assert str(path) in str(info.value)


def test_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read calendar file"):
        load_calendar(str(tmp_path / "missing.toml"))


def test_no_working_time_and_negative_minutes_are_refused() -> None:
    only_2020 = WorkingCalendar(weekdays=frozenset(), holidays="none", extra_working_days=frozenset({date(2020, 1, 1)}))
    with pytest.raises(ValueError, match="no working time in 400 days"):
        only_2020.add_working_minutes(vn(2025, 1, 1), 1)
    for bad in (-1, math.nan, math.inf):
        with pytest.raises(ValueError, match="finite and >= 0"):
            DEFAULT.add_working_minutes(vn(2025, 1, 1), bad)


def test_public_api_is_pinned() -> None:
    assert sorted(deadline_module.__all__) == [
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


# -- properties ------------------------------------------------------------------------------

DST_CHANGES = [datetime(2025, 3, 9, 5), datetime(2025, 3, 30, 1), datetime(2025, 10, 26, 1), datetime(2025, 11, 2, 5)]
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
) | st.builds(  # near Havana's midnight and Berlin's 02:00 switches, where windows of two days can meet
    lambda base, offset: (base + timedelta(minutes=offset)).replace(tzinfo=UTC),
    st.sampled_from(DST_CHANGES),
    st.integers(-3000, 3000),
)
int_minutes = st.integers(min_value=0, max_value=6000)
float_minutes = st.floats(min_value=0, max_value=6000, allow_nan=False)


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    """Fixed calendars plus random ones, some in zones with DST (Havana switches at midnight)."""
    fixed = draw(st.sampled_from([DEFAULT, HCMC, ALWAYS, None]))
    if fixed is not None:
        return fixed
    bounds = sorted(draw(st.sets(st.integers(0, 1440), min_size=2, max_size=6)))
    bounds = bounds[: len(bounds) // 2 * 2]
    return WorkingCalendar(
        timezone=draw(st.sampled_from(["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/Havana", "UTC"])),
        windows=tuple(zip(bounds[::2], bounds[1::2], strict=True)),
        weekdays=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
        holidays=draw(st.sampled_from(["VN", "none"])),
    )


@PROPS
@given(calendars(), instants, int_minutes, int_minutes)
def test_monotone_in_minutes(cal: WorkingCalendar, t: datetime, m1: int, m2: int) -> None:
    m1, m2 = sorted((m1, m2))
    assert utc(cal.add_working_minutes(t, m1)) <= utc(cal.add_working_minutes(t, m2))


@PROPS
@given(calendars(), instants, instants, int_minutes)
def test_monotone_in_start(cal: WorkingCalendar, t1: datetime, t2: datetime, m: int) -> None:
    t1, t2 = sorted((t1, t2))
    assert utc(cal.add_working_minutes(t1, m)) <= utc(cal.add_working_minutes(t2, m))


@PROPS
@given(calendars(), instants, int_minutes, int_minutes.filter(bool))
def test_additive(cal: WorkingCalendar, t: datetime, a: int, b: int) -> None:
    assert utc(cal.add_working_minutes(cal.add_working_minutes(t, a), b)) == utc(cal.add_working_minutes(t, a + b))


@PROPS
@given(calendars(), instants, float_minutes)
def test_between_inverts_add(cal: WorkingCalendar, t: datetime, m: float) -> None:
    end = cal.add_working_minutes(t, m)
    assert utc(end) >= t
    assert cal.working_minutes_between(t, end) == pytest.approx(m, abs=1e-6)


@PROPS
@given(calendars(), instants, instants, instants)
def test_between_is_additive_over_a_split(cal: WorkingCalendar, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    whole = cal.working_minutes_between(a, c)
    assert whole == pytest.approx(cal.working_minutes_between(a, b) + cal.working_minutes_between(b, c), abs=1e-6)
    assert cal.working_minutes_between(c, a) == 0.0


@PROPS
@given(st.sampled_from(["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/Havana"]), instants, instants, float_minutes)
def test_always_open_is_plain_clock_time(zone: str, t: datetime, u: datetime, m: float) -> None:
    cal = WorkingCalendar.always_open(zone)
    assert utc(cal.add_working_minutes(t, m)) == t + timedelta(minutes=m)
    assert cal.working_minutes_between(t, u) == pytest.approx(max(u - t, timedelta()) / timedelta(minutes=1))


@PROPS
@given(calendars(), instants, int_minutes.filter(bool))
def test_result_is_working_time_or_a_window_end(cal: WorkingCalendar, t: datetime, m: int) -> None:
    end = cal.add_working_minutes(t, m)
    local_day = end.astimezone(cal.tz).date()
    windows = [w for d in (local_day - timedelta(days=1), local_day) for w in cal.working_windows(d)]
    assert any(utc(start) < utc(end) <= utc(stop) for start, stop in windows)


def test_judge_compares_real_time_in_a_dst_fold() -> None:
    berlin = WorkingCalendar.always_open("Europe/Berlin")
    verdict = judge(datetime(2025, 10, 26, 0, 30, tzinfo=UTC), datetime(2025, 10, 26, 1, 20, tzinfo=UTC), berlin, 10)
    assert verdict.deadline.strftime("%H:%M%z") == "02:40+0200"
    assert verdict.accepted_at.strftime("%H:%M%z") == "02:20+0100"  # earlier on the wall, 40 minutes later in fact
    assert (verdict.status, verdict.working_minutes_late) == (DeadlineStatus.LATE, 40)


# Issue 25 (review): the count walks at most COUNTED_SPAN days, whatever the issuer wrote ---------------------


def test_a_senders_instant_is_counted_over_the_last_counted_span_only() -> None:
    """A start before `end - COUNTED_SPAN` counts as that instant: year 2 is no longer walked day by day."""
    calendar = WorkingCalendar.default()
    end = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    span = deadline_module.COUNTED_SPAN
    assert span >= timedelta(days=366), "a year's backlog is still counted exactly"
    capped = calendar.working_minutes_between(end - span, end)
    assert deadline_module.counted_minutes(calendar, datetime(2, 1, 2, tzinfo=UTC), end) == capped
    recent = end - span + timedelta(days=7)
    assert deadline_module.counted_minutes(calendar, recent, end) == calendar.working_minutes_between(recent, end)
    verdict = judge(datetime(2, 1, 2, tzinfo=VN), end, calendar)
    assert verdict.status is DeadlineStatus.LATE and verdict.working_minutes_elapsed == capped
