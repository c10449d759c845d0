"""Backtest the bot's strategy on daily bars, with the bot's own decision code.

    python backtest.py [--data us-stocks|FILE.csv] [--start YYYY-MM-DD] [--end YYYY-MM-DD]
                       [--symbols AAPL,MSFT] [--entry-z 2.0 --window 20 ...]
                       [--grid entry_z=1.0,1.5,2.0 window=20,30,60] [--split YYYY-MM-DD]
                       [--out out/backtest]

Writes trades.csv, equity.csv, stats.json, report.html (and grid.csv for a sweep) to --out
and prints the statistics. `python backtest.py --help` lists every option. The engine is the
backtester package; this file is only its entry point.
"""

import os
import sys
import time

STARTED = time.perf_counter()  # before the imports, for --timings

# numpy asks Linux for transparent huge pages on every array of 4 MB or more. On this project's
# VM a fresh 100 MB array took 0.17-0.26 s in huge pages against 0.04-0.06 s in 4 KB pages
# whenever the kernel had to find new ones, and a 2.5 M-bar run on a quiet machine 4.8 s
# against 5.3-7.0 s (README, Speed and memory, as a user waits for it; `bench_whole.py --only
# hugepages`). Read by numpy at its import, inherited by a sweep's processes; a value already
# set is kept. https://numpy.org/doc/2.0/reference/global_state.html
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

from backtester.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(started=STARTED))
