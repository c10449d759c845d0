"""No order leaves after the session's close.

The run reads the broker's clock once, at its start, and trades only when the market is open.
A run that starts late, or is slowed down (retries, a slow broker), could otherwise send its
DAY orders after the close: Alpaca would queue them for the next session, where they would
trade at the previous day's noon limits. So before every POST the bot estimates the broker's
time (its clock at the start plus the time the run has taken, by the machine's monotonic
clock) and, once that is within `CHECK_WINDOW_SECONDS` of the session's close, asks the
broker's clock again. An order is not sent when either says the close is less than
`CLOSE_MARGIN_SECONDS` away, or the broker says the market is closed. The close is the
broker's `next_close` read at the start, which includes early closes (13:00 on the day after
Thanksgiving, https://www.nyse.com/markets/hours-calendars).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from market_calendar import NEW_YORK

if TYPE_CHECKING:
    from broker import Broker, Clock

# An order sent this close to the close may reach the broker after it (the POST's own time,
# a retry): not sent.
CLOSE_MARGIN_SECONDS = 30.0
# From how far before the close the broker's clock is read before each POST.
CHECK_WINDOW_SECONDS = 300.0


class SessionGuard:
    """`too_late()` before each POST: why the order must not be sent, or None."""

    def __init__(self, broker: Broker, clock: Clock, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.broker = broker
        self.clock = clock
        self.monotonic = monotonic
        self.started = monotonic()

    def too_late(self) -> str | None:
        close = self.clock.next_close
        now = self.clock.timestamp + timedelta(seconds=self.monotonic() - self.started)
        if close - now > timedelta(seconds=CHECK_WINDOW_SECONDS):
            return None
        broker = self.broker.clock()
        now = max(now, broker.timestamp)
        if broker.is_open and close - now > timedelta(seconds=CLOSE_MARGIN_SECONDS):
            return None
        return (f"the session closes at {close.astimezone(NEW_YORK):%H:%M:%S %Z} and it is "
                f"about {now.astimezone(NEW_YORK):%H:%M:%S}: not sent, a DAY order would "
                "trade in the next session")
