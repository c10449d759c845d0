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
from backtester.sweep import Job, jobs_for, ranked_text, run_sweep
from backtester.timings import Stopwatch
from config import Config, read_env
from errors import ConfigError
from market_calendar import nyse
from simbroker import market_data
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
    parser.add_argument("--grid", nargs="+", metavar="NAME=V1,V2",
                        help="sweep every combination, e.g. --grid entry_z=1.0,1.5 window=20,30")
    parser.add_argument("--split", type=_date, help="walk-forward: statistics before this day "
                        "(in-sample) and from it (out-of-sample), side by side")
    parser.add_argument("--timings", action="store_true",
                        help="print how long each phase took (imports, load, backtest, files, "
                             "report) to stderr")
    parser.add_argument("--processes", type=int, help="sweep processes (default: all cores)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the sweep on the Dask cluster whose scheduler is at ADDRESS, "
                             "e.g. tcp://10.0.0.5:8786 (needs requirements-dask.txt; see "
                             "README.md, Sweeps on a cluster)")
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


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, *,
         started: float | None = None) -> int:
    """`started`: a perf_counter() reading from before the imports, for --timings."""
    watch = Stopwatch(started)
    if started is not None:
        watch.lap("imports")
    args = parse_args(argv)
    try:
        return _run(args, read_env(".env", environ), watch)
    except (ConfigError, ValueError) as exc:
        print(f"backtest.py: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, env: Mapping[str, str], watch: Stopwatch) -> int:
    changes = overrides(args)
    config = build_config(env, changes)
    settings = Settings(starting_cash=args.starting_cash, spread_bps=args.spread_bps,
                        commission_usd=args.commission_usd, slippage_bps=args.slippage_bps)
    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()) \
        if args.symbols else None
    market = market_data.load(args.data)
    watch.lap("load")
    nyse(market.first_day, market.last_day)  # built once; the backtest asks for the same
    watch.lap("calendar")
    grid = None
    axes: list[str] = []
    if args.scheduler and not args.grid:
        raise ValueError("--scheduler runs a sweep on a cluster; give the sweep with --grid")
    common = dict(start=args.start, end=args.end, symbols=symbols, settings=settings,
                  split=args.split)
    if args.grid:
        spec = parse_grid(args.grid)
        axes = [name for name, _ in spec]
        sweep = run_sweep(market, jobs_for(spec, env, changes, **common),
                          Job(params=(), config=config, **common), processes=args.processes,
                          scheduler=args.scheduler)
        grid, result = sweep.grid, sweep.base
    else:
        result = run_backtest(market, config, start=args.start, end=args.end, symbols=symbols,
                              settings=settings)
    watch.lap("sweep and backtest" if args.grid else "backtest")
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
    watch.lap("files")
    title = f"Backtest {market.name}, {stats['start']} to {stats['end']}"
    from backtester.report import build_report, write_report  # plotly: only to write one

    write_report(out / "report.html", build_report(result, stats, title=title, periods=periods,
                                                   grid=grid, grid_axes=axes))
    watch.lap("report")
    print(summary_text({"backtest": stats, **(periods or {})}))
    if grid is not None:
        print("\n" + ranked_text(grid, axes))
    print(f"\ncomputed by: {result.engine}")
    print(f"wrote {out}/trades.csv, equity.csv, stats.json"
          f"{', grid.csv' if grid is not None else ''}, report.html")
    if args.timings:
        print(watch.text(), file=sys.stderr)
    return 0


def _parameters(config: Config, settings: Settings, market: market_data.MarketData,
                result) -> dict[str, Any]:
    strategy = {name: getattr(config, name) for name in STRATEGY_FIELDS}
    return {"data": market.name, "symbols": list(result.symbols), **strategy,
            "starting_cash": settings.starting_cash, "spread_bps": settings.spread_bps,
            "commission_usd": settings.commission_usd, "slippage_bps": settings.slippage_bps}


def summary_text(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """The statistics as an aligned text table, one column per period."""
    names = list(columns)
    from backtester.report import stat_rows

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
