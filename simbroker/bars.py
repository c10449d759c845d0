"""Historical daily bars as Alpaca's Market Data v2 serves them: a range query over many
symbols, sorted by symbol then time, cut into pages of at most `limit` bars counted across all
symbols, each page pointing at the next with an opaque `next_page_token` (null on the last).

A query's rows are computed once (vectorised in `MarketData.bars`) and cached, so the
follow-up requests of a paginated read cost one slice each.
"""

from __future__ import annotations

import base64
import binascii
import functools
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np

from market_calendar import NEW_YORK, UTC
from simbroker import dividends as dividend_files
from simbroker import errors, feeds
from simbroker.prices import MarketView, Moment

if TYPE_CHECKING:
    from simbroker.market_data import MarketData

DEFAULT_LIMIT = 1000  # Alpaca's default page size for bars
MAX_LIMIT = 10_000  # and its maximum
TIMEFRAMES = ("1Day", "1D")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
_EPOCH = date(1970, 1, 1)

# (symbol, day, bar JSON): the JSON is built once per cached query, not once per page.
Row = tuple[str, date, dict[str, object]]

@dataclass(frozen=True)
class BarQuery:
    symbols: tuple[str, ...]
    first: date
    last: date
    adjustment: str
    descending: bool
    feed: str = "sip"


def parse_query(params: dict[str, str], symbols: list[str], at: Moment, *,
                plan: str = "unlimited") -> BarQuery:
    """Validate the query parameters of a bars request (an error naming the parameter if
    bad; 403 for recent SIP bars on the free plan, see feeds.py)."""
    timeframe = params.get("timeframe", "")
    if timeframe not in TIMEFRAMES:
        raise errors.unprocessable(
            f"timeframe {timeframe!r} is not supported: this local exchange serves daily bars "
            "only; use timeframe=1Day")
    adjustment = params.get("adjustment") or "raw"
    parts = {p.strip() for p in adjustment.split(",")}
    if not parts <= set(ADJUSTMENTS) | {"spin-off"}:
        raise errors.unprocessable(f"adjustment {adjustment!r} is invalid; use raw, split, "
                                   "dividend or all")
    # One of ADJUSTMENTS: splits and dividends, each asked for or not (the data has no
    # spin-offs, so `spin-off` changes nothing).
    splits, dividends = bool(parts & {"split", "all"}), bool(parts & {"dividend", "all"})
    adjust = ("all" if dividends else "split") if splits else ("dividend" if dividends else "raw")
    feed = feeds.historical_feed(params)
    sort = params.get("sort") or "asc"
    if sort not in ("asc", "desc"):
        raise errors.unprocessable(f"sort {sort!r} is invalid; use asc or desc")
    start = parse_instant(params["start"], "start") if params.get("start") else None
    end = parse_instant(params["end"], "end", end_of_day=True) if params.get("end") else None
    end = feeds.bars_end(feed, plan, end, at.now)
    if start is None:  # Alpaca's default: the beginning of the current day
        start = datetime.combine(at.day, time(0), tzinfo=NEW_YORK).astimezone(UTC)
    if end < start:
        raise errors.unprocessable(f"end {params.get('end')} is before start "
                                   f"{params.get('start')}; swap them")
    first = start.astimezone(NEW_YORK).date()
    if bar_time(first) < start:  # a bar is in range when start <= t <= end
        first += timedelta(days=1)
    return BarQuery(tuple(symbols), first, end.astimezone(NEW_YORK).date(), adjust,
                    sort == "desc", feed)


def parse_limit(params: dict[str, str]) -> int:
    text = params.get("limit")
    if not text:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        raise errors.unprocessable(f"limit {text!r} is not an integer; give 1..{MAX_LIMIT}") \
            from None
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.unprocessable(f"limit {limit} is out of range; give 1..{MAX_LIMIT}")
    return limit


def parse_instant(text: str, name: str, *, end_of_day: bool = False) -> datetime:
    """RFC-3339 (nanoseconds allowed) or YYYY-MM-DD, which means that New York day: its first
    instant as a start, its last as an end, so a one-day range returns that day's bar."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) == 10:
        moment = time.max if end_of_day else time(0)
        return datetime.combine(day, moment, tzinfo=NEW_YORK).astimezone(UTC)
    cleaned = text.strip().replace(" ", "+")  # a '+' in an unencoded query arrives as ' '
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    head, dot, rest = cleaned.partition(".")
    if dot:  # Python parses at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        cleaned = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise errors.unprocessable(f"{name} {text!r} is invalid; give RFC-3339 with a zone "
                                   "(2022-03-01T14:30:00Z) or a date (2022-03-01)")
    return parsed.astimezone(UTC)


def bar_time(day: date) -> datetime:
    """A daily bar's `t`: midnight New York time of its session day (Alpaca's convention)."""
    return datetime.combine(day, time(0), tzinfo=NEW_YORK).astimezone(UTC)


class BarStore:
    """Computes the rows of a query and keeps the latest few, for paginated reads."""

    def __init__(self, view: MarketView, size: int = 8) -> None:
        self._view = view
        self._size = size
        self._cache: dict[tuple[BarQuery, datetime], tuple[list[Row], dict]] = {}
        self._lock = threading.Lock()

    def page(self, query: BarQuery, at: Moment, limit: int, token: str | None,
             ) -> tuple[list[Row], str | None]:
        """One page of `limit` rows after `token`, and the token of the next page (or None)."""
        rows, index = self._rows(query, at)
        start = 0
        if token:
            start = index.get(decode_token(token), -1)
            if start < 0:
                raise errors.unprocessable("page_token is invalid for this query; repeat the "
                                           "request without it to start over")
        stop = min(start + limit, len(rows))
        following = encode_token(rows[stop][0], rows[stop][1]) if stop < len(rows) else None
        return rows[start:stop], following

    def _rows(self, query: BarQuery, at: Moment) -> tuple[list[Row], dict]:
        key = (query, at.now)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            rows = compute_rows(self._view, query, at)
            hit = (rows, {(r[0], r[1]): i for i, r in enumerate(rows)})
            with self._lock:
                if len(self._cache) >= self._size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = hit
        return hit


def compute_rows(view: MarketView, query: BarQuery, at: Moment) -> list[Row]:
    """Every visible bar of the query, sorted by symbol, then by time (asc or desc)."""
    # The future never leaks: nothing after today, and today only once the session opened.
    visible_last = at.day if at.has_opened else at.day - timedelta(days=1)
    last = min(query.last, visible_last)
    rows: list[Row] = []
    if last < query.first or query.feed in feeds.NO_DATA_FEEDS:
        return rows
    symbols = sorted(set(query.symbols))
    served = served_bars(view.data, symbols, query.first, last, adjustment=query.adjustment,
                         as_of=at.day)
    for symbol in symbols:
        found = served.get(symbol)
        if found is None or not len(found[0]):
            continue
        numbers, values = found
        days = [_EPOCH + timedelta(days=n) for n in numbers.tolist()]
        values = values.astype(float, copy=True)
        if days[-1] == at.day:
            partial = view.partial_bar(symbol, at)
            if partial is not None:
                values[-1] = (partial.open, partial.high, partial.low, partial.close,
                              partial.volume)
        if query.feed == "iex":
            days, values = feeds.iex_bars(symbol, days, values)
        own = [(symbol, d, j) for d, j in zip(days, bars_json(days, values), strict=True)]
        rows.extend(reversed(own) if query.descending else own)
    return rows


def served_bars(data: MarketData, symbols: list[str], first: date, last: date, *,
                adjustment: str, as_of: date) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The bars of `MarketData.bar_arrays` (split-adjusted for ``split`` and ``all``) with, for
    ``dividend`` and ``all``, their prices (not the volume) multiplied by the symbol's
    dividend factors as of `as_of` (simbroker/dividends.adjustment_table), after the split
    adjustment. A symbol without dividend events is served as it is: the shipped closes-only
    symbols are dividend-adjusted already (their dividends are in their prices,
    `MarketData.dividend_adjusted`), the other symbols paid none."""
    found = data.bar_arrays(symbols, first, last, adjustment=adjustment, as_of=as_of)
    if adjustment not in ("dividend", "all"):
        return found
    for symbol, (numbers, values) in found.items():
        table = dividend_files.adjustment_table(data, symbol)
        if table is None or not len(numbers):
            continue
        adjusted = values.copy()  # never the data's own arrays
        adjusted[:, :4] *= dividend_files.factors(table, numbers, (as_of - _EPOCH).days)[:, None]
        found[symbol] = (numbers, adjusted)
    return found


def bars_json(days: list[date], values: np.ndarray) -> list[dict[str, object]]:
    """Bars in Alpaca's shape from rows of (open, high, low, close, volume). The data has no
    trade count or VWAP: `n` is 0 and `vw` the typical price (h + l + c) / 3, so clients that
    require the fields still parse."""
    prices = np.round(values[:, :4], 4).tolist()
    typical = np.round(values[:, 1:4].sum(axis=1) / 3.0, 4).tolist()
    volumes = np.nan_to_num(values[:, 4], nan=0.0).astype(np.int64).tolist()
    return [{"t": bar_stamp(d), "o": p[0], "h": p[1], "l": p[2], "c": p[3], "v": v, "n": 0,
             "vw": vw} for d, p, v, vw in zip(days, prices, volumes, typical, strict=True)]


@functools.lru_cache(maxsize=100_000)
def bar_stamp(day: date) -> str:
    return bar_time(day).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_token(symbol: str, day: date) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{day.isoformat()}".encode()).decode()


def decode_token(token: str) -> tuple[str, date] | None:
    try:
        symbol, _, day = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return symbol, date.fromisoformat(day)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
