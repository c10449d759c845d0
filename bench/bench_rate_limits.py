"""A UNIVERSE=dynamic run over 2,000 candidates under the exchange's request budget: requests,
waits for the budget's reset, 429s and wall time.

    .venv/bin/python bench/bench_rate_limits.py [--repeat 3] 2>/dev/null

Two budgets: Alpaca's 200 requests a minute (per key and API), and a tight one (10 per 2 s
window) under which the same run must wait for resets, as a larger run would under 200 a
minute. Prints the medians of `--repeat` runs of each. The exchange runs in this process on
loopback; the bot is `trading_bot.main`, as cron starts it, over HTTP and the unmodified SDK.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import string
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trading_bot  # noqa: E402
from market_calendar import new_york_noon, nyse  # noqa: E402
from simbroker import Exchange, ExchangeConfig, serve  # noqa: E402
from simbroker.synthetic import generate  # noqa: E402

DAY = date(2024, 3, 1)
CANDIDATES = 2000
WAIT = re.compile(r"waiting ([0-9.]+) s for its reset")


def market():
    names = ("".join(p) for p in itertools.product(string.ascii_uppercase, repeat=4))
    first = nyse().sessions_before(DAY, 40)[0].day
    return generate(list(itertools.islice(names, CANDIDATES)), start=first, sessions=41,
                    seed=5)


def one_run(data, rate_limit: int, window_seconds: float) -> dict[str, float]:
    exchange = Exchange(data, ExchangeConfig(spread_bps=0.0, rate_limit=rate_limit,
                                             rate_window_seconds=window_seconds),
                        now=new_york_noon(DAY))
    with tempfile.TemporaryDirectory() as tmp, serve(exchange, port=0) as server:
        env = {"APCA_API_BASE_URL": server.trading_url, "APCA_API_DATA_URL": server.data_url,
               "ALPACA_API_KEY": exchange.config.key_id,
               "ALPACA_SECRET_KEY": exchange.config.secret_key, "UNIVERSE": "dynamic",
               "UNIVERSE_SIZE": "50", "FILL_WAIT_SECONDS": "0"}
        start = time.perf_counter()
        code = trading_bot.main(["--log-dir", f"{tmp}/logs"], environ=env)
        wall = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"the run failed with exit code {code}")
        log = server.requests()
        (run_dir,) = Path(f"{tmp}/logs/runs").iterdir()
        waits = [float(w) for w in WAIT.findall((run_dir / "bot.log").read_text())]
    return {"requests": len(log), "429s": sum(r["status"] == 429 for r in log),
            "waits": len(waits), "waited_s": sum(waits), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = market()
    print(f"UNIVERSE=dynamic over {CANDIDATES} candidates, UNIVERSE_SIZE=50, "
          f"medians of {args.repeat} runs")
    print(f"{'budget':<22}{'requests':>9}{'429s':>6}{'waits':>7}{'waited s':>10}{'wall s':>8}")
    for label, limit, window in (("200 / 60 s (Alpaca)", 200, 60.0), ("10 / 2 s", 10, 2.0)):
        runs = [one_run(data, limit, window) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{label:<22}{med['requests']:>9.0f}{med['429s']:>6.0f}{med['waits']:>7.0f}"
              f"{med['waited_s']:>10.2f}{med['wall_s']:>8.2f}")


if __name__ == "__main__":
    main()
