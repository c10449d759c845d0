"""What the bot sees at noon on every decision day, for all days at once.

For each decision day and symbol: the noon price on the model path, the price and ask the
exchange reports, the z-score, and whether the bot's market view would include the symbol.

z comes from the bot's own `zscores`, called on the window's closes as (days, symbols) rows:
row k holds, for every day, the close k + 1 sessions before the window's last. `zscores`
spells out its arithmetic element by element, so each cell gets exactly the bits of the bot's
call for that day. Days are processed in chunks, which bounds memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

import forked
from backtester.panels import Clock, Panels
from signal_generator import (
    Thresholds,
    entry_codes,
    held_min_closes,
    held_zscores,
    limit_prices,
    zscores,
)
from simbroker.price_model import Bars, quote

# Elements of one chunk's window copy: ~8 MB keeps it in cache-friendly sizes (measured:
# zscores is ~4x slower per column on 30 MB arrays than on 6 MB ones).
_CHUNK_ELEMENTS = 750_000


@dataclass(frozen=True)
class CellFills:
    """Whether a DAY limit order at the bot's limit, placed at noon, would fill
    (`price_model.limit_filled`), for the cells the timelines look at (where an entry or an
    exit order would be placed). On columns of bars with a range it was found in bulk for
    every cell and both sides with the signals (`table`: a closed form, cheaper for all cells
    than cell by cell); on columns of closes-only bars (Brownian bridges, whose fills are
    searched along the path) it is asked of the price model for those cells alone, from the
    path at noon the signals found (`path_price`)."""

    panels: Panels
    noon: np.ndarray  # each decision day's noon as a session fraction
    limit: np.ndarray  # (days, symbols): the bot's limit at each cell
    path_price: np.ndarray  # (days, symbols): the model path at noon
    spread_bps: float
    table: np.ndarray  # (2, days, symbols): [1] a buy, [0] a sell; on `in_table` columns
    in_table: np.ndarray  # (symbols,)

    def __call__(self, day: np.ndarray, symbol: np.ndarray, is_buy: np.ndarray) -> np.ndarray:
        """Whether the order at each cell (decision day `day`, column `symbol`) fills."""
        days, n = self.limit.shape
        cell = day * n + symbol  # flat indices of the cells
        out = self.table.reshape(-1).take(np.where(is_buy, days * n, 0) + cell)
        ask = np.flatnonzero(~self.in_table[symbol])
        if len(ask):
            out[ask] = self._asked(day[ask], symbol[ask], is_buy[ask], cell[ask])
        return out

    def _asked(self, day: np.ndarray, symbol: np.ndarray, is_buy: np.ndarray,
               cell: np.ndarray) -> np.ndarray:
        p = self.panels
        bar = (day + p.warmup) * len(p.symbols) + symbol

        def at(a: np.ndarray, i: np.ndarray) -> np.ndarray:
            return a.reshape(-1).take(i)

        with np.errstate(invalid="ignore"):
            bars = Bars(at(p.open, bar), at(p.high, bar), at(p.low, bar), at(p.close, bar),
                        key=at(p.key, bar), scale=at(p.scale, bar))
            return bars.limit_filled(is_buy=is_buy, limit=at(self.limit, cell),
                                     start=self.noon[day], end=1.0,
                                     spread_bps=self.spread_bps,
                                     at_start=at(self.path_price, cell))


@dataclass(frozen=True)
class DaySignals:
    """Arrays of shape (days, symbols) for decision days `first`..`first + len - 1`, where
    `first` counts decision days (0 is the first day after the warm-up)."""

    first: int
    path_price: np.ndarray  # model price at noon (NaN without a bar today): marks, quotes
    price: np.ndarray  # the latest trade as the API reports it: round(path_price, 4)
    limit: np.ndarray  # the bot's limit price for an order at that price (limit_prices)
    ask: np.ndarray  # the quote's ask at noon
    z: np.ndarray
    entry: np.ndarray  # entry_codes(z)
    in_view: np.ndarray  # every window close and today's bar present: the bot evaluates it
    # CellFills' table for the chunk's days: (2, days, symbols), on columns in_table only.
    filled: np.ndarray
    in_table: np.ndarray  # (symbols,): columns whose bars all have a range (or are missing)
    # Held positions: z from the closes the window has (held_zscores), and whether there is a
    # price today at all (a held symbol is managed with gaps in its window, not without one).
    z_held: np.ndarray
    priced: np.ndarray

    def __len__(self) -> int:
        return len(self.z)


def wire_price(price: np.ndarray) -> np.ndarray:
    """Python's round(p, 4) element-wise: how the exchange writes a trade price (simbroker
    wire.trade_json). numpy's round (multiply, round, divide) agrees except next to a tie in
    the fifth decimal, where the product's rounding can pick the other side; those few are
    recomputed with Python's round."""
    out = np.round(price, 4)
    scaled = price * 1e4
    near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    for index in zip(*np.nonzero(near_tie), strict=True):
        out[index] = round(float(price[index]), 4)
    return out


def compute_chunk(panels: Panels, clock: Clock, first: int, count: int, *, window: int,
                  thresholds: Thresholds, spread_bps: float) -> DaySignals:
    """Signals of decision days first..first + count - 1, with whether each cell's order
    would fill on the columns where that is cheaper in bulk (`CellFills`; the engine finds
    the prices and times of the actual fills)."""
    w = window - 1
    t0 = panels.warmup + first  # session index of the first day of the chunk
    rows = slice(t0, t0 + count)
    bars = (panels.open[rows], panels.high[rows], panels.low[rows], panels.close[rows])
    noon = clock.fraction(rows)[:, np.newaxis]
    keys = panels.path(rows)
    in_table = np.isnan(keys["scale"]).all(axis=0)
    if in_table.all() or not in_table.any():
        paths = Bars(*bars, **keys)  # mapped once for the noon price and the fills
        path = paths.price_at(noon)
    else:  # the columns apart (price_at is element-wise: the same bits)
        ranged = np.flatnonzero(in_table)
        paths = Bars(*(b[:, ranged] for b in bars), key=keys["key"][:, ranged],
                     scale=keys["scale"][:, ranged])
        bridges = np.flatnonzero(~in_table)
        path = np.empty(bars[0].shape)
        path[:, ranged] = paths.price_at(noon)
        path[:, bridges] = Bars(*(b[:, bridges] for b in bars), key=keys["key"][:, bridges],
                                scale=keys["scale"][:, bridges]).price_at(noon)
    price = wire_price(path)
    limit = limit_prices(price)
    filled = np.zeros((2, *path.shape), dtype=bool)
    if in_table.all():
        filled = noon_fills(paths, limit, noon, spread_bps)
    elif in_table.any():
        filled[:, :, ranged] = noon_fills(paths, limit[:, ranged], noon, spread_bps)
    past = _window_closes(panels, t0, count, w)  # w arrays (count, symbols), oldest first
    in_view = _full_windows(panels.close, t0, count, w) & ~np.isnan(path)
    z = zscores(past, price)
    priced = ~np.isnan(path)
    z_held = z if in_view.all() else held_zscores(past, price, held_min_closes(window))
    return DaySignals(first, path, price, limit, quote(path, spread_bps)[1], z,
                      entry_codes(z, thresholds), in_view, filled, in_table, z_held, priced)


def noon_fills(paths: Bars, limit: np.ndarray, noon: np.ndarray,
               spread_bps: float) -> np.ndarray:
    """Whether every cell's DAY order at the bot's limit placed at noon fills, both sides
    (`price_model.limit_filled`, [0] a sell, [1] a buy); the fills' prices and times are the
    engine's to find."""
    side = np.array([False, True])[:, np.newaxis, np.newaxis]
    with np.errstate(invalid="ignore"):
        return paths.limit_filled(is_buy=side, limit=limit, start=noon, end=1.0,
                                  spread_bps=spread_bps)


def _window_closes(panels: Panels, t0: int, count: int, w: int) -> list[np.ndarray]:
    """Closes of the w sessions before each day, split-adjusted as of that day and rounded to
    4 decimals, as the exchange's bars carry them (MarketData.bars + wire.row_json): w arrays
    of shape (count, symbols), the oldest close first. Without splits each close is rounded
    once, and the rows are views of the result."""
    start = t0 - w
    if panels.dividend_level is not None:  # the bars the bot fetches: adjustment=all
        return _dividend_adjusted_closes(panels, t0, count, w)
    if panels.split_level is None:
        rounded = np.round(panels.close[start:t0 + count - 1], 4)
        return [rounded[k:k + count] for k in range(w)]
    as_of = panels.split_level[t0:t0 + count]
    return [np.round(panels.close[start + k:start + k + count]
                     / (as_of / panels.split_level[start + k:start + k + count]), 4)
            for k in range(w)]


def _dividend_adjusted_closes(panels: Panels, t0: int, count: int, w: int) -> list[np.ndarray]:
    """`_window_closes` where the exchange also adjusts the served bars for dividends
    (simbroker/bars.py): split-adjusted as of the day, then times the dividend factor as of
    the day, in the exchange's order of operations, rounded to 4 decimals."""
    start, level = t0 - w, panels.dividend_level
    assert level is not None
    out = []
    for k in range(w):
        rows = slice(start + k, start + k + count)
        close = panels.close[rows]
        if panels.split_level is not None:
            close = close / (panels.split_level[t0:t0 + count] / panels.split_level[rows])
        out.append(np.round(close * (level[t0:t0 + count] / level[rows]), 4))
    return out


def _full_windows(close: np.ndarray, t0: int, count: int, w: int) -> np.ndarray:
    """Whether each day's window of w closes is complete (no missing bar), by counting the
    missing ones with a running sum instead of looking at every window."""
    missing = np.isnan(close[t0 - w:t0 + count - 1])
    seen = np.zeros((len(missing) + 1, missing.shape[1]), dtype=np.int32)
    np.cumsum(missing, axis=0, out=seen[1:])
    return seen[w:] == seen[:count]


def chunk_days(n_symbols: int, window: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, n_symbols * (window - 1)))


def signal_grid(panels: Panels, clock: Clock, *, window: int, thresholds: Thresholds,
                spread_bps: float, helper_min_cells: int | None = None) -> tuple[DaySignals, bool]:
    """The signals of every decision day as one `DaySignals` (first 0), computed in chunks of
    days (bounded memory) written into the final arrays; and whether a helper process took a
    share.

    Each chunk of days depends on the panels alone, not on the chunks before it: from
    `helper_min_cells` cells on (default HELPER_MIN_CELLS), with two chunks or more and where
    `forked.can_fork()`, a forked child computes the second half of the chunks while this
    process computes the first, both writing their rows into arrays in shared memory (the
    same chunks as in one process, so the same bits; rows, not columns, so that each process
    touches its own pages). Not on a thread: measured, a thread contending for the GIL with
    the day loop made whole runs slower, not faster."""
    days, n = panels.n_days, len(panels.symbols)
    size = chunk_days(n, window)
    starts = range(0, days, size)
    least = HELPER_MIN_CELLS if helper_min_cells is None else helper_min_cells
    helper = len(starts) >= 2 and days * n >= least and forked.can_fork()
    make = forked.shared_array if helper else np.empty
    out = {name: make((days, n), dtype) for name, dtype in _GRID_DTYPES.items()}
    out["filled"] = make((2, days, n), bool)
    fill = functools.partial(_chunks_into, out, panels, clock, size=size, window=window,
                             thresholds=thresholds, spread_bps=spread_bps)
    if helper:
        half = starts[len(starts) // 2]  # the helper's first day (an odd chunk is its)
        with forked.Child(fill, half, days) as child:
            in_table = fill(0, half)
            in_table &= child.join()
    else:
        in_table = fill(0, days)
    return DaySignals(first=0, in_table=in_table, **out), helper


# From this many cells (decision days x symbols) a helper process computes half of the
# signals. Measured (in-process, warm, 2 cores): 500,000 cells (100 x 5,000) 0.094 s with the
# helper against 0.120 s without; 126,000 and 200,000 cells slower with it (the fork and the
# second process's page faults cost more than the half saves).
HELPER_MIN_CELLS = 500_000
_GRID_DTYPES = {"path_price": np.float64, "price": np.float64, "limit": np.float64,
                "ask": np.float64, "z": np.float64, "entry": np.int64, "in_view": bool,
                "z_held": np.float64, "priced": bool}


def _chunks_into(out: dict[str, np.ndarray], panels: Panels, clock: Clock, first_day: int,
                 end_day: int, *, size: int, window: int, thresholds: Thresholds,
                 spread_bps: float) -> np.ndarray:
    """The signals of decision days first_day..end_day - 1, `size` days a chunk, written into
    `out`'s rows; returns whether each column's bars all have a range on those days
    (`DaySignals.in_table`)."""
    in_table = np.ones(len(panels.symbols), dtype=bool)
    for first in range(first_day, end_day, size):
        chunk = compute_chunk(panels, clock, first, min(size, end_day - first), window=window,
                              thresholds=thresholds, spread_bps=spread_bps)
        rows = slice(first, first + len(chunk))
        for name in _GRID_DTYPES:
            out[name][rows] = getattr(chunk, name)
        out["filled"][:, rows] = chunk.filled
        in_table &= chunk.in_table
    return in_table
