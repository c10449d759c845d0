"""Run the local exchange standalone: ``python -m simbroker --port 8000``.

Options: ``--data us-stocks|splits|PATH`` (market data, default us-stocks), ``--start
DATE_OR_DATETIME`` (a bare YYYY-MM-DD is noon New York; default: noon of the 20th session of
the data, so the bot has history), ``--key K --secret S`` (default SIMKEY / SIMSECRET; or
the environment's SIMBROKER_KEY_ID / SIMBROKER_SECRET_KEY, or ``--keys-file FILE`` with the
key id on its first line and the secret on its second, so that they do not show in `ps`),
``--state FILE`` (continue from FILE if it exists; save it after every change and on
Ctrl-C), ``--spread-bps X``, ``--partial-fill-probability P``, ``--seed N``,
``--legacy-pdt`` (report and enforce the pattern day trader rule as before 2026-06-04),
``--legacy-assets`` (assets with the deprecated easy_to_borrow and
maintenance_margin_requirement), ``--plan free|unlimited`` (the market-data plan, default
free), ``--rate-limit N --rate-window-seconds S`` (requests per key and API, default 200 per
60 s; 0 for none).

It listens on 127.0.0.1 only and prints the environment a client needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

from market_calendar import new_york_noon, nyse, parse_date_or_datetime
from simbroker import market_data
from simbroker.exchange import Exchange
from simbroker.records import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, ExchangeConfig
from simbroker.server import serve
from version import VERSION

HISTORY_SESSIONS = 20


EPILOG = """exit codes: 0 stopped (Ctrl-C or SIGTERM), 2 bad options or market data

examples:
  python -m simbroker --port 8000
  python -m simbroker --port 0 --start 2022-03-01 --state /tmp/exchange.json
  python -m simbroker --data splits --spread-bps 0 --seed 7"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simbroker", description=__doc__.split(
        "\n")[0], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000,
                        help="TCP port on 127.0.0.1 (0: any free port; default %(default)s)")
    parser.add_argument("--data", default="us-stocks", metavar="NAME_OR_CSV",
                        help="market data: us-stocks, sp500-2009, splits, or a long CSV file "
                             "symbol,date,open,high,low,close,volume (default %(default)s)")
    parser.add_argument("--start", metavar="DATE_OR_DATETIME",
                        help="simulated start: YYYY-MM-DD is noon New York, or an ISO time "
                             f"with its zone (default: noon of the data's {HISTORY_SESSIONS}th "
                             "session, so a bot has history)")
    parser.add_argument("--key", default=None, help=f"API key id (default {DEFAULT_KEY_ID})")
    parser.add_argument("--secret", default=None,
                        help=f"API secret key (default {DEFAULT_SECRET_KEY})")
    parser.add_argument("--keys-file", metavar="FILE",
                        help="the key id on line 1 and the secret on line 2 (not shown in ps; "
                             "or set SIMBROKER_KEY_ID / SIMBROKER_SECRET_KEY)")
    parser.add_argument("--state", metavar="FILE",
                        help="state file: continued from if it exists, saved after every "
                             "change and on stop (default: none, state in memory only)")
    parser.add_argument("--spread-bps", type=float, default=ExchangeConfig.spread_bps,
                        metavar="BPS",
                        help="quoted spread around each price, in basis points "
                             "(default %(default)g)")
    parser.add_argument("--partial-fill-probability", type=float, default=0.0, metavar="P",
                        help="chance in [0, 1] that a fill is partial (default %(default)g)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the exchange's random draws: the same seed gives the "
                             "same fills (default %(default)s)")
    parser.add_argument("--no-costs", action="store_true",
                        help="charge no borrow, SEC or FINRA fees (see simbroker/costs.py)")
    parser.add_argument("--borrow-rate", type=float, default=ExchangeConfig.borrow_rate,
                        help="yearly short borrow rate (default %(default)g)")
    parser.add_argument("--cash-interest-rate", type=float, default=0.0,
                        help="yearly interest on positive cash (default 0: none)")
    parser.add_argument("--legacy-pdt", action="store_true",
                        help="enforce and report pattern day trading as before 2026-06-04")
    parser.add_argument("--legacy-assets", action="store_true",
                        help="send easy_to_borrow and maintenance_margin_requirement on assets")
    parser.add_argument("--plan", choices=("free", "unlimited"), default="free",
                        help="market-data plan: free (IEX real time, SIP 15+ minutes old) or "
                             "unlimited (default free)")
    parser.add_argument("--rate-limit", type=int, default=ExchangeConfig.rate_limit,
                        metavar="N", help="requests per key and API (trading, market data) in "
                                          "each window; 0: no limit (default %(default)s)")
    parser.add_argument("--rate-window-seconds", type=float,
                        default=ExchangeConfig.rate_window_seconds, metavar="S",
                        help="length of a rate-limit window in seconds (default %(default)g)")
    parser.add_argument("--rejection-probability", type=float, default=0.0,
                        help="share of orders rejected after their POST answer (seeded)")
    parser.add_argument("--acceptance-delay-seconds", type=float, default=0.0,
                        help="simulated seconds before a pending_new order is accepted")
    parser.add_argument("--synchronous", action="store_true",
                        help="answer a POST with new, and a marketable order's fill in it")
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    return parser.parse_args(argv)


def credentials_from(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    """The keys given: flags first, then the keys file, then the environment."""
    from_file: list[str] = []
    if args.keys_file:
        try:
            with open(args.keys_file, encoding="utf-8") as handle:
                from_file = [line.strip() for line in handle.read().splitlines()]
        except OSError as exc:
            raise ValueError(f"--keys-file {args.keys_file}: cannot be read ({exc.strerror})") \
                from None
        if len(from_file) < 2 or not from_file[0] or not from_file[1]:
            raise ValueError(f"--keys-file {args.keys_file}: give the key id on line 1 and the "
                             "secret on line 2")
    key = args.key or (from_file[0] if from_file else None) or env.get("SIMBROKER_KEY_ID")
    secret = args.secret or (from_file[1] if from_file else None) \
        or env.get("SIMBROKER_SECRET_KEY")
    return {k: v for k, v in (("key_id", key), ("secret_key", secret)) if v}


def build_exchange(args: argparse.Namespace,
                   env: Mapping[str, str] | None = None) -> Exchange:
    data = market_data.load(args.data)
    credentials = credentials_from(args, os.environ if env is None else env)
    if args.state and os.path.exists(args.state):
        exchange = Exchange.load(args.state, data)
        if credentials:
            exchange.config = dataclasses.replace(exchange.config, **credentials)
        return exchange
    config = ExchangeConfig(spread_bps=args.spread_bps, seed=args.seed,
                            partial_fill_probability=args.partial_fill_probability,
                            legacy_pdt=args.legacy_pdt, legacy_assets=args.legacy_assets,
                            plan=args.plan, rate_limit=args.rate_limit,
                            rate_window_seconds=args.rate_window_seconds,
                            charge_costs=not args.no_costs, borrow_rate=args.borrow_rate,
                            cash_interest_rate=args.cash_interest_rate,
                            rejection_probability=args.rejection_probability,
                            acceptance_delay_seconds=args.acceptance_delay_seconds,
                            async_acceptance=not args.synchronous, **credentials)
    if args.start:
        start = parse_date_or_datetime(args.start)
    else:
        first = nyse().session_on_or_after(data.first_day).day
        days = nyse().sessions_between(first, data.last_day)
        start = new_york_noon(days[min(HISTORY_SESSIONS, len(days) - 1)].day)
    return Exchange(data, config, now=start)


def banner(args: argparse.Namespace, exchange: Exchange, url: str) -> str:
    given = exchange.config.secret_key != DEFAULT_SECRET_KEY
    secret = "<the secret you passed>" if given else exchange.config.secret_key
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
