"""Market data for one run: the past closes of the z-score window and today's prices.

Two requests whatever the universe's size (bar pagination aside): one multi-symbol bars
request over exactly the sessions the window needs (NYSE calendar), and one snapshots request
for the current prices and quotes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from broker import Broker, Quote
from market_calendar import MarketCalendar

log = logging.getLogger("bot.data")


@dataclass(frozen=True)
class MarketView:
    """What the decisions see. Arrays are aligned with `symbols`.

    `past_closes` has shape (window - 1, n): the closes of the last window-1 completed
    sessions before today, oldest first. `prices` are today's latest trades.
    """

    day: date
    symbols: tuple[str, ...]
    past_closes: np.ndarray
    prices: np.ndarray
    asks: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)
    bids: np.ndarray = field(default_factory=lambda: np.empty(0))

    def index(self, symbol: str) -> int:
        return self.symbols.index(symbol)


def window_sessions(calendar: MarketCalendar, today: date, window: int) -> list[date]:
    """The completed sessions whose closes join today's price in the z-score window."""
    return [s.day for s in calendar.sessions_before(today, window - 1)]


def fetch_market_view(broker: Broker, symbols: list[str], *, now: datetime, today: date,
                      window: int, calendar: MarketCalendar,
                      max_price_age_seconds: float,
                      held: Collection[str] = ()) -> MarketView:
    """Fetch bars and prices for `symbols`; symbols with a missing bar in the window or a
    missing or stale price are left out, each with its reason in `skipped`. A `held` symbol
    with a usable price stays in despite missing bars (NaN closes): a held position is
    managed from the closes it has (signal_generator.held_zscores)."""
    days = window_sessions(calendar, today, window)
    bars = broker.daily_bars(symbols, days[0], days[-1])
    quotes = broker.quotes(symbols)
    return build_market_view(symbols, days, bars_closes(bars), quotes, now=now, today=today,
                             max_price_age_seconds=max_price_age_seconds, held=held)


def bars_closes(bars: dict[str, list]) -> dict[str, dict[date, float]]:
    return {symbol: {b.day: b.close for b in rows} for symbol, rows in bars.items()}


def build_market_view(symbols: list[str], days: list[date],
                      closes: dict[str, dict[date, float]], quotes: dict[str, Quote], *,
                      now: datetime, today: date, max_price_age_seconds: float,
                      held: Collection[str] = ()) -> MarketView:
    kept: list[str] = []
    columns: list[list[float]] = []
    prices: list[float] = []
    asks: list[float] = []
    bids: list[float] = []
    skipped: dict[str, str] = {}
    for symbol in symbols:
        by_day = closes.get(symbol, {})
        missing = [d for d in days if d not in by_day]
        quote = quotes.get(symbol)
        if missing and symbol not in held:
            skipped[symbol] = (f"no daily bar for {len(missing)} of the {len(days)} window "
                               f"sessions (first missing {missing[0]})")
        elif quote is None or not quote.price > 0:
            skipped[symbol] = "no current price"
        elif (now - quote.price_time).total_seconds() > max_price_age_seconds:
            age = (now - quote.price_time).total_seconds()
            skipped[symbol] = f"stale price: last trade {age:.0f} s old"
        else:
            kept.append(symbol)
            columns.append([by_day.get(d, np.nan) for d in days])
            if missing:
                log.info("%s: held, no daily bar for %d of the %d window sessions (first "
                         "missing %s): managed from the closes it has", symbol, len(missing),
                         len(days), missing[0])
            prices.append(quote.price)
            if quote.ask is None:  # Alpaca's ap of 0 means no quote
                log.info("%s: no ask in the quote (none, or 0); priced from the last trade "
                         "%g", symbol, quote.price)
            asks.append(quote.ask if quote.ask and quote.ask > 0 else quote.price)
            bids.append(quote.bid if quote.bid and quote.bid > 0 else quote.price)
    past = np.array(columns, dtype=float).T if columns else np.empty((len(days), 0))
    for symbol, reason in skipped.items():
        log.info("skip %s: %s", symbol, reason)
    return MarketView(day=today, symbols=tuple(kept), past_closes=past,
                      prices=np.array(prices, dtype=float), asks=np.array(asks, dtype=float),
                      skipped=skipped, bids=np.array(bids, dtype=float))
