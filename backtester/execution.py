"""The backtest's orders by purpose: built by the bot's `order_types.build_order`, filled by the
exchange's rules (`simbroker.execution`, `simbroker.price_model`), and logged for the
statistics a user needs to choose the order settings.

How each order fills, placed at noon (as on the exchange, which fills them the same way):

* a DAY limit (``limit``, ``marketable_limit``): `price_model.limit_fill` from noon to the close
  (the engine's bulk evaluation, or on the spot for a limit it did not see);
* a DAY market order: at once, at the noon quote (`simbroker.execution.market_prices`);
* an on-close order: in the closing auction at the bar's close, if it crosses
  (`simbroker.execution.auction_crosses`), booked after the session's continuous fills.

The backtest has no partial fills (the exchange's partial-fill model is off in parity runs),
so `ENTRY_PARTIAL_FILL` / `EXIT_PARTIAL_FILL` change nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from config import Config
from order_types import OrderKind, allows_fractional, escalated
from signal_generator import EXIT_CODES, ExitReason
from simbroker.execution import auction_crosses, market_prices

ENTRY, EXIT, STOP = 0, 1, 2
PURPOSES = ("entry", "exit", "stop")
STOP_CODE = next(code for code, reason in EXIT_CODES.items() if reason is ExitReason.STOP_LOSS)
# Session fraction booked for a closing-auction fill: after every continuous fill of the day
# (the exchange crosses the auction at the close, after the session's trading).
AUCTION_FRACTION = float(np.nextafter(1.0, 2.0))
AT_ONCE = frozenset({OrderKind.MARKETABLE_LIMIT, OrderKind.MARKET})


@dataclass(frozen=True)
class Execution:
    """The order settings of a backtest (config.py's, validated there)."""

    entry: OrderKind
    exit: OrderKind
    stop: OrderKind
    offset_bps: float
    escalate_after_days: int

    @classmethod
    def from_config(cls, config: Config) -> Execution:
        return cls(OrderKind(config.entry_order_type), OrderKind(config.exit_order_type),
                   OrderKind(config.stop_order_type), config.limit_offset_bps,
                   config.exit_escalate_after_days)

    @property
    def is_design(self) -> bool:
        """The design's execution: DAY limits at the current price for every purpose, never
        escalated."""
        return self.entry is self.exit is self.stop is OrderKind.LIMIT \
            and self.escalate_after_days == 0

    def fills_at_once(self, is_stop: bool) -> bool:
        """Whether an exit of this purpose fills the moment it is placed at noon, whatever
        the path does next: a marketable limit (through the quote) or a market order."""
        return (self.stop if is_stop else self.exit) in AT_ONCE

    @property
    def timelines_can(self) -> bool:
        """Whether backtester.timeline can run these settings: entries the design's limits, and
        each exit either the design's limit, never escalated, or one that fills at once (so it
        never stays unfilled and never escalates)."""
        at_once = self.fills_at_once(False), self.fills_at_once(True)
        kinds_ok = all(ok or kind is OrderKind.LIMIT
                       for ok, kind in zip(at_once, (self.exit, self.stop), strict=True))
        return self.entry is OrderKind.LIMIT and kinds_ok \
            and (self.escalate_after_days == 0 or all(at_once))

    @property
    def entry_fractional(self) -> bool:
        return allows_fractional(self.entry)

    def exit_kind(self, is_stop: bool, unfilled_days: int) -> OrderKind:
        return escalated(self.stop if is_stop else self.exit, unfilled_days,
                         self.escalate_after_days)


def fill_other(is_market: np.ndarray, on_close: np.ndarray, is_buy: np.ndarray,
               limit: np.ndarray, noon_path: np.ndarray, close: np.ndarray, noon: float,
               spread_bps: float, filled: np.ndarray, price: np.ndarray,
               when: np.ndarray) -> None:
    """Overwrite, in place, the limit model's answers for DAY market orders and on-close
    orders (see the module docstring)."""
    now = is_market & ~on_close
    if now.any():
        filled[now] = True
        price[now] = market_prices(noon_path[now], is_buy[now], spread_bps)
        when[now] = noon
    if on_close.any():
        crosses = auction_crosses(is_buy[on_close], limit[on_close], close[on_close])
        filled[on_close] = crosses
        price[on_close] = np.where(crosses, close[on_close], np.nan)
        when[on_close] = np.where(crosses, AUCTION_FRACTION, np.nan)


@dataclass(frozen=True)
class OrderLog:
    """Every order the backtest placed, in submission order: its decision day (index into
    Result.sessions), purpose (ENTRY, EXIT, STOP), whether it filled and its implementation
    shortfall - what the fill cost against the price the decision saw, in basis points of
    that price, positive when worse (a buy above it, a sell below it); NaN where unfilled."""

    day: np.ndarray
    purpose: np.ndarray
    filled: np.ndarray
    shortfall_bps: np.ndarray

    @classmethod
    def empty(cls) -> OrderLog:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool),
                   np.zeros(0))

    @classmethod
    def joined(cls, parts: list[OrderLog]) -> OrderLog:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate(column) for column in zip(*(
            (p.day, p.purpose, p.filled, p.shortfall_bps) for p in parts), strict=True)))

    def before(self, day: int) -> OrderLog:
        keep = self.day < day
        return OrderLog(self.day[keep], self.purpose[keep], self.filled[keep],
                        self.shortfall_bps[keep])


def shortfall_bps(is_buy, fill_price, decision_price) -> np.ndarray:
    sign = np.where(np.asarray(is_buy, dtype=bool), 1.0, -1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sign * (np.asarray(fill_price) - decision_price) / decision_price * 10_000.0


def order_stats(log: OrderLog, lo: int, hi: int) -> dict[str, Mapping[str, object]]:
    """Per purpose, over the orders of decision days lo..hi - 1: placed, filled, fill rate and
    the mean implementation shortfall of the fills (bps)."""
    mine = (log.day >= lo) & (log.day < hi)
    out: dict[str, Mapping[str, object]] = {}
    for code, name in enumerate(PURPOSES):
        chosen = mine & (log.purpose == code)
        placed, filled = int(chosen.sum()), int((chosen & log.filled).sum())
        costs = log.shortfall_bps[chosen & log.filled]
        out[name] = {"placed": placed, "filled": filled,
                     "fill_rate": filled / placed if placed else float("nan"),
                     "shortfall_bps": float(costs.mean()) if len(costs) else float("nan")}
    return out
