"""Alpaca's request budget: so many requests per key and API in each window, with the
`X-Ratelimit-Limit`, `X-Ratelimit-Remaining` and `X-Ratelimit-Reset` headers on every answer
and 429 once the budget is spent.

Alpaca allows 200 Trading API requests a minute per account, and 200 Market Data requests a
minute on the free plan (https://docs.alpaca.markets/docs/about-market-data-api, "Historical
API calls 200/min"); the Market Data spec documents the three headers (Reset: "The UNIX epoch
when the remaining quota changes"). The trading and market-data budgets are counted apart, as
Alpaca's are two APIs on two hosts. How Alpaca counts inside a minute is not documented; this
model uses fixed windows aligned on the epoch (a 60 s window resets on each whole minute), so
`Reset` is the end of the current window, rounded up to a whole second, and never earlier than
the budget's actual reset. The 429 body's code (42910000) follows the project's reading of
Alpaca's code scheme (status x 100000); its text is not confirmed by a published page.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TOO_MANY_REQUESTS = 42910000
DATA_PREFIX = "/v2/stocks"


def api_of(path: str) -> str:
    """Which budget a path spends: "data" (Market Data API) or "trading"."""
    return "data" if path.startswith(DATA_PREFIX) else "trading"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]

    def body(self) -> dict[str, object]:
        return {"code": TOO_MANY_REQUESTS, "message": "rate limit exceeded"}


class RateLimiter:
    """Budgets per (key, api), thread-safe. `clock` gives UNIX seconds (time.time)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], tuple[int, int]] = {}  # -> (window index, count)

    def take(self, key: str, api: str, limit: int, window_seconds: float) -> Verdict:
        """Spend one request of `key`'s `api` budget if any is left. `limit` 0: no limit
        (no headers, as a server without one)."""
        if limit <= 0:
            return Verdict(True, {})
        now = self._clock()
        window = math.floor(now / window_seconds)
        with self._lock:
            current, count = self._used.get((key, api), (window, 0))
            if current != window:
                count = 0
            allowed = count < limit
            count += allowed
            self._used[(key, api)] = (window, count)
        reset = math.ceil((window + 1) * window_seconds)
        return Verdict(allowed, {"X-RateLimit-Limit": str(limit),
                                 "X-RateLimit-Remaining": str(limit - count),
                                 "X-RateLimit-Reset": str(reset)})
