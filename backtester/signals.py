"""What the bot sees at noon on every decision day, for all days at once.

For each decision day and symbol: the noon price on the model path, the price and ask the
exchange reports, the z-score, and whether the bot's market view would include the symbol.

z comes from the bot's own `zscores`, called on the window's closes as (days, symbols) rows:
row k holds, for every day, the close k + 1 sessions before the window's last. `zscores`
spells out its arithmetic element by element, so each cell gets exactly the bits of the bot's
call for that day. Days are processed in chunks, which bounds memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

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
class Fills:
    """How a DAY limit order at `limit`, placed at noon, would end, for every cell and side:
    `price_model.limit_fill` evaluated in bulk. The engine uses a cell only after checking
    that the order's limit equals `limit` here."""

    limit: np.ndarray
    filled: np.ndarray  # (2, days, symbols): [0] a sell, [1] a buy
    price: np.ndarray | None  # None when only `filled` was asked for
    when: np.ndarray | None  # session fraction of the fill


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
    fills: Fills
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
    would fill (`noon_fills`; the engine finds the prices and times of the actual fills)."""
    w = window - 1
    t0 = panels.warmup + first  # session index of the first day of the chunk
    rows = slice(t0, t0 + count)
    bars = (panels.open[rows], panels.high[rows], panels.low[rows], panels.close[rows])
    noon = clock.fraction(rows)[:, np.newaxis]
    keys = panels.path(rows)
    paths = Bars(*bars, **keys)  # mapped once for the noon price and the fills
    path = paths.price_at(noon)
    price = wire_price(path)
    limit = limit_prices(price)
    past = _window_closes(panels, t0, count, w)  # w arrays (count, symbols), oldest first
    in_view = _full_windows(panels.close, t0, count, w) & ~np.isnan(path)
    z = zscores(past, price)
    priced = ~np.isnan(path)
    z_held = z if in_view.all() else held_zscores(past, price, held_min_closes(window))
    return DaySignals(first, path, price, limit, quote(path, spread_bps)[1], z,
                      entry_codes(z, thresholds), in_view,
                      noon_fills(paths, limit, noon, spread_bps), z_held, priced)


def noon_fills(paths: Bars, limit: np.ndarray, noon: np.ndarray, spread_bps: float) -> Fills:
    """Whether every cell's DAY order at the bot's limit placed at noon fills, both sides
    (`price_model.limit_filled`; the fills' prices and times are the engine's to find)."""
    side = np.array([False, True])[:, np.newaxis, np.newaxis]
    with np.errstate(invalid="ignore"):
        return Fills(limit, paths.limit_filled(is_buy=side, limit=limit, start=noon, end=1.0,
                                               spread_bps=spread_bps), None, None)


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


def iter_signals(panels: Panels, clock: Clock, *, window: int, thresholds: Thresholds,
                 spread_bps: float) -> Iterator[DaySignals]:
    """Chunks in order of days, each computed when the day loop reaches it (bounded memory).

    Not on a thread pool: measured, the chunks are a small part of a run and a thread
    contending for the GIL with the day loop made whole runs slower, not faster."""
    size = chunk_days(len(panels.symbols), window)
    for first in range(0, panels.n_days, size):
        yield compute_chunk(panels, clock, first, min(size, panels.n_days - first),
                            window=window, thresholds=thresholds, spread_bps=spread_bps)
