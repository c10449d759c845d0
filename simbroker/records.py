"""The exchange's records: its configuration, orders, positions, fills and day trades.

All frozen: the exchange replaces a record to change it, so a record handed out (to the wire
layer, to a test) never changes under its holder. Enums carry Alpaca's wire values.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

DEFAULT_KEY_ID = "SIMKEY"
DEFAULT_SECRET_KEY = "SIMSECRET"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    """Alpaca's equity time in force values; simbroker.execution says how each trades."""

    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"


class Status(StrEnum):
    """Alpaca's OrderStatus enum, all 17 values (trading API spec, `OrderStatus`). The
    lifecycle produces pending_new, accepted, new, partially_filled, filled, canceled,
    expired and rejected; `POST /_sim/orders/{id}/status` puts an order into any other."""

    PENDING_NEW = "pending_new"  # received during the session, not yet accepted
    ACCEPTED = "accepted"  # received outside regular hours; becomes NEW at the next open
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    STOPPED = "stopped"  # a trade is guaranteed, has not happened yet
    REJECTED = "rejected"
    SUSPENDED = "suspended"  # not eligible for trading
    CALCULATED = "calculated"
    HELD = "held"


FINAL_STATUSES = frozenset({Status.FILLED, Status.CANCELED, Status.EXPIRED, Status.REPLACED,
                            Status.REJECTED})
OPEN_STATUSES = frozenset(Status) - FINAL_STATUSES
# The open statuses in which the exchange matches an order against the market: a stopped
# order's trade is guaranteed, a pending cancel or replace may still fill first. The others
# wait (suspended, held, done for the day...) until the clock or a control moves them.
FILLABLE_STATUSES = frozenset({Status.NEW, Status.PARTIALLY_FILLED, Status.STOPPED,
                               Status.PENDING_CANCEL, Status.PENDING_REPLACE})


class Intent(StrEnum):
    """Alpaca's position_intent: whether an order opens or closes (part of) a position."""

    BUY_TO_OPEN = "buy_to_open"
    BUY_TO_CLOSE = "buy_to_close"
    SELL_TO_OPEN = "sell_to_open"
    SELL_TO_CLOSE = "sell_to_close"


@dataclass(frozen=True)
class ExchangeConfig:
    """How the local exchange behaves. Every default is what a fresh Alpaca paper account has,
    except where the exchange cannot know (spread, partial fills), which default to 2 bps and
    none.

    `shortable`, `easy_to_borrow` and `fractionable` restrict those asset flags to the given
    symbols; None means every symbol has the flag. `max_bars_per_page` caps a market-data page
    below the client's `limit` (Alpaca "may return less" and clients must follow
    next_page_token); lower it in tests to force pagination. `partial_fill_delay_seconds` is
    how long the rest of a partially filled order waits before it may fill again.

    The order lifecycle is Alpaca's: with `async_acceptance` an order POSTed during the
    session is answered `pending_new` and accepted (`new`, and filled if marketable) only
    after the answer: at the first request or clock move at least `acceptance_delay_seconds`
    (simulated) after it; at its acceptance it is rejected instead with
    `rejection_probability` (seeded by `seed` and the order). Outside the session an order is
    `accepted` and goes live at the next open (where the same rejection draw applies).
    `async_acceptance=False` gives the older, synchronous exchange: `new` in the answer, and
    the fill of a marketable order already in it.
    """

    starting_cash: float = 100_000.0
    spread_bps: float = 2.0
    partial_fill_probability: float = 0.0
    seed: int = 0
    legacy_pdt: bool = False
    key_id: str = DEFAULT_KEY_ID
    secret_key: str = DEFAULT_SECRET_KEY
    shortable: frozenset[str] | None = None
    easy_to_borrow: frozenset[str] | None = None
    fractionable: frozenset[str] | None = None
    max_bars_per_page: int = 10_000
    partial_fill_delay_seconds: float = 1800.0
    # Assets as Alpaca sends them since 2026-07-16 (no easy_to_borrow or
    # maintenance_margin_requirement); legacy_assets adds the two deprecated fields back.
    legacy_assets: bool = False
    # The market-data plan (see simbroker/feeds.py): "free" or "unlimited".
    plan: str = "free"
    # Requests per key and API (trading, market data) in each window; 0 means no limit.
    rate_limit: int = 200
    rate_window_seconds: float = 60.0
    # Snapshots as they sometimes come: all values null, a latest trade days old, a quote
    # of ap = bp = 0 ("no quote"), for these symbols.
    snapshot_null: frozenset[str] = frozenset()
    snapshot_stale: frozenset[str] = frozenset()
    snapshot_no_quote: frozenset[str] = frozenset()
    async_acceptance: bool = True
    acceptance_delay_seconds: float = 0.0
    rejection_probability: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.starting_cash) and self.starting_cash > 0):
            problems.append(f"starting_cash={self.starting_cash}: give a positive dollar amount")
        if not (math.isfinite(self.spread_bps) and 0 <= self.spread_bps < 10_000):
            problems.append(f"spread_bps={self.spread_bps}: give basis points in [0, 10000), "
                            "e.g. 2.0")
        if not 0.0 <= self.partial_fill_probability <= 1.0:
            problems.append(f"partial_fill_probability={self.partial_fill_probability}: give a "
                            "probability in [0, 1]")
        if not self.key_id or not self.secret_key:
            problems.append("key_id and secret_key must not be empty; omit them for the "
                            f"defaults {DEFAULT_KEY_ID}/{DEFAULT_SECRET_KEY}")
        if not 1 <= self.max_bars_per_page <= 10_000:
            problems.append(f"max_bars_per_page={self.max_bars_per_page}: give 1..10000")
        if not 0.0 <= self.rejection_probability <= 1.0:
            problems.append(f"rejection_probability={self.rejection_probability}: give a "
                            "probability in [0, 1]")
        if not (math.isfinite(self.acceptance_delay_seconds)
                and 0 <= self.acceptance_delay_seconds <= 3600):
            problems.append(f"acceptance_delay_seconds={self.acceptance_delay_seconds}: give "
                            "seconds in [0, 3600]")
        if not self.partial_fill_delay_seconds >= 0:
            problems.append(f"partial_fill_delay_seconds={self.partial_fill_delay_seconds}: "
                            "give seconds >= 0")
        problems += self._data_problems()
        for name in ("shortable", "easy_to_borrow", "fractionable"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        if problems:
            raise ValueError("ExchangeConfig: " + "; ".join(problems))

    def _data_problems(self) -> list[str]:
        """The plan, the rate limit and the snapshot settings (frozensets made so)."""
        for name in ("snapshot_null", "snapshot_stale", "snapshot_no_quote"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        problems = []
        if self.plan not in ("free", "unlimited"):
            problems.append(f"plan={self.plan!r}: give free or unlimited")
        if not (self.rate_limit >= 0 and self.rate_window_seconds > 0):
            problems.append(f"rate_limit={self.rate_limit} per {self.rate_window_seconds} s: "
                            "give requests >= 0 (0: no limit) per a positive number of seconds")
        return problems

    def has_flag(self, name: str, symbol: str) -> bool:
        allowed = getattr(self, name)
        return allowed is None or symbol in allowed


@dataclass(frozen=True)
class Order:
    """One order. `qty` is None for a notional order until it fills. `reserve_price` is the
    price per share that this order holds against buying power (0 for a closing sell)."""

    id: str
    client_order_id: str
    seq: int
    symbol: str
    asset_id: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    qty: float | None
    notional: float | None
    limit_price: float | None
    intent: Intent
    reserve_price: float
    status: Status
    created_at: datetime
    submitted_at: datetime
    updated_at: datetime
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    live_from: datetime | None = None  # earliest time the order may fill (None: at submission)
    fill_count: int = 0
    replaced_by: str | None = None  # the order that replaced this one
    replaces: str | None = None  # the order this one replaced
    replaced_at: datetime | None = None
    failed_at: datetime | None = None  # when it was rejected

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_qty(self) -> float:
        """Shares still to fill; for an unfilled notional order, 0 (it is sized at the fill)."""
        if self.qty is None:
            return 0.0
        return max(0.0, round(self.qty - self.filled_qty, 9))

    @property
    def is_fractional(self) -> bool:
        return self.qty is None or self.qty != math.floor(self.qty)

    def reserved_usd(self) -> float:
        """Dollars this order holds against buying power while it is open."""
        if not self.is_open:
            return 0.0
        if self.qty is None:  # a notional buy holds its dollars; a notional sell holds none
            return (self.notional or 0.0) if self.side is Side.BUY else 0.0
        return self.remaining_qty * self.reserve_price


@dataclass(frozen=True)
class Position:
    """A position: `qty` > 0 long, < 0 short. `opened_day`/`opened_qty` are the session day of
    the latest opening fill and the shares opened on that day, for day-trade detection."""

    symbol: str
    qty: float
    avg_entry_price: float
    opened_day: date | None = None
    opened_qty: float = 0.0

    @property
    def is_long(self) -> bool:
        return self.qty > 0


@dataclass(frozen=True)
class Fill:
    order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    time: datetime


@dataclass(frozen=True)
class DayTrade:
    """A closing order filled on the session day its position was opened (FINRA Rule 4210)."""

    day: date
    symbol: str
    order_id: str


def asset_id(symbol: str) -> str:
    """A stable asset UUID per symbol (Alpaca's asset ids never change either)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"simbroker/asset/{symbol}"))
