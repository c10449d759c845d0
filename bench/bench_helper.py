"""Benchmark: `backtest.py` with its helper process against one process, as a user waits.

The backtest phase forks one helper process for half of the per-symbol work where that pays
(the grid of signals, the fills' prices and times: backtester/signals.py, timeline.py).
This times whole processes, `backtest.py --data FILE.csv --timings` with the benchmark's
rules (bench/ab.py) as it runs against the same with BACKTEST_PROCESSES=1, A/B interleaved,
at 2.5 M bars (500 x 5,000) and 5 M bars (2,000 x 2,520): wall time, the backtest phase (and
the others) from `--timings`, CPU seconds of the process and its helpers, the ratios pair by
pair; then one more run of each under `bench/peak.py --tree` for the memory of the whole
process tree (the summed proportional set sizes, sampled) beside the parent's own peak.
The machine's load is printed: on a shared machine a second process's gain does not show
reliably in the wall time, the CPU seconds and the phases are the fairer figures.

With `--phases`, instead: the first `run_backtest` of a fresh process on the same file (as
`backtest.py` makes it), with each process's wall and CPU seconds for its share of the signals
and of the fills (the critical path is the longer of the two at once), alternating with
BACKTEST_PROCESSES=1.

Not a test. Uses the CSV files under .bench/data (written once by bench/write_csv.py):

    .venv/bin/python bench/bench_helper.py [--rounds 3] [--sizes 2.5M 5M] [--phases]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab import (  # noqa: E402
    RULES,
    Command,
    csv_file,
    interleave,
    machine,
    measured,
    phase_medians,
    ratios,
    run,
    spread,
    tickers,
)

SIZES = {"2.5M": (500, 5000), "5M": (2000, 2520)}


def commands(symbols: int, sessions: int, out: Path, *, tree: bool = False) -> list[Command]:
    argv = ["backtest.py", "--data", str(csv_file(symbols, sessions)), "--timings"]
    env = {**RULES, "TICKERS": tickers(symbols)}
    return [Command("as it runs", measured([sys.executable, *argv, "--out", str(out / "a")],
                                           tree), env),
            Command("one process", measured([sys.executable, *argv, "--out", str(out / "b")],
                                            tree), {**env, "BACKTEST_PROCESSES": "1"})]


_PHASES = """
import json, os, sys, time
sys.path[:0] = [{root!r}, {root!r} + '/bench']
os.environ.setdefault('NUMPY_MADVISE_HUGEPAGE', '0')
import forked
from ab import RULES, tickers
from backtester import run_backtest, signals, timeline
from backtester.engine import Settings
from config import load_config
from market_calendar import nyse
from simbroker import market_data
market = market_data.load({path!r})
nyse(market.first_day, market.last_day)
config = load_config({{**RULES, 'TICKERS': tickers({symbols})}})
found = {{}}
def timed(fn, name):
    def run(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn(*args, **kwargs)
        where = 'helper' if os.getpid() != parent else 'parent'
        print(json.dumps([name, where, time.perf_counter() - wall, time.process_time() - cpu]),
              file=sys.stderr, flush=True)
        return value
    return run
parent = os.getpid()
signals._chunks_into = timed(signals._chunks_into, 'signals')
timeline._limit_fills_into = timed(timeline._limit_fills_into, 'fills')
wall, cpu = time.perf_counter(), time.process_time()
result = run_backtest(market, config, settings=Settings(benchmark=None))
t = os.times()
print(json.dumps(['run_backtest', 'parent', time.perf_counter() - wall,
                  time.process_time() - cpu]), file=sys.stderr)
print(json.dumps(['run_backtest', 'helpers', float('nan'), t.children_user + t.children_system]),
      file=sys.stderr)
print(json.dumps(['helper used', str(result.helper), 0, 0]), file=sys.stderr)
"""


def phases(symbols: int, sessions: int, rounds: int) -> None:
    """The first `run_backtest` of a fresh process (as backtest.py makes it) on the CSV file,
    with the wall and CPU seconds of each share of the signals and of the fills, in the
    parent and in the helper, alternating with BACKTEST_PROCESSES=1."""
    import json
    import os
    import subprocess

    code = _PHASES.format(root=str(Path(__file__).resolve().parent.parent),
                          path=str(csv_file(symbols, sessions)), symbols=symbols)
    for r in range(rounds):
        for label, extra in (("as it runs", {}), ("one process", {"BACKTEST_PROCESSES": "1"})):
            err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, env={**os.environ, **extra}).stderr
            rows = [json.loads(line) for line in err.splitlines() if line.startswith("[")]
            parts = [f"{name} {where} {wall:.3f} s (CPU {cpu:.3f})" if name != "helper used"
                     else f"helper used: {where}" for name, where, wall, cpu in rows]
            print(f"  round {r + 1}, {label}: " + "; ".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--phases", action="store_true",
                        help="the in-process shares of parent and helper instead")
    args = parser.parse_args()
    print(machine())
    if args.phases:
        for size in args.sizes:
            print(f"\n== {size} bars: the first run_backtest of a fresh process ==")
            phases(*SIZES[size], args.rounds)
        print(f"\nload at the end: {machine()}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            symbols, sessions = SIZES[size]
            print(f"\n== {size} bars ({symbols} x {sessions}) from CSV, {args.rounds} rounds ==")
            runs = interleave(commands(symbols, sessions, Path(tmp)), args.rounds)
            helped, alone = runs["as it runs"], runs["one process"]
            for label, found in (("as it runs", helped), ("one process", alone)):
                backtest = [r.phases.get("backtest", float("nan")) for r in found]
                print(f"  {label:<12} {spread([r.seconds for r in found])}; backtest phase "
                      f"{spread(backtest, digits=3)}; CPU "
                      f"{spread([r.cpu_s for r in found])}")
                print(f"  {'':<12} phases: {phase_medians(found)}")
            print(f"  one process / as it runs: {spread(ratios(alone, helped), 'x')} whole, "
                  + spread([a.phases['backtest'] / h.phases['backtest']
                            for a, h in zip(alone, helped, strict=True)], "x")
                  + " backtest phase (pair by pair)")
            for command in commands(symbols, sessions, Path(tmp), tree=True):
                found = run(command)
                print(f"  memory, {command.label}: tree {found.tree_mb:.0f} MB "
                      f"(bench/peak.py --tree), the parent's own peak {found.peak_mb:.0f} MB")
    print(f"\nload at the end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
