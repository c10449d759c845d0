"""Cash dividends as data: the record, the file format, and the rule that keeps a dividend from
being counted twice.

A dividends file is a CSV beside the bars (`<bars>_dividends.csv`, the way the splits dataset
has `_events.csv`), header ``symbol,ex_date,pay_date,amount``:

* ``amount``: dollars per share, in the same shares as the bars (split-adjusted bars need
  split-adjusted amounts), above 0;
* ``ex_date``: the first session a buyer no longer gets the dividend; a position held at the
  close before it is paid (long) or charged (short);
* ``pay_date``: when the company pays; may be empty when the source does not have it. The
  exchange and the backtester move the cash at the open of the first session on or after it
  (as Alpaca credits dividends: simbroker/corporate.py), and at the ex-date's open without
  one (see the README, "Costs a real account pays").

**Nothing counted twice.** Dividend-adjusted prices already fall by nothing on an ex-date: the
dividend is inside the earlier prices. Paying it in cash as well would count it twice, so a
dividend is refused for a symbol whose prices the dataset states to be dividend-adjusted. A
CSV file of bars states its adjustment in its sidecar `<bars>.json` (``"adjustment"``, as
`scripts/download_bars.py` writes it); a dividends file is only used beside bars whose sidecar
says ``raw`` or ``split``.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simbroker.market_data import MarketData

HEADER = ("symbol", "ex_date", "pay_date", "amount")
# Alpaca's bar adjustments (market-data spec, June 2026, parameter `adjustment`) that leave
# cash dividends out of the prices.
WITHOUT_DIVIDENDS = frozenset({"raw", "split"})


@dataclass(frozen=True)
class Dividend:
    """A cash dividend of `amount` dollars per share going ex on `ex_date`."""

    symbol: str
    ex_date: datetime.date
    amount: float
    pay_date: datetime.date | None = None

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("Dividend.symbol is empty; give the ticker that pays it")
        if not (math.isfinite(self.amount) and self.amount > 0):
            raise ValueError(f"Dividend({self.symbol}, {self.ex_date}).amount is {self.amount}; "
                             "give the cash per share in dollars, above 0 (e.g. 0.24)")
        if self.pay_date is not None and self.pay_date < self.ex_date:
            raise ValueError(f"Dividend({self.symbol}, {self.ex_date}).pay_date "
                             f"{self.pay_date} is before the ex-date; swap or fix them")


def path_beside(bars: Path) -> Path:
    """`data/mine.csv` -> `data/mine_dividends.csv` (`.csv.gz` likewise)."""
    name = bars.name
    for suffix in (".csv.gz", ".csv", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return bars.with_name(name + "_dividends.csv")


def read(path: Path) -> list[Dividend]:
    """The dividends of a file (see the module docstring); ValueError names the line and the
    column of a bad value and says how to fix it."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader if row]  # blank lines skipped
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a CSV file ({exc}); the header must be "
                         f"{','.join(HEADER)}") from None
    header = lines[0][1] if lines else []
    missing = [c for c in HEADER if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                         f"{','.join(HEADER)} (pay_date may be empty)")
    out = []
    for i, fields in lines[1:]:
        where = f"{path}, line {i}"
        if len(fields) != len(header):
            raise ValueError(f"{where}: {len(fields)} fields where the header has "
                             f"{len(header)}; give {','.join(HEADER)} on every line")
        row = dict(zip(header, fields, strict=True))
        ex_date = _date(row["ex_date"], where, "ex_date")
        pay_date = (_date(row["pay_date"], where, "pay_date") if row["pay_date"].strip()
                    else None)
        try:
            amount = float(row["amount"])
        except ValueError:
            raise ValueError(f"{where}, column 'amount': {row['amount']!r} is not a number; "
                             "give dollars per share, e.g. 0.24") from None
        try:
            out.append(Dividend(row["symbol"].strip(), ex_date, amount, pay_date))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return out


def stated_adjustment(bars: Path) -> str | None:
    """The `adjustment` the bars file's sidecar `<bars>.json` states, None without one."""
    sidecar = bars.with_name(bars.name + ".json")
    if not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{sidecar}: not JSON ({exc}); download_bars.py writes it, or remove "
                         "it") from None
    value = meta.get("adjustment") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def for_bars_file(bars: Path) -> list[Dividend]:
    """The dividends beside a bars file (none without a dividends file). Raises ValueError when
    the bars are not stated to leave dividends out of their prices."""
    path = path_beside(bars)
    if not path.is_file():
        return []
    adjustment = stated_adjustment(bars)
    if adjustment is None:
        raise ValueError(f"{path}: cash dividends beside {bars}, whose adjustment is not "
                         f"stated; if its prices leave dividends out, say so in "
                         f"{bars.name}.json: {{\"adjustment\": \"split\"}} (download_bars.py "
                         "writes it), else remove the dividends file")
    if not set(adjustment.split(",")) <= WITHOUT_DIVIDENDS:
        raise ValueError(f"{path}: {bars} is {adjustment!r}-adjusted (its {bars.name}.json), so "
                         "its prices already carry the dividends; paying them in cash too would "
                         "count them twice. Use bars downloaded with --adjustment split, or "
                         "remove the dividends file")
    return read(path)


def check(dividends: list[Dividend], known: set[str] | frozenset[str],
          adjusted: frozenset[str], name: str) -> list[Dividend]:
    """Dividends sorted by ex-date, refused for unknown symbols, duplicates and symbols whose
    prices are dividend-adjusted."""
    ordered = sorted(dividends, key=lambda d: (d.ex_date, d.symbol))
    seen = set()
    for d in ordered:
        if d.symbol not in known:
            raise ValueError(f"dataset {name!r}: dividend {d} is for a symbol without bars; "
                             "remove it or add the symbol's bars")
        if d.symbol in adjusted:
            raise ValueError(f"dataset {name!r}: dividend of {d.symbol} on {d.ex_date}, but the "
                             f"dataset's {d.symbol} prices are dividend-adjusted: the dividend "
                             "is already in them, and paying it in cash would count it twice. "
                             "Give split-adjusted (or raw) prices with the dividends, or drop "
                             "the dividends")
        if (d.symbol, d.ex_date) in seen:
            raise ValueError(f"dataset {name!r}: two dividends of {d.symbol} going ex on "
                             f"{d.ex_date}; add them into one amount")
        seen.add((d.symbol, d.ex_date))
    return ordered


# -- bars adjusted for dividends (adjustment=dividend or all) ------------------------------

_EPOCH = datetime.date(1970, 1, 1)
# market -> symbol -> its table (None: no dividend to adjust for); computed once per dataset.
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def adjustment_table(market: MarketData, symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Backward dividend adjustment of `symbol`'s prices, as `adjustment=dividend` asks for
    (market-data spec, June 2026, parameter `adjustment`: "`dividend`: adjust price for cash
    dividends"; prices only, the volume is left as it is): each dividend going ex multiplies
    every price before its ex-date by ``1 - amount / close``, the close of the last bar before
    the ex-date in the shares of the ex-date's session (split-adjusted to it), and the factors
    of later ex-dates compound. Alpaca does not document the base of its factor; this is the
    usual backward adjustment (CRSP's, Yahoo's), and Alpaca's adjusted bars in its forum show
    the same shape: a multiplicative factor on open, high, low, close and VWAP before the
    ex-date, volume unchanged (forum.alpaca.markets/t/18614, /t/12998). It is the exchange's
    choice where Alpaca's own base is not known.

    Returns (ex-date day numbers, cumulative factors with a leading 1.0), as the split tables
    keep them (`factors`), or None when the symbol has no dividend with a bar before it."""
    cache = _TABLES.setdefault(market, {})
    if symbol in cache:
        return cache[symbol]
    table = None
    found = market.dividends(symbol)
    if found:
        ex_days, factor = [], []
        for d in found:
            last = market.last_bar_before(symbol, d.ex_date)
            if last is None:  # nothing before the ex-date to adjust
                continue
            before = last.close / market.split_factor(symbol, last.day, d.ex_date)
            f = 1.0 - d.amount / before
            if not f > 0:
                raise ValueError(f"dividend of {symbol} going ex {d.ex_date}: ${d.amount:g} a "
                                 f"share is not below the close before it (${before:g}); fix "
                                 "the amount (dollars per share, in the bars' shares)")
            ex_days.append((d.ex_date - _EPOCH).days)
            factor.append(f)
        if ex_days:
            table = (np.array(ex_days, dtype=np.int64), np.r_[1.0, np.cumprod(factor)])
    cache[symbol] = table
    return table


def factors(table: tuple[np.ndarray, np.ndarray], bar_days: np.ndarray,
            as_of: int) -> np.ndarray:
    """What each bar's prices are multiplied by as seen on day number `as_of`: the factors of
    the ex-dates after the bar and on or before `as_of` (a dividend going ex on or before the
    bar's day is already out of its price)."""
    ex_days, cumulative = table
    first = np.searchsorted(ex_days, bar_days, side="right")
    last = np.searchsorted(ex_days, as_of, side="right")
    return np.where(last > first, cumulative[last] / cumulative[first], 1.0)


def levels(table: tuple[np.ndarray, np.ndarray], day_numbers: np.ndarray) -> np.ndarray:
    """The cumulative factor in force on each day: `factors(table, b, t)` is
    ``levels[t] / levels[b]`` to the bit (the same two numbers divided)."""
    ex_days, cumulative = table
    return cumulative[np.searchsorted(ex_days, day_numbers, side="right")]


def _date(text: str, where: str, column: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{where}, column {column!r}: {text!r} is not a date; write "
                         "YYYY-MM-DD, e.g. 2020-03-02") from None
