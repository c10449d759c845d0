"""UNIVERSE=dynamic: each day, the N most traded US stocks the broker can trade.

"Most traded" is the median daily dollar volume (close x volume) over the last 20 completed
sessions: a median, so one block trade or index rebalance day does not lift a stock into the
universe. The day's choice is computed once, from batched multi-symbol bar requests, and cached
in `<log_dir>/universe/<YYYY-MM-DD>.json`, so a re-run the same day costs no request and trades
the same symbols.

The bot adds the symbols it holds to the choice, so a position whose stock drops out of the
top N is still managed to its exit.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from broker import Asset, Bar
from errors import BrokerError, StateFileError
from market_calendar import MarketCalendar
from state_files import read_json, write_json

log = logging.getLogger("bot.universe")

LOOKBACK_SESSIONS = 20
# Symbols per bars request. Alpaca returns 1,000 bars a page unless asked for more and the
# broker follows next_page_token, so the page count depends on the bars, not the batching;
# the batch bounds the query string (200 symbols is about 1.2 kB of URL).
BATCH_SIZE = 200
CACHE_VERSION = 1
# Common stock and share classes (AAPL, BRK.B). Units, warrants and rights (ABC.U, ABC.WS,
# ABC.W, ABC.R) are not what the strategy means to trade, and longer symbols would not pass
# TICKERS' validation either.
_STOCK_SYMBOL = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")
_NOT_STOCK = re.compile(r"\.[UWR]$")


class BarSource(Protocol):
    """What selection needs from the broker (broker.Broker provides it)."""

    def daily_bars(self, symbols: Iterable[str], start: date,
                   end: date) -> dict[str, list[Bar]]: ...


# -- pure ---------------------------------------------------------------------------------

def median_dollar_volume(bars: Sequence[Bar], sessions: Sequence[date] | None = None) -> float:
    """Median of close x volume over `sessions` (default: the symbol's last 20 bars).

    A session without a bar counts as $0: Alpaca sends no bar for a day without trades. A bar
    whose close or volume is NaN is unknown and left out. NaN when nothing is known.
    """
    by_day = {b.day: b for b in bars}
    days = list(sessions) if sessions is not None else sorted(by_day)[-LOOKBACK_SESSIONS:]
    if not any(day in by_day for day in days):
        return math.nan
    values = []
    for day in days:
        bar = by_day.get(day)
        value = 0.0 if bar is None else bar.close * bar.volume
        if not math.isnan(value):
            values.append(value)
    return float(statistics.median(values)) if values else math.nan


def rank_by_dollar_volume(bars: Mapping[str, Sequence[Bar]], n: int, *,
                          sessions: Sequence[date] | None = None) -> list[str]:
    """The `n` symbols of `bars` with the highest median dollar volume, highest first.
    Symbols whose volume is unknown (no bars, NaN) rank last; ties go by symbol."""
    volume = {s: median_dollar_volume(b, sessions) for s, b in bars.items()}
    ranked = sorted(volume, key=lambda s: (math.isnan(volume[s]),
                                           0.0 if math.isnan(volume[s]) else -volume[s], s))
    return ranked[:n]


def candidates(assets: Mapping[str, Asset]) -> list[str]:
    """Tradable common stocks from the broker's asset list, sorted."""
    return sorted(s for s, a in assets.items()
                  if a.tradable and _STOCK_SYMBOL.match(s) and not _NOT_STOCK.search(s))


def batches(items: Sequence[str], size: int = BATCH_SIZE) -> list[list[str]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


# -- with I/O -----------------------------------------------------------------------------

def select_universe(broker: BarSource, assets: Mapping[str, Asset], *, today: date,
                    calendar: MarketCalendar, n: int, cache_dir: Path) -> list[str]:
    """Today's universe: from the cache when chosen earlier today, else ranked from bars
    (one bars read per BATCH_SIZE candidates) and cached. If the bars cannot be fetched, the
    latest earlier choice is used with a warning; with none, the BrokerError propagates."""
    cache_path = cache_dir / f"{today.isoformat()}.json"
    cached = read_cache(cache_path, n)
    if cached is not None:
        log.info("universe: %d symbols chosen earlier today (%s): %s", len(cached),
                 cache_path, _preview(cached))
        return cached
    sessions = [s.day for s in calendar.sessions_before(today, LOOKBACK_SESSIONS)]
    pool = candidates(assets)
    try:
        bars: dict[str, list[Bar]] = {}
        for batch in batches(pool):
            bars.update(broker.daily_bars(batch, sessions[0], sessions[-1]))
    except BrokerError as exc:
        return _fallback(cache_dir, today, n, exc)
    chosen = rank_by_dollar_volume({s: bars.get(s, []) for s in pool}, n, sessions=sessions)
    write_json(cache_path, {
        "version": CACHE_VERSION, "day": today.isoformat(), "size": n,
        "sessions": [sessions[0].isoformat(), sessions[-1].isoformat()],
        "candidates": len(pool), "symbols": chosen,
        "median_dollar_volume_usd": {s: _round(median_dollar_volume(bars.get(s, []), sessions))
                                     for s in chosen}})
    log.info("universe: top %d of %d tradable stocks by %d-day median dollar volume "
             "(%d bar reads, cached in %s): %s", len(chosen), len(pool), LOOKBACK_SESSIONS,
             len(batches(pool)), cache_path, _preview(chosen))
    return chosen


def read_cache(path: Path, n: int) -> list[str] | None:
    """The cached choice, or None when there is none for this size.

    The cache can always be rebuilt from the broker, so a damaged file is reported and
    replaced rather than stopping the run (unlike the state files)."""
    try:
        data: Any = read_json(path, default=None)
    except StateFileError as exc:
        log.warning("universe cache ignored, it will be rebuilt: %s", exc)
        return None
    if data is None:
        return None
    symbols = data.get("symbols") if isinstance(data, dict) else None
    if not isinstance(symbols, list) or data.get("version") != CACHE_VERSION \
            or not all(isinstance(s, str) for s in symbols):
        log.warning("universe cache %s is not a version-%d universe file; rebuilding it",
                    path, CACHE_VERSION)
        return None
    if data.get("size") != n:
        log.info("universe cache %s holds %s symbols, UNIVERSE_SIZE is %d; rebuilding it",
                 path, data.get("size"), n)
        return None
    return symbols


def _fallback(cache_dir: Path, today: date, n: int, exc: BrokerError) -> list[str]:
    earlier = sorted(p for p in cache_dir.glob("????-??-??.json") if p.stem < today.isoformat())
    for path in reversed(earlier):
        symbols = read_cache(path, n)
        if symbols is not None:
            log.warning("universe: bars for the ranking could not be fetched (%s); using the "
                        "choice of %s", exc, path.stem)
            return symbols
    raise exc


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)


def _preview(symbols: Sequence[str], count: int = 10) -> str:
    more = f", ... (+{len(symbols) - count})" if len(symbols) > count else ""
    return ", ".join(symbols[:count]) + more
