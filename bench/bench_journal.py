"""What the exchange's journal costs a `--sim` day: its commits' time, writes and syncs.

    .venv/bin/python bench/bench_journal.py [--days 250] [--repo DIR ...]

Runs `trading_bot.py --sim --sim-start 2021-01-04 --days N` (the shipped us-stocks data)
through `run_simulation` in a fresh process per repository given (default this one), with
`Journal.commit` and `Journal.compact` timed where they run (the server's thread: the bot
waits for each answer, so their time is the run's). Prints, per simulated day, the median
of the day's whole time, of the journal's time and its share, and the journal's appends
and syncs, and the compactions (a whole snapshot written) over all days. A sync is
`os.fsync` or `os.fdatasync` called by the journal.
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
import json, logging, os, sys, time
sys.path.insert(0, sys.argv[1])
from config import load_config
from simbroker import journal
from sim_runner import run_simulation
import trading_bot

now = {"journal": 0.0, "compactions": 0, "compacting": 0.0, "appends": 0, "syncs": 0}
inside = [0]

def timed(method, key=None):
    def run(self, *args, **kwargs):
        inside[0] += 1
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            inside[0] -= 1
            took = time.perf_counter() - started
            if not inside[0]:
                now["journal"] += took
            if key:
                now[key] += took
                now["compactions"] += 1
    return run

def counted(sync):
    def run(fd):
        if inside[0]:
            now["syncs"] += 1
        return sync(fd)
    return run

write = os.write
def counted_write(fd, data):
    if inside[0]:
        now["appends"] += 1
    return write(fd, data)

journal.Journal.commit = timed(journal.Journal.commit)
journal.Journal.compact = timed(journal.Journal.compact, "compacting")
os.fsync = counted(os.fsync)
if hasattr(os, "fdatasync"):
    os.fdatasync = counted(os.fdatasync)
os.write = counted_write
args = trading_bot.parse_args(["--sim", "--sim-start", "2021-01-04", "--days", sys.argv[2],
                               "--sim-dir", sys.argv[3]])
logging.disable(logging.INFO)
days, mark = [], [time.perf_counter(), dict(now)]

def after_day(day):
    t = time.perf_counter()
    days.append({"seconds": t - mark[0],
                 **{k: now[k] - mark[1][k] for k in now}})
    mark[:] = [t, dict(now)]

run_simulation(load_config({}), args, {}, after_day=after_day)
print(json.dumps(days))
"""


def measure(repo: Path, days: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", DRIVER, str(repo), str(days),
                               str(Path(tmp) / "sim")], cwd=tmp, env=env,
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{repo}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--repo", action="append", type=Path,
                        help="a checkout of the project (default: this one); repeatable")
    args = parser.parse_args()
    for repo in args.repo or [ROOT]:
        days = measure(repo.resolve(), args.days)

        def median(key: str, days: list[dict[str, float]] = days) -> float:
            return statistics.median(d[key] for d in days)

        share = statistics.median(d["journal"] / d["seconds"] for d in days if d["seconds"])
        print(f"{repo}: {len(days)} days; per day (medians): whole {median('seconds'):.3f} s, "
              f"journal {1000 * median('journal'):.1f} ms ({100 * share:.1f}% of the day), "
              f"{median('appends'):.0f} appends, {median('syncs'):.0f} syncs; over all days: "
              f"journal {sum(d['journal'] for d in days):.2f} s of "
              f"{sum(d['seconds'] for d in days):.2f} s, of which "
              f"{sum(d['compactions'] for d in days):.0f} compactions "
              f"{sum(d['compacting'] for d in days):.2f} s")


if __name__ == "__main__":
    main()
