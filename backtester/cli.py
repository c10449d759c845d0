"""The command line of backtest.py: arguments, the runs they ask for, files and summary."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import forked
from backtester.benchmark import SHIPPED_INDEX, resolve
from backtester.engine import Result, Settings, run_backtest
from backtester.outputs import period_stats, result_texts, stats_text
from backtester.params import ALIASES, STRATEGY_FIELDS, SYMMETRIC, build_config, parse_grid
from backtester.timings import Stopwatch
from config import Config, read_env
from errors import ConfigError, StateFileError
from market_calendar import nyse
from simbroker import market_data
from simbroker.costs import CostRates
from state_files import StagedFiles, StagedText
from version import VERSION

DESCRIPTION = "Backtest the bot's strategy on daily bars with its own decision code."
EPILOG = """Strategy defaults come from .env and the environment, as the bot reads them, then from
config.py; a sweep's names (--grid) are the options' names with underscores.

exit codes: 0 done, 1 an output file that cannot be written, 2 a bad option, setting or data
file (the message names the file or setting)

examples:
  python backtest.py --start 2019-01-01 --entry-z 2.0 --z-score-window 20 --out out/bt
  python backtest.py --grid entry_z=1.0,1.5,2.0 z_score_window=20,30,60 --split 2021-01-01
  python backtest.py --data my_bars.csv --symbols AAPL,MSFT --no-allow-shorts

older spellings still accepted: --window (--z-score-window), --size-usd (--position-size-usd),
--max-hold-days (--max-holding-days), and the same names in --grid."""
_SHORTHAND_HELP = {
    "entry_z": "entry threshold for both sides: 2.0 means long below -2.0, short above +2.0",
    "exit_z": "exit threshold for both sides (long exit -v, short exit +v)",
    "stop_z": "stop-loss threshold for both sides (long stop -v, short stop +v)",
}
_BASE = Config()
# A single run's report is written by a helper process beside its files from this many
# sessions x symbols on. The helper costs ~0.05 CPU seconds (the fork, pages faulted in again)
# and saves the shorter side, ~0.2 s per million: at 126,000 it measured even (README, Speed
# and memory). Tests lower it.
HELPER_MIN_CELLS = 500_000
OUTPUTS = ("trades.csv", "equity.csv", "stats.json", "report.html")  # in the order written
# What each strategy setting means; %s is its default in config.py.
_FIELD_HELP = {
    "z_score_window": "sessions in the z-score window (default %s)",
    "long_entry_z": "enter long when z is below this (default %s)",
    "short_entry_z": "enter short when z is above this (default %s)",
    "long_exit_z": "exit a long when z reaches this or more (default %s)",
    "short_exit_z": "exit a short when z reaches this or less (default %s)",
    "long_stop_z": "stop-loss: exit a long at this z or below (default %s)",
    "short_stop_z": "stop-loss: exit a short at this z or above (default %s)",
    "position_size_usd": "dollars per new position (default %s)",
    "max_holding_days": "exit after this many calendar days held (default %s)",
    "allow_shorts": "enter short positions too (default: %s)",
    "same_day_stop_loss": "allow a stop-loss exit on the day of entry (default: %s)",
    "max_entries_per_run": "most entries per day; 0 = no limit (default %s)",
    "max_open_positions": "most positions at once; 0 = no limit (default %s)",
    "max_gross_exposure_usd": "most dollars in positions; 0 = no limit (default %s)",
    "daily_loss_limit_usd": "no entries after losing this many dollars in a day; 0 = no limit "
                            "(default %s)",
    "entry_order_type": "entry orders: limit, marketable_limit, market, limit_on_close or "
                        "market_on_close (default %s)",
    "exit_order_type": "reversion and holding-limit exits: the same kinds (default %s)",
    "stop_order_type": "stop-loss exits: the same kinds (default %s)",
    "limit_offset_bps": "how far a marketable_limit goes through the quote, bps (default %s)",
    "exit_escalate_after_days": "unfilled exit days before one step more aggressive; 0 = never "
                                "(default %s)",
    "entry_partial_fill": "rest of a partly filled entry: keep_working or cancel_remainder "
                          "(default %s; no partial fills in a backtest)",
    "exit_partial_fill": "rest of a partly filled exit: keep_working, cancel_remainder or "
                         "finish_next_day (default %s; no partial fills in a backtest)",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backtest.py", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="us-stocks", metavar="NAME_OR_CSV",
                        help="a shipped dataset (us-stocks, sp500-2009, splits) or a long CSV file "
                             "symbol,date,open,high,low,close,volume (default us-stocks)")
    parser.add_argument("--start", type=_date, metavar="YYYY-MM-DD",
                        help="first decision day (default: the first day with a full z-score "
                             "window)")
    parser.add_argument("--end", type=_date, metavar="YYYY-MM-DD",
                        help="last decision day (default: the data's last day)")
    parser.add_argument("--symbols", metavar="A,B,...",
                        help="comma-separated universe (default: TICKERS that are in the data)")
    parser.add_argument("--out", default="out/backtest", type=Path, metavar="DIR",
                        help="output directory (default out/backtest)")
    parser.add_argument("--starting-cash", type=float, default=Settings.starting_cash,
                        metavar="USD", help="dollars (default %(default)g)")
    parser.add_argument("--spread-bps", type=float, default=Settings.spread_bps, metavar="BPS",
                        help="quoted spread in basis points (default: the local exchange's, "
                             "%(default)g)")
    parser.add_argument("--commission-usd", type=float, default=0.0, metavar="USD",
                        help="dollars per filled order (default 0)")
    parser.add_argument("--slippage-bps", type=float, default=0.0, metavar="BPS",
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
    parser.add_argument("--benchmark", default=SHIPPED_INDEX, metavar="FILE_OR_SYMBOL",
                        help="market benchmark: a CSV of date,close (e.g. SPY's closes), a "
                             "symbol of the data (e.g. SPY), 'none', or %(default)s (the "
                             "shipped S&P 500 index, 1990-2022, price return; default)")
    parser.add_argument("--grid", nargs="+", metavar="NAME=V1,V2",
                        help="sweep every combination, e.g. --grid entry_z=1.0,1.5 "
                             "z_score_window=20,30")
    parser.add_argument("--split", type=_date, metavar="YYYY-MM-DD",
                        help="walk-forward: statistics before this day (in-sample) and from it "
                             "(out-of-sample), side by side; a sweep is ranked by in-sample "
                             "Sharpe, out-of-sample figures beside it")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="processes to use: a sweep's workers, and one helper beside a "
                             "single run (default: BACKTEST_PROCESSES, else all cores; 1: "
                             "everything in this process)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the sweep on the Dask cluster whose scheduler is at ADDRESS, "
                             "e.g. tcp://10.0.0.5:8786 (needs requirements-dask.txt; see "
                             "README.md, Sweeps on a cluster)")
    parser.add_argument("--timings", action="store_true",
                        help="print how long each phase took (imports, load, calendar, "
                             "backtest, files, report; and, when a helper process wrote the "
                             "report beside the files, its own time) to stderr")
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    strategy = parser.add_argument_group("strategy (default: .env and the environment, as "
                                         "the bot reads them, else config.py's)")
    for name, text in _SHORTHAND_HELP.items():
        strategy.add_argument("--" + name.replace("_", "-"), dest=name, metavar="Z", help=text)
    for name in STRATEGY_FIELDS:
        default = getattr(_BASE, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            strategy.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                  default=None,
                                  help=_FIELD_HELP[name] % ("yes" if default else "no"))
        else:
            shown = default if isinstance(default, str) else f"{default:g}"
            strategy.add_argument(flag, dest=name, metavar=name.upper(),
                                  help=_FIELD_HELP[name] % shown)
    for alias in ALIASES:  # older spellings, kept working (see the epilog)
        strategy.add_argument("--" + alias.replace("_", "-"), dest=alias, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _processes_from(env: Mapping[str, str]) -> int | None:
    """BACKTEST_PROCESSES, the default of --processes (1: everything in this process)."""
    text = env.get("BACKTEST_PROCESSES", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"BACKTEST_PROCESSES={text!r} is not a number of processes; set it "
                         f"to 1 (everything in one process) or more, or unset it")
    return int(text)


def overrides(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Shorthands first, exact names after, so an exact name refines a shorthand."""
    names = [*SYMMETRIC, *ALIASES, *STRATEGY_FIELDS]
    return [(n, _text(getattr(args, n))) for n in names if getattr(args, n, None) is not None]


def _text(value: Any) -> str:
    """A flag's True/False as the setting's text."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def check_dates(args: argparse.Namespace, first_day: date, last_day: date) -> None:
    """Raise ValueError saying what was given and how to fix it."""
    if args.start and args.end and args.end < args.start:
        raise ValueError(f"--end {args.end} is before --start {args.start}; swap them")
    if args.start and args.start > last_day:
        raise ValueError(f"--start {args.start} is after the data's last day ({last_day}); "
                         f"give a --start from {first_day} to {last_day}")
    if args.end and args.end < first_day:
        raise ValueError(f"--end {args.end} is before the data's first day ({first_day}); "
                         f"give an --end from {first_day} to {last_day}")
    if args.split and not ((args.start or first_day) < args.split <= (args.end or last_day)):
        raise ValueError(f"--split {args.split} must fall after the start "
                         f"({args.start or first_day}) and no later than the end "
                         f"({args.end or last_day}), so both periods have days")


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
    except StateFileError as exc:  # an output that cannot be written; the old one stays
        print(f"backtest.py: error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, env: Mapping[str, str], watch: Stopwatch) -> int:
    processes = args.processes if args.processes is not None else _processes_from(env)
    if processes == 1:
        forked.disable()
    changes = overrides(args)
    config = build_config(env, changes)
    settings = Settings(starting_cash=args.starting_cash, spread_bps=args.spread_bps,
                        commission_usd=args.commission_usd, slippage_bps=args.slippage_bps,
                        costs=CostRates(enabled=not args.no_costs,
                                        borrow_rate=args.borrow_rate,
                                        cash_interest_rate=args.cash_interest_rate),
                        risk_free_rate=args.risk_free_rate,
                        benchmark=None)
    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()) \
        if args.symbols else None
    market = market_data.load(args.data)
    # A bad benchmark file stops here, before the backtest runs.
    settings = replace(settings, benchmark=resolve(args.benchmark, market))
    watch.lap("load")
    check_dates(args, market.first_day, market.last_day)
    nyse(market.first_day, market.last_day)  # built once; the backtest asks for the same
    watch.lap("calendar")
    grid = None
    axes: list[str] = []
    if args.scheduler and not args.grid:
        raise ValueError("--scheduler runs a sweep on a cluster; give the sweep with --grid")
    common = dict(start=args.start, end=args.end, symbols=symbols, settings=settings,
                  split=args.split)
    own: dict[str, Any] = {}

    def prepare(result: Result) -> None:
        """The command line's own run as the texts of its files and its report but for the
        sweep's part: in a sweep, made as soon as that run is known, while the last jobs use
        the other core."""
        own.update(_own_run(args, config, settings, market, result))
        own["charts"] = _charts(result)
        from backtester.report import page_start  # only to write one

        own["report"] = StagedText(args.out / "report.html",
                                   page_start(_page(market.name, own, result)))

    if args.grid:
        # Only a sweep needs its process pool, progress bar and table (~15 ms of imports).
        from backtester.sweep import Job, jobs_for, run_sweep

        spec = parse_grid(args.grid)
        axes = [name for name, _ in spec]
        try:
            sweep = run_sweep(market, jobs_for(spec, env, changes, **common),
                              Job(params=(), config=config, **common),
                              processes=processes, scheduler=args.scheduler,
                              on_base=prepare)
        except BaseException:
            if "report" in own:
                own["report"].abandon()
            raise
        grid, result = sweep.grid, sweep.base
    else:
        result = run_backtest(market, config, start=args.start, end=args.end, symbols=symbols,
                              settings=settings)
    watch.lap("sweep and backtest" if args.grid else "backtest")
    if grid is None:
        own.update(_own_stats(args, config, settings, market, result))
        name = market.name
        del market  # its bars are not needed any more: freed before a helper is forked
        _write_run(args.out, name, own, result, watch)
    else:
        _write_sweep(args.out, own, grid, axes, watch)
    stats, periods = own["stats"], own["periods"]
    print(summary_text({"backtest": stats, **(periods or {})}))
    if grid is not None:
        from backtester.sweep import ranked_text

        print("\n" + ranked_text(grid, axes))
    print(f"\ncomputed by: {result.engine}")
    print(f"wrote {args.out}/trades.csv, equity.csv, stats.json"
          f"{', grid.csv' if grid is not None else ''}, report.html")
    if args.timings:
        print(watch.text(), file=sys.stderr)
        if grid is not None and sweep.lanes:
            print(_lanes_text(sweep.lanes), file=sys.stderr)
    return 0


def _write_sweep(out: Path, own: Mapping[str, Any], grid: Any, axes: Sequence[str],
                 watch: Stopwatch) -> None:
    """A sweep's files, put in place together, then the end of its report (all but its end
    written while the last jobs ran)."""
    try:
        with StagedFiles(out, (*OUTPUTS[:3], "grid.csv")) as staged:
            _write_files(staged, own["texts"], own["full"])
            staged.write("grid.csv", grid.to_csv(index=False))
            staged.publish()
    except BaseException:
        own["report"].abandon()  # its staged start is not left behind
        raise
    watch.lap("files")
    from backtester.report import sweep_end

    own["report"].finish(sweep_end(grid, axes))
    watch.lap("report")


def _own_stats(args: argparse.Namespace, config: Config, settings: Settings,
               market: market_data.MarketData, result: Result) -> dict[str, Any]:
    """The statistics (whole run, and each period with --split) and stats.json's content of
    the run the command line asks for (milliseconds: made once, for the files, the report and
    the summary)."""
    stats: dict[str, Any] = period_stats(result)
    periods = None
    if args.split is not None:
        periods = {"in-sample": period_stats(result, None, args.split - timedelta(days=1)),
                   "out-of-sample": period_stats(result, args.split, None)}
    full = {**stats, "parameters": _parameters(config, settings, market, result),
            "engine": result.engine}
    if periods:
        full["in_sample"], full["out_of_sample"] = periods["in-sample"], \
            periods["out-of-sample"]
    return {"stats": stats, "periods": periods, "full": full}


def _lanes_text(lanes: Sequence[tuple[int, float, float]]) -> str:
    """e.g. ``sweep lanes: this process 5 runs, ended 4.52 s, CPU 4.49 s; child 1 ...``"""
    names = ["this process", *(f"child {n}" for n in range(1, len(lanes)))]
    return "sweep lanes: " + "; ".join(
        f"{name} {runs} runs, ended {end:.3f} s, CPU {cpu:.3f} s"
        for name, (runs, end, cpu) in zip(names, lanes, strict=True))


def _own_run(args: argparse.Namespace, config: Config, settings: Settings,
             market: market_data.MarketData, result: Result) -> dict[str, Any]:
    """`_own_stats` and the texts of trades.csv and equity.csv."""
    return {**_own_stats(args, config, settings, market, result),
            "texts": result_texts(result)}


def _write_run(out: Path, name: str, own: Mapping[str, Any], result: Result,
               watch: Stopwatch) -> None:
    """A single run's files and its report, put in place together once all are written: the
    report by a forked helper beside the files where that helps (`forked.can_fork`, from
    HELPER_MIN_CELLS on), else after them, to the same bytes. An error on either side is the
    same error as in one process, and leaves every file of `out` as it was; a helper that
    ends without a word (killed) only costs the time of the report, then written here."""
    with StagedFiles(out, OUTPUTS) as staged:
        if forked.can_fork() and len(result.sessions) * len(result.symbols) >= HELPER_MIN_CELLS:
            forked.release_memory()  # the backtest's freed memory, not copied on write
            with forked.Child(_timed, _write_report, staged, name, own, result) as helper:
                _write_files(staged, result_texts(result), own["full"])
                watch.lap("files")
                try:
                    watch.note("report in the helper", helper.join())
                except ChildProcessError as died:  # killed (e.g. out of memory), not failed
                    print(f"backtest.py: {died}; the report is written by this process "
                          "instead", file=sys.stderr)
                    _write_report(staged, name, own, result)
        else:
            _write_files(staged, result_texts(result), own["full"])
            watch.lap("files")
            _write_report(staged, name, own, result)
        staged.publish()
    watch.lap("report")


def _timed(fn: Callable[..., object], *args: Any) -> float:
    """Seconds `fn(*args)` took (what a helper hands back)."""
    began = time.perf_counter()
    fn(*args)
    return time.perf_counter() - began


def _write_files(staged: StagedFiles, texts: Mapping[str, str], full: Mapping[str, Any],
                 ) -> None:
    """trades.csv and equity.csv (`texts`) and stats.json (of `full`), staged."""
    for file, text in texts.items():
        staged.write(file, text)
    staged.write("stats.json", stats_text(full))


def _write_report(staged: StagedFiles, name: str, own: Mapping[str, Any],
                  result: Result) -> None:
    staged.write("report.html", _page(name, own, result))


def _page(name: str, own: Mapping[str, Any], result: Result) -> str:
    """The report of the command line's own run (of the data `name`), without a sweep's part
    (report.with_sweep adds it)."""
    from backtester.report import build_report  # only to write one

    stats = own["stats"]
    return build_report(result, stats, title=f"Backtest {name}, {stats['start']} to "
                        f"{stats['end']}", periods=own["periods"],
                        parameters=own["full"]["parameters"],
                        charts=own.get("charts") or _charts(result))


def _charts(result: Result) -> list[str]:
    from backtester.report import result_charts  # only to write a report

    return result_charts(result)


def _parameters(config: Config, settings: Settings, market: market_data.MarketData,
                result) -> dict[str, Any]:
    strategy = {name: getattr(config, name) for name in STRATEGY_FIELDS}
    return {"data": market.name, "symbols": list(result.symbols), **strategy,
            "starting_cash": settings.starting_cash, "spread_bps": settings.spread_bps,
            "commission_usd": settings.commission_usd, "slippage_bps": settings.slippage_bps,
            "risk_free_rate": settings.risk_free_rate,
            "benchmark": settings.benchmark.name if settings.benchmark else None,
            "costs": {"charged": settings.costs.enabled,
                      "borrow_rate": settings.costs.borrow_rate,
                      "sec_fee_per_dollar": settings.costs.sec_fee_per_dollar,
                      "taf_per_share": settings.costs.taf_per_share,
                      "taf_max_per_trade": settings.costs.taf_max_per_trade,
                      "cash_interest_rate": settings.costs.cash_interest_rate}}


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
