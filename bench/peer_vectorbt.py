"""The benchmark's vectorbt peer, as one process: read the CSV, run the rules, print a summary.

The rules of bench/bench_backtest.py as vectorbt expresses them: 30-session z-score of the
close, long below -1.5 and short above +1.5, exit back inside 0.1 of the mean or at |z| >= 3
(stop), $100 per position, $100,000 shared cash, fills at the close. vectorbt has no holding
limit in `from_signals`, so the 5-day hold is left out: the peer does slightly less work.

    python bench/peer_vectorbt.py FILE.csv [--twice]

--twice runs the simulation a second time in the same process and prints both times: the
first includes loading numba's compiled functions (or compiling them, with a cold cache), the
second is the computation alone. Phases go to stderr as `timings: name seconds, ...`.
Needs vectorbt (a benchmark-only dependency, see requirements-bench.txt).
"""

from __future__ import annotations

import sys
import time

STARTED = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import vectorbt as vbt  # noqa: E402

IMPORTED = time.perf_counter()
WINDOW, ENTRY, EXIT, STOP, SIZE_USD, CASH = 30, 1.5, 0.1, 3.0, 100.0, 100_000.0


def read_closes(path: str) -> pd.DataFrame:
    long = pd.read_csv(path, usecols=["symbol", "date", "close"],
                       dtype={"symbol": "category", "date": "category", "close": "float64"})
    long["date"] = pd.to_datetime(long["date"].astype(str), format="%Y-%m-%d")
    return long.pivot(index="date", columns="symbol", values="close")


def simulate(close: pd.DataFrame) -> vbt.Portfolio:
    mean = close.rolling(WINDOW).mean()
    z = (close - mean) / close.rolling(WINDOW).std()
    return vbt.Portfolio.from_signals(
        close, entries=z < -ENTRY, exits=(z > -EXIT) | (z <= -STOP),
        short_entries=z > ENTRY, short_exits=(z < EXIT) | (z >= STOP),
        size=SIZE_USD, size_type="value", init_cash=CASH, cash_sharing=True, group_by=True,
        freq="1D")


def main() -> int:
    close = read_closes(sys.argv[1])
    read = time.perf_counter()
    portfolio = simulate(close)
    trades = portfolio.trades.count()
    value = float(portfolio.final_value())
    first = time.perf_counter()
    phases = [("imports", IMPORTED - STARTED), ("load", read - IMPORTED),
              ("backtest", first - read)]
    if "--twice" in sys.argv[2:]:
        simulate(close).trades.count()
        phases.append(("backtest again", time.perf_counter() - first))
    print(f"{close.shape[1]} symbols x {close.shape[0]} sessions: {int(np.sum(trades))} trades, "
          f"final value {value:,.2f}")
    print("timings: " + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in phases),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
