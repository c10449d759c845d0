"""Account arithmetic of a Reg T margin account, as the local exchange applies it.

Pure functions, shared by the exchange and the backtester so that "positions limited by cash
exactly as live" holds by construction. Money is in US dollars; market values are positive
numbers (a short position's value is passed as its absolute amount).

* equity = cash + long market value - short market value (short sale proceeds sit in cash);
* initial margin = 50% of gross position value (Regulation T), maintenance 25% of long and
  30% of short value (Alpaca's documented minimums for most stocks);
* multiplier 2 and shorting allowed from $2,000 of equity (FINRA Rule 4210's minimum equity
  for a margin account); below, multiplier 1 and no shorting;
* buying power = (equity - initial margin) * multiplier, less what open orders reserve;
* non-marginable buying power = cash less what open buy orders reserve.
"""

from __future__ import annotations

import numpy as np

REG_T_INITIAL = 0.5
MAINTENANCE_LONG = 0.25
MAINTENANCE_SHORT = 0.30
MARGIN_MINIMUM_EQUITY = 2_000.0
SHORT_ASK_MARKUP = 1.03  # Alpaca charges short orders max(limit, 3% above the ask)


def equity(cash: float, long_value: float, short_value: float) -> float:
    return cash + long_value - short_value


def multiplier(equity_usd: float) -> int:
    return 2 if equity_usd >= MARGIN_MINIMUM_EQUITY else 1


def shorting_enabled(equity_usd: float) -> bool:
    return equity_usd >= MARGIN_MINIMUM_EQUITY


def initial_margin(long_value: float, short_value: float) -> float:
    return REG_T_INITIAL * (long_value + short_value)


def maintenance_margin(long_value: float, short_value: float) -> float:
    return MAINTENANCE_LONG * long_value + MAINTENANCE_SHORT * short_value


def buying_power(cash: float, long_value: float, short_value: float,
                 reserved: float = 0.0) -> float:
    eq = equity(cash, long_value, short_value)
    return max(0.0, (eq - initial_margin(long_value, short_value)) * multiplier(eq) - reserved)


def buying_powers(cash: np.ndarray, long_value: np.ndarray,
                  short_value: np.ndarray) -> np.ndarray:
    """`buying_power` of many accounts at once (no reservations), element-wise."""
    eq = equity(cash, long_value, short_value)
    return np.maximum(0.0, (eq - initial_margin(long_value, short_value))
                      * np.where(eq >= MARGIN_MINIMUM_EQUITY, 2, 1))


def non_marginable_buying_power(cash: float, reserved_buys: float = 0.0) -> float:
    return max(0.0, cash - reserved_buys)


def order_reservation(*, is_buy: bool, opens_short: bool, qty: float, limit: float,
                      ask: float) -> float:
    """Buying power an open order holds: a buy its cost at the limit; a short sale the
    greater of the limit and 3% above the ask (Alpaca's short-order check); a sell that
    closes a long holds nothing."""
    if is_buy:
        return qty * limit
    if opens_short:
        return qty * max(limit, SHORT_ASK_MARKUP * ask)
    return 0.0
