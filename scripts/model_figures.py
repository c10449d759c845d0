"""Print the measured properties of the intraday model (README, "The intraday model"):
afternoon-after-morning continuation and correlation, fill rates and adverse selection of noon
limit orders. The same measurements as tests/test_price_model_statistics.py, printed.

    .venv/bin/python scripts/model_figures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_price_model_statistics import (  # noqa: E402
    NOON,
    noon_orders,
    predictability,
    random_walk,
    shipped,
)


def main() -> None:
    path, keys = random_walk.__wrapped__()
    o, h, lo, c = path[:, 0], path.max(axis=1), path.min(axis=1), path[:, -1]
    noon = path[:, round(NOON * (path.shape[1] - 1))]
    m, a = noon - o, c - noon
    print(f"random walk, truth: n={len(o)} continuation={np.mean(np.sign(m) == np.sign(a)):.4f}"
          f" correlation={np.corrcoef(m, a)[0, 1]:+.4f}")
    rows = [("model on the walk's bars", (o, h, lo, c, keys, np.nan)),
            ("model on the walk's closes only", (o, o, o, c, keys, o * 0.015))]
    real, model = shipped.__wrapped__()
    rows += [("model on shipped real OHLCV", real), ("model on shipped closes-only", model)]
    for label, columns in rows:
        n, continuation, correlation = predictability(*columns)
        print(f"{label}: n={n} continuation={continuation:.4f} correlation={correlation:+.4f}")
    for label, columns in (("real OHLCV", real), ("closes-only", model)):
        for offset in (0.0, 5.0, 10.0, 25.0):
            figures = noon_orders(columns, offset)
            text = "  ".join(f"{side}: filled {rate:.1%}, close vs fill {edge:+.1f} bp"
                             for side, (rate, edge) in figures.items())
            print(f"{label}, limit {offset:g} bp through the noon price: {text}")


if __name__ == "__main__":
    main()
