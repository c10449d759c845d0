"""The backtest: the live bot's daily run, replayed on every session of a date range.

Each decision day D, at noon New York (what `trading_bot._daily_run` does against the broker):

1. yesterday's orders have filled or expired (their fate was settled by the fill model when
   they were placed, see step 5), so the account is read: equity, cash and buying power from
   `simbroker.margin` with positions marked at the noon price (as the exchange marks them);
2. each symbol gets the bot's z-score (signals.py), or none without a full window or a bar;
3. `risk.entry_allowance` decides how many entries the run may make;
4. exits first: `exit_codes` for every held symbol the bot can price, one limit DAY order per
   exit at `limit_prices(price)`;
5. then entries: `entry_codes` finds the candidates among the symbols not held, and
   `plan_entry_arrays` (what the bot's `plan_entries` wraps) sizes and funds them, with the
   account of step 1;
6. the run's orders fill or expire by `price_model.limit_fill` between their submission and
   the close, in time order, each fill moving cash by qty * price rounded to whole cents as
   the exchange books it; exits that fill become trade rows;
7. at the close, the account's costs (borrow on the shorts held, the day's SEC and FINRA
   fees, interest) come out of cash as the exchange takes them (backtester/costs.py), so
   the next run's account is net of them.

The equity curve marks every position at the close. Nothing looks ahead: day D sees closes of
sessions before D and D's noon price only; the rest of D's bar only decides fills after noon.

That day loop (`_Run`) is the reference. `run_backtest` gets the same answer faster where it
can, as per-symbol timelines (backtester/timeline.py), and runs the day loop from the first
run whose entries could depend on the account; `Result.engine` says which happened.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from backtester.benchmark import (
    SHIPPED_INDEX,
    MarketIndex,
    buy_and_hold,
    load_index,
    market_value,
)
from backtester.costs import Charges, Costs, Ledger, costs_of, days_to_next_session
from backtester.execution import (
    ENTRY,
    EXIT,
    STOP,
    STOP_CODE,
    Execution,
    OrderLog,
    fill_other,
    shortfall_bps,
)
from backtester.panels import Clock, Panels, build_panels, session_clock
from backtester.signals import chunk_days, signal_grid, wire_price
from backtester.timeline import (
    Binds,
    Grid,
    Prefix,
    build_grid,
    run_timelines,
)
from config import Config
from market_calendar import MarketCalendar, Session, nyse
from order_types import OrderKind, build_order, entry_prices
from risk import RiskView, entry_allowance
from signal_generator import (
    ENTER_LONG,
    EXIT_CODES,
    NO_ENTRY,
    NO_EXIT,
    EntryOrders,
    Thresholds,
    entry_codes,
    entry_orders,
    exit_codes,
    order_qtys,
    plan_entry_arrays,
)
from simbroker import margin
from simbroker.book import Book
from simbroker.costs import CostRates
from simbroker.market_data import MarketData
from simbroker.price_model import limit_fill, quote
from simbroker.records import ExchangeConfig, Position

_EXCHANGE = ExchangeConfig()
# Entry kinds sized at the bot's limit for the current price (order_types.entry_prices: None).
_NO_BID = frozenset({OrderKind.LIMIT, OrderKind.LIMIT_ON_CLOSE})
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
    costs: CostRates = CostRates()  # borrow, SEC and FINRA fees, cash interest (simbroker/costs)
    risk_free_rate: float = 0.0  # a year, for the Sharpe ratio; stated in the statistics
    # The market benchmark (backtester/benchmark.py): the shipped S&P 500 index, a file of
    # date,close, a symbol's closes (benchmark.resolve), or None for none.
    benchmark: str | MarketIndex | None = SHIPPED_INDEX

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
            (math.isfinite(self.risk_free_rate) and -1 < self.risk_free_rate < 1,
             f"risk_free_rate={self.risk_free_rate}: give a yearly rate, e.g. 0.04"),
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
    # How it was computed: "timelines", or "day loop" and why (see backtester.timeline).
    engine: str = "timelines"
    # The account costs charged (backtester/costs.py); equity and cash are net of them.
    costs: Costs | None = None
    charges: Charges | None = field(default=None, repr=False)  # as charged at each close
    # Equal-weight buy-and-hold of the universe at each close (backtester/benchmark.py).
    benchmark: np.ndarray | None = None
    # The same cash in the market benchmark (Settings.benchmark) at each close; None when it
    # does not cover the days.
    market: np.ndarray | None = None
    market_name: str | None = None
    orders: OrderLog = field(default_factory=OrderLog.empty)  # every order placed
    # Whether a forked helper process computed half of the signals' columns (and, given enough
    # fills, half of the fills' prices and times): the same results as without.
    helper: bool = False

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
    calendar = calendar or nyse(market.first_day, market.last_day)
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
    gap = days_to_next_session(panels, calendar)
    return finished(_run(panels, config, settings, gap), panels)


def finished(result: Result, panels: Panels) -> Result:
    """`result` with its account costs summed up (backtester/costs.py; its equity and cash
    are already net of them, charged at each close, and include the cash dividends booked at
    each open) and its benchmarks (backtester/benchmark.py)."""
    assert result.charges is not None, "every run charges its costs"
    costs = costs_of(result.charges, result.trades, panels, result.equity)
    spec = result.settings.benchmark
    index = load_index(spec) if isinstance(spec, str) else spec
    market = None if index is None else market_value(index, panels.days(),
                                                     result.settings.starting_cash)
    return replace(result, costs=costs,
                   benchmark=buy_and_hold(panels, result.settings.starting_cash), market=market,
                   market_name=index.name if market is not None else None)


def _run(panels: Panels, config: Config, settings: Settings, gap: np.ndarray) -> Result:
    window = config.z_score_window
    clock = session_clock(panels.sessions)
    signals, helped = signal_grid(panels, clock, window=window,
                                  thresholds=Thresholds.from_config(config),
                                  spread_bps=settings.spread_bps)
    grid = build_grid(panels, clock, signals, spread_bps=settings.spread_bps)
    return replace(_outcome(panels, clock, config, settings, grid, gap), helper=helped)


def _outcome(panels: Panels, clock: Clock, config: Config, settings: Settings, grid: Grid,
             gap: np.ndarray) -> Result:
    """The backtest on `grid`: by the timelines, or the day loop from where they bind."""
    day_loop = _Run(panels, clock, config, settings, grid, gap)
    try:
        outcome = run_timelines(
            panels, clock, config, grid, day_loop.entry, starting_cash=settings.starting_cash,
            spread_bps=settings.spread_bps, commission_usd=settings.commission_usd,
            slippage_bps=settings.slippage_bps, costs=settings.costs, gap=gap)
    except Binds as why:
        # Exact up to the first run the account could bind: the day loop carries on there.
        prefix = why.prefix if why.prefix is not None and why.prefix.day else None
        engine = f"day loop: {why}"
        if prefix is None:
            return day_loop.run(engine=engine)
        day_loop.resume(prefix)
        return day_loop.run(prefix=prefix, engine=f"timelines to "
                            f"{panels.days()[prefix.day - 1]}, then {engine}")
    trades = Trades(**outcome.trades)
    return Result(config=config, settings=settings, symbols=panels.symbols,
                  sessions=panels.sessions[panels.warmup:], equity=outcome.equity,
                  cash=outcome.cash, long_value=outcome.long_value,
                  short_value=outcome.short_value, positions=outcome.positions,
                  trades=trades, prices=grid.price, z=grid.z,
                  clock=_decision_clock(clock, panels.warmup), engine="timelines",
                  orders=outcome.orders, charges=outcome.charges)


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


class _Orders(NamedTuple):
    """Orders of one run for one purpose (exits or entries), in submission order, as
    `order_types.build_order` makes them: a limit (NaN for a market order), whether it is a
    market order and whether an on-close one."""

    symbol: np.ndarray
    is_buy: np.ndarray
    qty: np.ndarray
    limit: np.ndarray
    z: np.ndarray
    reason: np.ndarray  # EXIT_* code, 0 for an entry
    market: np.ndarray
    on_close: np.ndarray
    purpose: np.ndarray  # backtester.execution ENTRY, EXIT or STOP


class _Opened(NamedTuple):
    """A position's entry fill, as its trade row will show it (see `Trades`)."""

    session: int
    k: int
    fraction: float
    price: float
    z: float
    order: int


@dataclass(frozen=True)
class _Chunk:
    """Rows first..first + len - 1 of the grid the timelines ran on (`timeline.Grid`: the
    signals and the exchange's marks), with what only the day loop needs besides: the marks
    as the API reports them, the bot's entry orders, and each order's fill price and time."""

    first: int
    z: np.ndarray
    price: np.ndarray
    limit: np.ndarray
    in_view: np.ndarray
    z_held: np.ndarray  # held positions' z and whether they have a price (see signals)
    priced: np.ndarray
    ask: np.ndarray
    bid: np.ndarray
    entry_limit: np.ndarray  # the price entries are sized and funded at (entry_orders)
    last_close: np.ndarray
    mark: np.ndarray
    wire_mark: np.ndarray  # the mark as the API reports it (4 decimals)
    close_mark: np.ndarray
    has_signal: np.ndarray  # an entry signal: entry_codes != NO_ENTRY
    qty: np.ndarray  # the entry order's size at each cell's limit (entry_orders)

    def __len__(self) -> int:
        return len(self.z)


class _Run:
    """The day loop's state: positions as arrays over the universe, cash, order numbers.

    Every day's work is O(positions + orders), except the few array operations over the
    universe that find the entry candidates; everything that is the same whoever holds what
    (marks, limits, fills of an order at each cell's limit) is computed per chunk of days.
    """

    def __init__(self, panels: Panels, clock: Clock, config: Config, settings: Settings,
                 grid: Grid, gap: np.ndarray) -> None:
        n = len(panels.symbols)
        self.ledger = Ledger(settings.costs, gap, n)  # costs, taken from cash at each close
        self.p, self.clock, self.config, self.settings = panels, clock, config, settings
        self.grid = grid
        self.thresholds = Thresholds.from_config(config)
        self.held = np.zeros(n, dtype=bool)
        self.long = np.zeros(n, dtype=bool)
        self.qty = np.zeros(n)
        self.signed = np.zeros(n)  # qty, negative for a short: what the exchange multiplies
        self.entry_ordinal = np.zeros(n, dtype=np.int64)  # calendar day of the entry
        self.opened: dict[int, _Opened] = {}  # held symbol -> its entry, for the trade row
        # Held symbols in the order their positions opened: the exchange keeps positions in
        # a dict and sums their values in that order.
        self.book: list[int] = []
        self._book_array: np.ndarray | None = None
        self._by_symbol: np.ndarray | None = None
        self.cash = settings.starting_cash
        self.last_equity = settings.starting_cash
        self.orders = 0
        self.trades: list[tuple] = []
        self.fractionable = settings.flag("fractionable", panels.symbols)
        self.shortable = settings.flag("shortable", panels.symbols) \
            & settings.flag("easy_to_borrow", panels.symbols)
        self.index = {s: j for j, s in enumerate(panels.symbols)}
        self.execution = Execution.from_config(config)
        self.unfilled = np.zeros(n, dtype=np.int64)  # unfilled exit days since the entry
        self.logged: list[OrderLog] = []
        # The design's entries are limits at the current price, which need no bid.
        limits = None if self.execution.entry in _NO_BID else entry_prices(
            self.execution.entry, grid.z, grid.limit, self.bid(slice(None)), grid.ask,
            self.execution.offset_bps)
        limits = grid.limit if limits is None else limits
        self.entry = self.every_entry(limits)

    def every_entry(self, limits: np.ndarray) -> EntryOrders:
        """Every day's entry orders, each on its own (funding is decided day by day), as
        `entry_orders` makes them; evaluated where there is an entry signal only: every other
        cell has no order (qty and cost 0)."""
        g, shape = self.grid, self.grid.z.shape
        code = entry_codes(g.z, self.thresholds)
        cells = np.nonzero(code != NO_ENTRY)
        fractionable = np.broadcast_to(self.fractionable & self.execution.entry_fractional,
                                       shape)[cells]
        size = self.config.position_size_usd
        found = entry_orders(g.z[cells], g.price[cells], g.ask[cells], fractionable,
                             np.broadcast_to(self.shortable, shape)[cells], self.thresholds,
                             size_usd=size, limits=limits[cells],
                             qtys=order_qtys(size, limits[cells], code[cells] == ENTER_LONG,
                                             fractionable))
        qty, cost = np.zeros(shape), np.zeros(shape)
        reason = np.zeros(shape, dtype=found.skip_reason.dtype)
        qty[cells], cost[cells], reason[cells] = found.qty, found.cost, found.skip_reason
        return EntryOrders(code=code, limit=limits, qty=qty, cost=cost, skip_reason=reason)

    def bid(self, rows: slice) -> np.ndarray:
        """The bid the bot reads on days `rows` (the exchange's noon quote; the price where
        it has none)."""
        g = self.grid
        with np.errstate(invalid="ignore"):
            bid = quote(g.mark[rows], self.settings.spread_bps)[0]
            return np.where(bid > 0, bid, g.price[rows])

    def run(self, *, prefix: Prefix | None = None, engine: str = "day loop") -> Result:
        """Replay the runs from the first day, or from `prefix.day` after `resume`."""
        p = self.p
        days = p.n_days
        out = {k: np.empty(days) for k in ("equity", "cash", "long_value", "short_value")}
        positions = np.zeros(days, dtype=np.int64)
        first_day = 0 if prefix is None else prefix.day
        if prefix is not None:
            for name in out:
                out[name][:first_day] = getattr(prefix.outcome, name)[:first_day]
            positions[:first_day] = prefix.outcome.positions[:first_day]
        for chunk in self.chunks(first_day):
            for row in range(len(chunk)):
                d = chunk.first + row
                self.day(p.warmup + d, chunk, row)
                shorts = np.flatnonzero(self.held & ~self.long)
                self.cash = self.ledger.close(d, self.cash, shorts, self.qty[shorts],
                                              chunk.close_mark[row][shorts])
                held = self.held_in_book()
                long_value, short_value = _long_short(
                    (self.signed[held] * chunk.close_mark[row][held]).tolist())
                equity = margin.equity(self.cash, long_value, short_value)
                self.last_equity = equity
                out["equity"][d], out["cash"][d] = equity, self.cash
                out["long_value"][d], out["short_value"][d] = long_value, short_value
                positions[d] = len(held)
        return Result(config=self.config, settings=self.settings, symbols=p.symbols,
                      sessions=p.sessions[p.warmup:], positions=positions,
                      trades=self.trade_arrays(), prices=self.grid.price, z=self.grid.z,
                      clock=_decision_clock(self.clock, p.warmup), engine=engine,
                      orders=OrderLog.joined(self.logged), charges=self.ledger.charges(),
                      **out)

    def resume(self, prefix: Prefix) -> None:
        """Take over the backtest at the start of decision day `prefix.day`."""
        w = self.p.warmup
        for o in prefix.open:
            j = o.symbol
            self.held[j], self.long[j], self.qty[j] = True, o.is_long, o.qty
            self.signed[j] = o.qty if o.is_long else -o.qty
            self.entry_ordinal[j] = self.clock.ordinal[w + o.entry_day]
            self.opened[j] = _Opened(w + o.entry_day, o.k, o.fraction, o.price, o.z, o.order)
            self.book.append(j)
        self.book_changed()
        self.cash, self.orders = prefix.cash, prefix.orders
        if prefix.outcome.charges is not None:
            self.ledger.resume(prefix.outcome.charges, prefix.day)
        self.logged = [prefix.outcome.orders.before(prefix.day)]
        self.last_equity = float(prefix.outcome.equity[prefix.day - 1])
        t = prefix.outcome.trades
        columns = [t[name] + w if name in ("entry_session", "exit_session") else t[name]
                   for name in _TRADE_FIELDS]
        self.trades = [tuple(row) for row in zip(*(c.tolist() for c in columns), strict=True)]

    def chunks(self, first_day: int) -> Iterator[_Chunk]:
        """The grid's days from `first_day` on, in chunks, with the fills' prices and times
        (which only the day loop reads) computed per chunk."""
        p, g = self.p, self.grid
        size = chunk_days(len(p.symbols), self.config.z_score_window)
        for first in range(first_day, p.n_days, size):
            rows = slice(first, min(first + size, p.n_days))
            price, mark = g.price[rows], g.mark[rows]
            # Where there is a bar today the mark is the noon price, already as reported.
            wire_mark = wire_price(mark) if np.isnan(price).any() else price
            yield _Chunk(first=first, z=g.z[rows], price=price, limit=g.limit[rows],
                         in_view=g.in_view[rows], z_held=g.z_held[rows],
                         priced=g.priced[rows], ask=g.ask[rows], bid=self.bid(rows),
                         entry_limit=self.entry.limit[rows],
                         last_close=g.last_close[rows], mark=mark, wire_mark=wire_mark,
                         close_mark=g.close_mark[rows],
                         has_signal=self.entry.code[rows] != NO_ENTRY,
                         qty=self.entry.qty[rows])

    def held_in_book(self) -> np.ndarray:
        """The held symbols in book order (kept until the book changes)."""
        if self._book_array is None:
            self._book_array = np.array(self.book, dtype=np.int64)
        return self._book_array

    def held_by_symbol(self) -> np.ndarray:
        """The held symbols in symbol order, the order the bot goes through its exits."""
        if self._by_symbol is None:
            self._by_symbol = np.sort(self.held_in_book())
        return self._by_symbol

    def book_changed(self) -> None:
        self._book_array = self._by_symbol = None

    # -- one daily run ----------------------------------------------------------------------

    def day(self, t: int, c: _Chunk, row: int) -> None:
        for split in self.p.splits.get(t, ()):
            self.apply_split(split, c.last_close[row])
        held = self.held_in_book()
        if self.p.dividend is not None and (len(held) or self.ledger.owed):
            # paid at the open, after splits (or owed until the pay date's open)
            pay = None if self.p.dividend_pay is None \
                else self.p.dividend_pay[t, held] - self.p.warmup
            self.cash = self.ledger.open_dividends(t - self.p.warmup, self.cash,
                                                   self.signed[held], self.p.dividend[t, held],
                                                   pay)
        # The exchange marks positions at the current price.
        long_value, short_value = _long_short(
            (self.signed[held] * c.mark[row][held]).tolist())
        equity = margin.equity(self.cash, long_value, short_value)
        exits = self.exits(t, c, row)
        entries = self.entries(t, c, row, equity, long_value, short_value)
        if exits is not None or entries is not None:
            self.fill(t, c, row, exits, entries)

    def risk_view(self, held: np.ndarray, wire_marks: np.ndarray, equity: float) -> RiskView:
        # What trading_bot.risk_view reads from the broker: positions' qty times their
        # current price, which the API reports to 4 decimals; summed in book order.
        gross = 0.0
        for value in (self.qty[held] * wire_marks).tolist():
            gross += value
        return RiskView(open_positions=len(held), gross_exposure_usd=gross,
                        equity_usd=_reported(equity), last_equity_usd=_reported(self.last_equity),
                        kill_switch=False)

    def exits(self, t: int, c: _Chunk, row: int) -> _Orders | None:
        """The exits to place, by symbol, at the bot's limit for the current price."""
        held = self.held_by_symbol()
        held = held[c.priced[row][held]]  # gaps in the window: managed from the closes it has
        if not len(held):
            return None
        today = self.clock.ordinal[t]
        entered = self.entry_ordinal[held]
        z = c.z_held[row][held]
        codes = exit_codes(self.long[held], z, today - entered, entered == today,
                           self.thresholds)
        chosen = (codes != NO_EXIT).nonzero()[0]
        if not len(chosen):
            return None
        j, reason = held[chosen], codes[chosen]
        kinds = [self.execution.exit_kind(code == STOP_CODE, unfilled) for code, unfilled
                 in zip(reason.tolist(), self.unfilled[j].tolist(), strict=True)]
        return self.built(t, c, row, j, ~self.long[j], self.qty[j], z[chosen], reason, kinds,
                          np.where(reason == STOP_CODE, STOP, EXIT))

    def built(self, t: int, c: _Chunk, row: int, j: np.ndarray, is_buy: np.ndarray,
              qty: np.ndarray, z: np.ndarray, reason: np.ndarray, kinds: list,
              purpose: np.ndarray) -> _Orders:
        """The orders of `kinds` for symbols `j`, as the bot's `build_order` makes them."""
        limit, n = c.limit[row][j], len(j)
        market, on_close = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        if not self.execution.is_design:
            s = self.p.sessions[t]
            now = s.open + datetime.timedelta(microseconds=int(self.clock.noon_us[t]))
            limit = limit.copy()
            for i, kind in enumerate(kinds):
                spec = build_order(kind, is_buy=bool(is_buy[i]), qty=float(qty[i]),
                                   limit=float(limit[i]), bid=float(c.bid[row][j[i]]),
                                   ask=float(c.ask[row][j[i]]),
                                   offset_bps=self.execution.offset_bps, now=now,
                                   session_close=s.close)
                limit[i] = math.nan if spec.limit_price is None else spec.limit_price
                market[i], on_close[i] = spec.type == "market", spec.time_in_force == "cls"
        return _Orders(symbol=j, is_buy=is_buy, qty=qty, limit=limit, z=z, reason=reason,
                       market=market, on_close=on_close, purpose=purpose)

    def entries(self, t: int, c: _Chunk, row: int, equity: float, long_value: float,
                short_value: float) -> _Orders | None:
        # Only symbols with an entry signal (entry_codes, evaluated with the chunk) can be
        # planned; plan_entry_arrays funds them strongest first with ties in the given order,
        # so leaving the others out changes nothing.
        candidates = (c.has_signal[row] & ~self.held).nonzero()[0]
        if not len(candidates):
            return None
        held = self.held_in_book()
        allowance = entry_allowance(self.config,
                                    self.risk_view(held, c.wire_mark[row][held], equity))
        if allowance.blocked:
            return None
        # The account as the API reports it: decimal strings with 4 places.
        cash_usd = _reported(margin.non_marginable_buying_power(self.cash))
        power_usd = _reported(margin.buying_power(self.cash, long_value, short_value))
        z = c.z[row][candidates]
        plan = plan_entry_arrays(
            z, c.price[row][candidates], c.ask[row][candidates],
            self.fractionable[candidates],
            self.shortable[candidates] & margin.shorting_enabled(equity), self.thresholds,
            size_usd=self.config.position_size_usd, cash_usd=cash_usd,
            buying_power_usd=power_usd, max_entries=allowance.max_entries,
            limits=c.entry_limit[row][candidates], qtys=c.qty[row][candidates])
        if not len(plan.accepted):
            return None
        n = len(plan.accepted)
        return self.built(t, c, row, candidates[plan.accepted], plan.is_long, plan.qty,
                          z[plan.accepted], np.zeros(n, dtype=np.int64),
                          [self.execution.entry] * n, np.full(n, ENTRY))

    # -- fills ------------------------------------------------------------------------------

    def fill(self, t: int, c: _Chunk, row: int, exits: _Orders | None,
             entries: _Orders | None) -> None:
        """Settle the run's orders, exits then entries in submission order: each fills by
        the model between noon and the close, or expires at the close (DAY orders)."""
        orders = _submitted(exits, entries)
        filled, price, when = self.fill_model(t, c, row, orders)
        done = filled.nonzero()[0]
        n_exits = 0 if exits is None else len(exits.symbol)
        if len(done):
            slip = self.settings.slippage_bps / 10_000.0
            if slip:
                price = np.where(orders.is_buy, price * (1.0 + slip), price * (1.0 - slip))
            self.book_fills(t, orders, done, price, when, n_exits=n_exits)
        unfilled_exits = orders.symbol[:n_exits][~filled[:n_exits]]
        self.unfilled[unfilled_exits] += 1
        cost = shortfall_bps(orders.is_buy, price, c.price[row][orders.symbol])
        self.logged.append(OrderLog(np.full(len(filled), t - self.p.warmup), orders.purpose,
                                    filled.astype(bool), np.where(filled, cost, np.nan)))
        self.orders += len(orders.symbol)

    def fill_model(self, t: int, c: _Chunk, row: int,
                   orders: _Orders) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`price_model.limit_fill` of the run's limit orders (a handful: evaluated for them
        alone, not for every cell); market and on-close orders by the exchange's rules."""
        p, j = self.p, orders.symbol
        other = orders.market | orders.on_close
        filled = np.zeros(len(j), dtype=bool)
        price, when = np.full(len(j), np.nan), np.full(len(j), np.nan)
        limits = np.flatnonzero(~other)
        if len(limits):
            m = j[limits]
            filled[limits], price[limits], when[limits] = limit_fill(
                p.open[t, m], p.high[t, m], p.low[t, m], p.close[t, m],
                is_buy=orders.is_buy[limits], limit=orders.limit[limits],
                start=self.clock.fraction(t), end=1.0, spread_bps=self.settings.spread_bps,
                **p.path(t, m))
        if other.any():  # market and on-close orders, by the exchange's rules
            fill_other(orders.market, orders.on_close, orders.is_buy, orders.limit,
                       c.mark[row][j], p.close[t, j], float(self.clock.fraction(t)),
                       self.settings.spread_bps, filled, price, when)
        return filled, price, when

    def book_fills(self, t: int, orders: _Orders, done: np.ndarray, price: np.ndarray,
                   when: np.ndarray, *, n_exits: int) -> None:
        """Book the filled orders (indices `done`; the first `n_exits` orders are exits) in
        the order the exchange fills them: first touch first, ties in order of submission."""
        in_fill_order = done[np.argsort(when[done], kind="stable")].tolist()
        symbol, is_buy, qty = orders.symbol.tolist(), orders.is_buy.tolist(), orders.qty.tolist()
        z, reason = orders.z.tolist(), orders.reason.tolist()
        when, price = when.tolist(), price.tolist()
        commission, today = self.settings.commission_usd, self.clock.ordinal[t]
        for i in in_fill_order:
            j, q = symbol[i], qty[i]
            signed = q if is_buy[i] else -q
            # Trades settle in whole cents (simbroker.book.Book.apply_fill).
            self.cash = round(self.cash - signed * price[i] - commission, 2)
            if not is_buy[i]:
                self.ledger.sold(j, q * price[i], q)
            order = self.orders + 1 + i  # numbered in order of submission
            if i < n_exits:
                self.trades.append((j, bool(self.long[j]), q, *self.opened.pop(j),
                                    t, i, when[i], price[i], reason[i], z[i], order))
                self.held[j] = False
                self.book.remove(j)
            else:
                self.opened[j] = _Opened(t, i, when[i], price[i], z[i], order)
                self.book.append(j)
                self.held[j], self.long[j], self.qty[j], self.signed[j] = True, is_buy[i], q, signed
                self.entry_ordinal[j] = today
                self.unfilled[j] = 0
        self.book_changed()

    def apply_split(self, split, last_close: np.ndarray) -> None:
        """A split at the open: the exchange's own book adjusts the position (qty * ratio,
        price / ratio, cash in lieu of a fractional share), and so does the backtest."""
        j = self.index[split.symbol]
        if not self.held[j]:
            return
        opened = self.opened[j]
        book = Book(cash=self.cash, positions={split.symbol: Position(
            split.symbol, float(self.signed[j]), opened.price)})
        previous = last_close[j] / split.ratio
        book.apply_split(split, None if math.isnan(previous) else float(previous))
        self.cash = book.cash
        after = book.positions.get(split.symbol)
        if after is None:
            self.held[j] = False
            del self.opened[j]
            self.book.remove(j)
            self.book_changed()
            return
        self.qty[j] = abs(after.qty)
        self.opened[j] = opened._replace(price=after.avg_entry_price)
        self.signed[j] = self.qty[j] if self.long[j] else -self.qty[j]

    def trade_arrays(self) -> Trades:
        columns = list(zip(*self.trades, strict=True)) if self.trades else [()] * 16
        kinds = (np.int64, bool, float, np.int64, np.int64, float, float, float, np.int64,
                 np.int64, np.int64, float, float, np.int64, float, np.int64)
        arrays = {name: np.array(col, dtype=kind) for name, col, kind
                  in zip(_TRADE_FIELDS, columns, kinds, strict=True)}
        for name in ("entry_session", "exit_session"):  # panel rows -> decision days
            arrays[name] -= self.p.warmup
        return Trades(**arrays)


def _submitted(exits: _Orders | None, entries: _Orders | None) -> _Orders:
    if entries is None:
        return exits
    if exits is None:
        return entries
    return _Orders(*map(np.concatenate, zip(exits, entries, strict=True)))


def _long_short(values: list[float]) -> tuple[float, float]:
    """Long and (positive) short market value of signed position values, each summed left to
    right as the exchange sums them (simbroker.account.balances)."""
    long_value = short_value = 0.0
    for value in values:
        if value >= 0:
            long_value += value
        else:
            short_value += value
    return long_value, -short_value


def _reported(value: float) -> float:
    """A dollar amount as the API carries it: a decimal string with 4 places (wire.decimal)."""
    return float(f"{value:.4f}")


def _decision_clock(clock: Clock, warmup: int) -> Clock:
    return Clock(clock.noon_us[warmup:], clock.length_s[warmup:], clock.ordinal[warmup:])
