"""Daily bars of the universe as arrays over NYSE sessions, the backtester's only view of data.

Rows are sessions (from `market_calendar`, never the data's own days: a session on which a
symbol has no bar is a NaN row, exactly as the bot finds a missing bar), columns are symbols in
sorted order (the order the bot evaluates them in). Prices are RAW, as traded; the split levels
let the z-score window be adjusted "as of" each decision day the way the exchange serves bars.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backtester.dividends import dividend_levels, dividend_panel, pay_sessions
from market_calendar import NEW_YORK, MarketCalendar, Session
from simbroker.market_data import FIELDS, MarketData, Split
from simbroker.price_model import path_keys

_EPOCH = datetime.date(1970, 1, 1)


@dataclass(frozen=True)
class Panels:
    """Bars of `symbols` on `sessions`; arrays have shape (len(sessions), len(symbols)).

    The first `warmup` sessions only feed the z-score window of the first decision day.
    `split_level[t, j]` is the product of the ratios of symbol j's splits effective on or
    before session t (None when no symbol of the universe splits in the data).
    """

    symbols: tuple[str, ...]
    sessions: tuple[Session, ...]
    warmup: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    split_level: np.ndarray | None
    splits: dict[int, tuple[Split, ...]] = field(default_factory=dict)  # session index -> splits
    # Each bar's intraday path (price_model): its key, and its bridge scale (NaN for a bar
    # with a real range). None: computed from the symbols and sessions on first use.
    key: np.ndarray | None = None
    scale: np.ndarray | None = None
    # Cash dividends per share going ex at each session (backtester/dividends.py); None: none.
    dividend: np.ndarray | None = None
    # Session whose open pays each `dividend` cell (its pay date's; None: all at the ex-date).
    dividend_pay: np.ndarray | None = None
    # The exchange's dividend adjustment of served bars as a level per session (None: none).
    dividend_level: np.ndarray | None = None

    def path(self, t, j=slice(None)) -> dict[str, np.ndarray]:
        """The `key` and `scale` keywords of price_model for the bars at [t, j]."""
        assert self.key is not None and self.scale is not None
        return {"key": self.key[t, j], "scale": self.scale[t, j]}

    @property
    def n_days(self) -> int:
        """Decision days (sessions after the warm-up)."""
        return len(self.sessions) - self.warmup

    def days(self) -> list[datetime.date]:
        """The decision days."""
        return [s.day for s in self.sessions[self.warmup:]]


@dataclass(frozen=True)
class Clock:
    """When the bot runs on each session, as the exchange's clock measures it.

    `noon_us` is noon New York minus the open in whole microseconds and `length_s` the
    session's length in seconds, so that `fraction(t, k)` reproduces `Session.fraction` of
    noon plus k microseconds bit for bit (the exchange stamps the k-th order of a run k
    microseconds after the run's clock).
    """

    noon_us: np.ndarray
    length_s: np.ndarray
    ordinal: np.ndarray  # date.toordinal() of each session, for holding periods in days

    def fraction(self, t: int | slice, k: np.ndarray | int = 0) -> np.ndarray:
        # Session.fraction: timedelta.total_seconds() (exact microseconds / 1e6) / length.
        return np.clip((self.noon_us[t] + np.asarray(k)) / 1e6 / self.length_s[t], 0.0, 1.0)


def session_clock(sessions: Sequence[Session]) -> Clock:
    """The clock of `sessions`: `noon_us` is `new_york_noon(day) - open` in microseconds,
    taken as noon minus the open on New York's wall clock (the same: a session's open and
    noon have one UTC offset, daylight saving changing at 2 a.m.)."""
    local = [s.open.astimezone(NEW_YORK) for s in sessions]
    noon = np.array([((12 - o.hour) * 3_600 - o.minute * 60 - o.second) * 1_000_000
                     - o.microsecond for o in local], dtype=np.int64)
    length = np.array([(s.close - s.open).total_seconds() for s in sessions], dtype=float)
    ordinal = np.array([s.day.toordinal() for s in sessions], dtype=np.int64)
    return Clock(noon, length, ordinal)


def build_panels(market: MarketData, symbols: Sequence[str], *, first_day: datetime.date,
                 last_day: datetime.date, window: int, calendar: MarketCalendar) -> Panels:
    """Raw OHLC of `symbols` on the sessions first_day..last_day plus the window - 1 sessions
    before them. Raises ValueError when the range holds no session."""
    decision = calendar.sessions_between(first_day, last_day)
    if not decision:
        raise ValueError(f"no NYSE session between {first_day} and {last_day}; pick a range "
                         "that contains trading days")
    warm = calendar.sessions_before(decision[0].day, window - 1)
    sessions = (*warm, *decision)
    numbers = np.array([(s.day - _EPOCH).days for s in sessions], dtype=np.int64)
    symbols = tuple(sorted(symbols))
    arrays = {f: _session_panel(market, f, symbols, sessions, numbers) for f in FIELDS[:4]}
    return Panels(symbols=symbols, sessions=sessions, warmup=len(warm),
                  split_level=_split_levels(market, symbols, numbers),
                  splits=_split_events(market, symbols, sessions),
                  key=path_keys(symbols, np.array([s.day.toordinal() for s in sessions])),
                  scale=_scale_panel(market, symbols, numbers),
                  dividend=dividend_panel(market, symbols, numbers),
                  dividend_pay=pay_sessions(market, symbols, numbers),
                  dividend_level=dividend_levels(market, symbols, numbers), **arrays)


def _scale_panel(market: MarketData, symbols: tuple[str, ...],
                 numbers: np.ndarray) -> np.ndarray:
    """Bridge scales of closes-only symbols, from the same series the exchange computes them
    on (so the same bits); NaN for bars with a real range and for missing bars."""
    out = np.full((len(numbers), len(symbols)), np.nan)
    for j, symbol in enumerate(symbols):
        found = market.bridge_scales(symbol)
        if found is None:
            continue
        days, scales = found
        at = np.searchsorted(days, numbers)
        hit = (at < len(days)) & (days[np.minimum(at, len(days) - 1)] == numbers)
        out[hit, j] = scales[at[hit]]
    return out


def _session_panel(market: MarketData, name: str, symbols: tuple[str, ...],
                   sessions: tuple[Session, ...], numbers: np.ndarray) -> np.ndarray:
    data_days, table = market.panel_values(name, sessions[0].day, sessions[-1].day,
                                           adjustment="raw")
    column = {symbol: j for j, symbol in enumerate(market.symbols)}
    take = np.array([column.get(symbol, -1) for symbol in symbols], dtype=np.int64)
    # Symbol by symbol as rows of the transpose (each a contiguous copy), then seen as
    # (days, symbols); a symbol not in the data is NaN throughout.
    if np.array_equal(take, np.arange(table.shape[1])):
        values = table  # every symbol of the data, in its order: as it is
    else:
        by_symbol = table.T[np.maximum(take, 0)]
        by_symbol[take < 0] = np.nan
        values = by_symbol.T
    rows = np.searchsorted(numbers, data_days)
    on_session = (rows < len(numbers)) & (numbers[np.minimum(rows, len(numbers) - 1)]
                                          == data_days)
    out = np.full((len(numbers), len(symbols)), np.nan)
    out[rows[on_session]] = values[on_session]  # bars on non-session days never trade
    return out


def _split_levels(market: MarketData, symbols: tuple[str, ...],
                  numbers: np.ndarray) -> np.ndarray | None:
    """Cumulative split ratios per session, built like MarketData's own split table so that
    level[D] / level[b] is the very factor the exchange divides bar b by as of day D."""
    level = None
    for j, symbol in enumerate(symbols):
        own = market.splits(symbol)
        if not own:
            continue
        if level is None:
            level = np.ones((len(numbers), len(symbols)))
        ex_days = np.array([(s.ex_date - _EPOCH).days for s in own], dtype=np.int64)
        cumulative = np.r_[1.0, np.cumprod([s.ratio for s in own])]
        level[:, j] = cumulative[np.searchsorted(ex_days, numbers, side="right")]
    return level


def _split_events(market: MarketData, symbols: tuple[str, ...],
                  sessions: tuple[Session, ...]) -> dict[int, tuple[Split, ...]]:
    index = {s.day: t for t, s in enumerate(sessions)}
    events: dict[int, list[Split]] = {}
    for split in market.splits():
        if split.symbol in symbols and split.ex_date in index:
            events.setdefault(index[split.ex_date], []).append(split)
    return {t: tuple(found) for t, found in events.items()}

