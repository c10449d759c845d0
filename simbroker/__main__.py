"""Run the local exchange standalone: ``python -m simbroker --port 8000``.

Options: ``--data us-stocks|splits|PATH`` (market data, default us-stocks), ``--start
DATE_OR_DATETIME`` (a bare YYYY-MM-DD is noon New York; default: noon of the 20th session of
the data, so the bot has history), ``--key K --secret S`` (default SIMKEY / SIMSECRET),
``--state FILE`` (continue from FILE if it exists; save it after every change and on
Ctrl-C), ``--spread-bps X``, ``--partial-fill-probability P``, ``--seed N``,
``--legacy-pdt`` (report and enforce the pattern day trader rule as before 2026-06-04).

It listens on 127.0.0.1 only and prints the environment a client needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Sequence

from market_calendar import new_york_noon, nyse, parse_date_or_datetime
from simbroker import market_data
from simbroker.exchange import Exchange
from simbroker.records import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, ExchangeConfig
from simbroker.server import serve

HISTORY_SESSIONS = 20


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simbroker", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    parser.add_argument("--data", default="us-stocks",
                        help="market data: us-stocks, splits, or a CSV file")
    parser.add_argument("--start", help="simulated start time (YYYY-MM-DD = noon New York)")
    parser.add_argument("--key", default=None, help=f"API key id (default {DEFAULT_KEY_ID})")
    parser.add_argument("--secret", default=None,
                        help=f"API secret key (default {DEFAULT_SECRET_KEY})")
    parser.add_argument("--state", help="state file: loaded if it exists, saved on changes")
    parser.add_argument("--spread-bps", type=float, default=ExchangeConfig.spread_bps)
    parser.add_argument("--partial-fill-probability", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-costs", action="store_true",
                        help="charge no borrow, SEC or FINRA fees (see simbroker/costs.py)")
    parser.add_argument("--borrow-rate", type=float, default=ExchangeConfig.borrow_rate,
                        help="yearly short borrow rate (default %(default)g)")
    parser.add_argument("--cash-interest-rate", type=float, default=0.0,
                        help="yearly interest on positive cash (default 0: none)")
    parser.add_argument("--legacy-pdt", action="store_true",
                        help="enforce and report pattern day trading as before 2026-06-04")
    return parser.parse_args(argv)


def build_exchange(args: argparse.Namespace) -> Exchange:
    data = market_data.load(args.data)
    credentials = {k: v for k, v in (("key_id", args.key), ("secret_key", args.secret)) if v}
    if args.state and os.path.exists(args.state):
        exchange = Exchange.load(args.state, data)
        if credentials:
            exchange.config = dataclasses.replace(exchange.config, **credentials)
        return exchange
    config = ExchangeConfig(spread_bps=args.spread_bps, seed=args.seed,
                            partial_fill_probability=args.partial_fill_probability,
                            legacy_pdt=args.legacy_pdt, charge_costs=not args.no_costs,
                            borrow_rate=args.borrow_rate,
                            cash_interest_rate=args.cash_interest_rate, **credentials)
    if args.start:
        start = parse_date_or_datetime(args.start)
    else:
        first = nyse().session_on_or_after(data.first_day).day
        days = nyse().sessions_between(first, data.last_day)
        start = new_york_noon(days[min(HISTORY_SESSIONS, len(days) - 1)].day)
    return Exchange(data, config, now=start)


def banner(args: argparse.Namespace, exchange: Exchange, url: str) -> str:
    secret = "<the secret you passed>" if args.secret else exchange.config.secret_key
    key = exchange.config.key_id
    return "\n".join([
        f"simbroker: {exchange.market_data.name} at {exchange.now.isoformat()}",
        f"  trading API: {url}", f"  market data: {url}", "",
        "Environment for a client:",
        f"APCA_API_BASE_URL={url}", f"APCA_API_DATA_URL={url}",
        f"APCA_API_KEY_ID={key}", f"APCA_API_SECRET_KEY={secret}", "",
        "Control endpoints: /_sim/clock, /_sim/faults, /_sim/requests, /_sim/reset, "
        "/_sim/save, /_sim/load (see simbroker/controls.py). Ctrl-C stops.",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        exchange = build_exchange(args)
    except ValueError as exc:
        print(f"simbroker: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve(exchange, args.port, state_path=args.state) as server:
        print(banner(args, exchange, server.trading_url), flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        if args.state:
            server.save(args.state)
            print(f"simbroker: state saved to {args.state}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
