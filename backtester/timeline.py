"""The backtest as one timeline per symbol, for runs whose entries all fit the account.

The day loop (`engine._Run`) replays the bot's runs one by one. Most of that work does not
need the days in order: with the risk limits off, and every run's entry orders fitting its
cash and buying power at once (`entries_fit`), what happens to a symbol depends on its own
signals and bars alone. It is flat until an entry order fills, held until an exit order
fills, then flat again; its orders are the bot's whatever the other symbols do.

So this module

1. calls the bot's `entry_orders` once on every day and symbol, and finds where an entry
   order would be placed and would fill (the exchange's price model, `limit_filled`);
2. follows the timelines of all symbols at once, one position per symbol per step: from the
   next entry fill, the bot's `exit_codes` on the following days (with the true holding
   period), until an exit order fills;
3. settles what the symbols share: the order numbers (exits by symbol, then entries by
   `entry_priority_key`), the order the exchange books fills in (first touch first), cash
   (whole cents per fill, splits at the open), the account at noon and the equity at close;
4. checks each run against what the day loop would have seen: every run's entries fit its
   budgets with a cent to spare, and shorting was allowed (equity of $2,000) wherever a
   short was placed. If not, it raises `Binds` and the engine replays the day loop instead.

The answer is the day loop's, trade for trade (tests/test_backtest_timeline.py compares the
two on random markets and settings). Equity values are sums over the same positions in
another order, so they can differ from the day loop's in the last bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from backtester.panels import Clock, Panels
from backtester.signals import DaySignals, wire_price
from config import Config
from signal_generator import (
    ENTER_LONG,
    ENTER_SHORT,
    NO_EXIT,
    Thresholds,
    entries_fit,
    entry_orders,
    entry_priority_key,
    exit_codes,
)
from simbroker import margin
from simbroker.book import Book
from simbroker.price_model import limit_fill, price_at
from simbroker.records import Position

# Days of exit decisions evaluated per step of a position's timeline: most positions close
# within the holding period; the rest take further steps.
_EXIT_WINDOW = 8
# What the day loop's budgets must clear by here for the two to agree whatever the rounding
# of sums taken in another order: a cent.
_SLACK_USD = 0.01


class Binds(Exception):
    """A run's entries could depend on the account or on a risk limit: replay day by day."""


@dataclass(frozen=True)
class Grid:
    """What the bot sees and what the exchange marks, for every decision day and symbol."""

    z: np.ndarray
    price: np.ndarray  # the latest trade as the API reports it
    limit: np.ndarray  # the bot's limit price at that price
    ask: np.ndarray  # the ask, or the price where the quote has none (as data_fetcher)
    in_view: np.ndarray  # the bot evaluates the symbol that day
    mark: np.ndarray  # where the exchange marks positions during the run
    close_mark: np.ndarray  # where it marks them at the close
    last_close: np.ndarray  # the latest close before the day (NaN if none)
    filled: np.ndarray  # (2, days, symbols): a DAY limit order at `limit` fills; [0] sell


def build_grid(panels: Panels, chunks: list[DaySignals]) -> Grid:
    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in chunks])

    rows = slice(panels.warmup, len(panels.sessions))
    last = forward_filled(panels.close[panels.warmup - 1 if panels.warmup else 0:-1],
                          np.full(len(panels.symbols), np.nan))
    if not panels.warmup:  # no close before the first session
        last = np.vstack([np.full((1, len(panels.symbols)), np.nan), last])
    price, path = joined("price"), joined("path_price")
    with np.errstate(invalid="ignore"):
        ask = joined("ask")
        ask = np.where(ask > 0, ask, price)
    at_close = price_at(panels.open[rows], panels.high[rows], panels.low[rows],
                        panels.close[rows], 1.0)
    return Grid(z=joined("z"), price=price, limit=joined("limit"), ask=ask,
                in_view=joined("in_view"), mark=or_last(path, last),
                close_mark=or_last(at_close, last), last_close=last,
                filled=np.concatenate([c.fills.filled for c in chunks], axis=1))


class Outcome(NamedTuple):
    """Per-day account arrays (at each close) and the trades as columns (see engine.Trades),
    in the order their exits filled; sessions are decision-day indices."""

    equity: np.ndarray
    cash: np.ndarray
    long_value: np.ndarray
    short_value: np.ndarray
    positions: np.ndarray
    trades: dict[str, np.ndarray]


@dataclass(frozen=True)
class _Positions:
    """Every position of the backtest: symbol, entry day, exit day (days if still open at
    the end), side, and the exit's reason code."""

    symbol: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    is_long: np.ndarray
    reason: np.ndarray


def run_timelines(panels: Panels, clock: Clock, config: Config, grid: Grid, *,
                  starting_cash: float, spread_bps: float, commission_usd: float,
                  slippage_bps: float, fractionable: np.ndarray,
                  shortable: np.ndarray) -> Outcome:
    """The backtest of `config` on `grid`; raises `Binds` where the day loop is needed."""
    limits = [name for name in ("max_entries_per_run", "max_open_positions",
                                "max_gross_exposure_usd", "daily_loss_limit_usd")
              if getattr(config, name)]
    if limits:
        raise Binds(f"risk limits set ({', '.join(limits)})")
    t = Thresholds.from_config(config)
    orders = entry_orders(grid.z, grid.price, grid.ask, fractionable, shortable, t,
                          size_usd=config.position_size_usd, limits=grid.limit)
    return _Timelines(panels, clock, grid, t, orders, starting_cash=starting_cash,
                      spread_bps=spread_bps, commission_usd=commission_usd,
                      slippage_bps=slippage_bps).run()


class _Timelines:
    def __init__(self, panels: Panels, clock: Clock, grid: Grid, t: Thresholds, orders, *,
                 starting_cash: float, spread_bps: float, commission_usd: float,
                 slippage_bps: float) -> None:
        self.p, self.g, self.t, self.orders = panels, grid, t, orders
        self.days, self.n = grid.z.shape
        self.ordinal = clock.ordinal[panels.warmup:]
        self.noon = clock.fraction(slice(panels.warmup, None))
        self.starting_cash, self.spread_bps = starting_cash, spread_bps
        self.commission, self.slip = commission_usd, slippage_bps / 10_000.0
        self.is_long = orders.code == ENTER_LONG
        self.placeable = orders.placeable
        self.exit_orders: list[tuple[np.ndarray, np.ndarray]] = []

    def run(self) -> Outcome:
        positions = self.follow()
        held = _intervals(self.days, self.n, positions.symbol, positions.entry + 1,
                          positions.exit + 1)  # position index + 1 held at each run's start
        entries = self.placeable & (held == 0)
        number, k = self.number_orders(entries)
        fills = self.fills(positions, number, k)
        cash_noon, cash_close, segments = self.book(positions, fills, held)
        noon_long, noon_short = self.values(segments, noon=True)
        self.check(entries, cash_noon, noon_long, noon_short)
        long_value, short_value = self.values(segments, noon=False)
        at_close = _intervals(self.days, self.n, positions.symbol, positions.entry,
                              positions.exit)
        return Outcome(equity=margin.equity(cash_close, long_value, short_value),
                       cash=cash_close, long_value=long_value, short_value=short_value,
                       positions=np.count_nonzero(at_close, axis=1),
                       trades=self.trades(positions, fills))

    # -- 1, 2: the timelines --------------------------------------------------------------

    def follow(self) -> _Positions:
        days = self.days
        entry_fills = self.placeable & np.where(self.is_long, self.g.filled[1],
                                                self.g.filled[0])
        next_fill = _next_true(entry_fills)
        cursor = np.zeros(self.n, dtype=np.int64)  # the first day each symbol is flat
        active = np.arange(self.n)
        found = [(np.zeros(0, np.int64),) * 3 + (np.zeros(0, bool), np.zeros(0, np.int64))]
        while len(active):
            entry = next_fill[cursor[active], active]
            opened = entry < days
            active, entry = active[opened], entry[opened]
            is_long = self.is_long[entry, active]
            exit_day, reason = self.exits(active, entry, is_long)
            found.append((active, entry, exit_day, is_long, reason))
            again = exit_day + 1 < days
            active = active[again]
            cursor[active] = exit_day[again] + 1
        return _Positions(*(np.concatenate(c) for c in zip(*found, strict=True)))

    def exits(self, symbol: np.ndarray, entry: np.ndarray,
              is_long: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The day each position's exit order fills (self.days if never) and its reason;
        records every exit order placed on the way."""
        days, width = self.days, _EXIT_WINDOW
        exit_day = np.full(len(symbol), days, dtype=np.int64)
        reason = np.zeros(len(symbol), dtype=np.int64)
        start = entry + 1  # a position is first looked at in the run after its entry fill
        pending = np.arange(len(symbol))
        steps = np.arange(width)
        while len(pending):
            when = start[pending, np.newaxis] + steps
            valid = when < days
            d = np.minimum(when, days - 1)
            j = symbol[pending, np.newaxis]
            long_ = is_long[pending, np.newaxis]
            codes = exit_codes(long_, self.g.z[d, j],
                               self.ordinal[d] - self.ordinal[entry[pending], np.newaxis],
                               False, self.t)
            placed = valid & self.g.in_view[d, j] & (codes != NO_EXIT)
            fills = placed & np.where(long_, self.g.filled[0][d, j], self.g.filled[1][d, j])
            first = fills.argmax(axis=1)
            hit = fills[np.arange(len(pending)), first]
            last = np.where(hit, first, width - 1)
            upto = placed & (steps <= last[:, np.newaxis])
            self.exit_orders.append((d[upto], np.broadcast_to(j, d.shape)[upto]))
            closed = pending[hit]
            exit_day[closed] = when[hit, first[hit]]
            reason[closed] = codes[hit, first[hit]]
            start[pending] += width
            pending = pending[~hit & valid[:, -1]]
        return exit_day, reason

    # -- 3: what the symbols share ------------------------------------------------------

    def number_orders(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each order's number (1, 2, ... over the backtest) and its position k in its run's
        submissions, as (days, symbols) arrays: exits in symbol order, then entries in the
        order the bot funds them."""
        exit_day = np.concatenate([d for d, _ in self.exit_orders] or [np.zeros(0, int)])
        exit_symbol = np.concatenate([j for _, j in self.exit_orders] or [np.zeros(0, int)])
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
        t = day + self.p.warmup
        o = self.p
        with np.errstate(invalid="ignore"):
            filled, price, when = limit_fill(
                o.open[t, symbol], o.high[t, symbol], o.low[t, symbol], o.close[t, symbol],
                is_buy=is_buy, limit=self.g.limit[day, symbol], start=self.noon[day], end=1.0,
                spread_bps=self.spread_bps)
        assert filled.all(), "a timeline fill the price model does not fill"
        if self.slip:
            price = np.where(is_buy, price * (1.0 + self.slip), price * (1.0 - self.slip))
        return {"day": day, "symbol": symbol, "is_buy": is_buy, "price": price, "when": when,
                "k": k[day, symbol], "number": number[day, symbol],
                "position": np.r_[np.arange(len(p.symbol)), np.flatnonzero(closed)],
                "is_exit": np.r_[np.zeros(len(p.symbol), bool), np.ones(closed.sum(), bool)]}

    def book(self, p: _Positions, f: dict[str, np.ndarray],
             held: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
        """Cash through every fill in the exchange's order (and every split of a held
        position at its open), in whole cents. Returns cash at each noon and close and the
        positions' segments for the marks (see `values`); adds to `f` the quantity of each
        fill and the entry prices, both as splits leave them."""
        in_order = np.lexsort((f["k"], f["when"], f["day"]))
        # Python floats: round() on a numpy float rounds differently from the exchange's.
        qty = self.orders.qty[p.entry, p.symbol].tolist()
        entry_price = f["price"][:len(p.symbol)].tolist()
        segment_start = p.entry.copy()
        after_split = np.zeros(len(p.symbol), dtype=bool)  # the segment began at a split
        segments: list[tuple] = []
        splits = sorted(((t - self.p.warmup, split) for t, found in self.p.splits.items()
                         for split in found if t >= self.p.warmup), key=lambda e: e[0])
        index = {s: j for j, s in enumerate(self.p.symbols)}
        cash, keys, balances = self.starting_cash, [-1], [self.starting_cash]
        day, position, is_exit = f["day"].tolist(), f["position"].tolist(), f["is_exit"].tolist()
        is_buy, price = f["is_buy"].tolist(), f["price"].tolist()
        next_split = 0
        for i in in_order.tolist():
            while next_split < len(splits) and splits[next_split][0] <= day[i]:
                d, split = splits[next_split]
                next_split += 1
                j = index[split.symbol]
                if not held[d, j]:
                    continue
                q = int(held[d, j]) - 1
                cash = self.split(q, d, j, split, cash, p, qty, entry_price, segment_start,
                                  after_split, segments)
                keys.append(2 * d)
                balances.append(cash)
            q = position[i]
            signed = qty[q] if is_buy[i] else -qty[q]
            cash = round(cash - signed * price[i] - self.commission, 2)
            keys.append(2 * day[i] + 1)
            balances.append(cash)
            if is_exit[i]:
                segments.append((int(p.symbol[q]), int(segment_start[q]), day[i],
                                 qty[q] if p.is_long[q] else -qty[q], after_split[q], False))
        for d, split in splits[next_split:]:  # splits after the last fill
            j = index[split.symbol]
            if held[d, j]:
                q = int(held[d, j]) - 1
                cash = self.split(q, d, j, split, cash, p, qty, entry_price, segment_start,
                                  after_split, segments)
                keys.append(2 * d)
                balances.append(cash)
        for q in np.flatnonzero(p.exit >= self.days).tolist():  # open at the end
            segments.append((int(p.symbol[q]), int(segment_start[q]), self.days,
                             qty[q] if p.is_long[q] else -qty[q], after_split[q], False))
        f["qty"] = np.array(qty)[f["position"]]
        f["entry_price"] = np.array(entry_price)
        keys_array, balances_array = np.array(keys), np.array(balances)
        d2 = 2 * np.arange(self.days)
        at = np.searchsorted(keys_array, d2, side="right") - 1
        at_close = np.searchsorted(keys_array, d2 + 1, side="right") - 1
        return balances_array[at], balances_array[at_close], segments

    def split(self, q: int, d: int, j: int, split, cash: float, p: _Positions,
              qty: list[float], entry_price: list[float], segment_start: np.ndarray,
              after_split: np.ndarray, segments: list[tuple]) -> float:
        """A split at the open of day d of held position q, as the exchange's book does it."""
        signed = qty[q] if p.is_long[q] else -qty[q]
        book = Book(cash=cash, positions={split.symbol: Position(
            split.symbol, signed, entry_price[q])})
        previous = self.g.last_close[d, j] / split.ratio
        book.apply_split(split, None if math.isnan(previous) else float(previous))
        after = book.positions.get(split.symbol)
        if after is None:
            raise Binds(f"a split on {split.ex_date} leaves no {split.symbol} position")
        segments.append((j, int(segment_start[q]), d, signed, after_split[q], True))
        segment_start[q], after_split[q] = d, True
        qty[q], entry_price[q] = abs(after.qty), after.avg_entry_price
        return book.cash

    def values(self, segments: list[tuple], *, noon: bool) -> tuple[np.ndarray, np.ndarray]:
        """Long and (positive) short market value of the positions at each noon or close.

        A segment (symbol, a, b, signed qty, starts at a split, ends at a split) is held at
        the closes of days a..b - 1. At noon it is held one day later (a position is first
        marked in the run after its entry, and last in its exit's run), except that a split
        applies at the open: a segment that starts or ends at a split does so at that noon.
        """
        if not segments:
            return np.zeros(self.days), np.zeros(self.days)
        j, first, end, signed, split_start, split_end = (
            np.array(c) for c in zip(*segments, strict=True))
        if noon:
            first, end = first + ~split_start, end + ~split_end
        which = _intervals(self.days, self.n, j, first, end)
        mark = self.g.mark if noon else self.g.close_mark
        qty = np.r_[0.0, signed.astype(float)][which]
        with np.errstate(invalid="ignore"):
            value = np.where(which > 0, qty * mark, 0.0)
        return (np.where(value > 0, value, 0.0).sum(axis=1),
                -np.where(value < 0, value, 0.0).sum(axis=1))

    # -- 4: the account check -----------------------------------------------------------

    def check(self, entries: np.ndarray, cash: np.ndarray, long_value: np.ndarray,
              short_value: np.ndarray) -> None:
        cost = np.where(entries, self.orders.cost, 0.0)
        total = cost.sum(axis=1)
        long_cost = np.where(self.is_long, cost, 0.0).sum(axis=1)
        power = margin.buying_powers(cash, long_value, short_value)
        runs = entries.any(axis=1)
        fit = entries_fit(total + _SLACK_USD, long_cost + _SLACK_USD,
                          cash_usd=np.maximum(cash, 0.0), buying_power_usd=power)
        if not fit[runs].all():
            day = int(np.flatnonzero(runs & ~fit)[0])
            raise Binds(f"entries do not all fit the account on {self.p.days()[day]}")
        shorts = (entries & (self.orders.code == ENTER_SHORT)).any(axis=1)
        equity = margin.equity(cash, long_value, short_value)
        if not (equity[shorts] >= margin.MARGIN_MINIMUM_EQUITY + _SLACK_USD).all():
            raise Binds("equity near or below the $2,000 needed to short")

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
                "exit_z": self.g.z[f["day"][exits], p.symbol[q]],
                "exit_order": f["number"][exits]}


def _next_true(mask: np.ndarray) -> np.ndarray:
    """next[d, j]: the first day at or after d where mask[:, j] holds (len(mask) if none);
    one more row, for d = len(mask)."""
    days = len(mask)
    index = np.where(mask, np.arange(days)[:, np.newaxis], days)
    out = np.full((days + 1, mask.shape[1]), days, dtype=np.int64)
    out[:days] = np.minimum.accumulate(index[::-1], axis=0)[::-1]
    return out


def _intervals(days: int, n: int, symbol: np.ndarray, first: np.ndarray,
               stop: np.ndarray) -> np.ndarray:
    """A (days, n) array holding i + 1 on days first[i]..stop[i] - 1 of column symbol[i] and
    0 elsewhere; the intervals of one column must not overlap. Integer sums: exact."""
    delta = np.zeros((days + 2, n), dtype=np.int64)
    label = np.arange(1, len(symbol) + 1)
    np.add.at(delta, (np.minimum(first, days + 1), symbol), label)
    np.add.at(delta, (np.minimum(stop, days + 1), symbol), -label)
    return np.cumsum(delta, axis=0)[:days]


def forward_filled(rows: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Each row with its NaN replaced by the latest value above it, else by `seed`'s."""
    stacked = np.vstack([seed, rows])
    latest = np.where(np.isnan(stacked), 0, np.arange(len(stacked))[:, np.newaxis])
    np.maximum.accumulate(latest, axis=0, out=latest)
    return stacked[latest, np.arange(stacked.shape[1])][1:]


def or_last(price: np.ndarray, last_close: np.ndarray) -> np.ndarray:
    """`price`, or the last close where there is none: the exchange's price for a symbol
    that has no bar today."""
    missing = np.isnan(price)
    return np.where(missing, last_close, price) if missing.any() else price


__all__ = ["Binds", "Grid", "Outcome", "build_grid", "run_timelines", "wire_price"]
