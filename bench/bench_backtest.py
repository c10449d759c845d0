"""Benchmark: the backtester against backtrader 1.9.78, and the backtester on 2.5 M bars.

1. Both engines on the same seeded synthetic bars (`simbroker.synthetic`, 50 symbols x 2,520
   sessions) with the same rules: 30-session z-score window, entry at |z| > 1.5, exit at
   |z| < 0.1 on the mean's side, stop at |z| >= 3, at most 5 calendar days held, $100 per
   position, limit DAY orders at the current price. backtrader decides at each bar's close
   and fills on the next bar (it has no intraday path); the backtester decides at noon as the
   bot does. The medians of a few runs and their ratio are printed.
2. The backtester alone on 500 symbols x 5,000 sessions (2.5 M bars), in a child process,
   after one warm-up run: median time of the backtest with $100,000 (the strategy loses its
   cash on this data by 2001, so from there the account binds and the day loop runs) and
   with $10,000,000 (it never binds), each as it runs (a forked helper process computing
   half of the per-symbol work where that pays, `Result.helper`) and in one process
   (BACKTEST_PROCESSES=1), run by run in turn, with CPU seconds of the process and its
   helpers and the ratio taken run by run; the child's peak resident memory over those
   backtests (getrusage, data included, a helper's own pages apart; taken before the traced
   run, whose bookkeeping would add to it) and the peak of traced allocations during one
   more backtest (tracemalloc).

3. What a user gets from `python backtest.py`: the configuration's default order settings
   (marketable-limit exits, market stops, escalation after a day) on the same 126,000 bars,
   and the whole default backtest on the shipped data (25 symbols 2013-2022, 19 of them
   closes-only, whose paths are Brownian bridges: the fills without a closed form).

Each line says how the backtest was computed (`Result.engine`: the per-symbol timelines,
the day loop, or timelines up to the day the account could bind and the day loop after) and
whether a helper process took a share.

Not a test. Needs backtrader (pip install -r requirements-bench.txt):

    .venv/bin/python bench/bench_backtest.py [--runs 7] [--backtrader-runs 3] [--skip-large]
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# backtrader 1.9.78 still reads collections.Iterable (moved to collections.abc in Python 3.3,
# gone from collections since 3.10): put the names back before importing it.
for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import backtrader as bt  # noqa: E402
import numpy as np  # noqa: E402

# The rules (DAY limits at the current price for every purpose, as backtrader is given), the
# order settings they fix and the seed: one definition for every benchmark (bench/ab.py).
from ab import ORDER_RULES as ORDER_SETTINGS  # noqa: E402
from ab import RULES, SEED  # noqa: E402

from backtester import Settings, run_backtest  # noqa: E402
from config import load_config  # noqa: E402
from market_calendar import nyse  # noqa: E402
from simbroker import market_data, synthetic  # noqa: E402

START = date(2000, 1, 3)


def backtest_seconds(market, runs: int, settings: Settings | None = None, *,
                     rules: dict[str, str] | None = None,
                     all_symbols: bool = True) -> tuple[float, int, str]:
    """Median seconds, trades, and how the backtest was computed (`how`)."""
    rules = RULES if rules is None else rules
    config = load_config({**rules, "TICKERS": market.symbols[0]} if all_symbols else rules)
    symbols = market.symbols if all_symbols else None
    times, trades = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        result = run_backtest(market, config, symbols=symbols, settings=settings)
        times.append(time.perf_counter() - began)
        trades = len(result.trades)
    return statistics.median(times), trades, how(result)


def how(result) -> str:
    """Result.engine, and whether a helper process computed a share (Result.helper)."""
    return f"{result.engine}; {'a helper process' if result.helper else 'one process'}"


def cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for (the helpers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def paired_seconds(market, runs: int, settings: Settings | None = None) -> dict[str, object]:
    """The backtest as it runs (a helper process where it pays) and in one process
    (BACKTEST_PROCESSES=1), run by run in turn: median wall and CPU seconds of each."""
    config = load_config({**RULES, "TICKERS": market.symbols[0]})
    found: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []}
                                                for k in ("default", "one")}
    out: dict[str, object] = {}
    for _ in range(runs):
        for key in ("default", "one"):
            if key == "one":
                os.environ["BACKTEST_PROCESSES"] = "1"
            cpu, began = cpu_seconds(), time.perf_counter()
            result = run_backtest(market, config, symbols=market.symbols, settings=settings)
            found[key]["wall"].append(time.perf_counter() - began)
            found[key]["cpu"].append(cpu_seconds() - cpu)
            os.environ.pop("BACKTEST_PROCESSES", None)
            out[f"{key}_how"] = how(result)
            out["trades"] = len(result.trades)
    for key, times in found.items():
        out[f"{key}_seconds"] = statistics.median(times["wall"])
        out[f"{key}_range"] = (min(times["wall"]), max(times["wall"]))
        out[f"{key}_cpu"] = statistics.median(times["cpu"])
    out["ratio"] = statistics.median(
        [b / a for a, b in zip(found["default"]["wall"], found["one"]["wall"], strict=True)])
    return out


# -- backtrader ---------------------------------------------------------------------------

class MeanReversion(bt.Strategy):
    """The rules above in backtrader's terms: decide at each close, limit DAY orders at it."""

    params = dict(window=30, entry=1.5, exit=0.1, stop=3.0, hold=5, size=100.0)

    def __init__(self):
        self.pending, self.entered = {}, {}

    def notify_order(self, order):
        if order.alive():
            return
        name = order.data._name
        self.pending.pop(name, None)
        if order.status == order.Completed:
            if self.getposition(order.data).size:
                self.entered.setdefault(name, order.data.datetime.date(0))
            else:
                self.entered.pop(name, None)

    def next(self):
        today = self.datetime.date(0)
        for d in self.datas:
            if d._name in self.pending or len(d) < self.p.window:
                continue
            closes = np.asarray(d.close.get(size=self.p.window))
            deviation = closes.std(ddof=1)
            if deviation > 0:
                self.decide(d, today, (closes[-1] - closes.mean()) / deviation,
                            round(float(closes[-1]), 2))

    def decide(self, d, today, z, price):
        p, held = self.p, self.getposition(d).size
        order = dict(data=d, exectype=bt.Order.Limit, price=price,
                     valid=today + timedelta(days=1))  # a DAY order for the next session
        if held:
            days = (today - self.entered.get(d._name, today)).days
            if days >= p.hold or (z <= -p.stop or z >= -p.exit if held > 0
                                  else z >= p.stop or z <= p.exit):
                self.pending[d._name] = self.close(**order)
        elif z < -p.entry:
            self.pending[d._name] = self.buy(size=p.size / price, **order)
        elif z > p.entry and math.floor(p.size / price):
            self.pending[d._name] = self.sell(size=math.floor(p.size / price), **order)


def backtrader_seconds(market, runs: int) -> tuple[float, int]:
    frames = {s: market.frame(s) for s in market.symbols}
    times, trades = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        cerebro = bt.Cerebro(stdstats=False)
        for symbol, frame in frames.items():
            cerebro.adddata(bt.feeds.PandasData(dataname=frame, name=symbol,
                                                openinterest=None))
        cerebro.broker.setcash(100_000.0)
        cerebro.addstrategy(MeanReversion)
        cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
        run = cerebro.run()
        times.append(time.perf_counter() - began)
        trades = run[0].analyzers.trades.get_analysis().get("total", {}).get("closed", 0)
    return statistics.median(times), trades


# -- the large run, in a child process ------------------------------------------------------

def large_child(runs: int) -> None:
    nyse()
    market = synthetic.generate(500, start=date(1990, 1, 2), sessions=5000, seed=SEED)
    run_backtest(market, load_config({**RULES, "TICKERS": market.symbols[0]}),
                 symbols=market.symbols)  # warm: the first run pays for the fresh pages
    paired = paired_seconds(market, runs)
    # The same with cash the strategy cannot lose: no run's entries ever bind.
    rich = paired_seconds(market, runs, Settings(starting_cash=10_000_000.0))
    config = load_config({**RULES, "TICKERS": market.symbols[0]})
    # The process's peak before tracing: tracemalloc's own bookkeeping would add to it.
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    tracemalloc.start()
    tracemalloc.reset_peak()
    run_backtest(market, config, symbols=market.symbols)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"paired": paired, "rich": rich, "maxrss_mb": maxrss_kb / 1024,
                      "traced_peak_mb": peak / 2**20}))


def paired_lines(label: str, found: dict) -> list[str]:
    lines = []
    for key, name in (("default", label), ("one", "  one process")):
        low, high = found[f"{key}_range"]
        lines.append(f"  {name:<12}{found[f'{key}_seconds']:7.3f} s  ({low:.3f}-{high:.3f}; "
                     f"CPU {found[f'{key}_cpu']:.3f} s; {found['trades']} trades; "
                     f"{found[f'{key}_how']})")
    lines.append(f"  {'':<12}{found['ratio']:7.2f}x  one process / as it runs (run by run)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="backtester runs per size")
    parser.add_argument("--backtrader-runs", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--large-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.large_child:
        large_child(args.runs)
        return 0
    nyse()  # the calendar is built once per process; not part of either engine's time
    market = synthetic.generate(50, start=START, sessions=2520, seed=SEED)
    ours, our_trades, engine = backtest_seconds(market, args.runs)
    theirs, their_trades = backtrader_seconds(market, args.backtrader_runs)
    print(f"50 symbols x 2,520 sessions (126,000 bars), median of {args.runs} / "
          f"{args.backtrader_runs} runs:")
    print(f"  backtester  {ours:8.3f} s  ({our_trades} trades; {engine})")
    print(f"  backtrader  {theirs:8.3f} s  ({their_trades} trades)")
    print(f"  ratio       {theirs / ours:8.1f} x faster")
    default_orders = {k: v for k, v in RULES.items() if k not in ORDER_SETTINGS}
    seconds, trades, engine = backtest_seconds(market, args.runs, rules=default_orders)
    print(f"  default orders {seconds:5.3f} s  ({trades} trades; {engine})")
    shipped = market_data.load("us-stocks")
    nyse(shipped.first_day, shipped.last_day)
    seconds, trades, engine = backtest_seconds(shipped, args.runs, rules={},
                                               all_symbols=False)
    print(f"shipped data (us-stocks), the configuration's defaults, median of {args.runs} runs:")
    print(f"  backtester  {seconds:8.3f} s  ({trades} trades; {engine})")
    if not args.skip_large:
        child = subprocess.run([sys.executable, __file__, "--large-child", "--runs",
                                str(args.runs)], capture_output=True, text=True, check=True)
        large = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"500 symbols x 5,000 sessions (2.5 M bars), median of {args.runs} runs:")
        print("\n".join(paired_lines("backtester", large["paired"])))
        print("\n".join(paired_lines("$10 M cash", large["rich"])))
        print(f"  peak memory {large['maxrss_mb']:8.0f} MB resident (this process, data "
              f"included; a helper's pages apart), {large['traced_peak_mb']:.0f} MB traced "
              "during one backtest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
