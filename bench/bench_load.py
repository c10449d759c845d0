"""Benchmark: loading a long CSV of bars against a plain typed read of the same file.

    .venv/bin/python bench/bench_load.py [--rounds 5] [--symbols 500 --sessions 5000]

Five child processes per round, interleaved (bench/ab.py), on the seeded synthetic file
(bench/write_csv.py), each with numpy's huge pages off as backtest.py runs it:
`market_data.load` (the plain read by numpy, every check, the NYSE calendar and the per-symbol
series; a file of at least `market_data.SPLIT_READ_BYTES` read in two pieces, the second by a
forked helper process), the same with BACKTEST_PROCESSES=1 (one process, one piece), numpy's
typed `np.loadtxt` of the same rows alone (the floor: what that loader must at least do), a
plain typed `pd.read_csv` with pandas' import (what a loader through pandas must at least do),
and the text read that the loader falls back to for a file no typed read takes (every field as
text, then converted and checked). Each prints its in-process seconds, imports included; wall
time, CPU seconds (the helper's included) and peak resident memory are the whole child's;
with `--tree`, the peak of the summed proportional set sizes of the child and its helper
(bench/peak.py --tree; sampling slows the runs a little).

With `--phases`, one more load in two pieces prints where each process spends its time (wall
and CPU seconds per step, the parent's and the helper's): the critical path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab import ROOT, Command, csv_file, interleave, machine, measured, phase_medians, ratios, spread  # noqa: E402,I001

PY = sys.executable
LOAD = "from simbroker import market_data; market_data.load(PATH)"
PROGRAMS = {
    "market_data.load": LOAD,
    "market_data.load, one process": LOAD,
    "numpy typed read": (
        "import numpy as np; np.loadtxt(PATH, delimiter=',', skiprows=1, comments=None, "
        "dtype=[('symbol', 'S16'), ('date', 'S11'), ('values', 'f8', (5,))])"),
    "plain typed read": (
        "import pandas as pd; pd.read_csv(PATH, engine='c', low_memory=False, dtype={"
        "'symbol': 'category', 'date': 'category', 'open': 'float64', 'high': 'float64', "
        "'low': 'float64', 'close': 'float64', 'volume': 'float64'})"),
    "text read (fallback)": (
        "from pathlib import Path; from simbroker import market_data as m; "
        "m._series_from_long(m._read_long_csv(Path(PATH)), m._Source(PATH))"),
}
TIMED = ("import sys, time; sys.path.insert(0, '.'); PATH = sys.argv[1]; began = "
         "time.perf_counter(); {program}; print(f'timings: in-process "
         "{{time.perf_counter() - began:.3f}} s', file=sys.stderr)")


# Each step of the two-piece read, timed in the process that runs it (parent or helper).
PHASES = """
import os, sys, time
sys.path.insert(0, '.')
from simbroker import market_data as m
parent = os.getpid()
def timed(name, fn):
    def step(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            who = 'parent' if os.getpid() == parent else 'helper'
            print(f'{who} {name} {time.perf_counter() - wall:.3f} s, '
                  f'cpu {time.process_time() - cpu:.3f} s', file=sys.stderr, flush=True)
    return step
for name in ('_read_plain_split', '_parse_piece', '_swap_counts', '_place', '_joined',
             '_check_sessions', '_sort_order', '_series_from_columns', 'load'):
    setattr(m, name, timed(name, getattr(m, name)))
m.load(sys.argv[1])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--tree", action="store_true",
                        help="also the peak memory of each child and its helper, summed")
    parser.add_argument("--phases", action="store_true",
                        help="also the steps of one two-piece load, per process")
    args = parser.parse_args()
    path = csv_file(args.symbols, args.sessions)
    print(f"machine: {machine()}")
    print(f"{path.name}: {args.symbols * args.sessions:,} bars, "
          f"{path.stat().st_size / 1e6:.0f} MB; {args.rounds} rounds")
    commands = [Command(label, measured([PY, "-c", TIMED.format(program=program), str(path)],
                                        tree=args.tree),
                        {"NUMPY_MADVISE_HUGEPAGE": "0",  # as backtest.py sets it
                         **({"BACKTEST_PROCESSES": "1"} if "one process" in label else {})})
                for label, program in PROGRAMS.items()]
    runs = interleave(commands, args.rounds)
    for label, measured_runs in runs.items():
        tree = (f", tree {spread([r.tree_mb for r in measured_runs], 'MB', 0)}" if args.tree
                else "")
        print(f"  {label:29s} whole process {spread([r.seconds for r in measured_runs])}, "
              f"{phase_medians(measured_runs)} s, CPU "
              f"{spread([r.cpu_s for r in measured_runs])}, peak "
              f"{spread([r.peak_mb for r in measured_runs], 'MB', 0)}{tree}")
    one = "market_data.load, one process"
    print(f"  {one} / market_data.load: "
          f"{spread(ratios(runs[one], runs['market_data.load']), 'x')}")
    for floor in ("numpy typed read", "plain typed read"):
        for label in ("market_data.load", one, "text read (fallback)"):
            print(f"  {label} / {floor}: {spread(ratios(runs[label], runs[floor]), 'x')}")
    if args.phases:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"  steps of one two-piece load, in the process that ran each (load {load}):")
        steps = subprocess.run([PY, "-c", PHASES, str(path)], capture_output=True, text=True,
                               check=True, cwd=ROOT,
                               env={**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0"})
        print("".join(f"    {line}\n" for line in steps.stderr.splitlines()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
