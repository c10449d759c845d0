"""The local exchange's `POST /v2/orders` rate as orders pile up.

    .venv/bin/python bench/bench_order_rate.py [--orders 4000] [--batch 500] [--no-state]

Serves an exchange on synthetic data (with a `--state` file, journaled, as `python -m
simbroker --state` runs, unless --no-state) and posts market orders of one share, buys and
sells alternating (each fills at once), over one keep-alive HTTP connection. Prints the rate
of each batch of `--batch` orders and the ratio of the last batch's rate to the first's.
Target: flat (ratio near 1): placing an order does not depend on the orders before it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market_calendar import new_york_noon, nyse  # noqa: E402
from simbroker import Exchange, ExchangeConfig, serve  # noqa: E402
from simbroker.synthetic import generate  # noqa: E402

DAY = date(2024, 3, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--no-state", action="store_true", help="serve without a state file")
    args = parser.parse_args()
    first = nyse().sessions_before(DAY, 5)[0].day
    data = generate(["S0000", "S0001"], start=first, sessions=6, seed=3)
    exchange = Exchange(data, ExchangeConfig(spread_bps=0.0, starting_cash=1e9),
                        now=new_york_noon(DAY))
    headers = {"APCA-API-KEY-ID": exchange.config.key_id,
               "APCA-API-SECRET-KEY": exchange.config.secret_key}
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        state = None if args.no_state else str(Path(tmp) / "exchange.json")
        with serve(exchange, state_path=state) as server, requests.Session() as session:
            url = server.trading_url + "/v2/orders"
            for start in range(0, args.orders, args.batch):
                began = time.perf_counter()
                for i in range(start, start + args.batch):
                    answer = session.post(url, headers=headers, timeout=30, json={
                        "symbol": "S0000", "qty": "1", "side": "buy" if i % 2 == 0 else "sell",
                        "type": "market", "time_in_force": "day"})
                    answer.raise_for_status()
                rate = args.batch / (time.perf_counter() - began)
                rates.append(rate)
                print(f"orders {start + 1:5d}-{start + args.batch:5d}: {rate:7.1f} /s",
                      flush=True)
    print(f"state file: {'none' if args.no_state else 'journaled'}; last batch / first batch: "
          f"{rates[-1] / rates[0]:.2f}")


if __name__ == "__main__":
    main()
