"""The benchmarks every backtest is compared with.

* **Equal-weight buy-and-hold of its universe**: equal dollars of every symbol that has a close
  on the session before the first decision day, bought at that close and held (no
  rebalancing, no costs, no dividends); a halted symbol keeps its last close; splits change
  the shares, not the value. Its value at each decision day's close, from the same starting
  cash.
* **The market**: the same starting cash in an index or fund, from its closes
  (`load_index`): by default the shipped S&P 500 index (data/README.md; its price index, so
  without the dividends SPY pays), or any file of date,close (`backtest.py --benchmark`),
  e.g. SPY downloaded with `scripts/download_bars.py`. No SPY is shipped: no package searched
  carries its prices. Where the index does not cover the backtest's days, there is none.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backtester.panels import Panels
from simbroker.market_data import DATA_DIR, MarketData

_EPOCH = datetime.date(1970, 1, 1)

NAME = "equal-weight buy-and-hold of the universe"


def buy_and_hold(panels: Panels, starting_cash: float) -> np.ndarray:
    first = max(panels.warmup - 1, 0)
    close = panels.close[first:]
    if panels.split_level is not None:
        close = close * panels.split_level[first:]
    filled = _forward_filled(close)
    held = np.isfinite(filled[0])
    if not held.any():
        return np.full(panels.n_days, starting_cash)
    growth = filled[:, held] / filled[0, held]
    value = starting_cash * growth.mean(axis=1)
    return value[len(value) - panels.n_days:]


def _forward_filled(values: np.ndarray) -> np.ndarray:
    rows = np.where(np.isfinite(values), np.arange(len(values))[:, np.newaxis], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    out = values[rows, np.arange(values.shape[1])]
    return out


# ---------------------------------------------------------------------------------------------
# The market: an index or fund's closes from a file (the shipped S&P 500 index by default)

SHIPPED_INDEX = "sp500"
_SHIPPED_FILE = DATA_DIR / "sp500_index_1990_2022.csv.gz"
_SHIPPED_NAME = "S&P 500 index (price return, no dividends)"  # data/README.md


@dataclass(frozen=True)
class MarketIndex:
    """Closes of a market benchmark: `days` are day numbers (since 1970-01-01), increasing."""

    name: str
    days: np.ndarray
    close: np.ndarray


@functools.cache
def load_index(spec: str) -> MarketIndex:
    """`sp500` (the shipped S&P 500 index) or a CSV file with header date,close (other columns
    are ignored; .gz allowed): the closes of an index or a fund such as SPY, one a session.
    Bad input raises ValueError naming the file and the line."""
    if spec == SHIPPED_INDEX:
        path, name = _SHIPPED_FILE, _SHIPPED_NAME
    else:
        path, name = Path(spec), f"{Path(spec).name} (closes)"
    if not path.is_file():
        raise ValueError(f"benchmark {spec!r} is neither {SHIPPED_INDEX!r} (the shipped S&P 500 "
                         "index), a symbol of the data, nor an existing CSV file with header "
                         "date,close")
    plain = _read_plain_index(path)
    if plain is not None:
        return MarketIndex(name, *plain)
    return MarketIndex(name, *_read_index(path))


# A file of nothing but "YYYY-MM-DD,123.45" rows under the header date,close (the shipped index
# is one) is read without pandas, whose import costs more than the whole rest of a small
# backtest's start; anything else goes to _read_index, which finds and names what is wrong.
_PLAIN_ROW = re.compile(r"\d{4}-\d{2}-\d{2},\d+(?:\.\d+)?", re.ASCII)


def _read_plain_index(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            lines = handle.read().splitlines()
        if not lines or lines[0] != "date,close" or len(lines) < 2:
            return None
        if not all(_PLAIN_ROW.fullmatch(line) for line in lines[1:]):
            return None
        days = np.array([datetime.date.fromisoformat(line[:10]).toordinal()
                         for line in lines[1:]], dtype=np.int64) - _EPOCH.toordinal()
    except (OSError, EOFError, UnicodeDecodeError, ValueError):
        return None
    close = np.array([float(line[11:]) for line in lines[1:]])
    if not (close > 0).all() or np.any(np.diff(days) <= 0):
        return None
    return days, close


def _read_index(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd  # only for a file that is not plain (see _PLAIN_ROW)

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a CSV file ({exc}); give date,close rows") from None
    if "date" not in table.columns or "close" not in table.columns or table.empty:
        raise ValueError(f"{path}: needs a header with date and close and at least one row, "
                         "e.g. 2020-03-02,3090.23")
    days = pd.to_datetime(table["date"], format="%Y-%m-%d", errors="coerce")
    close = pd.to_numeric(table["close"], errors="coerce")
    bad = np.flatnonzero(days.isna().to_numpy() | ~(close > 0).to_numpy())
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}, line {i + 2}: {table['date'].iloc[i]!r},"
                         f"{table['close'].iloc[i]!r} is not a YYYY-MM-DD date and a close "
                         "above 0; fix or remove the row")
    numbers = days.to_numpy(dtype="datetime64[D]").astype(np.int64)
    if np.any(np.diff(numbers) <= 0):
        i = int(np.flatnonzero(np.diff(numbers) <= 0)[0]) + 1
        raise ValueError(f"{path}, line {i + 2}: dates must increase, one row a day; sort the "
                         "file and keep one close per date")
    return numbers, close.to_numpy(dtype=float)


def symbol_index(market: MarketData, symbol: str) -> MarketIndex:
    """A symbol of the data as the benchmark (`backtest.py --benchmark SPY` when the data has
    SPY): its closes, split-adjusted as of the data's last day; its cash dividends, if the data
    has any, are not in them (price return)."""
    frame = market.bars([symbol], market.first_day, market.last_day, adjustment="split",
                        as_of=market.last_day)[symbol]
    days = frame.index.to_numpy().astype("datetime64[D]").astype(np.int64)
    return MarketIndex(f"{symbol} (its closes in the data)", days,
                       frame["close"].to_numpy(dtype=float))


def resolve(spec: str | MarketIndex | None, market: MarketData) -> MarketIndex | None:
    """The benchmark `spec` names: None or "none" for none, a symbol of `market`, `sp500`, or
    a file of date,close."""
    if spec is None or isinstance(spec, MarketIndex):
        return spec
    if spec == "none":
        return None
    return symbol_index(market, spec) if spec in market else load_index(spec)


def market_value(index: MarketIndex, days: list[datetime.date],
                 starting_cash: float) -> np.ndarray | None:
    """`starting_cash` put in the index at the close before the first day, valued at each
    day's close (a day without a close keeps the last one). None when the index does not
    cover the days: no close before the first, or none on or after the last."""
    if not days:
        return None
    numbers = np.array([(d - _EPOCH).days for d in days], dtype=np.int64)
    before = int(np.searchsorted(index.days, numbers[0], side="left")) - 1
    if before < 0 or index.days[-1] < numbers[-1]:
        return None
    at = np.searchsorted(index.days, numbers, side="right") - 1
    return starting_cash * index.close[at] / index.close[before]
