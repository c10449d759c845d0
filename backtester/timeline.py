"""The backtest as one timeline per symbol, for runs whose entries all fit the account.

The day loop (`engine._Run`) replays the bot's runs one by one. Most of that work does not
need the days in order: with the risk limits off, and every run's entry orders fitting its
cash and buying power at once (`entries_fit`), what happens to a symbol depends on its own
signals and bars alone. It is flat until an entry order fills, held until an exit order
fills, then flat again; its orders are the bot's whatever the other symbols do.

So this module

1. calls the bot's `entry_orders` once on every day and symbol, and finds where an entry
   order would be placed and would fill (the exchange's price model, `limit_filled`, asked
   for those cells only);
2. finds, for every cell where an entry would fill, the exit of a position opened there: the
   bot's `exit_codes` on the following days (with the true holding period) until an exit
   order fills (a cell's exit depends on that cell alone); then follows each symbol's
   timeline from its first entry fill to its exit, to the next entry fill after it, ...
3. settles what the symbols share: the order numbers (exits by symbol, then entries by
   `entry_priority_key`), the order the exchange books fills in (first touch first), cash
   (whole cents per fill, splits at the open), the account at noon and the equity at close;
4. checks each run against what the day loop would have seen: every run's entries fit its
   budgets with a cent to spare, and shorting was allowed (equity of $2,000) wherever a
   short was placed. At the first run where that fails it raises `Binds` with everything
   before that run (`Prefix`: exact), and the engine's day loop carries on from there.

The answer is the day loop's, trade for trade (tests/test_backtest_timeline.py compares the
two on random markets and settings). Equity values are sums over the same positions in
another order, so they can differ from the day loop's in the last bits.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

import forked
from backtester.costs import Charges, close_cash, timeline_charges
from backtester.dividends import day_dividends
from backtester.execution import ENTRY, EXIT, STOP, STOP_CODE, Execution, OrderLog, shortfall_bps
from backtester.panels import Clock, Panels
from backtester.signals import CellFills, DaySignals
from config import Config
from signal_generator import (
    ENTER_LONG,
    ENTER_SHORT,
    NO_EXIT,
    EntryOrders,
    Thresholds,
    entries_fit,
    entry_priority_key,
    exit_codes,
)
from simbroker import margin
from simbroker.book import Book
from simbroker.costs import CostRates
from simbroker.execution import market_prices
from simbroker.market_data import Split
from simbroker.price_model import limit_fill
from simbroker.records import Position

# Up to this many symbols the timelines find the exit of every cell where an entry would fill
# at once (`follow_by_cell`); beyond, numpy's calls on one position per symbol at a time are
# large enough, and the exits of the cells never entered cost more (`follow_by_round`).
_FEW_SYMBOLS = 200
# Days of exit decisions evaluated per step of a position's exit: most positions close
# within the holding period (a step spans it, up to this many days); the rest take further
# steps. The order log lists exit orders as the timelines first placed them, this many days
# at a time (`record_exit_orders`), whatever the step.
_EXIT_WINDOW = 8
# What the day loop's budgets must clear by here for the two to agree whatever the rounding
# of sums taken in another order: a cent.
_SLACK_USD = 0.01


class Binds(Exception):
    """A run's entries could depend on the account or on a risk limit: replay day by day,
    from `prefix.day` on when a prefix of the backtest is known to be exact."""

    def __init__(self, why: str, prefix: Prefix | None = None) -> None:
        super().__init__(why)
        self.prefix = prefix


class Opened(NamedTuple):
    """A position open at the start of the prefix's end day, as the day loop keeps it."""

    symbol: int
    is_long: bool
    qty: float  # as splits before the day left it
    entry_day: int  # decision-day index of the entry fill
    k: int
    fraction: float
    price: float  # as splits before the day left it
    z: float
    order: int


@dataclass(frozen=True)
class Grid:
    """What the bot sees and what the exchange marks, for every decision day and symbol."""

    z: np.ndarray
    price: np.ndarray  # the latest trade as the API reports it
    limit: np.ndarray  # the bot's limit price at that price
    ask: np.ndarray  # the ask, or the price where the quote has none (as data_fetcher)
    in_view: np.ndarray  # the bot evaluates the symbol that day
    z_held: np.ndarray  # a held position's z (held_zscores)
    priced: np.ndarray  # a price today: a held position is evaluated
    mark: np.ndarray  # where the exchange marks positions during the run
    close_mark: np.ndarray  # where it marks them at the close
    last_close: np.ndarray  # the latest close before the day (NaN if none)
    fills: CellFills  # whether a DAY limit order at `limit` fills, cell by cell


def build_grid(panels: Panels, clock: Clock, signals: DaySignals, *,
               spread_bps: float) -> Grid:
    """The grid of every decision day from their signals (`signals.signal_grid`)."""
    rows = slice(panels.warmup, len(panels.sessions))
    last = _forward_filled(panels.close[panels.warmup - 1 if panels.warmup else 0:-1],
                          np.full(len(panels.symbols), np.nan))
    if not panels.warmup:  # no close before the first session
        last = np.vstack([np.full((1, len(panels.symbols)), np.nan), last])
    price, path = signals.price, signals.path_price
    with np.errstate(invalid="ignore"):
        ask = np.where(signals.ask > 0, signals.ask, price)
    at_close = panels.close[rows]  # the model path ends at the close, exactly
    return Grid(z=signals.z, price=price, limit=signals.limit, ask=ask,
                in_view=signals.in_view, z_held=signals.z_held, priced=signals.priced,
                mark=_or_last(path, last), close_mark=_or_last(at_close, last),
                last_close=last,
                fills=CellFills(panels, clock.fraction(rows), signals.limit, path, spread_bps,
                                table=signals.filled, in_table=signals.in_table))


class Outcome(NamedTuple):
    """Per-day account arrays (at each close) and the trades as columns (see engine.Trades),
    in the order their exits filled; sessions are decision-day indices."""

    equity: np.ndarray
    cash: np.ndarray
    long_value: np.ndarray
    short_value: np.ndarray
    positions: np.ndarray
    trades: dict[str, np.ndarray]
    orders: OrderLog = OrderLog.empty()
    charges: Charges | None = None  # the account's costs, taken from `cash` (backtester/costs)


@dataclass(frozen=True)
class Prefix:
    """The backtest before decision day `day`, the day loop's to the last bit where it
    matters: `outcome`'s per-day arrays before `day`, the trades closed before it, the cash
    at the close before it, the orders placed so far and the open positions in the order
    they opened (the exchange's book order)."""

    day: int
    outcome: Outcome
    cash: float
    orders: int
    open: list[Opened]


@dataclass(frozen=True)
class _Positions:
    """Every position of the backtest: symbol, entry day, exit day (days if still open at
    the end), side, and the exit's reason code."""

    symbol: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    is_long: np.ndarray
    reason: np.ndarray


def run_timelines(panels: Panels, clock: Clock, config: Config, grid: Grid,
                  orders: EntryOrders, *, starting_cash: float, spread_bps: float,
                  commission_usd: float, slippage_bps: float, costs: CostRates | None = None,
                  gap: np.ndarray | None = None) -> Outcome:
    """The backtest of `config` on `grid`, whose entry orders (`entry_orders` of every day
    and symbol) are `orders`; raises `Binds` where the day loop is needed."""
    limits = [name for name in ("max_entries_per_run", "max_open_positions",
                                "max_gross_exposure_usd", "daily_loss_limit_usd")
              if getattr(config, name)]
    if limits:
        raise Binds(f"risk limits set ({', '.join(limits)})")
    execution = Execution.from_config(config)
    if not execution.timelines_can:
        # Timelines know entries at the design's limits and exits that are those limits, or
        # fill at once at noon (marketable limits, market orders).
        raise Binds("order types the timelines do not know (on-close orders, other entries, "
                    "escalating limits)")
    return _Timelines(panels, clock, grid, Thresholds.from_config(config), orders,
                      starting_cash=starting_cash, spread_bps=spread_bps,
                      commission_usd=commission_usd, slippage_bps=slippage_bps,
                      at_once=(execution.fills_at_once(False),
                               execution.fills_at_once(True)),
                      costs=costs or CostRates(enabled=False),
                      gap=np.ones(len(grid.z)) if gap is None else gap).run()


class _Timelines:
    def __init__(self, panels: Panels, clock: Clock, grid: Grid, t: Thresholds,
                 orders: EntryOrders, *,
                 starting_cash: float, spread_bps: float, commission_usd: float,
                 slippage_bps: float, at_once: tuple[bool, bool] = (False, False),
                 costs: CostRates, gap: np.ndarray) -> None:
        self.p, self.g, self.t, self.orders = panels, grid, t, orders
        self.costs, self.gap = costs, gap
        # Whether an exit, and a stop-loss, fills the moment it is placed (Execution).
        self.exit_at_once, self.stop_at_once = at_once
        self.days, self.n = grid.z.shape
        self.ordinal = clock.ordinal[panels.warmup:]
        self.noon = clock.fraction(slice(panels.warmup, None))
        self.starting_cash, self.spread_bps = starting_cash, spread_bps
        self.commission, self.slip = commission_usd, slippage_bps / 10_000.0
        self.is_long = orders.code == ENTER_LONG
        self.placeable = orders.placeable
        self.exit_orders: list[tuple[np.ndarray, np.ndarray]] = []
        # position -> (day, signed qty before, qty after, entry price after) of its splits
        self.split_log: dict[int, list[tuple[int, float, float, float]]] = {}

    def run(self) -> Outcome:
        positions = self.follow()
        held = np.zeros((self.days, self.n), dtype=bool)  # at the start of each run
        day, symbol, _ = _cells(self.days, positions.symbol, positions.entry + 1,
                                positions.exit + 1)
        held[day, symbol] = True
        entries = self.placeable & ~held
        number, k = self.number_orders(entries)
        fills = self.fills(positions, number, k)
        # Each day's costs come out of cash at its close, its dividends at its open (paid
        # with the costs off too).
        if self.costs.enabled or self.p.dividend is not None:
            charges = self.charges(positions, fills, self.split_quantities(positions, fills))
            cash_noon, cash_close, segments = self.book(positions, fills, charges)
        else:
            cash_noon, cash_close, segments = self.book(positions, fills)
            charges = self.charges(positions, fills, segments)  # none: all zero
        noon_long, noon_short, _ = self.values(segments, noon=True)
        bind = self.first_bind(entries, cash_noon, noon_long, noon_short)
        long_value, short_value, count = self.values(segments, noon=False)
        outcome = Outcome(equity=margin.equity(cash_close, long_value, short_value),
                          cash=cash_close, long_value=long_value, short_value=short_value,
                          positions=count, trades=self.trades(positions, fills),
                          orders=self.order_log(positions, entries, fills), charges=charges)
        if bind is not None:
            day, why = bind
            raise Binds(why, self.prefix(day, outcome, positions, fills, number, cash_close))
        return outcome

    def split_quantities(self, p: _Positions, f: dict[str, np.ndarray]) -> np.ndarray:
        """The positions' segments and `f`'s fill quantities as splits leave them, before
        `book` (a split's shares do not depend on the cash); the split log is left empty for
        `book` to fill again."""
        qty = self.orders.qty[p.entry, p.symbol]
        entry_price = f["price"][:len(p.symbol)].copy()
        for d, q, split in self.held_splits(p):
            self.split(q, d, split, 0.0, p, qty, entry_price)
        f["qty"] = qty[f["position"]]
        segments = self.segments(p, qty)
        self.split_log = {}
        return segments

    def charges(self, p: _Positions, f: dict[str, np.ndarray],
                segments: np.ndarray) -> Charges:
        """The account's costs at each close (backtester/costs.py), interest apart (it
        depends on the cash, which `book` charges them from)."""
        j, first, end = (segments[:, c].astype(np.int64) for c in range(3))
        day, symbol, row = _cells(self.days, j, first, end)
        short = segments[row, 3] < 0
        short_cells = (day[short], symbol[short], -segments[row[short], 3])
        sells = np.flatnonzero(~f["is_buy"])
        q = f["position"][sells]
        shares = np.where(f["is_exit"][sells], f["qty"][sells],
                          self.orders.qty[p.entry[q], p.symbol[q]])
        sales = (f["day"][sells], f["symbol"][sells], shares * f["price"][sells], shares)
        charges = timeline_charges(self.costs, self.gap, self.g.close_mark, short_cells, sales)
        if self.p.dividend is None:
            return charges
        return replace(charges, **self.dividends(segments))

    def dividends(self, segments: np.ndarray) -> dict[str, object]:
        """The cash dividends (backtester/dividends.py) owed at each ex-date's open on every
        segment held at that noon (the close before, with the quantity a split at the open
        left): each day's total paid at its open (`dividends`: those going ex that day
        without a later pay date, and those owed earlier whose pay date's session it is), and
        those paid later (`dividends_owed`: ex day, pay day, dollars)."""
        assert self.p.dividend is not None
        w = self.p.warmup
        j, first, end = (segments[:, c].astype(np.int64) for c in range(3))
        day, symbol, row = _cells(self.days, j, first + (segments[:, 4] == 0),
                                  end + (segments[:, 5] == 0))
        amount = self.p.dividend[w:][day, symbol]
        paid = np.flatnonzero(amount != 0)
        day, symbol, row, amount = day[paid], symbol[paid], row[paid], amount[paid]
        pay = day if self.p.dividend_pay is None else self.p.dividend_pay[w:][day, symbol] - w
        out = np.zeros(self.days)
        for d in np.unique(pay[pay < self.days]).tolist():
            on = pay == d
            out[d] = day_dividends(segments[row[on], 3], amount[on])
        later = pay != day
        owed = (day[later], pay[later], np.array(
            [round(q * a, 2) for q, a in zip(segments[row[later], 3].tolist(),
                                             amount[later].tolist(), strict=True)]))
        return {"dividends": out, "dividends_owed": owed if later.any() else None}

    def prefix(self, day: int, outcome: Outcome, p: _Positions, f: dict[str, np.ndarray],
               number: np.ndarray, cash_close: np.ndarray) -> Prefix:
        open_ = np.flatnonzero((p.entry < day) & (p.exit >= day))
        open_ = open_[np.lexsort((f["k"][open_], f["when"][open_], p.entry[open_]))]
        opened = []
        for q in open_.tolist():
            qty, price = float(self.orders.qty[p.entry[q], p.symbol[q]]), float(f["price"][q])
            for split_day, _, qty_after, price_after in self.split_log.get(q, ()):
                if split_day < day:
                    qty, price = qty_after, price_after
            opened.append(Opened(int(p.symbol[q]), bool(p.is_long[q]), qty, int(p.entry[q]),
                                 int(f["k"][q]), float(f["when"][q]), price,
                                 float(self.g.z[p.entry[q], p.symbol[q]]),
                                 int(f["number"][q])))
        closed = outcome.trades["exit_session"] < day
        return Prefix(day=day, outcome=outcome._replace(
                          trades={name: column[closed]
                                  for name, column in outcome.trades.items()}),
                      cash=float(cash_close[day - 1]) if day else self.starting_cash,
                      orders=int(number[:day].max(initial=0)), open=opened)

    # -- 1, 2: the timelines --------------------------------------------------------------

    def follow(self) -> _Positions:
        """Every position, symbol by symbol in sequence: each entry fill, its exit, the next
        entry fill after that exit, ..."""
        days = self.days
        cells = np.flatnonzero(self.placeable.T)  # j * days + d: by symbol, then day
        symbol, entry = np.divmod(cells, days)
        filled = self.g.fills(entry, symbol, is_buy=self.is_long[entry, symbol])
        cells = cells[filled]  # where an entry order would be placed and would fill
        if self.n <= _FEW_SYMBOLS:
            return self.follow_by_cell(cells)
        return self.follow_by_round(cells)

    def follow_by_cell(self, cells: np.ndarray) -> _Positions:
        """`follow` for few symbols: a cell's exit depends on that cell alone, so the exit of
        every cell where an entry would fill is found at once, and the sequences are then
        followed from cell to cell (one cheap step per position of a symbol)."""
        days = self.days
        symbol, entry = np.divmod(cells, days)
        is_long = self.is_long[entry, symbol]
        # A step spans the holding period: an order is placed on its last day if priced.
        exit_day, reason, placed = self.exits(
            symbol, entry, is_long, width=max(1, min(_EXIT_WINDOW, self.t.max_holding_days)))
        # The next cell after each exit (len(cells): none), and each symbol's first cell.
        after = _in_column(cells, np.searchsorted(cells, symbol * days + exit_day + 1),
                           (symbol + 1) * days)
        columns = np.arange(self.n)
        first = _in_column(cells, np.searchsorted(cells, columns * days), (columns + 1) * days)
        first = first[first < len(cells)]
        after = np.r_[after, len(cells)]
        order = np.full(len(cells), -1, dtype=np.int64)  # the position's round, or -1
        chosen, at, round_ = [], first, 0
        while len(at):
            chosen.append(at)
            order[at] = round_
            at = after[at]
            at = at[at < len(cells)]
            round_ += 1
        taken = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        self.record_exit_orders(placed, order)
        return _Positions(symbol[taken], entry[taken], exit_day[taken], is_long[taken],
                          reason[taken])

    def follow_by_round(self, cells: np.ndarray) -> _Positions:
        """`follow` for many symbols: round by round, the next position of every symbol at
        once (the exits of the positions alone, in steps large enough that numpy's cost per
        call does not dominate)."""
        days = self.days
        cursor = np.zeros(self.n, dtype=np.int64)  # the first day each symbol is flat
        active = np.arange(self.n)
        found = [(np.zeros(0, np.int64),) * 3 + (np.zeros(0, bool), np.zeros(0, np.int64))]
        while len(active):
            at = _in_column(cells, np.searchsorted(cells, active * days + cursor[active]),
                            (active + 1) * days)
            opened = at < len(cells)
            active = active[opened]
            entry = cells[at[opened]] - active * days
            is_long = self.is_long[entry, active]
            exit_day, reason, placed = self.exits(active, entry, is_long)
            self.exit_orders.append(placed[2:])  # already in the order of the log
            found.append((active, entry, exit_day, is_long, reason))
            again = exit_day + 1 < days
            active = active[again]
            cursor[active] = exit_day[again] + 1
        return _Positions(*(np.concatenate(c) for c in zip(*found, strict=True)))

    def record_exit_orders(self, placed: tuple[np.ndarray, ...], order: np.ndarray) -> None:
        """The exit orders of the positions taken (round `order` >= 0), in the order the
        timelines place them: round by round, step by step, symbol by symbol, day by day."""
        row, entry, day, symbol, code = placed
        mine = order[row] >= 0
        row, entry, day, symbol, code = (a[mine] for a in placed)
        step = (day - entry - 1) // _EXIT_WINDOW
        ranked = np.lexsort((day, symbol, step, order[row]))
        self.exit_orders.append((day[ranked], symbol[ranked], code[ranked]))

    def exits(self, symbol: np.ndarray, entry: np.ndarray, is_long: np.ndarray,
              width: int = _EXIT_WINDOW) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """The day each position's exit order fills (self.days if never) and its reason;
        and every exit order placed on the way, `width` days a step, step by step and
        position by position: (position, entry day, day, symbol, code)."""
        days, g = self.days, self.g
        exit_day = np.full(len(symbol), days, dtype=np.int64)
        reason = np.zeros(len(symbol), dtype=np.int64)
        start = entry + 1  # a position is first looked at in the run after its entry fill
        pending = np.arange(len(symbol))
        steps = np.arange(width)
        z_held, priced = g.z_held.reshape(-1), g.priced.reshape(-1)  # at cells d * n + j
        placed_orders = []
        while len(pending):
            when = start[pending, np.newaxis] + steps
            valid = when < days
            d = np.minimum(when, days - 1)
            j = symbol[pending, np.newaxis]
            cell = d * self.n + j
            codes = exit_codes(is_long[pending, np.newaxis], z_held.take(cell),
                               self.ordinal[d] - self.ordinal[entry[pending], np.newaxis],
                               False, self.t)
            placed = valid & priced.take(cell) & (codes != NO_EXIT)
            at_once = np.where(codes == STOP_CODE, self.stop_at_once, self.exit_at_once)
            fills = self.first_exit_fills(placed, at_once, d, pending, symbol, is_long)
            first = fills.argmax(axis=1)
            hit = fills[np.arange(len(pending)), first]
            last = np.where(hit, first, width - 1)
            upto = placed & (steps <= last[:, np.newaxis])
            rows = np.broadcast_to(pending[:, np.newaxis], d.shape)[upto]
            placed_orders.append((rows, entry[rows], d[upto],
                                  np.broadcast_to(j, d.shape)[upto], codes[upto]))
            closed = pending[hit]
            exit_day[closed] = when[hit, first[hit]]
            reason[closed] = codes[hit, first[hit]]
            start[pending] += width
            pending = pending[~hit & valid[:, -1]]
        empty = np.zeros(0, np.int64)
        return exit_day, reason, tuple(np.concatenate(c) for c in zip(
            *placed_orders, strict=True)) if placed_orders else (empty,) * 5

    def first_exit_fills(self, placed: np.ndarray, at_once: np.ndarray, d: np.ndarray,
                         pending: np.ndarray, symbol: np.ndarray,
                         is_long: np.ndarray) -> np.ndarray:
        """Whether each placed exit order of a step fills, asked of the price model up to
        each position's first fill only (an order after it is never placed): each row's
        first placed order, then the next one of the rows where that did not fill, ..."""
        if self.g.fills.in_table.all():  # looked up: no need to stop at the first fill
            fills = placed & at_once
            ask = np.nonzero(placed & ~at_once)  # an exit sells a long, buys a short
            q = pending[ask[0]]
            fills[ask] = self.g.fills(d[ask], symbol[q], is_buy=~is_long[q])
            return fills
        width = placed.shape[1]
        fills = np.zeros(placed.shape, dtype=bool)
        # The first placed column at or after each column (width: none).
        later = np.full((len(placed), width + 1), width)
        later[:, :width] = np.where(placed, np.arange(width), width)
        later = np.minimum.accumulate(later[:, ::-1], axis=1)[:, ::-1]
        rows = np.arange(len(placed))
        cols = later[:, 0]
        while True:
            rows, cols = rows[cols < width], cols[cols < width]
            if not len(rows):
                return fills
            filled = at_once[rows, cols]
            ask = np.flatnonzero(~filled)  # an exit sells a long, buys a short
            q = pending[rows[ask]]
            filled[ask] = self.g.fills(d[rows[ask], cols[ask]], symbol[q], is_buy=~is_long[q])
            fills[rows, cols] = filled
            rows, cols = rows[~filled], later[rows[~filled], cols[~filled] + 1]

    # -- 3: what the symbols share ------------------------------------------------------

    def number_orders(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each order's number (1, 2, ... over the backtest) and its position k in its run's
        submissions, as (days, symbols) arrays: exits in symbol order, then entries in the
        order the bot funds them."""
        exit_day = np.concatenate([d for d, _, _ in self.exit_orders] or [np.zeros(0, int)])
        exit_symbol = np.concatenate([j for _, j, _ in self.exit_orders]
                                     or [np.zeros(0, int)])
        entry_day, entry_symbol = np.nonzero(entries)
        day = np.concatenate([exit_day, entry_day])
        symbol = np.concatenate([exit_symbol, entry_symbol])
        kind = np.r_[np.zeros(len(exit_day)), np.ones(len(entry_day))]
        priority = np.r_[np.zeros(len(exit_day)),
                         entry_priority_key(self.g.z[entry_day, entry_symbol])]
        ranked = np.lexsort((symbol, priority, kind, day))
        rank = np.empty(len(day), dtype=np.int64)
        rank[ranked] = np.arange(len(day))
        number = np.zeros((self.days, self.n), dtype=np.int64)
        k = np.zeros((self.days, self.n), dtype=np.int64)
        number[day, symbol] = rank + 1
        k[day, symbol] = rank - np.searchsorted(day[ranked], day, side="left")
        return number, k

    def fills(self, p: _Positions, number: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
        """Entry fills then exit fills, each with its day, symbol, side, k, order number and
        the price model's price and time."""
        closed = p.exit < self.days
        day = np.r_[p.entry, p.exit[closed]]
        symbol = np.r_[p.symbol, p.symbol[closed]]
        is_buy = np.r_[p.is_long, ~p.is_long[closed]]
        filled, price, when = limit_fills(self.p, day, symbol, is_buy, self.g.limit[day, symbol],
                                          self.noon[day], self.spread_bps)
        at_once = np.r_[np.zeros(len(p.symbol), bool), np.where(
            p.reason[closed] == STOP_CODE, self.stop_at_once, self.exit_at_once)]
        if at_once.any():  # at once, at the noon quote (backtester.execution)
            a = at_once.nonzero()[0]
            filled[a] = True
            price[a] = market_prices(self.g.mark[day[a], symbol[a]], is_buy[a], self.spread_bps)
            when[a] = self.noon[day[a]]
        assert filled.all(), "a timeline fill the price model does not fill"
        if self.slip:
            price = np.where(is_buy, price * (1.0 + self.slip), price * (1.0 - self.slip))
        return {"day": day, "symbol": symbol, "is_buy": is_buy, "price": price, "when": when,
                "k": k[day, symbol], "number": number[day, symbol],
                "position": np.r_[np.arange(len(p.symbol)), np.flatnonzero(closed)],
                "is_exit": np.r_[np.zeros(len(p.symbol), bool), np.ones(closed.sum(), bool)]}

    def book(self, p: _Positions, f: dict[str, np.ndarray], charges: Charges | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cash through every fill in the exchange's order (and every split of a held
        position at its open, and with `charges` each day's costs at its close, as
        `Ledger.close` takes them), in whole cents. Returns cash at each noon and close and
        the positions' segments for the marks (see `values`); adds to `f` the quantity of
        each fill and the entry prices, both as splits leave them."""
        in_order = np.lexsort((f["k"], f["when"], f["day"]))
        qty = self.orders.qty[p.entry, p.symbol]
        fill_qty = qty[f["position"]]
        amount = np.where(f["is_buy"], fill_qty, -fill_qty) * f["price"]
        # Python floats: round() on a numpy float rounds differently from the exchange's.
        amounts = amount[in_order].tolist()
        # Keys: 3d a split at day d's open, 3d + 1 a fill, 3d + 2 the costs at its close.
        keys = (3 * f["day"][in_order] + 1).tolist()
        entry_price = f["price"][:len(p.symbol)].copy()
        splits = self.held_splits(p)
        at_fill = np.searchsorted(f["day"][in_order], [d for d, _, _ in splits], side="left")
        sorted_at = np.empty(len(in_order), dtype=np.int64)
        sorted_at[in_order] = np.arange(len(in_order))
        cash, commission = self.starting_cash, self.commission
        event_keys, balances = [-1], [cash]
        closes = _Closes(self.costs, self.gap, charges, event_keys, balances)
        done = 0
        for (d, q, split), upto in zip(splits, at_fill.tolist(), strict=True):
            cash = closes.pay(cash, amounts[done:upto], keys[done:upto], commission)
            done = upto
            cash = closes.through(d, cash)
            cash = self.split(q, d, split, cash, p, qty, entry_price)
            event_keys.append(3 * d)
            balances.append(cash)
            exits = np.flatnonzero(f["is_exit"] & (f["position"] == q))
            for i in exits.tolist():  # the exit sells or buys the shares the split left
                amounts[sorted_at[i]] = float((-qty[q] if p.is_long[q] else qty[q])
                                              * f["price"][i])
        cash = closes.pay(cash, amounts[done:], keys[done:], commission)
        closes.through(self.days, cash)
        f["qty"] = qty[f["position"]]
        f["entry_price"] = entry_price
        keys_array, balances_array = np.array(event_keys), np.array(balances)
        d3 = 3 * np.arange(self.days)
        at_noon = np.searchsorted(keys_array, d3, side="right") - 1
        at_close = np.searchsorted(keys_array, d3 + 2, side="right") - 1
        return balances_array[at_noon], balances_array[at_close], self.segments(p, qty)

    def held_splits(self, p: _Positions) -> list[tuple[int, int, Split]]:
        """(day, position, split) of every split at the open of a day a position is held
        through (from the run after its entry to its exit's run), in order of days."""
        found = []
        for t in sorted(self.p.splits):
            d = t - self.p.warmup
            for split in self.p.splits[t] if d >= 0 else ():
                j = self.p.symbols.index(split.symbol)
                q = np.flatnonzero((p.symbol == j) & (p.entry < d) & (p.exit >= d))
                if len(q):
                    found.append((d, int(q[0]), split))
        return found

    def split(self, q: int, d: int, split: Split, cash: float, p: _Positions,
              qty: np.ndarray, entry_price: np.ndarray) -> float:
        """A split at the open of day d of held position q, as the exchange's book does it;
        updates qty and entry_price and logs the segment it ends."""
        j = int(p.symbol[q])
        signed = float(qty[q] if p.is_long[q] else -qty[q])
        book = Book(cash=cash, positions={split.symbol: Position(
            split.symbol, signed, float(entry_price[q]))})
        previous = self.g.last_close[d, j] / split.ratio
        book.apply_split(split, None if math.isnan(previous) else float(previous))
        after = book.positions.get(split.symbol)
        if after is None:
            raise Binds(f"a split on {split.ex_date} leaves no {split.symbol} position")
        self.split_log.setdefault(q, []).append((d, signed, abs(after.qty),
                                                 after.avg_entry_price))
        qty[q], entry_price[q] = abs(after.qty), after.avg_entry_price
        return book.cash

    def segments(self, p: _Positions, qty: np.ndarray) -> np.ndarray:
        """Rows (symbol, first, end, signed qty, starts at a split, ends at a split): each
        position's stretches of constant quantity, held at the closes of first..end - 1."""
        signed = np.where(p.is_long, qty, -qty)
        rows = [np.column_stack([p.symbol, p.entry, np.minimum(p.exit, self.days), signed,
                                 np.zeros(len(p.symbol)), np.zeros(len(p.symbol))])]
        for q, log in self.split_log.items():
            start, after = int(p.entry[q]), False
            for d, before, _, _ in log:
                rows.append(np.array([[p.symbol[q], start, d, before, after, True]]))
                start, after = d, True
            rows[0][q, 1], rows[0][q, 4] = start, True  # the last stretch: from the split
        return np.vstack(rows)

    def values(self, segments: np.ndarray, *,
               noon: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Long and (positive) short market value of the positions at each noon or close,
        and how many are held.

        A segment is held at the closes of days first..end - 1. At noon it is held one day
        later (a position is first marked in the run after its entry, and last in its
        exit's run), except that a split applies at the open: a segment that starts or ends
        at a split does so at that noon.
        """
        j, first, end = (segments[:, c].astype(np.int64) for c in range(3))
        if noon:
            first = first + (segments[:, 4] == 0)
            end = end + (segments[:, 5] == 0)
        day, symbol, row = _cells(self.days, j, first, end)
        mark = self.g.mark if noon else self.g.close_mark
        value = segments[row, 3] * mark[day, symbol]
        long_ = value >= 0
        days = self.days
        return (np.bincount(day[long_], weights=value[long_], minlength=days),
                -np.bincount(day[~long_], weights=value[~long_], minlength=days),
                np.bincount(day, minlength=days))

    # -- 4: the account check -----------------------------------------------------------

    def first_bind(self, entries: np.ndarray, cash: np.ndarray, long_value: np.ndarray,
                   short_value: np.ndarray) -> tuple[int, str] | None:
        """The first run whose entries could depend on the account, and why: they might not
        all fit its budgets, or shorts were placed near the $2,000 of equity shorting needs.
        None when every run clears both by a cent."""
        cost = np.where(entries, self.orders.cost, 0.0)
        total = cost.sum(axis=1)
        long_cost = np.where(self.is_long, cost, 0.0).sum(axis=1)
        power = margin.buying_powers(cash, long_value, short_value)
        fit = entries_fit(total + _SLACK_USD, long_cost + _SLACK_USD,
                          cash_usd=np.maximum(cash, 0.0), buying_power_usd=power)
        tight = entries.any(axis=1) & ~fit
        shorts = (entries & (self.orders.code == ENTER_SHORT)).any(axis=1)
        equity = margin.equity(cash, long_value, short_value)
        no_margin = shorts & ~(equity >= margin.MARGIN_MINIMUM_EQUITY + _SLACK_USD)
        first = np.flatnonzero(tight | no_margin)
        if not len(first):
            return None
        day = int(first[0])
        if tight[day]:
            return day, f"entries may not all fit the account on {self.p.days()[day]}"
        return day, f"equity near the $2,000 shorting needs on {self.p.days()[day]}"

    def order_log(self, p: _Positions, entries: np.ndarray,
                  f: dict[str, np.ndarray]) -> OrderLog:
        """Every order placed (exits, then entries; the statistics only count them), whether
        it filled and at what cost against the decision price (backtester.execution)."""
        cost = np.full((2, self.days, self.n), np.nan)  # [0] entries, [1] exits
        decided = self.g.price[f["day"], f["symbol"]]
        cost[f["is_exit"].astype(np.intp), f["day"], f["symbol"]] = shortfall_bps(
            f["is_buy"], f["price"], decided)
        exit_day = np.concatenate([d for d, _, _ in self.exit_orders] or [np.zeros(0, int)])
        exit_symbol = np.concatenate([j for _, j, _ in self.exit_orders]
                                     or [np.zeros(0, int)])
        exit_code = np.concatenate([c for _, _, c in self.exit_orders] or [np.zeros(0, int)])
        entry_day, entry_symbol = np.nonzero(entries)
        exit_cost = cost[1, exit_day, exit_symbol]
        entry_cost = cost[0, entry_day, entry_symbol]
        shortfall = np.r_[exit_cost, entry_cost]
        return OrderLog(day=np.r_[exit_day, entry_day].astype(np.int64),
                        purpose=np.r_[np.where(exit_code == STOP_CODE, STOP, EXIT),
                                      np.full(len(entry_day), ENTRY)].astype(np.int64),
                        filled=~np.isnan(shortfall), shortfall_bps=shortfall)

    def trades(self, p: _Positions, f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(p.symbol)
        exits = np.flatnonzero(f["is_exit"])
        exits = exits[np.lexsort((f["k"][exits], f["when"][exits], f["day"][exits]))]
        q = f["position"][exits]
        return {"symbol": p.symbol[q], "is_long": p.is_long[q], "qty": f["qty"][exits],
                "entry_session": p.entry[q], "entry_k": f["k"][:n][q],
                "entry_fraction": f["when"][:n][q], "entry_price": f["entry_price"][q],
                "entry_z": self.g.z[p.entry[q], p.symbol[q]],
                "entry_order": f["number"][:n][q], "exit_session": f["day"][exits],
                "exit_k": f["k"][exits], "exit_fraction": f["when"][exits],
                "exit_price": f["price"][exits], "exit_reason": p.reason[q],
                "exit_z": self.g.z_held[f["day"][exits], p.symbol[q]],
                "exit_order": f["number"][exits]}


# From this many fills a helper process finds the prices and times of half of them: below,
# the fork and the join cost about what the half saves (one process: 0.09 s for 50,000 fills,
# 0.37 s for 250,000; a fork of a 2.5 M-bar backtest's process takes about 3 ms).
HELPER_MIN_FILLS = 100_000


def limit_fills(panels: Panels, day: np.ndarray, symbol: np.ndarray, is_buy: np.ndarray,
                limit: np.ndarray, start: np.ndarray,
                spread_bps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`price_model.limit_fill` of DAY limit orders placed at `start` on decision day `day`
    of column `symbol`, live to the close: (filled, price, session fraction of the fill).

    Each order's answer is its own, so from HELPER_MIN_FILLS orders on, where
    `forked.can_fork()`, a forked child finds the second half while this process finds the
    first, into arrays in shared memory: the same bits."""
    n = len(day)
    helper = n >= max(2, HELPER_MIN_FILLS) and forked.can_fork()
    make = forked.shared_array if helper else np.empty
    out = (make(n, bool), make(n, np.float64), make(n, np.float64))
    fill = functools.partial(_limit_fills_into, out, panels, day, symbol, is_buy, limit, start,
                             spread_bps)
    if helper:
        with forked.Child(fill, slice(n // 2, n)) as child:
            fill(slice(0, n // 2))
            child.join()
    else:
        fill(slice(0, n))
    return out


def _limit_fills_into(out: tuple[np.ndarray, np.ndarray, np.ndarray], panels: Panels,
                      day: np.ndarray, symbol: np.ndarray, is_buy: np.ndarray,
                      limit: np.ndarray, start: np.ndarray, spread_bps: float,
                      at: slice) -> None:
    """`limit_fills` of the orders `at`, written into `out` there."""
    t, j = day[at] + panels.warmup, symbol[at]
    with np.errstate(invalid="ignore"):
        found = limit_fill(panels.open[t, j], panels.high[t, j], panels.low[t, j],
                           panels.close[t, j], is_buy=is_buy[at], limit=limit[at],
                           start=start[at], end=1.0, spread_bps=spread_bps,
                           **panels.path(t, j))
    for target, values in zip(out, found, strict=True):
        target[at] = values


class _Closes:
    """`book`'s costs: each day's, from cash at its close (none without charges)."""

    def __init__(self, rates: CostRates, gap: np.ndarray, charges: Charges | None,
                 keys: list[int], balances: list[float]) -> None:
        self.rates, self.gap, self.charges = rates, gap, charges
        self.keys, self.balances = keys, balances
        self.closed = 0  # days whose close is charged
        # Without interest every cost is one more `round(cash - amount, 2)` step, as a fill
        # is: the closes and the fills are then settled together in bulk (`_settle`).
        self.bulk = not (rates.enabled and rates.cash_interest_rate != 0)

    def through(self, day: int, cash: float) -> float:
        """Cash after the closes of the days before `day` not yet charged."""
        c = self.charges
        if c is None or day <= self.closed:
            return cash
        if self.bulk:
            return self._settled(cash, *self._close_steps(day))
        while self.closed < day:
            d = self.closed
            cash, c.interest[d] = close_cash(cash, c.borrow_on(d), c.sec[d], c.taf[d],
                                             float(self.gap[d]), self.rates)
            self.keys.append(3 * d + 2)
            self.balances.append(cash)
            self.closed += 1
            if c.dividends is not None and d + 1 < len(c.dividends) and c.dividends[d + 1]:
                cash = round(cash + float(c.dividends[d + 1]), 2)  # at the next open
                self.keys.append(3 * (d + 1))
                self.balances.append(cash)
        return cash

    def pay(self, cash: float, amounts: list[float], keys: list[int],
            commission: float) -> float:
        """Cash through fills of `amounts` at event `keys` (3d + 1 on day d), each day's
        costs taken at its close before the next day's fills; in bulk (`_settle`) unless
        interest is credited."""
        if self.charges is None:
            self.keys += keys
            return _settle(cash, amounts, commission, self.balances)
        if not amounts:
            return cash
        if self.bulk:
            close_keys, close_amounts, close_ends = self._close_steps(keys[-1] // 3)
            every_key = np.concatenate([np.asarray(keys, dtype=np.int64), close_keys])
            # A fill's key (3d + 1) never equals a close's (3d + 2): a stable sort puts each
            # day's closes after its fills and keeps the fills' and the closes' own order.
            order = np.argsort(every_key, kind="stable")
            n = len(amounts)
            return self._settled(
                cash, every_key[order], np.concatenate([amounts, close_amounts])[order],
                np.concatenate([np.ones(n, dtype=bool), close_ends])[order],
                np.concatenate([np.full(n, commission), np.zeros(len(close_keys))])[order])
        for a, key in zip(amounts, keys, strict=True):
            if key // 3 > self.closed:  # a new day: the closes before it first
                cash = self.through(key // 3, cash)
            cash = round(cash - a - commission, 2)
            self.keys.append(key)
            self.balances.append(cash)
        return cash

    def _close_steps(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cost steps of the closes of the days before `day` not yet charged, marked
        charged: (key 3d + 2, amount, whether the step ends its close), in `close_cash`'s
        order: each borrow fee of the day, its SEC total, its TAF total; and after each of
        those closes the next open's dividends (key 3(d + 1), a negative amount: credited)."""
        c = self.charges
        assert c is not None
        first, day = self.closed, max(day, self.closed)
        self.closed = day
        d, _, fee = c.borrow_cells
        lo, hi = np.searchsorted(d, [first, day])
        close_key = 3 * np.arange(first, day, dtype=np.int64) + 2
        opens = np.zeros(0, dtype=np.int64)
        if c.dividends is not None:
            opens = first + 1 + np.flatnonzero(c.dividends[first + 1:day + 1])
        key = np.concatenate([3 * d[lo:hi].astype(np.int64) + 2, close_key, close_key,
                              3 * opens])
        kind = np.repeat([0, 1, 2, 3], [hi - lo, len(close_key), len(close_key), len(opens)])
        amount = np.concatenate([fee[lo:hi], c.sec[first:day], c.taf[first:day],
                                 -c.dividends[opens] if len(opens) else np.zeros(0)])
        order = np.lexsort((kind, key))  # stable: the borrow fees keep their order
        return key[order], amount[order], kind[order] >= 2

    def _settled(self, cash: float, keys: np.ndarray, amounts: np.ndarray,
                 ends: np.ndarray, commissions: np.ndarray | None = None) -> float:
        """Cash through the steps `amounts` (each less its commission), the balances after
        the steps that `ends` marks recorded at their keys."""
        steps: list[float] = []
        extra = [0.0] * len(amounts) if commissions is None else commissions.tolist()
        cash = _settle(cash, amounts.tolist(), extra, steps)
        kept = np.flatnonzero(ends)
        self.keys += keys[kept].tolist()
        self.balances += [steps[i] for i in kept.tolist()]
        return cash


# Fills settled at a time by `_settle` between two checks.
_SETTLE_WINDOW = 8192


def _settle(cash: float, amounts: list[float], commission: float | list[float],
            balances: list[float]) -> float:
    """Pay `amounts` (and `commission` each, or each its own of a list) from `cash` one after
    the other, each balance rounded to whole cents as the exchange books a fill,
    `round(cash - amount - commission, 2)` with Python's round (to the nearest cent of the
    exact binary value); append each balance to `balances` and return the last.

    In bulk: once the balance is whole cents, each step moves it by the step's own cents, so
    the balances are a running sum of integers. Every balance is then checked against the
    step that makes it, recomputed from the one before in floating point exactly as the
    loop computes it: it must round to that sum, and not from within a hair of half a cent
    (where numpy's rounding of the product by 100 could differ from the exact decimal
    rounding). The first step that fails its check is taken alone as the loop takes it."""
    a_all = np.asarray(amounts, dtype=float)
    each = commission if isinstance(commission, list) else None
    c_all = np.asarray(commission, dtype=float) if each is not None else commission
    pos, n = 0, len(a_all)
    while pos < n:
        # one step exactly, as the exchange
        cash = round(cash - amounts[pos] - (each[pos] if each is not None else commission), 2)
        balances.append(cash)
        pos += 1
        a = a_all[pos:pos + _SETTLE_WINDOW]
        if not len(a):
            break
        c = c_all[pos:pos + _SETTLE_WINDOW] if each is not None else commission
        start = round(cash * 100.0)  # the balance in cents (it is a rounded amount)
        cents = start - np.cumsum(np.rint((a + c) * 100.0))
        before = np.r_[start, cents[:-1]] / 100.0  # the float round() gives for those cents
        scaled = (before - a - c) * 100.0
        nearest = np.rint(scaled)
        ok = (np.abs(scaled - nearest) < 0.5 - 1e-6 - np.abs(scaled) * 1e-15) \
            & (nearest == cents)
        good = int(np.argmin(ok)) if not ok.all() else len(ok)
        if good:
            balances.extend((cents[:good] / 100.0).tolist())
            cash = balances[-1]
            pos += good
    return cash


def _in_column(cells: np.ndarray, at: np.ndarray, end: np.ndarray) -> np.ndarray:
    """`at` (indices into the sorted `cells`) where cells[at] < end, else len(cells)."""
    found = at < len(cells)
    found[found] = cells[at[found]] < end[found]
    return np.where(found, at, len(cells))


def _cells(days: int, symbol: np.ndarray, first: np.ndarray,
           stop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day, symbol, i) of every cell of the stretches first[i]..stop[i] - 1 (clipped to
    the days) of column symbol[i]."""
    first = np.minimum(first, days)
    length = np.maximum(np.minimum(stop, days) - first, 0)
    row = np.repeat(np.arange(len(first)), length)
    offset = np.arange(len(row)) - np.repeat(np.cumsum(length) - length, length)
    return first[row] + offset, symbol[row], row


def _forward_filled(rows: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Each row with its NaN replaced by the latest value above it, else by `seed`'s."""
    stacked = np.vstack([seed, rows])
    latest = np.where(np.isnan(stacked), 0, np.arange(len(stacked))[:, np.newaxis])
    np.maximum.accumulate(latest, axis=0, out=latest)
    return stacked[latest, np.arange(stacked.shape[1])][1:]


def _or_last(price: np.ndarray, last_close: np.ndarray) -> np.ndarray:
    """`price`, or the last close where there is none: the exchange's price for a symbol
    that has no bar today."""
    missing = np.isnan(price)
    return np.where(missing, last_close, price) if missing.any() else price


