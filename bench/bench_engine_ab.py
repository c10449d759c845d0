"""Benchmark: the in-process backtest of this checkout against another one, A/B interleaved.

Each measurement is one child process that builds the data in memory (bench_backtest.py's
synthetic bars and rules, or the shipped data with the defaults), runs `run_backtest` once to
warm up, then `--runs` times, and prints the median CPU seconds (`time.process_time`: other
processes on a loaded machine disturb it less than the wall clock) and wall seconds. Rounds
alternate the two checkouts (base first, then this one); the ratio is taken round by round.

Not a test. The other checkout is any directory holding the project at another commit, e.g.

    git worktree add /tmp/base <commit>    (or: git archive <commit> | tar -x -C /tmp/base)
    .venv/bin/python bench/bench_engine_ab.py --base /tmp/base [--rounds 5] [--runs 7]
                                              [--data small shipped large]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = {"small": "50 x 2,520 (126,000 bars), the benchmark's rules",
        "shipped": "shipped data (us-stocks), the configuration's defaults",
        "large": "500 x 5,000 (2.5 M bars), the benchmark's rules, $100,000"}

_CHILD = """
import statistics, sys, time
from datetime import date
sys.path[:0] = [{root!r}, {root!r} + '/bench']
from ab import RULES, SEED
from backtester import run_backtest
from config import load_config
from market_calendar import nyse
from simbroker import market_data, synthetic
nyse()
what, symbols = {what!r}, None
if what == 'shipped':
    market = market_data.load('us-stocks')
    nyse(market.first_day, market.last_day)
    rules = {{}}
else:
    n, start, sessions = (50, date(2000, 1, 3), 2520) if what == 'small' else \\
        (500, date(1990, 1, 2), 5000)
    market = synthetic.generate(n, start=start, sessions=sessions, seed=SEED)
    rules, symbols = {{**RULES, 'TICKERS': market.symbols[0]}}, market.symbols
config = load_config(rules)
run_backtest(market, config, symbols=symbols)
cpu, wall = [], []
for _ in range({runs}):
    c, w = time.process_time(), time.perf_counter()
    run_backtest(market, config, symbols=symbols)
    cpu.append(time.process_time() - c)
    wall.append(time.perf_counter() - w)
print(statistics.median(cpu), statistics.median(wall))
"""


def measure(root: Path, what: str, runs: int) -> tuple[float, float]:
    """Median CPU and wall seconds of `runs` backtests in a child process run in `root`."""
    code = _CHILD.format(root=str(root), what=what, runs=runs)
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True,
                        help="a directory holding the project at the commit to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=7, help="backtests per measurement")
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    args = parser.parse_args()
    if not (args.base / "backtester" / "engine.py").is_file():
        parser.error(f"--base {args.base}: no backtester/engine.py there; give a checkout "
                     "of the project (git worktree add DIR COMMIT)")
    for what in args.data:
        runs = max(1, args.runs // 2) if what == "large" else args.runs
        base, here = [], []
        for _ in range(args.rounds):
            base.append(measure(args.base.resolve(), what, runs))
            here.append(measure(ROOT, what, runs))
        ratios = [b[0] / h[0] for b, h in zip(base, here, strict=True)]
        print(f"{DATA[what]}: median of {args.rounds} rounds of {runs} runs, CPU seconds")
        for label, found in (("base", base), ("this", here)):
            cpu = [c for c, _ in found]
            print(f"  {label}  {statistics.median(cpu):7.4f} s  ({min(cpu):.4f}-{max(cpu):.4f};"
                  f" wall {statistics.median([w for _, w in found]):.4f} s)")
        print(f"  ratio {statistics.median(ratios):5.2f}x  (rounds: "
              f"{', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
