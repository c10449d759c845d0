"""The costs a real account pays (simbroker/costs.py), charged on a finished backtest.

From the trades and the bars: every short held at a close pays that day's borrow fee for the
calendar days until the next session; every sale (a long's exit, a short's entry) pays SEC and
FINRA fees, each day's total rounded up to the cent as Alpaca charges it; positive cash earns
interest when a rate is set. The costs come out of cash and equity from the day they are
charged (`Result.equity` is net of them; `Costs.gross_equity` is before them).

They are charged after the bot's decisions, not fed back into them: a run that would have had
a few dollars less cash decides as if it had them. With $100 positions on a $100,000 account
that changes nothing (no run's entries come near the cash); an account whose budget binds
would see its costs a little late. Positions still open at the end of the backtest (not yet
round trips) pay nothing here: at most the borrow fees of the last holding period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtester.panels import Panels
from market_calendar import MarketCalendar
from simbroker.costs import CostRates, borrow_fee, cash_interest, sale_fees_unrounded
from trade_costs import allocate_cents


@dataclass(frozen=True)
class Costs:
    """Dollars per decision day (charged at that day's close) and per trade."""

    borrow: np.ndarray
    sec: np.ndarray
    taf: np.ndarray
    interest: np.ndarray  # credited
    trade_fees: np.ndarray  # per round trip: its borrow fees and its sale's SEC and TAF fees
    gross_equity: np.ndarray  # equity before costs

    @property
    def per_day(self) -> np.ndarray:
        """Net cost of each day (interest counts against it)."""
        return self.borrow + self.sec + self.taf - self.interest

    @property
    def total_usd(self) -> float:
        return round(float(self.per_day.sum()), 2)


def days_to_next_session(panels: Panels, calendar: MarketCalendar) -> np.ndarray:
    """Calendar days from each decision day to the next session (3 after a Friday)."""
    days = [s.day for s in panels.sessions[panels.warmup:]]
    following = [*days[1:], calendar.next_session(days[-1]).day] if days else []
    return np.array([(b - a).days for a, b in zip(days, following, strict=True)], dtype=float)


def charge(panels: Panels, calendar: MarketCalendar, trades, cash: np.ndarray,
           equity: np.ndarray, rates: CostRates) -> Costs:
    """The costs of a backtest's round trips and cash; `equity` is the gross equity."""
    n_days, n_sym = len(cash), len(panels.symbols)
    rows = slice(panels.warmup, panels.warmup + n_days)
    close = panels.close[rows]
    level = panels.split_level[rows] if panels.split_level is not None else None
    gap = days_to_next_session(panels, calendar)
    short = _short_shares(trades, n_days, n_sym, level)
    daily_borrow = borrow_fee(short, np.nan_to_num(close), gap[:, np.newaxis], rates)
    borrow = daily_borrow.sum(axis=1)
    sec, taf, trade_fees = _sale_fees(trades, n_days, level, rates, panels.symbols)
    trade_fees = trade_fees + _trade_borrow(trades, daily_borrow, short)
    interest = cash_interest(cash, gap, rates)
    return Costs(borrow=borrow, sec=sec, taf=taf, interest=interest,
                 trade_fees=np.round(trade_fees, 2), gross_equity=equity)


def _held(trades, n_days: int):
    """(trade index, day) of every close each finished short was held over."""
    short = np.flatnonzero(~trades.is_long)
    first, stop = trades.entry_session[short], np.minimum(trades.exit_session[short], n_days)
    counts = np.maximum(stop - first, 0)
    which = np.repeat(short, counts)
    day = np.repeat(first, counts) + (np.arange(counts.sum())
                                      - np.repeat(np.cumsum(counts) - counts, counts))
    return which, day


def _shares_at(trades, which, day, level) -> np.ndarray:
    """Shares of trade `which` at the close of `day`: its quantity as splits left it, scaled
    back by the splits after that day."""
    qty = trades.qty[which].astype(float)
    if level is None:
        return qty
    j = trades.symbol[which]
    last = np.minimum(trades.exit_session[which], len(level) - 1)
    return qty * level[day, j] / level[last, j]


def _short_shares(trades, n_days: int, n_sym: int, level) -> np.ndarray:
    which, day = _held(trades, n_days)
    out = np.zeros((n_days, n_sym))
    np.add.at(out, (day, trades.symbol[which]), _shares_at(trades, which, day, level))
    return out


def _trade_borrow(trades, daily_borrow: np.ndarray, short: np.ndarray) -> np.ndarray:
    """Each finished short's share of the day's fee of its symbol (by shares, when several
    trades of one symbol overlap, which the bot's one position per symbol never does)."""
    which, day = _held(trades, len(daily_borrow))
    j = trades.symbol[which]
    shares = _shares_at(trades, which, day, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        part = np.where(short[day, j] > 0, daily_borrow[day, j] * shares / short[day, j], 0.0)
    out = np.zeros(len(trades))
    np.add.at(out, which, part)
    return out


def _sale_fees(trades, n_days: int, level, rates: CostRates, symbols):
    """SEC and TAF per day (each day's totals rounded up to the cent) and per trade: each
    day's totals shared among its sales as the bot books the account's (trade_costs.py)."""
    is_long = trades.is_long.astype(bool)
    # A long sells at its exit, a short at its entry.
    day = np.where(is_long, trades.exit_session, trades.entry_session)
    price = np.where(is_long, trades.exit_price, trades.entry_price).astype(float)
    qty = trades.qty.astype(float)
    principal = qty * price  # the same before and after a split
    shares = qty
    if level is not None and len(trades):
        idx = np.arange(len(trades))
        shares = _shares_at(trades, idx, np.minimum(day, n_days - 1), level)
    sec, taf = sale_fees_unrounded(principal, shares, rates)
    inside = day < n_days
    sec_day, taf_day = np.zeros(n_days), np.zeros(n_days)
    np.add.at(sec_day, day[inside], sec[inside])
    np.add.at(taf_day, day[inside], taf[inside])
    sec_day, taf_day = np.ceil(sec_day * 100 - 1e-9) / 100, np.ceil(taf_day * 100 - 1e-9) / 100
    return sec_day, taf_day, _shared(day, inside, symbols, trades, (sec, taf),
                                     (sec_day, taf_day))


def _shared(day, inside, symbols, trades, fees, totals) -> np.ndarray:
    """Each trade's cents of its sale day's totals (allocate_cents, in the bot's order of
    precedence: by symbol; a day has one sale per symbol), in dollars."""
    out = np.zeros(len(day))
    names = np.asarray(symbols, dtype=object)[trades.symbol] if len(day) else np.zeros(0)
    chosen = np.flatnonzero(inside)
    chosen = chosen[np.lexsort((names[chosen].astype(str), day[chosen]))] if len(chosen) \
        else chosen
    for group in np.split(chosen, np.flatnonzero(np.diff(day[chosen])) + 1):
        if not len(group):
            continue
        d = day[group[0]]
        for unrounded, total in zip(fees, totals, strict=True):
            cents = allocate_cents(round(float(total[d]) * 100), unrounded[group].tolist())
            out[group] += np.asarray(cents, dtype=float) / 100
    return out
