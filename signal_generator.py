"""The strategy's decisions, as pure functions of data, state and the day.

No I/O, no clock: the live bot, the backtester and the tests call these same functions, so a
backtest describes this bot and not a re-implementation of it. Every function works on numpy
arrays over the universe at once (the backtester's whole day in one call) and on one symbol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum

import numpy as np

from config import Config


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class ExitReason(StrEnum):
    """Why a position is closed, in the order of precedence the design gives."""

    MAX_HOLDING = "max_holding_period"
    STOP_LOSS = "stop_loss"
    REVERSION = "mean_reversion"


# Integer codes for the vectorised exit decision; index into EXIT_CODES.
NO_EXIT, EXIT_MAX_HOLDING, EXIT_STOP_LOSS, EXIT_REVERSION = 0, 1, 2, 3
EXIT_CODES: dict[int, ExitReason] = {
    EXIT_MAX_HOLDING: ExitReason.MAX_HOLDING,
    EXIT_STOP_LOSS: ExitReason.STOP_LOSS,
    EXIT_REVERSION: ExitReason.REVERSION,
}
# Entry codes: +1 long, -1 short, 0 none.
ENTER_LONG, ENTER_SHORT, NO_ENTRY = 1, -1, 0


@dataclass(frozen=True)
class Thresholds:
    """The numbers the decisions need, taken from Config (so tests can build them directly)."""

    # Defaults are Config's own, so the two can never disagree.
    long_entry_z: float = Config.long_entry_z
    short_entry_z: float = Config.short_entry_z
    long_exit_z: float = Config.long_exit_z
    short_exit_z: float = Config.short_exit_z
    long_stop_z: float = Config.long_stop_z
    short_stop_z: float = Config.short_stop_z
    max_holding_days: int = Config.max_holding_days
    same_day_stop_loss: bool = Config.same_day_stop_loss
    allow_shorts: bool = Config.allow_shorts

    @classmethod
    def from_config(cls, c: Config) -> Thresholds:
        return cls(**{f.name: getattr(c, f.name) for f in fields(cls)})


def zscores(past_closes: np.ndarray | Sequence[np.ndarray], prices: np.ndarray) -> np.ndarray:
    """z = (price - mean) / std over the window made of the past closes plus today's price.

    `past_closes` holds the last window - 1 completed daily closes, oldest first: an array of
    shape (window - 1, *prices.shape), or a sequence of that many arrays shaped like `prices`
    (today's current price of each symbol; the backtester passes (days, symbols) arrays for
    many days at once). The standard deviation is the sample one (ddof=1). Where any value
    is missing or the deviation is zero, z is NaN: no signal, and never an old z carried
    forward.

    The arithmetic is spelled out, oldest close first, so that its result depends on the
    values alone and not on how a caller lays them out in memory (numpy's reductions sum in
    an order that depends on the layout): the bot and the backtester get the same bits.
    """
    prices = np.asarray(prices, dtype=float)
    rows = [np.asarray(row, dtype=float) for row in past_closes]
    rows.append(prices)
    if len(rows) < 2:
        return np.full(prices.shape, np.nan)
    total = rows[0] + rows[1]
    for row in rows[2:]:
        total += row
    mean = total / len(rows)
    squares = np.zeros_like(mean)
    for row in rows:
        deviation = row - mean
        deviation *= deviation
        squares += deviation
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(squares / (len(rows) - 1))
        z = (prices - mean) / std
    # A flat window has std 0 (or ~1e-15 from rounding): no deviation, no signal.
    flat = ~(std > 1e-12 * np.maximum(np.abs(mean), 1.0))
    return np.where(flat | np.isnan(std), np.nan, z)


def zscore(past_closes: list[float] | np.ndarray, price: float) -> float:
    """One symbol's z-score; NaN when undefined (see `zscores`)."""
    return float(zscores(np.asarray(past_closes, dtype=float)[:, np.newaxis],
                         np.array([price]))[0])


# A held position is managed from the closes it has: its stop-loss and reversion need a z, and
# a window with a gap (a halt, a session without an IEX trade) would otherwise give none for as
# long as the gap stays in the window (29 sessions). Rule: at least two thirds of the window's
# past closes (20 of 29 by default). Why two thirds: the sample standard deviation of n values
# has a relative standard error of about 1/sqrt(2(n - 1)), 13% for the full 30 values and 16%
# for 21; with much fewer, the z (and a stop-loss decided on it) mostly measures the gap. The
# holding limit needs no z at all. Entries keep needing the full window.
HELD_MIN_SHARE = 2 / 3


def held_min_closes(window: int) -> int:
    """How many of the window's `window - 1` past closes a held symbol's z needs."""
    return math.ceil(HELD_MIN_SHARE * (window - 1) - 1e-9)


def held_zscores(past_closes: np.ndarray | Sequence[np.ndarray], prices: np.ndarray,
                 min_closes: int) -> np.ndarray:
    """`zscores` for held positions: where a value of the window is missing (NaN), z over the
    closes it has plus today's price, when at least `min_closes` past closes are there; NaN
    otherwise. Where the window is complete, exactly the bits of `zscores`."""
    prices = np.asarray(prices, dtype=float)
    rows = [np.asarray(row, dtype=float) for row in past_closes]
    z = zscores(rows, prices)
    if not rows:
        return z
    stacked = np.stack(rows)  # (window - 1, *prices.shape)
    gaps = np.isnan(stacked).any(axis=0) & np.isfinite(prices)
    for index in zip(*np.nonzero(gaps), strict=True):
        column = stacked[(slice(None), *index)]
        have = column[~np.isnan(column)]
        if len(have) >= max(min_closes, 1):
            z[index] = zscore(have, float(prices[index]))
    return z


def exit_codes(is_long: np.ndarray, z: np.ndarray, held_days: np.ndarray,
               opened_today: np.ndarray, t: Thresholds) -> np.ndarray:
    """Exit decision per held position: NO_EXIT or an EXIT_* code.

    Precedence (the design's): max holding period, then stop-loss, then reversion to the mean.
    `held_days` counts calendar days since the entry day. A NaN z can only trigger the holding
    period. Local day-trade guard: a position opened today is not closed today, except by a
    stop-loss when `t.same_day_stop_loss` (a day trade is then the lesser evil).
    """
    is_long = np.asarray(is_long, dtype=bool)
    z = np.asarray(z, dtype=float)
    held_days = np.asarray(held_days)
    opened_today = np.asarray(opened_today, dtype=bool)
    stop = np.where(is_long, z <= t.long_stop_z, z >= t.short_stop_z)  # NaN: False
    revert = np.where(is_long, z >= t.long_exit_z, z <= t.short_exit_z)
    expired = held_days >= t.max_holding_days
    codes = np.where(expired, EXIT_MAX_HOLDING,
                     np.where(stop, EXIT_STOP_LOSS, np.where(revert, EXIT_REVERSION, NO_EXIT)))
    blocked = opened_today & ~((codes == EXIT_STOP_LOSS) & t.same_day_stop_loss)
    return np.where(blocked, NO_EXIT, codes)


def exit_reason(side: Side, z: float, held_days: int, opened_today: bool,
                t: Thresholds) -> ExitReason | None:
    code = int(exit_codes(np.array([side is Side.LONG]), np.array([z]), np.array([held_days]),
                          np.array([opened_today]), t)[0])
    return EXIT_CODES.get(code)


def entry_codes(z: np.ndarray, t: Thresholds) -> np.ndarray:
    """ENTER_LONG where z < long entry, ENTER_SHORT where z > short entry, else NO_ENTRY."""
    z = np.asarray(z, dtype=float)
    long_ = z < t.long_entry_z  # NaN compares False: no signal
    short = (z > t.short_entry_z) & t.allow_shorts
    return np.where(long_, ENTER_LONG, np.where(short, ENTER_SHORT, NO_ENTRY))


def entry_priority_key(z: np.ndarray) -> np.ndarray:
    """The key entry candidates are funded by, smallest first: -|z|, the strongest signal
    first."""
    return -np.abs(np.asarray(z, dtype=float))


def entry_priority(z: np.ndarray) -> np.ndarray:
    """Order in which entry candidates are funded: by `entry_priority_key`; ties keep the
    given (alphabetical) order. Returns indices."""
    return np.argsort(entry_priority_key(z), kind="stable")


def limit_price(price: float) -> float:
    """The current price rounded to Alpaca's tick: $0.01 at or above $1, $0.0001 below
    (Alpaca rejects sub-penny limit prices, per SEC Rule 612). Rounded half up."""
    tick = Decimal("0.01") if price >= 1.0 else Decimal("0.0001")
    return float(Decimal(repr(price)).quantize(tick, rounding=ROUND_HALF_UP))


def order_qty(size_usd: float, price: float, *, is_long: bool, fractionable: bool) -> float:
    """Shares that `size_usd` buys at `price`; 0.0 when the order must be skipped.

    Longs in fractionable assets get fractional shares, truncated to Alpaca's 9 decimals (so
    the cost never exceeds the size). Shorts, and assets that are not fractionable, need
    whole shares: Alpaca rejects fractional short sales.
    """
    if not (price > 0 and size_usd > 0):
        return 0.0
    shares = Decimal(repr(size_usd)) / Decimal(repr(price))
    if is_long and fractionable:
        return float(shares.quantize(Decimal("1e-9"), rounding=ROUND_DOWN))
    return float(math.floor(shares))


def short_charge(qty: float, limit: float, ask: float) -> float:
    """Buying power Alpaca holds for a short sale: qty times the greater of the limit price
    and 3% above the current ask (Alpaca, "Short selling" buying-power check)."""
    return qty * max(limit, 1.03 * ask)


def is_day_trade_blocked(*, reports_pdt: bool, daytrade_count: int, pattern_day_trader: bool,
                         equity_usd: float) -> bool:
    """Whether a new day trade could be refused under FINRA's pattern-day-trader rule.

    Only for accounts that still report the PDT fields: a 4th day trade within 5 business
    days on a margin account under $25,000 equity is refused (FINRA Rule 4210(f)(8)(B)).
    Alpaca stopped reporting the fields on 2026-07-06 after FINRA retired the rule.
    """
    if not reports_pdt or equity_usd >= 25_000:
        return False
    # A flagged pattern day trader under $25,000 may not day trade at all.
    return pattern_day_trader or daytrade_count >= 3


@dataclass(frozen=True)
class EntryCandidate:
    """A symbol the bot may enter, with what the entry checks need to know about it."""

    symbol: str
    z: float
    price: float  # latest trade
    ask: float  # for the short-sale charge
    fractionable: bool
    shortable: bool  # asset shortable and easy to borrow, and the account may short


@dataclass(frozen=True)
class EntryPlan:
    symbol: str
    is_long: bool
    qty: float
    limit_price: float
    z: float
    cost_usd: float  # what the order holds of buying power


# Why a candidate with a signal is not entered (codes of `EntryArrays.skip_reason`).
SKIP_NOT_SHORTABLE, SKIP_SUB_SHARE, SKIP_CASH, SKIP_BUYING_POWER, SKIP_MAX_ENTRIES = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class EntryArrays:
    """`plan_entry_arrays`' answer. Indices refer to the candidate arrays; `accepted` is in
    the order the entries are funded and placed, and the other arrays align with it."""

    accepted: np.ndarray
    is_long: np.ndarray
    qty: np.ndarray
    limit: np.ndarray
    cost: np.ndarray
    skipped: np.ndarray
    skip_reason: np.ndarray


def limit_prices(prices: np.ndarray) -> np.ndarray:
    """`limit_price` of every element, in bulk; identical results (property-tested).

    Rounding half up on the binary value is exact except within a hair of a half tick, where
    a decimal half like 1.005 is stored as 1.00499...: those few go through `limit_price`.
    """
    p = np.asarray(prices, dtype=float)
    scale = np.where(p >= 1.0, 100.0, 10_000.0)
    scaled = p * scale
    base = np.floor(scaled)
    frac = scaled - base
    out = (base + (frac >= 0.5)) / scale
    tolerance = np.maximum(1e-6, np.abs(scaled) * 1e-12)
    near = np.flatnonzero(np.abs(frac - 0.5) < tolerance)
    if not len(near):
        return out
    # A price that is the double nearest to a 4-decimal number (every price the API reports)
    # has that number as its repr, so `limit_price` rounds exactly that decimal: in integer
    # ten-thousandths, half up to the tick, then to the double nearest the quotient (as
    # float(Decimal) does). The others go through `limit_price` itself.
    q = p.flat[near]
    units = np.round(q * 10_000.0)
    four = (q > 0) & (units < 2.0 ** 52) & (units / 10_000.0 == q)
    whole = units[four].astype(np.int64)
    cents = np.where(q[four] >= 1.0, (whole + 50) // 100 * 100, whole)
    out.flat[near[four]] = cents / 10_000.0
    for i in near[~four]:
        out.flat[i] = limit_price(float(p.flat[i]))
    return out


def order_qtys(size_usd: float, prices: np.ndarray, is_long: np.ndarray,
               fractionable: np.ndarray) -> np.ndarray:
    """`order_qty` of every element, in bulk; identical results (property-tested). Values
    within a hair of a rounding boundary go through `order_qty`'s exact decimal division."""
    p = np.asarray(prices, dtype=float)
    is_long = np.asarray(is_long, dtype=bool)
    fractional = is_long & np.asarray(fractionable, dtype=bool)
    shares = np.divide(size_usd, p, out=np.zeros_like(p), where=p > 0)
    scaled = np.where(fractional, shares * 1e9, shares)
    base = np.floor(scaled)
    out = np.where(fractional, base / 1e9, base)
    out = np.where((p > 0) & (size_usd > 0) & np.isfinite(out), out, 0.0)
    frac = scaled - base
    # How far binary rounding can move `scaled`: a few ulps of it, at least 1e-6.
    tolerance = np.maximum(1e-6, np.abs(scaled) * 1e-12)
    for i in np.flatnonzero(((frac < tolerance) | (frac > 1 - tolerance)) & (p > 0)):
        out[i] = order_qty(size_usd, float(p[i]), is_long=bool(is_long[i]),
                           fractionable=bool(fractional[i]))
    return out


@dataclass(frozen=True)
class EntryOrders:
    """`entry_orders`' answer: arrays shaped like the z-scores given, one cell per candidate."""

    code: np.ndarray  # ENTER_LONG, ENTER_SHORT or NO_ENTRY (entry_codes)
    limit: np.ndarray  # limit price of the order (limit_prices)
    qty: np.ndarray  # shares (order_qtys)
    cost: np.ndarray  # buying power the order holds while open
    skip_reason: np.ndarray  # SKIP_NOT_SHORTABLE or SKIP_SUB_SHARE; 0 where it can be placed

    @property
    def placeable(self) -> np.ndarray:
        """Cells with an order that only funding can still refuse."""
        return (self.code != NO_ENTRY) & (self.skip_reason == 0)


def entry_orders(z: np.ndarray, price: np.ndarray, ask: np.ndarray, fractionable: np.ndarray,
                 shortable: np.ndarray, t: Thresholds, *, size_usd: float,
                 limits: np.ndarray | None = None,
                 qtys: np.ndarray | None = None) -> EntryOrders:
    """Each candidate's entry order on its own, before the budgets are shared out: side,
    limit price, quantity, what it holds of buying power, and why it cannot be placed at
    all. Element-wise over arrays of any shape (the backtester passes every day at once).

    Longs hold their cost at the limit; shorts Alpaca's short charge (see `short_charge`).
    `limits` is the price orders are sized and funded at: `limit_prices(price)` unless given
    (order_types.entry_prices for other order types); `qtys`, when given, must be
    `order_qtys(size_usd, limits, z < 0, fractionable)` wherever there is an entry signal (a
    caller that has them already; the other cells have no order, and their qty and cost are
    the caller's).
    """
    z = np.asarray(z, dtype=float)
    code = entry_codes(z, t)
    is_long = code == ENTER_LONG
    limit = limit_prices(price) if limits is None else np.asarray(limits, dtype=float)
    if qtys is None:
        qty = order_qtys(size_usd, limit.ravel(), is_long.ravel(),
                         np.broadcast_to(fractionable, z.shape).ravel()).reshape(z.shape)
    else:
        qty = np.asarray(qtys, dtype=float)
    with np.errstate(invalid="ignore"):
        cost = np.where(is_long, qty * limit, qty * np.maximum(limit, 1.03 * np.asarray(ask)))
    reason = np.where((code == ENTER_SHORT) & ~np.asarray(shortable, dtype=bool),
                      SKIP_NOT_SHORTABLE, 0)
    reason = np.where((reason == 0) & (code != NO_ENTRY) & ~(qty > 0), SKIP_SUB_SHARE, reason)
    return EntryOrders(code=code, limit=limit, qty=qty, cost=cost, skip_reason=reason)


def entries_fit(total_cost_usd, long_cost_usd, *, cash_usd, buying_power_usd):
    """Whether entries holding `total_cost_usd` of buying power, `long_cost_usd` of it for
    longs, all fit a run's budgets at once (a cent's millionth to spare); element-wise."""
    return ((np.asarray(total_cost_usd) <= np.asarray(buying_power_usd) - 1e-6)
            & (np.asarray(long_cost_usd) <= np.asarray(cash_usd) - 1e-6))


def plan_entry_arrays(z: np.ndarray, price: np.ndarray, ask: np.ndarray,
                      fractionable: np.ndarray, shortable: np.ndarray, t: Thresholds, *,
                      size_usd: float, cash_usd: float, buying_power_usd: float,
                      max_entries: int = 0, limits: np.ndarray | None = None,
                      qtys: np.ndarray | None = None) -> EntryArrays:
    """Which entries to place, funded strongest signal first; the bulk form of
    `plan_entries`, which the bot goes through.

    Each candidate's order comes from `entry_orders`. Longs are paid from cash (Alpaca's
    non-marginable buying power: the bot never borrows to buy) and also use buying power;
    shorts need buying power for Alpaca's short charge. Both budgets shrink with every entry
    funded. `max_entries` 0 means no limit. When every order fits both budgets at once
    (`entries_fit`) the answer is computed in bulk; otherwise one candidate at a time,
    exactly as the budgets run down.
    """
    z = np.asarray(z, dtype=float)
    signalled = np.flatnonzero(entry_codes(z, t) != NO_ENTRY)
    # entry_priority over the signalled only: a stable sort keeps the same relative order.
    order = signalled[entry_priority(z[signalled])]
    orders = entry_orders(
        z[order], np.asarray(price, dtype=float)[order], np.asarray(ask, dtype=float)[order],
        np.asarray(fractionable, dtype=bool)[order], np.asarray(shortable, dtype=bool)[order],
        t, size_usd=size_usd,
        limits=None if limits is None else np.asarray(limits, dtype=float)[order],
        qtys=None if qtys is None else np.asarray(qtys, dtype=float)[order])
    is_long, cost, reason = orders.code == ENTER_LONG, orders.cost, orders.skip_reason.copy()
    ok = reason == 0
    cap = max_entries or int(ok.sum())
    if entries_fit(cost[ok].sum(), cost[ok & is_long].sum(), cash_usd=cash_usd,
                   buying_power_usd=buying_power_usd):
        funded = np.flatnonzero(ok)
        reason[funded[cap:]] = SKIP_MAX_ENTRIES
        funded = funded[:cap]
    else:
        funded = _fund_one_by_one(ok, is_long, cost, reason, cash_usd, buying_power_usd, cap)
    skipped = np.flatnonzero(reason != 0)
    return EntryArrays(accepted=order[funded], is_long=is_long[funded],
                       qty=orders.qty[funded], limit=orders.limit[funded], cost=cost[funded],
                       skipped=order[skipped], skip_reason=reason[skipped])


def _fund_one_by_one(ok: np.ndarray, is_long: np.ndarray, cost: np.ndarray,
                     reason: np.ndarray, cash: float, buying_power: float,
                     cap: int) -> np.ndarray:
    funded: list[int] = []
    for i in np.flatnonzero(ok):
        c = float(cost[i])
        if is_long[i] and c > cash + 1e-9:
            reason[i] = SKIP_CASH
        elif c > buying_power + 1e-9:
            reason[i] = SKIP_BUYING_POWER
        elif len(funded) >= cap:
            reason[i] = SKIP_MAX_ENTRIES
        else:
            funded.append(int(i))
            buying_power -= c
            if is_long[i]:
                cash -= c
    return np.array(funded, dtype=int)


def plan_entries(candidates: list[EntryCandidate], t: Thresholds, *, size_usd: float,
                 cash_usd: float, buying_power_usd: float, max_entries: int = 0,
                 limits: np.ndarray | None = None) -> tuple[list[EntryPlan], dict[str, str]]:
    """`plan_entry_arrays` over candidate records, with each skip explained in words.
    `limits`: the price each candidate is sized and funded at, when it is not the limit at
    the current price (order_types.entry_prices)."""
    arrays = plan_entry_arrays(
        np.array([c.z for c in candidates], dtype=float),
        np.array([c.price for c in candidates], dtype=float),
        np.array([c.ask for c in candidates], dtype=float),
        np.array([c.fractionable for c in candidates], dtype=bool),
        np.array([c.shortable for c in candidates], dtype=bool), t, size_usd=size_usd,
        cash_usd=cash_usd, buying_power_usd=buying_power_usd, max_entries=max_entries,
        limits=limits)
    plans = [EntryPlan(candidates[i].symbol, bool(long_), float(q), float(lim),
                       candidates[i].z, float(c))
             for i, long_, q, lim, c in zip(arrays.accepted, arrays.is_long, arrays.qty,
                                            arrays.limit, arrays.cost, strict=True)]
    skipped = {candidates[i].symbol: _skip_text(candidates[i], int(code), size_usd,
                                                max_entries)
               for i, code in zip(arrays.skipped, arrays.skip_reason, strict=True)}
    return plans, skipped


def _skip_text(c: EntryCandidate, code: int, size_usd: float, max_entries: int) -> str:
    limit = limit_price(c.price)
    if code == SKIP_NOT_SHORTABLE:
        return f"z={c.z:.2f} calls for a short, but it cannot be shorted"
    if code == SKIP_SUB_SHARE:
        why = "shorts need whole shares" if c.z > 0 else "the asset is not fractionable"
        return f"${size_usd:g} buys less than one share at {limit:g}; {why}"
    if code == SKIP_CASH:
        return "not enough cash left in this run for it"
    if code == SKIP_BUYING_POWER:
        return "not enough buying power left in this run for it"
    return f"the limit of {max_entries} new entries per run is reached"
