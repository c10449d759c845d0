"""Benchmark: the SDK's get_bars over HTTP from the local exchange.

Serves 60 daily bars of 500 synthetic symbols (30,000 bars) and times
``alpaca_trade_api.REST.get_bars(<500 symbols>, "1Day", start, end)`` - the SDK follows
next_page_token through 30 pages of Alpaca's default 1,000 bars. Each run uses a new clock
instant, so no run is served from the previous run's cache. Not a test; run it with

    .venv/bin/python bench/bench_bars.py [--runs 7] [--symbols 500] [--sessions 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import alpaca_trade_api  # noqa: E402

from market_calendar import NEW_YORK  # noqa: E402
from simbroker import Exchange, ExchangeConfig, serve, synthetic  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=60)
    args = parser.parse_args()
    data = synthetic.generate(args.symbols, start=date(2022, 1, 3), sessions=args.sessions,
                              seed=1)
    after_close = _evening(data.last_day)
    exchange = Exchange(data, ExchangeConfig(), now=after_close)
    symbols = list(data.symbols)
    times = []
    with serve(exchange) as server:
        os.environ["APCA_API_DATA_URL"] = server.data_url
        api = alpaca_trade_api.REST("SIMKEY", "SIMSECRET", base_url=server.trading_url)
        for run in range(args.runs):
            server.advance_to(after_close + timedelta(seconds=run + 1))  # defeat the cache
            started = time.perf_counter()
            bars = api.get_bars(symbols, "1Day", data.first_day.isoformat(),
                                data.last_day.isoformat())
            times.append(time.perf_counter() - started)
            expected = args.symbols * args.sessions
            if len(bars) != expected:
                raise SystemExit(f"got {len(bars)} bars, expected {expected}")
        pages = server.request_counts().get("GET /v2/stocks/bars", 0) // args.runs
    median = statistics.median(times)
    print(f"{args.symbols} symbols x {args.sessions} daily bars = {len(bars)} bars in "
          f"{pages} pages per run; {args.runs} runs")
    print(f"median {median:.3f} s (min {min(times):.3f}, max {max(times):.3f}); "
          f"{len(bars) / median:,.0f} bars/s")
    return 0


def _evening(day: date) -> datetime:
    return datetime.combine(day, clock_time(18, 0), tzinfo=NEW_YORK)


if __name__ == "__main__":
    sys.exit(main())
