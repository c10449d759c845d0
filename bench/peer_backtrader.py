"""The benchmark's backtrader peer, as one process: read the CSV, run the rules, print trades.

The strategy is bench/bench_backtest.py's `MeanReversion` (decide at each close, limit DAY
orders at it, the same window, thresholds, hold and size as the backtester's run).

    python bench/peer_backtrader.py FILE.csv

Needs backtrader 1.9.78 (requirements-bench.txt).
"""

from __future__ import annotations

import sys
import time

STARTED = time.perf_counter()
import pandas as pd  # noqa: E402
from bench_backtest import MeanReversion, bt  # noqa: E402  (bench/ is sys.path[0])

IMPORTED = time.perf_counter()


def main() -> int:
    bars = pd.read_csv(sys.argv[1], dtype={"symbol": "category"}, parse_dates=["date"])
    frames = {str(s): f.set_index("date").drop(columns="symbol")
              for s, f in bars.groupby("symbol", observed=True)}
    read = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame, name=symbol, openinterest=None))
    cerebro.broker.setcash(100_000.0)
    cerebro.addstrategy(MeanReversion)
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
    result = cerebro.run()
    done = time.perf_counter()
    closed = result[0].analyzers.trades.get_analysis().get("total", {}).get("closed", 0)
    print(f"{len(frames)} symbols: {closed} trades")
    print(f"timings: imports {IMPORTED - STARTED:.3f} s, load {read - IMPORTED:.3f} s, "
          f"backtest {done - read:.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
