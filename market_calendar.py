"""NYSE trading sessions, shared by the bot, the local exchange and the backtester.

Times are tz-aware. The market lives in America/New_York; everything on the wire is UTC.
Holidays and early closes come from pandas-market-calendars' NYSE calendar, so the three
users of this module can never disagree about which days trade and when they close: from
1985 to 2045 through the table generated from it (nyse_table.py, checked day by day against
the package in the tests), which saves each process the package's import and build; outside
those years from the package itself.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from datetime import UTC as _FIXED_UTC  # the tzinfo pandas-market-calendars' sessions carry
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import nyse_table

NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")

# The default range of `nyse()`: wide enough for the shipped data and for live use.
_FIRST_DAY = date(1990, 1, 1)
_LAST_DAY = date(2035, 12, 31)


@dataclass(frozen=True)
class Session:
    """One regular trading session. `open` and `close` are tz-aware UTC datetimes."""

    day: date
    open: datetime
    close: datetime

    @property
    def is_early_close(self) -> bool:
        return self.close.astimezone(NEW_YORK).time() < time(16, 0)

    def at(self, clock_time: time) -> datetime:
        """This session's day at a New York wall-clock time, as a UTC datetime."""
        return datetime.combine(self.day, clock_time, tzinfo=NEW_YORK).astimezone(UTC)

    def fraction(self, when: datetime) -> float:
        """How much of the session has elapsed at `when`: 0.0 at the open, 1.0 at the close.

        Clamped to [0, 1], so before the open is 0.0 and after the close is 1.0.
        """
        total = (self.close - self.open).total_seconds()
        elapsed = (when - self.open).total_seconds()
        return min(1.0, max(0.0, elapsed / total))


class MarketCalendar:
    """The NYSE calendar as a sorted list of sessions, with the look-ups the project needs.

    A calendar from the shipped table (`nyse`) makes each Session object when it is first
    asked for: a daily run asks for a few dozen of the ~4,500 sessions of its 18 years, and
    making them all was most of the calendar's build."""

    def __init__(self, sessions: list[Session]) -> None:
        self._days = [s.day for s in sessions]
        self._index = {day: i for i, day in enumerate(self._days)}
        self._sessions: list[Session | None] = list(sessions)
        self._hours: dict[date, tuple[time, time]] = {}

    @classmethod
    def of_days(cls, days: list[date], hours: dict[date, tuple[time, time]],
                ) -> MarketCalendar:
        """Sessions on sorted `days`, 9:30 to 16:00 New York time but for the days of `hours`
        (New York open and close), each made when first asked for."""
        calendar = cls([])
        calendar._days = days
        calendar._index = {day: i for i, day in enumerate(days)}
        calendar._sessions = [None] * len(days)
        calendar._hours = hours
        return calendar

    def _at(self, i: int) -> Session:
        found = self._sessions[i]
        if found is None:  # two threads may both make it: equal sessions, either is kept
            day = self._days[i]
            opens, closes = self._hours.get(day, (_OPEN, _CLOSE))
            found = self._sessions[i] = Session(
                day=day, open=datetime.combine(day, opens, NEW_YORK).astimezone(_FIXED_UTC),
                close=datetime.combine(day, closes, NEW_YORK).astimezone(_FIXED_UTC))
        return found

    @property
    def first_day(self) -> date | None:
        """The day of the first session (None for an empty calendar)."""
        return self._days[0] if self._days else None

    @property
    def last_day(self) -> date | None:
        return self._days[-1] if self._days else None

    def session(self, day: date) -> Session | None:
        """The session on `day`, or None on a weekend or holiday."""
        i = self._index.get(day)
        return None if i is None else self._at(i)

    def is_session(self, day: date) -> bool:
        return day in self._index

    def sessions_between(self, start: date, end: date) -> list[Session]:
        """Sessions with start <= day <= end."""
        lo = bisect.bisect_left(self._days, start)
        hi = bisect.bisect_right(self._days, end)
        return [self._at(i) for i in range(lo, hi)]

    def sessions_before(self, day: date, count: int) -> list[Session]:
        """The `count` sessions strictly before `day`, oldest first."""
        hi = bisect.bisect_left(self._days, day)
        if hi < count:
            first = self._days[0] if self._days else None
            raise ValueError(f"the calendar starts on {first}; {count} sessions before {day} "
                             "are not in it")
        return [self._at(i) for i in range(hi - count, hi)]

    def next_session(self, day: date) -> Session:
        """The first session strictly after `day`."""
        i = bisect.bisect_right(self._days, day)
        if i >= len(self._days):
            last = self._days[-1] if self._days else None
            raise ValueError(f"no NYSE session after {day} in the calendar (ends {last})")
        return self._at(i)

    def session_on_or_after(self, day: date) -> Session:
        found = self.session(day)
        return found if found is not None else self.next_session(day)

    def current_or_next_open(self, now: datetime) -> Session:
        """The session that is open at `now`, or else the next one to open."""
        day = now.astimezone(NEW_YORK).date()
        today = self.session(day)
        if today is not None and now < today.close:
            return today
        return self.next_session(day)

    def is_open(self, now: datetime) -> bool:
        today = self.session(now.astimezone(NEW_YORK).date())
        return today is not None and today.open <= now < today.close

    def business_days_back(self, day: date, count: int) -> date:
        """The first day of the window made of `day` and the `count - 1` sessions before it."""
        if count <= 1:
            return day
        return self.sessions_before(day, count - 1)[0].day


def nyse(first: date = _FIRST_DAY, last: date = _LAST_DAY) -> MarketCalendar:
    """The NYSE calendar, covering at least `first` to `last`.

    One calendar per process: it is built on the first call and rebuilt, for the union of the
    ranges asked so far, only when a call asks for days it does not cover. Ranges are widened
    to whole years (and a year after `last`), so the calls of one command ask for the same
    calendar. The full default range (1990-2035) costs ~0.006 s from the shipped table (its
    sessions made when asked for); a daily run asks for recent years only (see
    `nyse_around`)."""
    global _calendar, _covered
    want = (date(first.year, 1, 1), date(min(last.year + 1, date.max.year), 12, 31))
    with _building:
        if _covered is None or want[0] < _covered[0] or want[1] > _covered[1]:
            span = want if _covered is None else (min(want[0], _covered[0]),
                                                  max(want[1], _covered[1]))
            _calendar, _covered = _build(*span), span
        return _calendar


_building = threading.Lock()
_calendar: MarketCalendar | None = None
_covered: tuple[date, date] | None = None


def _build(first: date, last: date) -> MarketCalendar:
    if nyse_table.FIRST <= first and last <= nyse_table.LAST:
        return _from_table(first, last)
    return _from_pandas_market_calendars(first, last)


def _from_table(first: date, last: date) -> MarketCalendar:
    """The sessions of `first`..`last` from nyse_table (weekdays but its holidays, 9:30 to
    16:00 New York time but its special sessions): the same sessions, to the same datetime
    objects, as pandas-market-calendars gives (tests/test_market_calendar.py checks every day),
    without its import (~0.3 s) and schedule (~0.1 s)."""
    holidays = nyse_table.holidays()
    days = [day for ordinal in range(first.toordinal(), last.toordinal() + 1)
            if (day := date.fromordinal(ordinal)).weekday() < 5 and day not in holidays]
    return MarketCalendar.of_days(days, nyse_table.special_sessions())


_OPEN, _CLOSE = time(9, 30), time(16, 0)  # NYSE's regular hours, New York time


def _from_pandas_market_calendars(first: date, last: date) -> MarketCalendar:
    import pandas_market_calendars as mcal  # imported lazily: it costs ~0.3 s

    schedule = mcal.get_calendar("NYSE").schedule(first.isoformat(), last.isoformat())
    opens = schedule["market_open"].dt.tz_convert("UTC").dt.to_pydatetime()
    closes = schedule["market_close"].dt.tz_convert("UTC").dt.to_pydatetime()
    days = schedule.index.date
    return MarketCalendar([Session(day=d, open=o, close=c)
                           for d, o, c in zip(days, opens, closes, strict=True)])


def table_text(first: date, last: date) -> str:
    """nyse_table.py's text for `first`..`last`, from pandas-market-calendars (run
    `python market_calendar.py` to write it again, after upgrading that package)."""
    from importlib.metadata import version

    calendar = _from_pandas_market_calendars(first, last)
    holidays, special = [], []
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        session = calendar.session(day)
        if session is None:
            if day.weekday() < 5:
                holidays.append(day.isoformat())
            continue
        hours = (session.open.astimezone(NEW_YORK).time(),
                 session.close.astimezone(NEW_YORK).time())
        if hours != (_OPEN, _CLOSE):
            special.append(f"{day} {hours[0]:%H:%M} {hours[1]:%H:%M}")
    lines = [f"{' '.join(holidays[i:i + 8])}" for i in range(0, len(holidays), 8)]
    return _TABLE.format(version=version("pandas-market-calendars"), first=first, last=last,
                         holidays="\n".join(lines), special="\n".join(special))


_TABLE = '''"""NYSE holidays and non-standard sessions, as pandas-market-calendars {version}
gives them.

Generated by `python market_calendar.py` (market_calendar.table_text); do not edit by hand.
tests/test_market_calendar.py checks that the calendar built from it is the package's, day by
day. Outside FIRST..LAST, market_calendar asks the package itself.
"""

from __future__ import annotations

from datetime import date, time
from functools import cache

FIRST, LAST = date.fromisoformat("{first}"), date.fromisoformat("{last}")

# Weekdays on which the exchange does not open.
HOLIDAYS = """
{holidays}
"""

# Sessions whose New York hours are not 9:30 to 16:00: day, open, close.
SPECIAL_SESSIONS = """
{special}
"""


@cache
def holidays() -> frozenset[date]:
    return frozenset(date.fromisoformat(d) for d in HOLIDAYS.split())


@cache
def special_sessions() -> dict[date, tuple[time, time]]:
    out = {{}}
    for line in SPECIAL_SESSIONS.strip().splitlines():
        day, opens, closes = line.split()
        out[date.fromisoformat(day)] = (time.fromisoformat(opens), time.fromisoformat(closes))
    return out
'''


def nyse_around(day: date, years_back: int = 5) -> MarketCalendar:
    """A calendar covering `years_back` years before `day` to two years after it: enough for
    any window the bot uses, at a fraction of the full calendar's cost (or the process's
    calendar, when one already covers that)."""
    return nyse(date(day.year - years_back, 1, 1), date(day.year + 2, 12, 31))


def new_york_noon(day: date) -> datetime:
    """Noon in New York on `day`, as a UTC datetime (the bot's scheduled decision time)."""
    return datetime.combine(day, time(12, 0), tzinfo=NEW_YORK).astimezone(UTC)


def parse_date_or_datetime(text: str) -> datetime:
    """`YYYY-MM-DD` means noon New York time of that day; anything else must be ISO 8601 with a
    zone (e.g. 2024-03-01T15:30:00Z). Returns a UTC datetime."""
    try:
        return new_york_noon(date.fromisoformat(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is neither YYYY-MM-DD nor an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC or an offset like -05:00")
    return parsed.astimezone(UTC)


if __name__ == "__main__":
    from pathlib import Path

    Path(__file__).with_name("nyse_table.py").write_text(
        table_text(date(1985, 1, 1), date(2045, 12, 31)))
