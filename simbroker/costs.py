"""What a real Alpaca account pays besides the spread: the rates and the arithmetic, shared by
the local exchange and the backtester.

* **Short borrow fee**, daily, on every short held at the end of a day, easy-to-borrow
  included: ``round_lot(qty) * price * rate / 360`` for each calendar day until the next
  session (a short held on a Friday pays Friday, Saturday and Sunday; before a holiday, the
  holiday too). Alpaca, "Short Selling Fees" (alpaca.markets/support/short-selling-fees):
  "Daily ETB stock borrow fee = (settlement date end of day total ETB short $ market value *
  that stock's ETB rate) / 360", "if you hold short positions as of a Friday settlement date,
  you will incur stock borrow fees for 3 days (Fri, Sat, Sun)", and "stock borrow fees are
  charged in the nearest round lot (100 shares) regardless of how many shares were actually
  shorted" (rounded up: 1 share short pays for 100, forum.alpaca.markets/t/14424). The rate is
  per stock and not published; 2.5% a year is what Alpaca's staff quote for easy-to-borrow
  S&P 500 names (same thread). The fee of a day is rounded to the cent (half up; Alpaca does
  not say how it rounds). The settlement lag (T+1) is not modelled: the day a short is held
  at the close is the day it pays for.
* **SEC Section 31 fee** on sales (short sales included): $27.80 per $1,000,000 of principal,
  and **FINRA Trading Activity Fee**: $0.000166 per share sold, at most $8.30 per trade.
  Alpaca, "Regulatory Fees" (docs.alpaca.markets/docs/regulatory-fees): rates 0.0000278 and
  0.000166 (max 8.30); "At EOD, for each account, we charge the cumulative total for the
  given trading day" and "round up the cumulative total ... to the nearest" cent. The SEC
  resets its rate each fiscal year (FY2026: Release 34-104909, 2026-02-27); set
  `sec_fee_per_dollar` to the rate in force.
* **Interest on idle cash**: off by default (Alpaca pays none on a trading account by
  default); with a rate, ``cash * rate / 360`` a calendar day on positive cash at each close,
  rounded to the cent.
* **Dividends** are not a fee and are not here: the data's cash dividends are paid on longs
  and charged on shorts at the ex-date's open (simbroker/corporate.py, backtester/dividends.py),
  and refused on dividend-adjusted prices (simbroker/dividends.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROUND_LOT = 100  # shares; the lot Alpaca borrows in


@dataclass(frozen=True)
class CostRates:
    """Rates of the costs above; `enabled=False` turns all of them off."""

    enabled: bool = True
    borrow_rate: float = 0.025  # a year, of the round-lot market value of a short
    sec_fee_per_dollar: float = 27.80 / 1_000_000
    taf_per_share: float = 0.000166
    taf_max_per_trade: float = 8.30
    cash_interest_rate: float = 0.0  # a year, on positive cash

    def __post_init__(self) -> None:
        for name in ("borrow_rate", "sec_fee_per_dollar", "taf_per_share", "taf_max_per_trade",
                     "cash_interest_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1_000):
                raise ValueError(f"{name}={value}: give a rate of 0 or more (a year for "
                                 "borrow_rate and cash_interest_rate, e.g. 0.025)")


def round_lots(qty):
    """Shares borrowed for a short of `qty` shares: rounded up to whole round lots."""
    return np.ceil(np.abs(np.asarray(qty, dtype=float)) / ROUND_LOT - 1e-9) * ROUND_LOT


def _cents_half_up(usd):
    return np.floor(np.asarray(usd, dtype=float) * 100 + 0.5 + 1e-9) / 100


def _cents_up(usd):
    return np.ceil(np.asarray(usd, dtype=float) * 100 - 1e-9) / 100


def borrow_fee(qty, price, days, rates: CostRates):
    """The fee of shorts of `qty` shares marked at `price` at a close, for `days` calendar
    days, in dollars rounded to the cent (element-wise)."""
    if not rates.enabled:
        return np.zeros(np.broadcast_shapes(np.shape(qty), np.shape(price), np.shape(days)))
    value = round_lots(qty) * np.asarray(price, dtype=float)
    return _cents_half_up(value * rates.borrow_rate / 360.0 * np.asarray(days, dtype=float))


def sale_fees_unrounded(principal, shares, rates: CostRates) -> tuple[np.ndarray, np.ndarray]:
    """SEC and TAF fees of each sale (dollars, before the day's rounding up)."""
    principal = np.abs(np.asarray(principal, dtype=float))
    shares = np.abs(np.asarray(shares, dtype=float))
    if not rates.enabled:
        return np.zeros_like(principal), np.zeros_like(shares)
    return (principal * rates.sec_fee_per_dollar,
            np.minimum(shares * rates.taf_per_share, rates.taf_max_per_trade))


def day_sale_fees(principal, shares, rates: CostRates) -> tuple[float, float]:
    """A day's SEC and TAF fees for its sales: each total rounded up to the cent."""
    sec, taf = sale_fees_unrounded(principal, shares, rates)
    return float(_cents_up(sec.sum())), float(_cents_up(taf.sum()))


def cash_interest(cash, days, rates: CostRates):
    """Interest credited on positive cash for `days` calendar days (dollars, to the cent)."""
    if not rates.enabled or rates.cash_interest_rate == 0:
        return np.zeros(np.broadcast_shapes(np.shape(cash), np.shape(days)))
    positive = np.maximum(np.asarray(cash, dtype=float), 0.0)
    return _cents_half_up(positive * rates.cash_interest_rate / 360.0
                          * np.asarray(days, dtype=float))
