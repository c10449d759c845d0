"""The backtest: the live bot's daily run, replayed on every session of a date range.

Each decision day D, at noon New York (what `trading_bot._daily_run` does against the broker):

1. yesterday's orders have filled or expired (their fate was settled by the fill model when
   they were placed, see step 5), so the account is read: equity, cash and buying power from
   `simbroker.margin` with positions marked at the noon price (as the exchange marks them);
2. each symbol gets the bot's z-score (signals.py), or none without a full window or a bar;
3. `risk.entry_allowance` decides how many entries the run may make;
4. exits first: `exit_codes` for every held symbol the bot can price, one limit DAY order per
   exit at `limit_price(price)`;
5. then entries: `entry_codes` finds the candidates among the symbols not held, and
   `plan_entries` sizes and funds them, with the account of step 1;
6. the run's orders fill or expire by `price_model.limit_fill` between their submission and
   the close, in time order, each fill moving cash by qty * price rounded to whole cents as
   the exchange books it; exits that fill become trade rows.

The equity curve marks every position at the close. Nothing looks ahead: day D sees closes of
sessions before D and D's noon price only; the rest of D's bar only decides fills after noon.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backtester.panels import Clock, Panels, build_panels, session_clock
from backtester.signals import DaySignals, Fills, iter_signals, wire_price
from config import Config
from market_calendar import MarketCalendar, Session, nyse
from risk import RiskView, entry_allowance
from signal_generator import (
    EXIT_CODES,
    NO_ENTRY,
    NO_EXIT,
    EntryCandidate,
    EntryPlan,
    Thresholds,
    exit_codes,
    limit_price,
    plan_entries,
)
from simbroker import margin
from simbroker.book import Book
from simbroker.market_data import MarketData
from simbroker.price_model import limit_fill, price_at
from simbroker.records import ExchangeConfig, Position

_EXCHANGE = ExchangeConfig()
REASON_NAMES = ("", *(str(EXIT_CODES[c]) for c in sorted(EXIT_CODES)))


@dataclass(frozen=True)
class Settings:
    """The market the strategy trades in: money, costs and the exchange's asset flags.

    Defaults are the local exchange's (`simbroker.records.ExchangeConfig`): $100,000, a 2 bps
    spread, every asset fractionable, shortable and easy to borrow. `shortable`,
    `easy_to_borrow` and `fractionable` restrict a flag to the given symbols (None: all).
    Commission is dollars per filled order; slippage worsens every fill price by that many
    basis points (both 0 at the exchange, so parity runs leave them at 0).
    """

    starting_cash: float = _EXCHANGE.starting_cash
    spread_bps: float = _EXCHANGE.spread_bps
    commission_usd: float = 0.0
    slippage_bps: float = 0.0
    shortable: frozenset[str] | None = None
    easy_to_borrow: frozenset[str] | None = None
    fractionable: frozenset[str] | None = None

    def __post_init__(self) -> None:
        checks = [
            (math.isfinite(self.starting_cash) and self.starting_cash > 0,
             f"starting_cash={self.starting_cash}: give a positive dollar amount, e.g. 100000"),
            (math.isfinite(self.spread_bps) and 0 <= self.spread_bps < 10_000,
             f"spread_bps={self.spread_bps}: give basis points in [0, 10000), e.g. 2"),
            (math.isfinite(self.commission_usd) and self.commission_usd >= 0,
             f"commission_usd={self.commission_usd}: give dollars per order, 0 or more"),
            (math.isfinite(self.slippage_bps) and 0 <= self.slippage_bps < 10_000,
             f"slippage_bps={self.slippage_bps}: give basis points in [0, 10000), e.g. 5"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("backtest settings: " + "; ".join(problems))

    def flag(self, name: str, symbols: Sequence[str]) -> np.ndarray:
        allowed = getattr(self, name)
        return np.array([allowed is None or s in allowed for s in symbols], dtype=bool)


@dataclass(frozen=True)
class Trades:
    """Completed round trips as parallel arrays, in the order their exits filled.

    Times are (session index into `Result.sessions`, order number k of that run, session
    fraction of the fill); `Result.fill_time` turns them into the exchange's timestamps.
    """

    symbol: np.ndarray  # index into Result.symbols
    is_long: np.ndarray
    qty: np.ndarray
    entry_session: np.ndarray
    entry_k: np.ndarray
    entry_fraction: np.ndarray
    entry_price: np.ndarray
    entry_z: np.ndarray
    entry_order: np.ndarray  # the backtest's order number (order ids are bt-<number>)
    exit_session: np.ndarray
    exit_k: np.ndarray
    exit_fraction: np.ndarray
    exit_price: np.ndarray
    exit_reason: np.ndarray  # EXIT_* code
    exit_z: np.ndarray
    exit_order: np.ndarray

    def __len__(self) -> int:
        return len(self.symbol)

    @property
    def pnl_usd(self) -> np.ndarray:
        sign = np.where(self.is_long, 1.0, -1.0)
        return sign * (self.exit_price - self.entry_price) * self.qty


_TRADE_FIELDS = tuple(Trades.__dataclass_fields__)


@dataclass(frozen=True)
class Result:
    """A finished backtest. Per-day arrays are aligned with `sessions` (the decision days);
    `equity` etc. are at each session's close; `prices` and `z` are what the bot saw at noon
    (NaN where it saw nothing)."""

    config: Config
    settings: Settings
    symbols: tuple[str, ...]
    sessions: tuple[Session, ...]
    equity: np.ndarray
    cash: np.ndarray
    long_value: np.ndarray
    short_value: np.ndarray
    positions: np.ndarray  # open positions at the close
    trades: Trades
    prices: np.ndarray
    z: np.ndarray
    clock: Clock = field(repr=False)

    @property
    def days(self) -> list[datetime.date]:
        return [s.day for s in self.sessions]

    def fill_time(self, session: int, k: int, fraction: float) -> datetime.datetime:
        """When the exchange stamps a fill: the k-th order of a run is submitted k
        microseconds after noon and fills then if marketable, else at the first touch."""
        s = self.sessions[session]
        live = s.open + datetime.timedelta(
            microseconds=int(self.clock.noon_us[session]) + int(k))
        if fraction == float(self.clock.fraction(session)):  # marketable at submission
            return live
        return min(max(live, s.open + (s.close - s.open) * float(fraction)), s.close)


def run_backtest(market: MarketData, config: Config, *, start: datetime.date | None = None,
                 end: datetime.date | None = None, symbols: Sequence[str] | None = None,
                 settings: Settings | None = None,
                 calendar: MarketCalendar | None = None) -> Result:
    """Backtest `config`'s strategy on `market` from `start` to `end` (sessions, inclusive).

    The universe is config.tickers that have bars in `market` (or `symbols`, which must all
    have bars). `start` defaults to the first day with a full z-score window, `end` to the
    last day of the data.
    """
    settings = settings or Settings()
    calendar = calendar or nyse()
    universe = choose_universe(market, config, symbols)
    window = config.z_score_window
    if start is None:
        start = calendar.sessions_between(market.first_day, market.last_day)[window - 1:][:1]
        start = start[0].day if start else market.first_day
    end = end or market.last_day
    if end < start:
        raise ValueError(f"end {end} is before start {start}; swap them")
    panels = build_panels(market, universe, first_day=start, last_day=end, window=window,
                          calendar=calendar)
    clock = session_clock(panels.sessions)
    chunks = iter_signals(panels, clock, window=window,
                          thresholds=Thresholds.from_config(config),
                          spread_bps=settings.spread_bps)
    return _Run(panels, clock, config, settings).run(chunks)


def choose_universe(market: MarketData, config: Config,
                    symbols: Sequence[str] | None) -> list[str]:
    if symbols:
        unknown = [s for s in symbols if s not in market]
        if unknown:
            raise ValueError(f"--symbols: {', '.join(unknown)} not in the data "
                             f"{market.name!r}; its symbols are {', '.join(market.symbols)}")
        return sorted(set(symbols))
    universe = sorted(t for t in config.tickers if t in market)
    if not universe:
        raise ValueError(f"none of the configured TICKERS is in the data {market.name!r}; "
                         f"set TICKERS or pass --symbols from {', '.join(market.symbols[:10])}")
    return universe


@dataclass(frozen=True)
class _DayOrders:
    """One run's orders in submission order (exits, then entries in funding order)."""

    symbol: np.ndarray
    is_buy: np.ndarray
    is_exit: np.ndarray
    qty: np.ndarray
    limit: np.ndarray
    z: np.ndarray
    reason: np.ndarray


class _Run:
    """The day loop's state: positions as arrays over the universe, cash, order numbers."""

    def __init__(self, panels: Panels, clock: Clock, config: Config,
                 settings: Settings) -> None:
        n = len(panels.symbols)
        self.p, self.clock, self.config, self.settings = panels, clock, config, settings
        self.thresholds = Thresholds.from_config(config)
        self.held = np.zeros(n, dtype=bool)
        self.long = np.zeros(n, dtype=bool)
        self.qty = np.zeros(n)
        self.entry_price = np.zeros(n)
        self.entry_session = np.zeros(n, dtype=np.int64)
        self.entry_k = np.zeros(n, dtype=np.int64)
        self.entry_fraction = np.zeros(n)
        self.entry_z = np.zeros(n)
        self.entry_order = np.zeros(n, dtype=np.int64)
        # Held symbols in the order their positions opened: the exchange keeps positions in
        # a dict and sums their values in that order.
        self.book: list[int] = []
        self.cash = settings.starting_cash
        self.last_equity = settings.starting_cash
        self.orders = 0
        self.trades: list[tuple] = []
        self.fractionable = settings.flag("fractionable", panels.symbols)
        self.shortable = settings.flag("shortable", panels.symbols) \
            & settings.flag("easy_to_borrow", panels.symbols)
        self.index = {s: j for j, s in enumerate(panels.symbols)}
        self.last_close = _last_close_before(panels.close)
        # At the close the exchange marks at the path's end (the close, up to rounding), or
        # the last close for a symbol without a bar today.
        at_close = price_at(panels.open, panels.high, panels.low, panels.close, 1.0)
        self.close_marks = np.where(np.isnan(at_close), self.last_close, at_close)

    def run(self, chunks) -> Result:
        p = self.p
        days, n = p.n_days, len(p.symbols)
        out = {k: np.empty(days) for k in ("equity", "cash", "long_value", "short_value")}
        positions = np.zeros(days, dtype=np.int64)
        prices = np.empty((days, n))
        zs = np.empty((days, n))
        for chunk in chunks:
            prices[chunk.first:chunk.first + len(chunk.z)] = chunk.price
            zs[chunk.first:chunk.first + len(chunk.z)] = chunk.z
            for row in range(len(chunk.z)):
                d = chunk.first + row
                self.day(p.warmup + d, chunk, row)
                held = np.array(self.book, dtype=np.int64)
                long_value, short_value = self.position_values(
                    held, self.close_marks[p.warmup + d, held])
                equity = margin.equity(self.cash, long_value, short_value)
                self.last_equity = equity
                out["equity"][d], out["cash"][d] = equity, self.cash
                out["long_value"][d], out["short_value"][d] = long_value, short_value
                positions[d] = len(held)
        return Result(config=self.config, settings=self.settings, symbols=p.symbols,
                      sessions=p.sessions[p.warmup:], positions=positions,
                      trades=self.trade_arrays(), prices=prices, z=zs,
                      clock=_decision_clock(self.clock, p.warmup), **out)

    # -- one daily run ----------------------------------------------------------------------

    def day(self, t: int, s: DaySignals, row: int) -> None:
        for split in self.p.splits.get(t, ()):
            self.apply_split(split, t)
        z, price, in_view = s.z[row], s.price[row], s.in_view[row]
        held = np.array(self.book, dtype=np.int64)
        marks = s.path_price[row, held]  # the exchange marks positions at the current price
        missing = np.isnan(marks)
        if missing.any():
            marks[missing] = self.last_close[t, held[missing]]
        long_value, short_value = self.position_values(held, marks)
        equity = margin.equity(self.cash, long_value, short_value)
        exits = self.exits(t, z, price, in_view)
        allowance = entry_allowance(self.config, self.risk_view(held, marks, equity))
        entries: list[EntryPlan] = []
        if not allowance.blocked:
            # The account as the API reports it: decimal strings with 4 places.
            cash_usd = _reported(margin.non_marginable_buying_power(self.cash))
            power_usd = _reported(margin.buying_power(self.cash, long_value, short_value))
            entries = self.entries(z, price, s.ask[row], s.entry[row],
                                   margin.shorting_enabled(equity), cash_usd, power_usd,
                                   allowance.max_entries)
        orders = _day_orders(exits, entries, self.index, self.qty, self.long)
        if len(orders.symbol):
            self.fill(t, orders, s.fills, row)

    def position_values(self, held: np.ndarray, marks: np.ndarray) -> tuple[float, float]:
        """Long and (positive) short market value of the `held` symbols (in book order) at
        `marks`, each summed left to right as the exchange sums them (simbroker.account)."""
        long_value = short_value = 0.0
        signed = np.where(self.long[held], self.qty[held], -self.qty[held])
        for value in (signed * marks).tolist():
            if value >= 0:
                long_value += value
            else:
                short_value += value
        return long_value, -short_value

    def risk_view(self, held: np.ndarray, marks: np.ndarray, equity: float) -> RiskView:
        # What trading_bot.risk_view reads from the broker: positions' qty times their
        # current price, which the API reports to 4 decimals.
        gross = 0.0
        for value in (self.qty[held] * wire_price(marks)).tolist():
            gross += value
        return RiskView(open_positions=len(held), gross_exposure_usd=gross,
                        equity_usd=_reported(equity), last_equity_usd=_reported(self.last_equity),
                        kill_switch=False)

    def exits(self, t: int, z: np.ndarray, price: np.ndarray,
              in_view: np.ndarray) -> list[tuple[int, int, float, float]]:
        """(symbol, exit code, limit, z) of the exits to place, by symbol."""
        held = np.flatnonzero(self.held & in_view)
        if not len(held):
            return []
        today = self.clock.ordinal[t]
        entered = self.clock.ordinal[self.entry_session[held]]
        codes = exit_codes(self.long[held], z[held], today - entered, entered == today,
                           self.thresholds)
        chosen = np.flatnonzero(codes != NO_EXIT)
        return [(int(held[i]), int(codes[i]), limit_price(float(price[held[i]])),
                 float(z[held[i]])) for i in chosen]

    def entries(self, z: np.ndarray, price: np.ndarray, ask: np.ndarray, entry: np.ndarray,
                shorting_enabled: bool, cash_usd: float, power_usd: float,
                max_entries: int) -> list[EntryPlan]:
        # Only symbols with an entry signal (entry_codes, evaluated with the chunk) can be
        # planned; plan_entries funds them strongest first with ties in the given order, so
        # leaving the others out changes nothing.
        chosen = np.flatnonzero((entry != NO_ENTRY) & ~self.held)
        if not len(chosen):
            return []
        # Plain Python values (tolist), as the bot's candidates hold; ask falls back to the
        # price as in data_fetcher.
        shortable = (self.shortable[chosen] & shorting_enabled).tolist()
        candidates = [
            EntryCandidate(symbol=self.p.symbols[j], z=zj, price=pj, ask=aj if aj > 0 else pj,
                           fractionable=fj, shortable=sj)
            for j, zj, pj, aj, fj, sj in zip(
                chosen.tolist(), z[chosen].tolist(), price[chosen].tolist(),
                ask[chosen].tolist(), self.fractionable[chosen].tolist(), shortable,
                strict=True)]
        plans, _ = plan_entries(candidates, self.thresholds,
                                size_usd=self.config.position_size_usd, cash_usd=cash_usd,
                                buying_power_usd=power_usd, max_entries=max_entries)
        return plans

    # -- fills ------------------------------------------------------------------------------

    def fill(self, t: int, orders: _DayOrders, cache: Fills, row: int) -> None:
        """Settle the run's orders: each fills by the model between noon and the close, or
        expires at the close (DAY orders)."""
        j, side = orders.symbol, orders.is_buy.astype(np.int64)
        filled = cache.filled[side, row, j]
        price = cache.price[side, row, j]
        when = cache.when[side, row, j]
        miss = np.flatnonzero(cache.limit[row, j] != orders.limit)
        if len(miss):  # a limit the bulk evaluation did not guess: evaluate it now
            p, m = self.p, j[miss]
            filled[miss], price[miss], when[miss] = limit_fill(
                p.open[t, m], p.high[t, m], p.low[t, m], p.close[t, m],
                is_buy=orders.is_buy[miss], limit=orders.limit[miss],
                start=self.clock.fraction(t), end=1.0, spread_bps=self.settings.spread_bps)
        slip = self.settings.slippage_bps / 10_000.0
        if slip:
            price = np.where(orders.is_buy, price * (1.0 + slip), price * (1.0 - slip))
        done = np.flatnonzero(filled)
        # The exchange fills first touch first, ties in order of submission.
        for i in done[np.lexsort((done, when[done]))]:
            self.book_fill(t, int(i), orders, float(price[i]), float(when[i]))
        self.orders += len(j)

    def book_fill(self, t: int, i: int, orders: _DayOrders, price: float, when: float) -> None:
        j, qty = int(orders.symbol[i]), float(orders.qty[i])
        signed = qty if orders.is_buy[i] else -qty
        # Trades settle in whole cents (simbroker.book.Book.apply_fill).
        self.cash = round(self.cash - signed * price - self.settings.commission_usd, 2)
        order = self.orders + 1 + i  # numbered in order of submission
        if orders.is_exit[i]:
            self.trades.append((
                j, bool(self.long[j]), qty, int(self.entry_session[j]), int(self.entry_k[j]),
                float(self.entry_fraction[j]), float(self.entry_price[j]),
                float(self.entry_z[j]), int(self.entry_order[j]), t, i, when, price,
                int(orders.reason[i]), float(orders.z[i]), order))
            self.held[j] = False
            self.book.remove(j)
            return
        self.book.append(j)
        self.held[j], self.long[j], self.qty[j] = True, bool(orders.is_buy[i]), qty
        self.entry_price[j], self.entry_session[j], self.entry_k[j] = price, t, i
        self.entry_fraction[j], self.entry_z[j], self.entry_order[j] = when, orders.z[i], order

    def apply_split(self, split, t: int) -> None:
        """A split at the open: the exchange's own book adjusts the position (qty * ratio,
        price / ratio, cash in lieu of a fractional share), and so does the backtest."""
        j = self.index[split.symbol]
        if not self.held[j]:
            return
        signed = float(self.qty[j]) if self.long[j] else -float(self.qty[j])
        book = Book(cash=self.cash, positions={split.symbol: Position(
            split.symbol, signed, float(self.entry_price[j]))})
        previous = self.last_close[t, j] / split.ratio
        book.apply_split(split, None if math.isnan(previous) else float(previous))
        self.cash = book.cash
        after = book.positions.get(split.symbol)
        if after is None:
            self.held[j] = False
            self.book.remove(j)
            return
        self.qty[j], self.entry_price[j] = abs(after.qty), after.avg_entry_price

    def trade_arrays(self) -> Trades:
        columns = list(zip(*self.trades, strict=True)) if self.trades else [()] * 16
        kinds = (np.int64, bool, float, np.int64, np.int64, float, float, float, np.int64,
                 np.int64, np.int64, float, float, np.int64, float, np.int64)
        arrays = {name: np.array(col, dtype=kind) for name, col, kind
                  in zip(_TRADE_FIELDS, columns, kinds, strict=True)}
        for name in ("entry_session", "exit_session"):  # panel rows -> decision days
            arrays[name] -= self.p.warmup
        return Trades(**arrays)


def _day_orders(exits: list[tuple[int, int, float, float]], entries: list[EntryPlan],
                index: dict[str, int], qty: np.ndarray, long: np.ndarray) -> _DayOrders:
    j = [e[0] for e in exits] + [index[plan.symbol] for plan in entries]
    return _DayOrders(
        symbol=np.array(j, dtype=np.int64),
        is_buy=np.array([not long[e[0]] for e in exits] + [p.is_long for p in entries],
                        dtype=bool),
        is_exit=np.array([True] * len(exits) + [False] * len(entries), dtype=bool),
        qty=np.array([qty[e[0]] for e in exits] + [p.qty for p in entries], dtype=float),
        limit=np.array([e[2] for e in exits] + [p.limit_price for p in entries], dtype=float),
        z=np.array([e[3] for e in exits] + [p.z for p in entries], dtype=float),
        reason=np.array([e[1] for e in exits] + [0] * len(entries), dtype=np.int64))


def _reported(value: float) -> float:
    """A dollar amount as the API carries it: a decimal string with 4 places (wire.decimal)."""
    return float(f"{value:.4f}")


def _last_close_before(close: np.ndarray) -> np.ndarray:
    """For each session, every symbol's latest close strictly before it (NaN if none): the
    exchange's price for a symbol that has no bar today."""
    rows = np.where(np.isnan(close), -1, np.arange(len(close))[:, np.newaxis])
    latest = np.maximum.accumulate(rows, axis=0)
    before = np.vstack([np.full((1, close.shape[1]), -1), latest[:-1]])
    out = close[np.maximum(before, 0), np.arange(close.shape[1])]
    return np.where(before >= 0, out, np.nan)


def _decision_clock(clock: Clock, warmup: int) -> Clock:
    return Clock(clock.noon_us[warmup:], clock.length_s[warmup:], clock.ordinal[warmup:])
