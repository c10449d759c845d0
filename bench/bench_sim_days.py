"""Whether `trading_bot.py --sim --days N` keeps the same pace from its first day to its last.

    .venv/bin/python bench/bench_sim_days.py [--days 250] [--repo DIR ...]

Runs the simulation of `trading_bot.py --sim --sim-start 2021-01-04 --days N` (the shipped
us-stocks data; 250 days end on 2021-12-29) in a fresh process per repository given
(default this one; give an older checkout to compare), through the same `run_simulation`
that the command calls, timing each simulated day with its `after_day` hook. Prints the mean
and median of the first 50 and the last 50 days and the ratio of the means. Target: the
mean of the last 50 within 1.2x the mean of the first 50. The exchange's files at the end
are listed with their sizes (the state and its journal).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRIVER = """
import argparse, json, sys, time
sys.path.insert(0, sys.argv[1])
import logging
from config import load_config
from sim_runner import run_simulation
import trading_bot
args = trading_bot.parse_args(["--sim", "--sim-start", "2021-01-04", "--days", sys.argv[2],
                               "--sim-dir", sys.argv[3]])
logging.disable(logging.INFO)
marks = [time.perf_counter()]
run_simulation(load_config({}), args, {}, after_day=lambda day: marks.append(time.perf_counter()))
print(json.dumps([b - a for a, b in zip(marks[:-1], marks[1:])]))
"""


def day_times(repo: Path, days: int) -> tuple[list[float], list[tuple[str, int]]]:
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "sim"
        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", DRIVER, str(repo), str(days), str(sim)],
                              cwd=tmp, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{repo}: exit {done.returncode}\n{done.stderr[-3000:]}")
        files = sorted((p.name, p.stat().st_size) for p in sim.iterdir() if p.is_file())
    return json.loads(done.stdout.strip().splitlines()[-1]), files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--repo", action="append", type=Path,
                        help="a checkout of the project (default: this one); repeatable")
    args = parser.parse_args()
    for repo in args.repo or [ROOT]:
        times, files = day_times(repo.resolve(), args.days)
        first, last = times[:50], times[-50:]
        print(f"{repo}: {len(times)} days; first 50: mean {statistics.mean(first):.3f} s "
              f"(median {statistics.median(first):.3f}); last 50: mean "
              f"{statistics.mean(last):.3f} s (median {statistics.median(last):.3f}); "
              f"ratio of means {statistics.mean(last) / statistics.mean(first):.2f}")
        print("    files at the end: " + ", ".join(f"{n} {s:,} B" for n, s in files))


if __name__ == "__main__":
    main()
