"""Drive the real bot (`trading_bot.main`) against a real local exchange over HTTP.

The exchange runs in a background thread of the test process; the bot talks to it through
the unmodified SDK exactly as it talks to Alpaca. Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path

import pandas as pd

import trading_bot
from logger import run_dirs
from market_calendar import new_york_noon, nyse
from position_manager import StateStore
from signal_generator import zscore
from simbroker import Exchange, ExchangeConfig, serve
from simbroker.market_data import MarketData, from_frame


def flat_bars(symbol: str, closes: dict[date, float]) -> pd.DataFrame:
    """Daily bars whose open, high, low and close are the same: the intraday path is flat, so
    a limit at the price fills at once with a zero spread and never with a wider one."""
    return pd.DataFrame({
        "symbol": symbol, "date": [d.isoformat() for d in closes],
        "open": list(closes.values()), "high": list(closes.values()),
        "low": list(closes.values()), "close": list(closes.values()),
        "volume": 1_000_000})


def sessions(start: date, count: int) -> list[date]:
    cal = nyse()
    first = cal.session_on_or_after(start)
    out = [first.day]
    while len(out) < count:
        out.append(cal.next_session(out[-1]).day)
    return out


def zigzag(days: list[date], low: float = 100.0, high: float = 101.0) -> dict[date, float]:
    return {d: (low if i % 2 == 0 else high) for i, d in enumerate(days)}


def price_for_z(past: list[float], target: float) -> float:
    """The price (on the cent grid) whose z against `past` is closest to `target`."""
    lo, hi = min(past) - 50, max(past) + 50
    for _ in range(100):
        mid = (lo + hi) / 2
        if zscore(past, mid) < target:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 2)


def market(*frames: pd.DataFrame) -> MarketData:
    return from_frame(pd.concat(frames, ignore_index=True), name="test")


# Requests a minute per key for tests that are not about the request budget: the budget's
# headers are sent, but it never binds (test_rate_limits.py tests the budget itself).
TEST_RATE_LIMIT = 1_000_000


class Sim:
    """An exchange served on loopback, plus the bot's environment and log directory."""

    def __init__(self, tmp_path: Path, data: MarketData, start: date, **exchange: object):
        self.tmp_path = tmp_path
        self.log_dir = tmp_path / "logs"
        exchange.setdefault("rate_limit", TEST_RATE_LIMIT)  # headers sent, never binding
        self.exchange = Exchange(data, ExchangeConfig(**exchange), now=new_york_noon(start))
        self._stack = contextlib.ExitStack()
        self.server = self._stack.enter_context(serve(self.exchange, port=0))
        self.env = {
            "APCA_API_BASE_URL": self.server.trading_url,
            "APCA_API_DATA_URL": self.server.data_url,
            "ALPACA_API_KEY": self.exchange.config.key_id,
            "ALPACA_SECRET_KEY": self.exchange.config.secret_key,
            "FILL_WAIT_SECONDS": "0", "REQUEST_RETRIES": "1", "REQUEST_TIMEOUT_SECONDS": "10",
        }

    def close(self) -> None:
        self._stack.close()

    def run(self, day: date | None = None, *args: str, **env: str) -> int:
        """One daily run at noon of `day` (or at the exchange's current time)."""
        if day is not None and new_york_noon(day) > self.exchange.now:
            self.exchange.advance_to(new_york_noon(day))
        return trading_bot.main(["--log-dir", str(self.log_dir), *args],
                                environ={**self.env, **env})

    def broker_position(self, symbol: str) -> dict:
        """The exchange's view of a position, over HTTP, numbers parsed."""
        import requests

        raw = requests.get(f"{self.server.trading_url}/v2/positions/{symbol}",
                           headers={"APCA-API-KEY-ID": self.exchange.config.key_id,
                                    "APCA-API-SECRET-KEY": self.exchange.config.secret_key},
                           timeout=10).json()
        return {"qty": abs(float(raw["qty"])), "side": raw["side"]}

    @property
    def store(self) -> StateStore:
        return StateStore(self.log_dir)

    def trades(self) -> list[dict[str, str]]:
        return self.store.load_trades()

    def last_summary(self) -> dict:
        return json.loads((run_dirs(self.log_dir)[-1] / "summary.json").read_text())
