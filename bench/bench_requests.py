"""How many HTTP requests a daily run makes, and how long it takes, against the local exchange.

    .venv/bin/python bench/bench_requests.py [--repeat 5]

Prints, for universes of 50 and 500 symbols: the requests of a run without trades, of a run
with orders (and the extra requests per order), and the wall time of a 50-symbol run as a
separate process next to the time of merely importing the libraries it uses (medians of
`--repeat` runs each, and their ratio). Targets (issue "The daily mean-reversion bot"): at most
12 requests for 50 symbols without trades, at most 2 more per order, the same for 500 symbols
save bar pagination, and a run within 1.5x of the import time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market_calendar import new_york_noon, nyse  # noqa: E402
from simbroker import Exchange, ExchangeConfig, serve  # noqa: E402
from simbroker.synthetic import generate  # noqa: E402

DAY = date(2024, 3, 1)
IMPORTS = ("import alpaca_trade_api, pandas, numpy, pandas_market_calendars, dotenv, requests")


def exchange_for(symbols: int, *, flat: bool) -> Exchange:
    names = [f"S{i:04d}" for i in range(symbols)]
    first = nyse().sessions_before(DAY, 40)[0].day
    data = generate(names, start=first, sessions=41, seed=11, flat=names if flat else ())
    return Exchange(data, ExchangeConfig(spread_bps=0.0), now=new_york_noon(DAY))


def run_bot(server, ex: Exchange, log_dir: Path, symbols: int) -> float:
    env = {**os.environ, "APCA_API_BASE_URL": server.trading_url,
           "APCA_API_DATA_URL": server.data_url, "ALPACA_API_KEY": ex.config.key_id,
           "ALPACA_SECRET_KEY": ex.config.secret_key, "FILL_WAIT_SECONDS": "0",
           "TICKERS": ",".join(f"S{i:04d}" for i in range(symbols))}
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "trading_bot.py"), "--log-dir", str(log_dir)],
                   env=env, cwd=log_dir.parent, check=True, capture_output=True)
    return time.perf_counter() - start


def count_requests(symbols: int, *, flat: bool) -> tuple[Counter, int]:
    ex = exchange_for(symbols, flat=flat)
    with tempfile.TemporaryDirectory() as tmp, serve(ex, port=0) as server:
        run_bot(server, ex, Path(tmp) / "logs", symbols)
        log = server.requests()
    counts = Counter(f"{r['method']} {r['path'].split('?')[0]}" for r in log)
    orders = counts.get("POST /v2/orders", 0)
    return counts, orders


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    for symbols in (50, 500):
        quiet, _ = count_requests(symbols, flat=True)
        busy, orders = count_requests(symbols, flat=False)
        bars = quiet.get("GET /v2/stocks/bars", 0)
        extra = (sum(busy.values()) - sum(quiet.values())) / orders if orders else 0.0
        print(f"{symbols} symbols: {sum(quiet.values())} requests without trades "
              f"({bars} of them bar pages); with {orders} orders: {sum(busy.values())} "
              f"requests, {extra:.2f} more per order")
        for name, n in sorted(quiet.items()):
            print(f"    {n:3d}  {name}")

    import_times, run_times = [], []
    ex = exchange_for(50, flat=True)
    with tempfile.TemporaryDirectory() as tmp, serve(ex, port=0) as server:
        for i in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", IMPORTS], check=True)
            import_times.append(time.perf_counter() - start)
            run_times.append(run_bot(server, ex, Path(tmp) / f"logs{i}", 50))
    imp, run = statistics.median(import_times), statistics.median(run_times)
    print(f"50-symbol run as a process: median {run:.2f} s; importing its libraries: median "
          f"{imp:.2f} s; ratio {run / imp:.2f} (median of {args.repeat})")


if __name__ == "__main__":
    main()
