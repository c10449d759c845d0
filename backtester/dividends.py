"""Cash dividends in a backtest, as the exchange pays them (simbroker/corporate.py).

A position held at the close before an ex-date is paid ``shares * amount`` (a long) or charged
it (a short), rounded to the cent per position, at the open of the pay date's session (the
first session on or after the pay date; the ex-date's without one), before that day's run,
as the exchange pays (simbroker/corporate.py). The cash goes into cash, and
so into the run's budgets and equity, from that open on (`day_dividends`, booked by both
engines: backtester/costs.py), and into the round trip's fees with its sign (a long's
dividend lowers its fees, a short's charge raises them), as the bot books the exchange's DIV
activities to its trades (`paid`). A position still open at the end of the backtest is paid
into cash too, as on the exchange; it is no round trip, so it has no fees to carry it. A round
trip's fees carry the dividends of the ex-dates it was held over, paid or still owed at the
end; the bot books a DIV by its date (the pay date) to the latest trade of the symbol that
entered on or before it, among the trades it still books (7 days after their exit): a pay date
later than that, or after a new trade of the symbol, is booked elsewhere by the bot (costs tied
to no trade, or the newer trade) while the backtest keeps it with the trade that earned it.

Dividend-adjusted prices never come here: the data refuses a dividend for a symbol whose
prices already carry it (simbroker/dividends.py), so nothing is counted twice.
"""

from __future__ import annotations

import datetime

import numpy as np

from simbroker import dividends as dividend_files
from simbroker.market_data import MarketData

_EPOCH = datetime.date(1970, 1, 1)


def dividend_panel(market: MarketData, symbols: tuple[str, ...],
                   numbers: np.ndarray) -> np.ndarray | None:
    """Dollars per share going ex at each session (rows: session day numbers `numbers`) for
    each symbol, in the raw shares of that session; None when none of them pays one."""
    out = None
    for dividend, t, j in _going_ex(market, symbols, numbers):
        if out is None:
            out = np.zeros((len(numbers), len(symbols)))
        out[t, j] += dividend.amount
    return out


def _going_ex(market: MarketData, symbols: tuple[str, ...], numbers: np.ndarray):
    """Each dividend of `symbols` going ex within the sessions `numbers`, with the row of its
    ex-date's session and the column of its symbol."""
    if not len(numbers):
        return
    column = {s: j for j, s in enumerate(symbols)}
    first = _EPOCH + datetime.timedelta(days=int(numbers[0]) - 1)
    last = _EPOCH + datetime.timedelta(days=int(numbers[-1]))
    for dividend in market.dividends_going_ex(first, last):
        j = column.get(dividend.symbol)
        if j is not None:
            t = int(np.searchsorted(numbers, (dividend.ex_date - _EPOCH).days, side="left"))
            yield dividend, t, j


def pay_sessions(market: MarketData, symbols: tuple[str, ...],
                 numbers: np.ndarray) -> np.ndarray | None:
    """For each cell of `dividend_panel`, the session (row of `numbers`) whose open pays it:
    the first session on or after the dividend's pay date (len(numbers): after the last one,
    not paid within these sessions), or its ex-date's session when it has no pay date, as
    the exchange pays (simbroker/corporate.py). None when every dividend in the range is paid
    at its ex-date's open."""
    out = None
    for dividend, t, j in _going_ex(market, symbols, numbers):
        if dividend.pay_date is None:
            continue
        pay = int(np.searchsorted(numbers, (dividend.pay_date - _EPOCH).days, side="left"))
        if pay == t:
            continue
        if out is None:
            out = np.tile(np.arange(len(numbers))[:, np.newaxis], (1, len(symbols)))
        out[t, j] = pay
    return out


def dividend_levels(market: MarketData, symbols: tuple[str, ...],
                    numbers: np.ndarray) -> np.ndarray | None:
    """The exchange's dividend adjustment of the bars it serves (`adjustment=all`, the bot's;
    simbroker/dividends.adjustment_table) as a level per session (rows: day numbers
    `numbers`) and symbol: the bot's close of session b seen on session t is the split-adjusted
    close times ``level[t] / level[b]``, the exchange's factor to the bit. None when no
    symbol has a dividend to adjust for."""
    out = None
    for j, symbol in enumerate(symbols):
        table = dividend_files.adjustment_table(market, symbol)
        if table is None:
            continue
        if out is None:
            out = np.ones((len(numbers), len(symbols)))
        out[:, j] = dividend_files.levels(table, numbers)
    return out


def day_dividends(signed: np.ndarray, amount: np.ndarray) -> float:
    """One open's dividends in dollars, whole cents: each position of `signed` shares
    (negative: short) paid `amount` a share, rounded to the cent with Python's round as the
    exchange rounds each DIV activity (simbroker/corporate.py), then summed."""
    total = 0.0
    for qty, per_share in zip(signed.tolist(), amount.tolist(), strict=True):
        if per_share and qty:
            total = round(total + round(qty * per_share, 2), 2)
    return total


def paid(trades, amount: np.ndarray | None, level: np.ndarray | None,
         n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Dividends owed per ex-date's decision day (negative: charged) and per round trip, for
    the trades' fees (the cash goes by `day_dividends`, on the day it is paid).

    `amount` is `dividend_panel` on the decision days; a trade entered on day e0 and exited on
    day e1 held the close before every day e with e0 < e <= e1 (an exit on the ex-date fills
    after the open, when the dividend is owed)."""
    per_day, per_trade = np.zeros(n_days), np.zeros(len(trades))
    if amount is None or not len(trades):
        return per_day, per_trade
    for t, j in zip(*np.nonzero(amount[:n_days]), strict=True):
        held = np.flatnonzero((trades.symbol == j) & (trades.entry_session < t)
                              & (trades.exit_session >= t))
        if not len(held):
            continue
        shares = trades.qty[held].astype(float)
        if level is not None:  # shares as of day t: the trade's quantity as splits left it
            last = np.minimum(trades.exit_session[held], len(level) - 1)
            shares = shares * level[t, j] / level[last, j]
        sign = np.where(trades.is_long[held], 1.0, -1.0)
        cash = np.round(sign * shares * amount[t, j] + 0.0, 2)
        per_day[t] += cash.sum()
        per_trade[held] += cash
    return per_day, per_trade
