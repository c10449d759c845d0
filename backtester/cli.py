"""The command line of backtest.py: arguments, the runs they ask for, files and summary."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from backtester.engine import Settings, run_backtest
from backtester.outputs import period_stats, write_results, write_stats
from backtester.params import ALIASES, STRATEGY_FIELDS, SYMMETRIC, build_config, parse_grid
from backtester.report import build_report, stat_rows, write_report
from backtester.sweep import jobs_for, run_sweep
from config import Config, read_env
from errors import ConfigError
from simbroker import market_data
from simbroker.costs import CostRates
from state_files import atomic_write_text

DESCRIPTION = "Backtest the bot's strategy on daily bars with its own decision code."
_SHORTHAND_HELP = {
    "entry_z": "entry threshold for both sides: 2.0 means long below -2.0, short above +2.0",
    "exit_z": "exit threshold for both sides (long exit -v, short exit +v)",
    "stop_z": "stop-loss threshold for both sides (long stop -v, short stop +v)",
    "window": "z-score window in sessions (Z_SCORE_WINDOW)",
    "size_usd": "dollars per position (POSITION_SIZE_USD)",
    "max_hold_days": "maximum holding period in calendar days (MAX_HOLDING_DAYS)",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backtest.py", description=DESCRIPTION)
    parser.add_argument("--data", default="us-stocks",
                        help="a shipped dataset (us-stocks, splits) or a long CSV file "
                             "symbol,date,open,high,low,close,volume (default us-stocks)")
    parser.add_argument("--start", type=_date, help="first decision day (YYYY-MM-DD; default: "
                        "the first day with a full z-score window)")
    parser.add_argument("--end", type=_date, help="last decision day (default: end of data)")
    parser.add_argument("--symbols", help="comma-separated universe (default: TICKERS that "
                        "are in the data)")
    parser.add_argument("--out", default="out/backtest", type=Path,
                        help="output directory (default out/backtest)")
    parser.add_argument("--starting-cash", type=float, default=Settings.starting_cash,
                        help="dollars (default %(default)g)")
    parser.add_argument("--spread-bps", type=float, default=Settings.spread_bps,
                        help="quoted spread in basis points (default: the local exchange's, "
                             "%(default)g)")
    parser.add_argument("--commission-usd", type=float, default=0.0,
                        help="dollars per filled order (default 0)")
    parser.add_argument("--slippage-bps", type=float, default=0.0,
                        help="basis points by which every fill is worse (default 0)")
    parser.add_argument("--no-costs", action="store_true",
                        help="charge no borrow, SEC or FINRA fees (default: charged as Alpaca "
                             "does, see simbroker/costs.py)")
    parser.add_argument("--borrow-rate", type=float, default=CostRates.borrow_rate,
                        help="yearly short borrow rate (default %(default)g)")
    parser.add_argument("--cash-interest-rate", type=float, default=0.0,
                        help="yearly interest on positive cash (default 0: none)")
    parser.add_argument("--risk-free-rate", type=float, default=0.0,
                        help="yearly risk-free rate the Sharpe ratio is measured over "
                             "(default 0)")
    parser.add_argument("--grid", nargs="+", metavar="NAME=V1,V2",
                        help="sweep every combination, e.g. --grid entry_z=1.0,1.5 window=20,30")
    parser.add_argument("--split", type=_date, help="walk-forward: statistics before this day "
                        "(in-sample) and from it (out-of-sample), side by side")
    parser.add_argument("--processes", type=int, help="sweep processes (default: all cores)")
    strategy = parser.add_argument_group("strategy (default: .env and the environment, as "
                                         "the bot reads them)")
    for name, text in _SHORTHAND_HELP.items():
        strategy.add_argument("--" + name.replace("_", "-"), dest=name, help=text)
    for name in STRATEGY_FIELDS:
        strategy.add_argument("--" + name.replace("_", "-"), dest=name,
                              help=f"{name.upper()} (see config.py)")
    return parser.parse_args(argv)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def overrides(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Shorthands first, exact names after, so an exact name refines a shorthand."""
    names = [*SYMMETRIC, *ALIASES, *STRATEGY_FIELDS]
    return [(n, getattr(args, n)) for n in names if getattr(args, n, None) is not None]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _run(args, read_env(".env", environ))
    except (ConfigError, ValueError) as exc:
        print(f"backtest.py: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    changes = overrides(args)
    config = build_config(env, changes)
    settings = Settings(starting_cash=args.starting_cash, spread_bps=args.spread_bps,
                        commission_usd=args.commission_usd, slippage_bps=args.slippage_bps,
                        costs=CostRates(enabled=not args.no_costs,
                                        borrow_rate=args.borrow_rate,
                                        cash_interest_rate=args.cash_interest_rate),
                        risk_free_rate=args.risk_free_rate)
    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()) \
        if args.symbols else None
    market = market_data.load(args.data)
    grid = None
    axes: list[str] = []
    if args.grid:
        spec = parse_grid(args.grid)
        axes = [name for name, _ in spec]
        jobs = jobs_for(spec, env, changes, data=args.data, start=args.start, end=args.end,
                        symbols=symbols, settings=settings, split=args.split)
        grid = run_sweep(jobs, args.processes)
    result = run_backtest(market, config, start=args.start, end=args.end, symbols=symbols,
                          settings=settings)
    stats: dict[str, Any] = period_stats(result)
    periods = None
    if args.split is not None:
        periods = {"in-sample": period_stats(result, None, args.split - timedelta(days=1)),
                   "out-of-sample": period_stats(result, args.split, None)}
    out: Path = args.out
    write_results(result, out, stats)
    full = {**stats, "parameters": _parameters(config, settings, market, result),
            "engine": result.engine}
    if periods:
        full["in_sample"], full["out_of_sample"] = periods["in-sample"], \
            periods["out-of-sample"]
    write_stats(out / "stats.json", full)
    if grid is not None:
        atomic_write_text(out / "grid.csv", grid.to_csv(index=False))
    title = f"Backtest {market.name}, {stats['start']} to {stats['end']}"
    write_report(out / "report.html", build_report(result, stats, title=title, periods=periods,
                                                   grid=grid, grid_axes=axes))
    print(summary_text({"backtest": stats, **(periods or {})}))
    print(f"\ncomputed by: {result.engine}")
    print(f"wrote {out}/trades.csv, equity.csv, stats.json"
          f"{', grid.csv' if grid is not None else ''}, report.html")
    return 0


def _parameters(config: Config, settings: Settings, market: market_data.MarketData,
                result) -> dict[str, Any]:
    strategy = {name: getattr(config, name) for name in STRATEGY_FIELDS}
    return {"data": market.name, "symbols": list(result.symbols), **strategy,
            "starting_cash": settings.starting_cash, "spread_bps": settings.spread_bps,
            "commission_usd": settings.commission_usd, "slippage_bps": settings.slippage_bps,
            "risk_free_rate": settings.risk_free_rate,
            "costs": {"charged": settings.costs.enabled,
                      "borrow_rate": settings.costs.borrow_rate,
                      "sec_fee_per_dollar": settings.costs.sec_fee_per_dollar,
                      "taf_per_share": settings.costs.taf_per_share,
                      "taf_max_per_trade": settings.costs.taf_max_per_trade,
                      "cash_interest_rate": settings.costs.cash_interest_rate}}


def summary_text(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """The statistics as an aligned text table, one column per period."""
    names = list(columns)
    values = {n: {k: v for k, _, v in stat_rows(columns[n])} for n in names}
    labels = {k: label for n in names for k, label, _ in stat_rows(columns[n])}
    width = max(len(label) for label in labels.values())
    cells = [max(len(n), *(len(values[n].get(k, "")) for k in labels)) for n in names]
    lines = [" " * width + "  " + "  ".join(n.rjust(c) for n, c in zip(names, cells,
                                                                         strict=True))]
    for key, label in labels.items():
        row = "  ".join(values[n].get(key, "").rjust(c) for n, c in zip(names, cells,
                                                                         strict=True))
        lines.append(f"{label.ljust(width)}  {row}")
    return "\n".join(lines)
