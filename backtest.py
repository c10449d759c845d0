"""Backtest the bot's strategy on daily bars, with the bot's own decision code.

    python backtest.py [--data us-stocks|FILE.csv] [--start YYYY-MM-DD] [--end YYYY-MM-DD]
                       [--symbols AAPL,MSFT] [--entry-z 2.0 --window 20 ...]
                       [--grid entry_z=1.0,1.5,2.0 window=20,30,60] [--split YYYY-MM-DD]
                       [--out out/backtest]

Writes trades.csv, equity.csv, stats.json, report.html (and grid.csv for a sweep) to --out
and prints the statistics. `python backtest.py --help` lists every option. The engine is the
backtester package; this file is only its entry point.
"""

import sys
import time

STARTED = time.perf_counter()  # before the imports, for --timings

from backtester.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(started=STARTED))
