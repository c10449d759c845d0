"""The broker's trading calendar where it disagrees with the local NYSE calendar.

The local calendar (pandas-market-calendars, pinned) knows the scheduled holidays and early
closes; an unscheduled closure (a national day of mourning, a storm) reaches it only with a
new release. The broker's calendar (GET /v2/calendar) knows it at once. Without this check, a
closure missing from the local calendar looks like a missing daily bar for every symbol, and
the whole universe is skipped. So each run asks the broker for the sessions it uses and, where
the two differ, takes the broker's, saying so once in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

from market_calendar import MarketCalendar, Session

log = logging.getLogger("bot.calendar")


def differences(local: Sequence[Session], broker: Sequence[Session]) -> list[str]:
    """Each day where the two lists disagree, described (sorted by day)."""
    mine, theirs = {s.day: s for s in local}, {s.day: s for s in broker}
    out = []
    for day in sorted(set(mine) | set(theirs)):
        a, b = mine.get(day), theirs.get(day)
        if a is None:
            out.append(f"{day}: a session at the broker, not in the local calendar")
        elif b is None:
            out.append(f"{day}: closed at the broker, a session in the local calendar")
        elif (a.open, a.close) != (b.open, b.close):
            out.append(f"{day}: the broker's hours are {b.open:%H:%M}-{b.close:%H:%M} UTC, "
                       f"the local calendar's {a.open:%H:%M}-{a.close:%H:%M} UTC")
    return out


def merged(local: MarketCalendar, broker: Sequence[Session], first: date,
           last: date) -> MarketCalendar:
    """The local calendar with the broker's sessions from `first` to `last`; logs the
    disagreement, once, when there is one."""
    inside = local.sessions_between(first, last)
    found = differences(inside, broker)
    if not found:
        return local
    log.warning("the broker's calendar differs from the local NYSE calendar on %d day(s) "
                "between %s and %s; the run follows the broker's: %s", len(found), first, last,
                "; ".join(found))
    before = [s for s in local.sessions_between(date.min, first) if s.day < first]
    after = [s for s in local.sessions_between(last, date.max) if s.day > last]
    return MarketCalendar([*before, *sorted(broker, key=lambda s: s.day), *after])
