"""What the market looks like at the exchange's clock: latest trades, quotes and daily bars.

Every price comes from `price_model` (the backtester uses the same model, and parity is
tested). The rules, which decide what a client can see and so must never leak the future:

* before a session opens, the latest trade is the previous session's close, stamped at that
  close; during a session it is the model path price at the current fraction of the session;
  after the close it is the close;
* a symbol without a bar today (halted, not yet listed) keeps its last close all day;
* today's daily bar exists only once the session has opened: during the session it is the
  partial bar so far (open, high and low of the path so far, close = current price, volume
  pro rata), after the close the full bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np

from market_calendar import NEW_YORK, UTC, MarketCalendar, Session
from simbroker import price_model
from simbroker.market_data import DailyBar, MarketData


@dataclass(frozen=True)
class Trade:
    price: float
    time: datetime


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float
    time: datetime


@dataclass(frozen=True)
class Moment:
    """Where `now` falls in the trading calendar. `session` is today's session (None on a
    weekend or holiday); `fraction` is how much of it has elapsed (0 before, 1 after)."""

    now: datetime
    day: date
    session: Session | None
    fraction: float

    @property
    def is_open(self) -> bool:
        return self.session is not None and self.session.open <= self.now < self.session.close

    @property
    def has_opened(self) -> bool:
        return self.session is not None and self.now >= self.session.open


class MarketView:
    """Prices of `data` as seen at a moment, with the exchange's spread."""

    def __init__(self, data: MarketData, calendar: MarketCalendar, spread_bps: float) -> None:
        self.data = data
        self.calendar = calendar
        self.spread_bps = spread_bps
        # (symbol, day, fraction) -> today's path price there, and its low and high so far
        # (None at or after the close), worked out for many symbols at once by `prime`.
        self._primed: dict[tuple[str, date, float], tuple[float, float | None,
                                                          float | None]] = {}

    def prime(self, symbols: Sequence[str], at: Moment) -> None:
        """Work out today's path price at `at`, and its range so far, for all `symbols` in one
        evaluation of the price model (a snapshot of many symbols asks for each): `last_trade`
        and `partial_bar` at that moment read them. The model gives arrays the bits it gives
        floats, so the answers are the same as one by one. Only the last call's are kept."""
        self._primed = {}
        bars = [(symbol, bar) for symbol in symbols
                if (bar := self.todays_bar(symbol, at)) is not None]
        if not bars:
            return
        o, h, lo, c, scale = (np.array([getattr(bar, f) for _, bar in bars], dtype=float)
                              for f in ("open", "high", "low", "close", "path_scale"))
        key = price_model.path_keys([symbol for symbol, _ in bars],
                                    np.array([at.day.toordinal()]))[0]
        price = price_model.price_at(o, h, lo, c, at.fraction, key=key, scale=scale)
        low = high = [None] * len(bars)
        if at.fraction < 1.0:
            low, high = (v.tolist() for v in price_model.range_between(
                o, h, lo, c, 0.0, at.fraction, key=key, scale=scale))
        self._primed = {(symbol, at.day, at.fraction): (p, low[i], high[i])
                        for i, ((symbol, _), p) in enumerate(zip(bars, price.tolist(),
                                                                 strict=True))}

    def moment(self, now: datetime) -> Moment:
        day = now.astimezone(NEW_YORK).date()
        session = self.calendar.session(day)
        fraction = session.fraction(now) if session is not None else 0.0
        return Moment(now=now, day=day, session=session, fraction=fraction)

    def knows(self, symbol: str) -> bool:
        return symbol in self.data

    def todays_bar(self, symbol: str, at: Moment) -> DailyBar | None:
        """The full raw bar of today's session if it has opened and the symbol trades today."""
        if not at.has_opened:
            return None
        return self.data.bar(symbol, at.day)

    def last_trade(self, symbol: str, at: Moment) -> Trade | None:
        """The latest trade at `at` (see the module docstring); None without any bar yet."""
        bar = self.todays_bar(symbol, at)
        if bar is not None:
            assert at.session is not None
            primed = self._primed.get((symbol, at.day, at.fraction))
            price = primed[0] if primed is not None else float(price_model.price_at(
                bar.open, bar.high, bar.low, bar.close, at.fraction,
                key=price_model.path_key(symbol, bar.day), scale=bar.path_scale))
            return Trade(price=price, time=min(at.now, at.session.close))
        previous = self.data.last_bar_before(symbol, at.day)
        if previous is None:
            return None
        return Trade(price=previous.close, time=self.close_time(previous.day))

    def quote(self, symbol: str, at: Moment) -> Quote | None:
        trade = self.last_trade(symbol, at)
        if trade is None:
            return None
        bid, ask = price_model.quote(trade.price, self.spread_bps)
        return Quote(bid=float(bid), ask=float(ask), time=trade.time)

    def partial_bar(self, symbol: str, at: Moment) -> DailyBar | None:
        """Today's bar as far as the session has gone; never any of the future."""
        bar = self.todays_bar(symbol, at)
        if bar is None or at.fraction >= 1.0:
            return bar
        primed = self._primed.get((symbol, at.day, at.fraction))
        if primed is not None:
            close, low, high = primed
        else:
            key = price_model.path_key(symbol, bar.day)
            low, high = price_model.range_between(bar.open, bar.high, bar.low, bar.close, 0.0,
                                                  at.fraction, key=key, scale=bar.path_scale)
            close = price_model.price_at(bar.open, bar.high, bar.low, bar.close, at.fraction,
                                         key=key, scale=bar.path_scale)
        volume = bar.volume * at.fraction if math.isfinite(bar.volume) else bar.volume
        return DailyBar(day=bar.day, open=bar.open, high=float(high), low=float(low),
                        close=float(close), volume=volume, bridge_scale=bar.bridge_scale)

    def previous_close(self, symbol: str, at: Moment) -> float | None:
        """Yesterday's close as seen today: split-adjusted for splits effective by today."""
        previous = self.data.last_bar_before(symbol, at.day)
        if previous is None:
            return None
        as_of = at.day if at.has_opened else previous.day
        return previous.close / self.data.split_factor(symbol, previous.day, as_of)

    def close_time(self, day: date) -> datetime:
        session = self.calendar.session(day)
        if session is not None:
            return session.close
        return datetime.combine(day, time(16, 0), tzinfo=NEW_YORK).astimezone(UTC)
