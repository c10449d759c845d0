"""Market-data plans and feeds, modelled: which feed each endpoint accepts, what a free plan may
query, and the IEX view of a daily bar.

Sources: the Market Data spec (June 2026, `stock_historical_feed` and `stock_latest_feed`
enums, the `start`/`end` defaults of the bars endpoints) and Alpaca's docs
(https://docs.alpaca.markets/docs/about-market-data-api, "Subscription Plans";
https://docs.alpaca.markets/docs/market-data-faq, "Why am I getting HTTP 403"):

* historical endpoints accept iex, otc, sip and boats (default sip); latest and snapshot
  endpoints also accept delayed_sip and overnight (default sip on the unlimited plan, iex on
  the free plan);
* the free plan has real-time data from IEX only: SIP history is allowed when it ends at least
  15 minutes ago (the default `end` is then 15 minutes before now), and SIP on the latest and
  snapshot endpoints is refused with 403 "subscription does not permit querying recent SIP
  data"; delayed_sip is SIP as it was 15 minutes ago.

The exchange has no OTC, Blue Ocean or overnight trading: those feeds are accepted where the
spec accepts them and answer no data.

The IEX view is a MODEL, not data: IEX prints a few percent of the consolidated volume
(Alpaca's FAQ example, AAPL 2023-09-29: 923,134 IEX shares of 51,861,083, 1.8 %), so its bar
of a session is a deterministic function of the consolidated bar and (symbol, day): volume
2-4 % of it, each price within 2 cents of it (rounded to the cent, high and low kept around
open and close), and for thin names (under 200,000 shares a day) one session in ten with no
IEX trade at all, hence no bar. Its statistical properties are tested in
tests/test_data_plans.py.
"""

from __future__ import annotations

import zlib
from datetime import date, datetime, timedelta

import numpy as np

from simbroker import errors

HISTORICAL_FEEDS = ("iex", "otc", "sip", "boats")
LATEST_FEEDS = ("delayed_sip", "iex", "otc", "sip", "boats", "overnight")
NO_DATA_FEEDS = frozenset({"otc", "boats", "overnight"})
SIP_DELAY = timedelta(minutes=15)
RECENT_SIP = "subscription does not permit querying recent SIP data"

IEX_VOLUME_SHARE = (0.02, 0.04)
IEX_PRICE_CENTS = 2
THIN_VOLUME = 200_000  # shares a day under which a name is thin on IEX
THIN_MISSING_SHARE = 0.1


def historical_feed(params: dict[str, str]) -> str:
    """The feed of a bars request, validated against the spec's enum (400 if not in it)."""
    return _feed(params, HISTORICAL_FEEDS, "sip")


def latest_feed(params: dict[str, str], plan: str) -> str:
    """The feed of a latest or snapshot request; SIP on the free plan is 403."""
    feed = _feed(params, LATEST_FEEDS, "sip" if plan == "unlimited" else "iex")
    if feed == "sip" and plan == "free":
        raise errors.forbidden(RECENT_SIP)
    return feed


def bars_end(feed: str, plan: str, end: datetime | None, now: datetime) -> datetime:
    """The end of a bars range: `end`, or its default (now, or 15 minutes ago for SIP on the
    free plan). On the free plan, SIP bars whose range ends within the last 15 minutes are
    refused with 403."""
    delayed = feed == "sip" and plan == "free"
    if end is None:
        return now - SIP_DELAY if delayed else now
    if delayed and end > now - SIP_DELAY:
        raise errors.forbidden(RECENT_SIP)
    return end


def _feed(params: dict[str, str], allowed: tuple[str, ...], default: str) -> str:
    feed = params.get("feed")
    if feed is None or feed == "":
        return default
    if feed not in allowed:
        raise errors.bad_request(f"invalid feed {feed!r}: use one of {', '.join(allowed)}")
    return feed


# -- the IEX view (a model) ---------------------------------------------------------------


def iex_bars(symbol: str, days: list[date], values: np.ndarray) -> tuple[list[date], np.ndarray]:
    """The IEX bars of consolidated rows (open, high, low, close, volume) of one symbol: the
    sessions IEX traded, and their modelled values (see the module docstring)."""
    if not days:
        return days, values
    u_volume, u_open, u_close, u_missing = (_uniform(symbol, days, salt) for salt in range(4))
    out = values.astype(float, copy=True)
    share = IEX_VOLUME_SHARE[0] + (IEX_VOLUME_SHARE[1] - IEX_VOLUME_SHARE[0]) * u_volume
    out[:, 4] = np.floor(values[:, 4] * share)
    cents = IEX_PRICE_CENTS / 100.0
    out[:, 0] = np.round(values[:, 0] + (2 * u_open - 1) * cents, 2)
    out[:, 3] = np.round(values[:, 3] + (2 * u_close - 1) * cents, 2)
    out[:, 1] = np.maximum(np.round(values[:, 1], 2), out[:, [0, 3]].max(axis=1))
    out[:, 2] = np.minimum(np.round(values[:, 2], 2), out[:, [0, 3]].min(axis=1))
    out[:, :4] = np.maximum(out[:, :4], 0.01)
    keep = ~((values[:, 4] < THIN_VOLUME) & (u_missing < THIN_MISSING_SHARE))
    return [d for d, k in zip(days, keep, strict=True) if k], out[keep]


def _uniform(symbol: str, days: list[date], salt: int) -> np.ndarray:
    """Deterministic uniforms in [0, 1) per (symbol, day, salt): a 64-bit mix (SplitMix64's
    finaliser) of the symbol's CRC-32 and the day's ordinal, the same in every process."""
    seed = np.uint64(zlib.crc32(f"{symbol}|{salt}".encode()))
    x = np.array([d.toordinal() for d in days], dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x ^= seed << np.uint64(17)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
