"""`GET /v2/calendar` as Alpaca serves it: "the full list of market days from 1970 to 2029"
without parameters, narrowed by `start` and `end` (inclusive), which mean trading dates, or
settlement dates with `date_type=SETTLEMENT` (Trading API spec, June 2026, LegacyCalendar).

Days come from the exchange's own calendar where it has them (a test may give it an
unscheduled closure) and from the NYSE calendar elsewhere. `session_open`/`session_close` are
the extended-hours session, HHMM New York time: 04:00 to four hours after the close, so 20:00
on a full day and 17:00 on an early close (Alpaca's after-hours session ends at 8 pm, 5 pm on
early-close days). US equities settle T+1 since 2024-05-28, T+2 from 2017-09-05, T+3 before.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from market_calendar import NEW_YORK, MarketCalendar, Session, nyse
from simbroker import errors

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2029, 12, 31)
T_PLUS_1_SINCE = date(2024, 5, 28)  # SEC Rule 15c6-1 as amended
T_PLUS_2_SINCE = date(2017, 9, 5)
DATE_TYPES = ("TRADING", "SETTLEMENT")


def calendar_days(own: MarketCalendar, start: datetime | None, end: datetime | None,
                  date_type: str | None) -> list[dict[str, Any]]:
    """The calendar answer for the query (400 for an unknown date_type)."""
    kind = (date_type or "TRADING").upper()
    if kind not in DATE_TYPES:
        raise errors.bad_request(f"date_type {date_type!r} is invalid; use TRADING or "
                                 "SETTLEMENT")
    first = max(start.astimezone(NEW_YORK).date() if start else FIRST_DAY, FIRST_DAY)
    last = min(end.astimezone(NEW_YORK).date() if end else LAST_DAY, LAST_DAY)
    if last < first:
        return []
    # A settlement date is at most three sessions (under a week) after its trade date.
    lo = first - timedelta(days=10) if kind == "SETTLEMENT" else first
    days = Days(own)
    out = []
    for session in days.between(lo, last):
        settles = days.settlement(session.day)
        key = settles if kind == "SETTLEMENT" else session.day
        if first <= key <= last:
            out.append(day_json(session, settles))
    return out


def day_json(session: Session, settles: date) -> dict[str, Any]:
    close = session.close.astimezone(NEW_YORK)
    return {"date": session.day.isoformat(),
            "open": session.open.astimezone(NEW_YORK).strftime("%H:%M"),
            "close": close.strftime("%H:%M"), "session_open": "0400",
            "session_close": (close + timedelta(hours=4)).strftime("%H%M"),
            "settlement_date": settles.isoformat()}


class Days:
    """The exchange's own sessions where its calendar covers the day, NYSE's elsewhere."""

    def __init__(self, own: MarketCalendar) -> None:
        self._own = own
        self._own_first = own.first_day or date.max
        self._own_last = own.last_day or date.min
        self._wide: MarketCalendar | None = None

    def _nyse(self) -> MarketCalendar:
        if self._wide is None:  # 1970..2030: built once per process (~0.5 s), when needed
            self._wide = nyse(FIRST_DAY, date(LAST_DAY.year + 1, 1, 31))
        return self._wide

    def between(self, first: date, last: date) -> list[Session]:
        inside_first, inside_last = max(first, self._own_first), min(last, self._own_last)
        if inside_first > inside_last:
            return self._nyse().sessions_between(first, last)
        before = self._nyse().sessions_between(first, inside_first - timedelta(days=1)) \
            if first < inside_first else []
        after = self._nyse().sessions_between(inside_last + timedelta(days=1), last) \
            if last > inside_last else []
        return before + self._own.sessions_between(inside_first, inside_last) + after

    def settlement(self, day: date) -> date:
        count = 1 if day >= T_PLUS_1_SINCE else 2 if day >= T_PLUS_2_SINCE else 3
        for _ in range(count):
            day = self._next(day)
        return day

    def _next(self, day: date) -> date:
        if self._own_first <= day < self._own_last:
            return self._own.next_session(day).day
        return self._nyse().next_session(day).day
