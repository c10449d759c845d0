"""The strategy's decisions, as pure functions of data, state and the day.

No I/O, no clock: the live bot, the backtester and the tests call these same functions, so a
backtest describes this bot and not a re-implementation of it. Every function works on numpy
arrays over the universe at once (the backtester's whole day in one call) and on one symbol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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

    long_entry_z: float = -1.5
    short_entry_z: float = 1.5
    long_exit_z: float = -0.1
    short_exit_z: float = 0.1
    long_stop_z: float = -3.0
    short_stop_z: float = 3.0
    max_holding_days: int = 5
    same_day_stop_loss: bool = True
    allow_shorts: bool = True

    @classmethod
    def from_config(cls, c: Config) -> Thresholds:
        return cls(c.long_entry_z, c.short_entry_z, c.long_exit_z, c.short_exit_z,
                   c.long_stop_z, c.short_stop_z, c.max_holding_days, c.same_day_stop_loss,
                   c.allow_shorts)


def zscores(past_closes: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """z = (price - mean) / std over the window made of the past closes plus today's price.

    `past_closes` has shape (window - 1, n): the last completed daily closes, oldest first;
    `prices` has shape (n,): today's current price. The standard deviation is the sample one
    (ddof=1). Where any value is missing or the deviation is zero, z is NaN: no signal, and
    never an old z carried forward.
    """
    past_closes = np.asarray(past_closes, dtype=float)
    prices = np.asarray(prices, dtype=float)
    window = np.vstack([past_closes, prices[np.newaxis, :]])
    mean = window.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = window.std(axis=0, ddof=1)
        z = (prices - mean) / std
    # A flat window has std 0 (or ~1e-15 from rounding): no deviation, no signal.
    flat = ~(std > 1e-12 * np.maximum(np.abs(mean), 1.0))
    return np.where(flat | np.isnan(std), np.nan, z)


def zscore(past_closes: list[float] | np.ndarray, price: float) -> float:
    """One symbol's z-score; NaN when undefined (see `zscores`)."""
    return float(zscores(np.asarray(past_closes, dtype=float)[:, np.newaxis],
                         np.array([price]))[0])


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
    with np.errstate(invalid="ignore"):
        stop = np.where(is_long, z <= t.long_stop_z, z >= t.short_stop_z)
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
    with np.errstate(invalid="ignore"):
        long_ = z < t.long_entry_z
        short = (z > t.short_entry_z) & t.allow_shorts
    return np.where(long_, ENTER_LONG, np.where(short, ENTER_SHORT, NO_ENTRY))


def entry_priority(z: np.ndarray) -> np.ndarray:
    """Order in which entry candidates are funded: strongest signal first (largest |z|);
    ties keep the given (alphabetical) order. Returns indices."""
    return np.argsort(-np.abs(np.asarray(z, dtype=float)), kind="stable")


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


def plan_entries(candidates: list[EntryCandidate], t: Thresholds, *, size_usd: float,
                 cash_usd: float, buying_power_usd: float,
                 max_entries: int = 0) -> tuple[list[EntryPlan], dict[str, str]]:
    """Which entries to place, funded strongest signal first, and why the others are not.

    Longs are paid from cash (Alpaca's non-marginable buying power: the bot never borrows to
    buy) and also use buying power; shorts need buying power for Alpaca's short charge. Both
    budgets shrink with every order planned in this run. `max_entries` 0 means no limit.
    """
    z = np.array([c.z for c in candidates], dtype=float)
    codes = entry_codes(z, t)
    plans: list[EntryPlan] = []
    skipped: dict[str, str] = {}
    for i in entry_priority(z):
        c = candidates[int(i)]
        if codes[i] == NO_ENTRY:
            continue
        is_long = bool(codes[i] == ENTER_LONG)
        if not is_long and not c.shortable:
            skipped[c.symbol] = f"z={c.z:.2f} calls for a short, but it cannot be shorted"
            continue
        limit = limit_price(c.price)
        qty = order_qty(size_usd, limit, is_long=is_long, fractionable=c.fractionable)
        if qty <= 0:
            why = "the asset is not fractionable" if is_long else "shorts need whole shares"
            skipped[c.symbol] = f"${size_usd:g} buys less than one share at {limit:g}; {why}"
            continue
        cost = qty * limit if is_long else short_charge(qty, limit, c.ask)
        if is_long and cost > cash_usd + 1e-9:
            skipped[c.symbol] = f"needs ${cost:.2f} of cash, ${cash_usd:.2f} left"
            continue
        if cost > buying_power_usd + 1e-9:
            skipped[c.symbol] = f"needs ${cost:.2f} of buying power, ${buying_power_usd:.2f} left"
            continue
        if max_entries and len(plans) >= max_entries:
            skipped[c.symbol] = f"the limit of {max_entries} new entries per run is reached"
            continue
        plans.append(EntryPlan(c.symbol, is_long, qty, limit, c.z, cost))
        buying_power_usd -= cost
        if is_long:
            cash_usd -= cost
    return plans, skipped
