"""Seeded synthetic daily bars on NYSE sessions, for tests and benchmarks of any size.

The close follows a mean-reverting (Ornstein-Uhlenbeck) random walk in log price,

    x[t] = x[t-1] + reversion_per_day * (log(start_price) - x[t-1]) + daily_vol * e[t] + shock[t]

with e ~ N(0, 1), so prices keep returning towards `start_price` and a mean-reversion strategy
finds entries and exits. This is a test fixture, not a market model: there is no drift, no
volatility clustering and no cross-correlation between symbols.

Per bar: open = previous close * exp(0.3 * daily_vol * g) (an overnight gap; `shock` from
`gaps` is added to both open and close), high = max(open, close) * exp(|h|), low =
min(open, close) * exp(-|l|) with h, l ~ N(0, (0.5 * daily_vol)^2). Prices are then divided by
the requested splits and rounded to Alpaca's tick ($0.01 at or above $1, $0.0001 below);
rounding is monotone, so low <= open, close <= high survives it. Volume is an integer number
of shares, about a million a day, larger on big moves.

Every random number is drawn up front in a fixed order and shape, so a seed fixes the bars, and
`flat`, `halts`, `gaps` and `splits` change only what they name.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from market_calendar import nyse
from simbroker.market_data import MarketData, Split, from_arrays

_NO_DAYS: Mapping[str, Sequence[datetime.date]] = MappingProxyType({})
_NO_GAPS: Mapping[str, Mapping[datetime.date, float]] = MappingProxyType({})
_BASE_VOLUME = 1_000_000  # shares per day
_GAP_VOL = 0.3  # overnight gap size, as a fraction of daily_vol
_RANGE_VOL = 0.5  # intraday extension beyond open/close, as a fraction of daily_vol


def generate(symbols: int | Sequence[str], *, start: datetime.date, sessions: int, seed: int,
             flat: Sequence[str] = (), halts: Mapping[str, Sequence[datetime.date]] = _NO_DAYS,
             splits: Sequence[Split] = (),
             gaps: Mapping[str, Mapping[datetime.date, float]] = _NO_GAPS,
             start_price: float = 100.0, daily_vol: float = 0.02,
             reversion_per_day: float = 0.05) -> MarketData:
    """Raw daily bars for `symbols` (a count gives S0000, S0001, ...) on the first `sessions`
    NYSE sessions on or after `start`.

    flat: symbols whose open/high/low/close are all `start_price` every day (zero volatility).
    halts: days on which a symbol has no bar. splits: applied to the raw prices from their
    ex-date on (prices / ratio, volume * ratio) and reported by `MarketData.splits`.
    gaps: {symbol: {day: move}} opens that day at previous close * (1 + move) and shifts the
    mean-reverting walk by the same log move, which then decays like any other shock.
    """
    names = _symbol_names(symbols)
    days = _session_days(start, sessions)
    _check_arguments(names, days, flat, halts, splits, gaps, start_price, daily_vol,
                     reversion_per_day)
    # One draw, in place: z[k] becomes field k of FIELDS (open, high, low, close, volume), so
    # 500 symbols x 5,000 days need one 100 MB array and no copies.
    z = np.random.default_rng(seed).standard_normal((5, len(days), len(names)))
    open_, high, low, close, volume = z
    level = np.log(start_price)
    shock = _shock_matrix(names, days, gaps)
    close *= daily_vol
    close += shock
    _mean_reverting_walk(close, level, reversion_per_day)  # now the log close
    previous = np.vstack([np.full((1, len(names)), level), close[:-1]])
    open_ *= _GAP_VOL * daily_vol
    open_ += previous + shock  # log open
    volume *= 0.3
    np.exp(volume, out=volume)
    volume *= _BASE_VOLUME * (1.0 + 25.0 * np.abs(close - previous))
    np.exp(open_, out=open_)
    np.exp(close, out=close)
    for extension, bound, sign in ((high, np.maximum, 1.0), (low, np.minimum, -1.0)):
        np.abs(extension, out=extension)
        extension *= sign * _RANGE_VOL * daily_vol
        np.exp(extension, out=extension)
        extension *= bound(open_, close)
    z[:4, :, [names.index(s) for s in flat]] = start_price
    np.rint(volume, out=volume)  # whole shares before any split, and after it
    if splits:
        factor = _split_factors(names, days, splits)
        z[:4] /= factor
        volume *= factor
        np.rint(volume, out=volume)
    _to_tick(z[:4])
    keep = {s: ~np.isin(days, np.array(halted, dtype="datetime64[D]"))
            for s, halted in halts.items()}
    # values[j] is a (days, 5) strided view of z: symbol j's bars without copying.
    return from_arrays(days, {s: z[:, :, j].T for j, s in enumerate(names)}, keep, splits,
                       name="synthetic",
                       description=f"Synthetic mean-reverting daily bars (simbroker.synthetic, "
                                   f"seed {seed}): {len(names)} symbols, {len(days)} NYSE "
                                   f"sessions from {days[0]}. Not market data.")


def _symbol_names(symbols: int | Sequence[str]) -> list[str]:
    if isinstance(symbols, int):
        if symbols < 1:
            raise ValueError(f"symbols={symbols}; ask for at least one symbol")
        return [f"S{i:04d}" for i in range(symbols)]
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    if not names or len(set(names)) != len(names) or not all(names):
        raise ValueError(f"symbols={symbols!r}; give at least one name, each non-empty and unique")
    return sorted(names)


def _session_days(start: datetime.date, sessions: int) -> np.ndarray:
    if sessions < 1:
        raise ValueError(f"sessions={sessions}; ask for at least one session")
    found = nyse().sessions_between(start, datetime.date.max)[:sessions]
    if len(found) < sessions:
        raise ValueError(f"only {len(found)} NYSE sessions from {start} are in the calendar; "
                         f"start earlier or ask for fewer than {sessions}")
    return np.array([s.day for s in found], dtype="datetime64[D]")


def _check_arguments(names: list[str], days: np.ndarray, flat: Sequence[str],
                     halts: Mapping[str, Sequence[datetime.date]], splits: Sequence[Split],
                     gaps: Mapping[str, Mapping[datetime.date, float]], start_price: float,
                     daily_vol: float, reversion_per_day: float) -> None:
    known = set(names)
    for label, named in (("flat", flat), ("halts", halts), ("gaps", gaps),
                         ("splits", [s.symbol for s in splits])):
        unknown = sorted(set(named) - known)
        if unknown:
            raise ValueError(f"{label} names {', '.join(unknown)}, which are not among the "
                             "generated symbols; use names from `symbols`")
    sessions = set(days.tolist())
    for label, per_symbol in (("halts", halts), ("gaps", gaps)):
        for symbol, when in per_symbol.items():
            outside = sorted(set(when) - sessions)
            if outside:
                raise ValueError(f"{label}[{symbol!r}] has {outside[0]}, which is not one of the "
                                 f"generated sessions {days[0]}..{days[-1]}; use a session day")
    if set(flat) & set(gaps):
        raise ValueError(f"gaps given for flat symbol(s) {sorted(set(flat) & set(gaps))}; flat "
                         "prices never move, so remove the gap or the symbol from `flat`")
    if not (start_price > 0 and daily_vol >= 0 and 0 <= reversion_per_day <= 1):
        raise ValueError(f"start_price={start_price}, daily_vol={daily_vol}, reversion_per_day="
                         f"{reversion_per_day}; need start_price > 0, daily_vol >= 0 and "
                         "0 <= reversion_per_day <= 1")


def _shock_matrix(names: list[str], days: np.ndarray,
                  gaps: Mapping[str, Mapping[datetime.date, float]]) -> np.ndarray:
    shock = np.zeros((len(days), len(names)))
    for symbol, moves in gaps.items():
        j = names.index(symbol)
        for day, move in moves.items():
            if not move > -1:
                raise ValueError(f"gaps[{symbol!r}][{day}] = {move}; a move must be > -1 "
                                 "(-0.1 opens 10% lower)")
            shock[np.searchsorted(days, np.datetime64(day, "D")), j] = np.log1p(move)
    return shock


def _mean_reverting_walk(steps: np.ndarray, level: float, reversion: float) -> None:
    """In place, steps[t] becomes x[t] = x[t-1] + reversion * (level - x[t-1]) + steps[t],
    from x[-1] = level. The recursion runs over days, all symbols at once (microseconds a day).
    """
    keep = 1.0 - reversion
    x = np.full(steps.shape[1], level)
    for t in range(steps.shape[0]):
        x = level + keep * (x - level) + steps[t]
        steps[t] = x


def _split_factors(names: list[str], days: np.ndarray, splits: Sequence[Split]) -> np.ndarray:
    """Product of the ratios of each symbol's splits with ex_date <= day, shape (days, symbols)."""
    factor = np.ones((len(days), len(names)))
    for split in splits:
        on_or_after = days >= np.datetime64(split.ex_date, "D")
        factor[on_or_after, names.index(split.symbol)] *= split.ratio
    return factor


def _to_tick(prices: np.ndarray) -> None:
    """Round in place to Alpaca's minimum increments: $0.01 at or above $1.00, $0.0001 below
    (never below $0.0001, so prices stay positive)."""
    below_a_dollar = prices < 1.0
    if below_a_dollar.any():
        prices[below_a_dollar] = np.maximum(np.round(prices[below_a_dollar], 4), 1e-4)
        prices[~below_a_dollar] = np.round(prices[~below_a_dollar], 2)
    else:
        np.round(prices, 2, out=prices)
