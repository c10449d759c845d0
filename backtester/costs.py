"""The costs a real account pays (simbroker/costs.py), taken from cash at each close as the
exchange takes them, so that later runs see the cash they left.

At each decision day's close, in the exchange's order (`simbroker.exchange._charge_costs`):
every short held pays that day's borrow fee (per symbol, round lots, marked at the close) for
the calendar days until the next session; the day's sales (a long's exit, a short's entry)
pay SEC and FINRA fees, each day's total rounded up to the cent; then positive cash earns
interest when a rate is set. Each amount comes out of cash in whole cents the moment it is
charged, so the next run's cash, buying power and equity are net of it, as the bot's are on
the exchange: where the budget binds, costs change decisions in the backtest as they do there.

The day loop charges them with a `Ledger` as it goes; the timelines (backtester/timeline.py)
compute the same charges from their positions at once (`timeline_charges`) before they check
any run against the account. Positions still open at the end pay what they paid so far.

Each round trip's fees (`trade_fees`) are its borrow fees and its share of its sale day's
totals, shared among that day's sales in whole cents exactly as the bot books the account's
(trade_costs.allocate_cents), less its cash dividends: the bot's and the backtest's rows of a
trade are identical.

Cash dividends (backtester/dividends.py) go into cash at the open of the session the
exchange pays them (the pay date's, the ex-date's without one), before that day's run, as
the exchange books its DIV activities: the run's cash, buying power and equity include
them, so a budget that binds on a dividend makes the same decision in the backtest as on
the exchange. The day loop books them with the `Ledger` (`open_dividends`, which keeps
those owed until their pay date); the timelines book each day's total as one more
whole-cent step at its open (timeline._Closes), from the positions' quantities as splits
leave them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtester.dividends import day_dividends
from backtester.dividends import paid as dividends_paid
from backtester.panels import Panels
from market_calendar import MarketCalendar
from simbroker.costs import (
    CostRates,
    borrow_fee,
    cash_interest,
    day_sale_fees,
    sale_fees_unrounded,
)


@dataclass(frozen=True)
class Charges:
    """What the account was charged at each decision day's close (dollars): each borrow fee
    as (day, symbol, fee) in day order (only where a short was held: a few cells of the
    days x symbols grid), the day's SEC and TAF totals, interest credited; and every sale as
    (day, symbol, principal, shares), the weights a day's totals are shared by."""

    borrow_cells: tuple[np.ndarray, np.ndarray, np.ndarray]
    sec: np.ndarray
    taf: np.ndarray
    interest: np.ndarray
    sales: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    # Cash dividends booked into cash at each day's open, whole cents (negative: charged on
    # shorts); None: none paid. Not a cost: `per_day` leaves them out.
    dividends: np.ndarray | None = None
    # Dividends owed at an ex-date and paid at a later pay date's open, as (ex day, pay day,
    # dollars) cells; the pay day is len(sec) or more when paid after the backtest.
    dividends_owed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def borrow(self) -> np.ndarray:
        """Borrow fees per day."""
        day, _, fee = self.borrow_cells
        return np.bincount(day, weights=fee, minlength=len(self.sec))

    @property
    def per_day(self) -> np.ndarray:
        """Net cost of each day (interest counts against it)."""
        return self.borrow + self.sec + self.taf - self.interest

    def borrow_on(self, day: int) -> list[float]:
        """The borrow fees of one day."""
        d, _, fee = self.borrow_cells
        lo, hi = np.searchsorted(d, [day, day + 1])
        return fee[lo:hi].tolist()

    def borrow_of(self, day: np.ndarray, symbol: np.ndarray, n_symbols: int) -> np.ndarray:
        """The borrow fee of each (day, symbol) cell, 0 where none was charged."""
        d, j, fee = self.borrow_cells
        keys = d * n_symbols + j
        order = np.argsort(keys, kind="stable")
        wanted = np.asarray(day) * n_symbols + np.asarray(symbol)
        at = np.minimum(np.searchsorted(keys[order], wanted), max(len(keys) - 1, 0))
        if not len(keys):
            return np.zeros(len(wanted))
        return np.where(keys[order][at] == wanted, fee[order][at], 0.0)


@dataclass(frozen=True)
class Costs:
    """Dollars per decision day (charged at that day's close) and per trade."""

    borrow: np.ndarray
    sec: np.ndarray
    taf: np.ndarray
    interest: np.ndarray  # credited
    # per round trip: its borrow fees and its share of its sale's day, less its dividends
    trade_fees: np.ndarray
    gross_equity: np.ndarray  # equity before costs
    # Cash dividends credited (negative: a short charged them; backtester/dividends.py).
    dividends: np.ndarray | None = None

    @property
    def per_day(self) -> np.ndarray:
        """Net cost of each day (interest and dividends received count against it)."""
        net = self.borrow + self.sec + self.taf - self.interest
        return net if self.dividends is None else net - self.dividends

    @property
    def total_usd(self) -> float:
        return round(float(self.per_day.sum()), 2)


def days_to_next_session(panels: Panels, calendar: MarketCalendar) -> np.ndarray:
    """Calendar days from each decision day to the next session (3 after a Friday)."""
    days = [s.day for s in panels.sessions[panels.warmup:]]
    following = [*days[1:], calendar.next_session(days[-1]).day] if days else []
    return np.array([(b - a).days for a, b in zip(days, following, strict=True)], dtype=float)


class Ledger:
    """The day loop's costs: `sold` at each sale fill, `close` at each close."""

    def __init__(self, rates: CostRates, gap: np.ndarray, n_symbols: int) -> None:
        self.rates, self.gap = rates, gap
        days = len(gap)
        self.borrow: list[tuple[int, int, float]] = []  # (day, symbol, fee)
        self.sec, self.taf, self.interest = np.zeros(days), np.zeros(days), np.zeros(days)
        self.sales: list[tuple[int, int, float, float]] = []
        self._today: list[tuple[int, float, float]] = []
        self.dividends: np.ndarray | None = None  # booked at each day's open, once paid
        self.owed: list[tuple[int, int, float]] = []  # (ex day, pay day, dollars) not yet paid

    def resume(self, charges: Charges, day: int) -> None:
        """Continue from `charges` of the days before `day` (a timelines prefix)."""
        d, j, fee = charges.borrow_cells
        keep = d < day
        self.borrow = list(zip(d[keep].tolist(), j[keep].tolist(), fee[keep].tolist(),
                               strict=True))
        self.sec[:day] = charges.sec[:day]
        self.taf[:day], self.interest[:day] = charges.taf[:day], charges.interest[:day]
        d, j, principal, shares = charges.sales
        keep = d < day
        self.sales = list(zip(d[keep].tolist(), j[keep].tolist(), principal[keep].tolist(),
                              shares[keep].tolist(), strict=True))
        if charges.dividends is not None:
            self.dividends = np.zeros(len(self.gap))
            self.dividends[:day] = charges.dividends[:day]
        if charges.dividends_owed is not None:  # owed before `day`, paid from `day` on
            ex, pay, owed = charges.dividends_owed
            keep = (ex < day) & (pay >= day)
            self.owed = list(zip(ex[keep].tolist(), pay[keep].tolist(), owed[keep].tolist(),
                                 strict=True))

    def open_dividends(self, d: int, cash: float, signed: np.ndarray, amount: np.ndarray,
                       pay: np.ndarray | None = None) -> float:
        """Cash after day `d`'s open: the dividends going ex today, `amount` per share on the
        positions of `signed` shares (negative: short), paid now, or owed until their `pay`
        day where it is later; and those owed to today, paid. Paid even with the costs off
        (backtester/dividends)."""
        if pay is None or (pay == d).all():
            total = day_dividends(signed, amount)
        else:
            now = pay == d
            total = day_dividends(signed[now], amount[now])
            for q, a, p in zip(signed[~now].tolist(), amount[~now].tolist(),
                               pay[~now].tolist(), strict=True):
                if a and q:
                    self.owed.append((d, p, round(q * a, 2)))
        if self.owed:
            for _, p, owed in self.owed:
                if p == d:
                    total = round(total + owed, 2)
            self.owed = [o for o in self.owed if o[1] != d]
        if total == 0:
            return cash
        if self.dividends is None:
            self.dividends = np.zeros(len(self.gap))
        self.dividends[d] = total
        return round(cash + total, 2)

    def sold(self, symbol: int, principal: float, shares: float) -> None:
        self._today.append((symbol, principal, shares))

    def close(self, d: int, cash: float, shorts: np.ndarray, shares: np.ndarray,
              marks: np.ndarray) -> float:
        """Cash after day `d`'s close: borrow on the short `shares` of symbols `shorts`
        marked at `marks`, the day's sale fees, then interest."""
        today, self._today = self._today, []
        if not self.rates.enabled:
            return cash
        gap = float(self.gap[d])
        fees: list[float] = []
        if len(shorts):
            fees = borrow_fee(shares, np.nan_to_num(marks), gap, self.rates).tolist()
            self.borrow += [(d, j, f) for j, f in zip(shorts.tolist(), fees, strict=True) if f]
        if today:
            self.sec[d], self.taf[d] = day_sale_fees([p for _, p, _ in today],
                                                     [q for _, _, q in today], self.rates)
            self.sales += [(d, j, p, q) for j, p, q in today]
        cash, self.interest[d] = close_cash(cash, fees, self.sec[d], self.taf[d], gap,
                                            self.rates)
        return cash

    def charges(self) -> Charges:
        return Charges(_columns(self.borrow, (np.int64, np.int64, float)),  # type: ignore[arg-type]
                       self.sec, self.taf, self.interest,
                       _columns(self.sales, (np.int64, np.int64, float, float)),  # type: ignore[arg-type]
                       self.dividends)


def _columns(rows: list[tuple], kinds: tuple) -> tuple[np.ndarray, ...]:
    columns = list(zip(*rows, strict=True)) or [()] * len(kinds)
    return tuple(np.array(c, dtype=kind) for c, kind in zip(columns, kinds, strict=True))


def close_cash(cash: float, borrow: list[float], sec: float, taf: float, gap: float,
               rates: CostRates) -> tuple[float, float]:
    """Cash after a close's costs, in the exchange's order and whole cents (each borrow fee,
    then SEC, then TAF, then interest on what is left), and the interest credited."""
    for fee in borrow:
        cash = round(cash - fee, 2)
    cash = round(round(cash - float(sec), 2) - float(taf), 2)
    # cash_interest's 0 without a rate, without its array work on every close
    interest = float(cash_interest(cash, gap, rates)) if rates.enabled \
        and rates.cash_interest_rate != 0 else 0.0
    return round(cash + interest, 2), interest


def timeline_charges(rates: CostRates, gap: np.ndarray, close_mark: np.ndarray,
                     short_cells: tuple[np.ndarray, np.ndarray, np.ndarray],
                     sales: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> Charges:
    """The borrow and sale fees of every day at once, as a `Ledger` would take them (the
    interest is left to be credited as cash is booked: see timeline._Closes).
    `short_cells`: (day, symbol, shares) of every short held at a close; `sales`: (day,
    symbol, principal, shares)."""
    days, n = close_mark.shape
    sec, taf, interest = np.zeros(days), np.zeros(days), np.zeros(days)
    if not rates.enabled:
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        return Charges(none, sec, taf, interest, sales)
    day, symbol, shares = short_cells
    # One short per symbol and day (the bot holds one position per symbol); summed anyway.
    cells, where = np.unique(day.astype(np.int64) * n + symbol, return_inverse=True)
    held = np.zeros(len(cells))
    np.add.at(held, where, shares)
    cell_day, cell_symbol = cells // n, cells % n
    fee = borrow_fee(held, np.nan_to_num(close_mark[cell_day, cell_symbol]), gap[cell_day],
                     rates)
    charged = fee != 0
    borrow = (cell_day[charged], cell_symbol[charged], fee[charged])
    d, _, principal, sold = sales
    sec_raw, taf_raw = sale_fees_unrounded(principal, sold, rates)
    np.add.at(sec, d, sec_raw)
    np.add.at(taf, d, taf_raw)
    sec, taf = np.ceil(sec * 100 - 1e-9) / 100, np.ceil(taf * 100 - 1e-9) / 100
    return Charges(borrow, sec, taf, interest, sales)


def costs_of(charges: Charges, trades, panels: Panels, equity: np.ndarray) -> Costs:
    """The backtest's costs for its statistics and trades.csv, with its cash dividends;
    `equity` is net of the charges and includes the dividends booked into cash."""
    n_days = len(charges.sec)
    rows = slice(panels.warmup, panels.warmup + n_days)
    level = panels.split_level[rows] if panels.split_level is not None else None
    # Dividends are cash the account is owed, not a fee: paid even with costs turned off.
    amount = None if panels.dividend is None else panels.dividend[rows]
    _, trade_dividends = dividends_paid(trades, amount, level, n_days)
    dividends = charges.dividends if charges.dividends is not None else np.zeros(n_days)
    fees = trade_fees(charges, trades, panels.symbols)
    return Costs(borrow=charges.borrow, sec=charges.sec, taf=charges.taf,
                 interest=charges.interest, trade_fees=np.round(fees - trade_dividends, 2),
                 gross_equity=equity + np.cumsum(charges.per_day) - np.cumsum(dividends),
                 dividends=dividends)


def trade_fees(charges: Charges, trades, symbols) -> np.ndarray:
    """Each round trip's borrow fees (the bot holds one position per symbol, so a day's fee
    of a symbol is the one short's) and its share of its sale day's SEC and TAF totals."""
    n_days, n = len(charges.sec), len(symbols)
    out = np.zeros(len(trades))
    which, day = _held(trades, n_days)
    np.add.at(out, which, charges.borrow_of(day, trades.symbol[which], n))
    if len(trades):
        sale_day = np.where(trades.is_long, trades.exit_session, trades.entry_session)
        keys, parts = _sale_shares(charges, symbols)
        wanted = sale_day * n + trades.symbol
        at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        if len(keys):
            out += np.where(keys[at] == wanted, parts[at], 0.0)
    return np.round(out, 2)


def _sale_shares(charges: Charges, symbols) -> tuple[np.ndarray, np.ndarray]:
    """Each sale's cents of its day's totals, in dollars, keyed by day * symbols + symbol
    (sorted): shared by each sale's own unrounded fee, ties by symbol (a day has at most one
    sale per symbol)."""
    d, j, principal, sold = charges.sales
    n = len(symbols)
    if not len(d):
        return np.zeros(0, np.int64), np.zeros(0)
    sec, taf = sale_fees_unrounded(principal, sold, CostRates())
    names = np.asarray(symbols, dtype=object)[j].astype(str)
    order = np.lexsort((names, d))  # by day, then symbol: the bot's order of precedence
    d, j, sec, taf = d[order], j[order], sec[order], taf[order]
    cents = (allocate_grouped(np.rint(charges.sec[d] * 100).astype(np.int64), sec, d)
             + allocate_grouped(np.rint(charges.taf[d] * 100).astype(np.int64), taf, d))
    keys = d * n + j
    by_key = np.argsort(keys, kind="stable")
    return keys[by_key], cents[by_key] / 100


def allocate_grouped(total_cents: np.ndarray, weights: np.ndarray,
                     group: np.ndarray) -> np.ndarray:
    """`trade_costs.allocate_cents` for many groups at once, with the same arithmetic:
    `group` sorted, each member's `total_cents` its group's, members in precedence order."""
    cut = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    size = np.diff(np.r_[cut, len(group)])
    whole = np.repeat(np.add.reduceat(weights, cut) if len(cut) else np.zeros(0), size)
    with np.errstate(invalid="ignore", divide="ignore"):
        exact = np.where(whole > 0, total_cents * weights / whole, 0.0)
    base = np.floor(exact + 1e-9)
    left = np.repeat(np.add.reduceat(base, cut) if len(cut) else np.zeros(0), size)
    left = np.where(np.repeat(np.add.reduceat(whole > 0, cut), size) > 0,
                    total_cents - left, 0)
    position = np.arange(len(group)) - np.repeat(cut, size)
    rank = np.empty(len(group), dtype=np.int64)
    by_remainder = np.lexsort((position, -(exact - base), group))
    rank[by_remainder] = np.arange(len(group)) - np.repeat(cut, size)
    return (base + (rank < left)).astype(np.int64)


def _held(trades, n_days: int):
    """(trade index, day) of every close each finished short was held over."""
    short = np.flatnonzero(~trades.is_long)
    first, stop = trades.entry_session[short], np.minimum(trades.exit_session[short], n_days)
    counts = np.maximum(stop - first, 0)
    which = np.repeat(short, counts)
    day = np.repeat(first, counts) + (np.arange(counts.sum())
                                      - np.repeat(np.cumsum(counts) - counts, counts))
    return which, day
