"""Write the benchmarks' seeded synthetic bars as a long CSV file.

    python bench/write_csv.py SYMBOLS SESSIONS PATH

`simbroker.synthetic.generate(SYMBOLS, start=1990-01-02, sessions=SESSIONS, seed=20240601)`,
one row per symbol and session, prices to 4 decimals (the generator's tick), symbol by symbol.
Written to a temporary name, then renamed: an interrupted run leaves no partial file.
"""

import os
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from simbroker import synthetic  # noqa: E402
from simbroker.market_data import COLUMNS  # noqa: E402

SEED = 20240601


def main() -> int:
    symbols, sessions, path = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    market = synthetic.generate(symbols, start=date(1990, 1, 2), sessions=sessions, seed=SEED)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as out:
        out.write(",".join(COLUMNS) + "\n")
        for symbol in market.symbols:
            frame = market.frame(symbol)
            days = np.datetime_as_string(frame.index.to_numpy().astype("datetime64[D]"))
            values = frame.to_numpy()
            rows = [f"{symbol},{d},{o:.4f},{h:.4f},{lo:.4f},{c:.4f},{v:.0f}\n"
                    for d, (o, h, lo, c, v) in zip(days, values.tolist(), strict=True)]
            out.writelines(rows)
    os.replace(partial, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
