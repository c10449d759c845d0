"""Benchmark: loading a long CSV of bars against a plain typed read of the same file.

    .venv/bin/python bench/bench_load.py [--rounds 5] [--symbols 500 --sessions 5000]

Four child processes per round, interleaved (bench/ab.py), on the seeded synthetic file
(bench/write_csv.py), each with numpy's huge pages off as backtest.py runs it:
`market_data.load` (the plain read by numpy, every check, the NYSE calendar and the per-symbol
series), numpy's typed `np.loadtxt` of the same rows alone (the floor: what that loader must at
least do), a plain typed `pd.read_csv` with pandas' import (what a loader through pandas must at
least do), and the text read that the loader falls back to for a file no typed read takes
(every field as text, then converted and checked). Each prints its in-process seconds, imports
included; wall time and peak resident memory are the whole child's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab import Command, csv_file, interleave, machine, measured, phase_medians, ratios, spread  # noqa: E402,I001

PY = sys.executable
PROGRAMS = {
    "market_data.load": "from simbroker import market_data; market_data.load(PATH)",
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=5000)
    args = parser.parse_args()
    path = csv_file(args.symbols, args.sessions)
    print(f"machine: {machine()}")
    print(f"{path.name}: {args.symbols * args.sessions:,} bars, "
          f"{path.stat().st_size / 1e6:.0f} MB; {args.rounds} rounds")
    commands = [Command(label, measured([PY, "-c", TIMED.format(program=program), str(path)]),
                        {"NUMPY_MADVISE_HUGEPAGE": "0"})  # as backtest.py sets it
                for label, program in PROGRAMS.items()]
    runs = interleave(commands, args.rounds)
    for label, measured_runs in runs.items():
        print(f"  {label:22s} whole process {spread([r.seconds for r in measured_runs])}, "
              f"{phase_medians(measured_runs)} s, peak "
              f"{spread([r.peak_mb for r in measured_runs], 'MB', 0)}")
    for floor in ("numpy typed read", "plain typed read"):
        for label in ("market_data.load", "text read (fallback)"):
            print(f"  {label} / {floor}: {spread(ratios(runs[label], runs[floor]), 'x')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
