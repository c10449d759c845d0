"""Whether `trading_bot.py --sim --days N` keeps the same pace from its first day to its last.

    .venv/bin/python bench/bench_sim_days.py [--days 250] [--repo DIR ...]

Runs `python trading_bot.py --sim --days N` as one process in a fresh sim directory (per
repository given, default this one; give an older checkout to compare), takes each simulated
day's time from the timestamps of its "simulated day k/N" log lines, and prints the mean
and median of the first 50 and the last 50 days and their ratio. Target: the mean of the last
50 within 1.2x the mean of the first 50. The exchange's files at the end are listed with their
sizes (the state and its journal).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY_LINE = re.compile(r"^(\S+ \S+) INFO +bot\.sim: simulated day (\d+)/(\d+)")


def day_times(repo: Path, days: int) -> tuple[list[float], list[tuple[str, int]]]:
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "sim"
        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, str(repo / "trading_bot.py"), "--sim",
                               "--sim-start", "2022-06-01", "--days", str(days), "--sim-dir",
                               str(sim)], cwd=tmp, env=env, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{repo}: exit {done.returncode}\n{done.stderr[-3000:]}")
        stamps = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
                  for m in map(DAY_LINE.match, done.stderr.splitlines()) if m]
        files = sorted((p.name, p.stat().st_size) for p in sim.iterdir() if p.is_file())
    # a day's time: from its line to the next day's (the last day has no end mark)
    return [(b - a).total_seconds() for a, b in zip(stamps[:-1], stamps[1:], strict=True)], files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--repo", action="append", type=Path,
                        help="a checkout of the project (default: this one); repeatable")
    args = parser.parse_args()
    for repo in args.repo or [ROOT]:
        times, files = day_times(repo.resolve(), args.days)
        first, last = times[:50], times[-50:]
        print(f"{repo}: {len(times)} days timed; first 50: mean {statistics.mean(first):.3f} s"
              f" (median {statistics.median(first):.3f}); last 50: mean "
              f"{statistics.mean(last):.3f} s (median {statistics.median(last):.3f}); "
              f"ratio of means {statistics.mean(last) / statistics.mean(first):.2f}")
        print("    files at the end: " + ", ".join(f"{n} {s:,} B" for n, s in files))


if __name__ == "__main__":
    main()
