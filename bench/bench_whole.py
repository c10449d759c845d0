"""Benchmark what a user waits for: whole processes, A/B interleaved, with in-process phases.

    .venv/bin/python bench/bench_whole.py [--rounds 5] [--peer-python PATH] [--only NAME ...]

Parts (--only picks some; all by default):

* ``peers``: `backtest.py --data FILE.csv` against vectorbt (bench/peer_vectorbt.py) at 126,000
  (50 x 2,520), 2.5 M (500 x 5,000) and 5 M (2,000 x 2,520) bars, and against backtrader
  1.9.78 (bench/peer_backtrader.py) at 126,000, on the same seeded synthetic CSV files
  (bench/write_csv.py, written once under .bench/data). vectorbt's numba cache is warmed by
  one untimed run per size first; its JIT cost is reported apart: the first simulation of a
  process minus a second one in the same process (`--twice`), and a run with a cold cache.
* ``memory``: time and peak memory of `backtest.py` on 2.5 M and 12.6 M (5,000 x 2,520) bars
  from CSV (12.6 M: `--big-rounds`, default 1): the process's own peak resident memory from
  the timed rounds, and from as many separate rounds under `bench/peak.py --tree` the peak of
  the summed proportional set sizes of the process and its helper process (sampled every
  20 ms, which slows a run; the peers part gives the same from one sampled round each).
* ``helper``: the default, with its helper processes (beside loading, the backtest, and the
  files for the report), against everything in one process (`BACKTEST_PROCESSES=1`), at
  126,000, 2.5 M and 5 M bars: wall and CPU seconds, the in-process phases (the report's
  helper's own time is `report in the helper`), the files and report phases together (the
  outputs' helper alone) and the ratio pair by pair.
* ``sweep``: a 9-combination `--grid` on 500 x 2,520 with `--processes 1` against 2.
* ``hugepages``: `backtest.py` on 2.5 M bars with numpy's transparent huge pages off (its
  default, see backtest.py) against on (``NUMPY_MADVISE_HUGEPAGE=1``).
* ``startup``: `trading_bot.py --sim --days 1` against its import floor (a process that only
  imports what the command imports: `import trading_bot, sim_runner`), and the slowest imports
  of backtest.py (`python -X importtime`).

Every figure is a median over `--rounds` with [min-max]; ratios are taken pair by pair within a
round. Peers need requirements-bench.txt, in this venv or in the one given by --peer-python.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab import (  # noqa: E402
    ORDER_RULES,
    ROOT,
    RULES,
    Command,
    csv_file,
    interleave,
    machine,
    measured,
    phase_medians,
    ratios,
    spread,
    tickers,
)

PY = sys.executable
SIZES = {"126,000": (50, 2520), "2.5 M": (500, 5000), "5 M": (2000, 2520)}
GRID = ["entry_z=1.0,1.5,2.0", "window=20,30,60"]
BIG_ROUNDS = 1  # rounds at 12.6 M bars (--big-rounds)
PARTS = ("peers", "memory", "helper", "sweep", "hugepages", "startup")


def ours(label: str, symbols: int, sessions: int, out: Path, *extra: str,
         default_orders: bool = False) -> Command:
    """backtest.py on the file, with the benchmark's RULES (or the config's default order
    settings, which the day loop computes, with `default_orders`)."""
    path = csv_file(symbols, sessions)
    rules = {k: v for k, v in RULES.items() if not (default_orders and k in ORDER_RULES)}
    return Command(label, measured([PY, "backtest.py", "--data", str(path), "--timings",
                                    "--out", str(out), *extra]),
                   {**rules, "TICKERS": tickers(symbols)})


def sampled(command: Command) -> Command:
    """`command` under bench/peak.py --tree: the peak of the summed proportional set sizes of
    the process and of every process it forks, sampled every 20 ms."""
    argv = list(command.argv)
    at = argv.index(str(ROOT / "bench" / "peak.py")) + 1
    return Command(f"{command.label} (--tree)", [*argv[:at], "--tree", *argv[at:]],
                   command.env)


def tree_text(runs: list) -> str:
    """The tree's peak and, beside it, the process's own peak in the same sampled runs."""
    return (f"tree {spread([r.tree_mb for r in runs], 'MB', 0)} (process and helper, summed "
            f"PSS; its own peak RSS {spread([r.peak_mb for r in runs], 'MB', 0)})")


def peers(rounds: int, peer: str, out: Path) -> None:
    print("\n== whole process: backtest.py against vectorbt and backtrader ==")
    for size, (symbols, sessions) in SIZES.items():
        path = csv_file(symbols, sessions)
        vbt = Command("vectorbt", measured([peer, "bench/peer_vectorbt.py", str(path)]))
        interleave([vbt], 1)  # warms numba's disk cache; not counted
        commands = [ours("backtest.py", symbols, sessions, out), vbt]
        if size == "126,000":
            commands.append(Command("backtrader", measured([peer, "bench/peer_backtrader.py",
                                                            str(path)])))
            commands.append(ours("backtest.py, default orders", symbols, sessions, out,
                                 default_orders=True))
        print(f"{size} bars ({symbols} x {sessions:,}), {rounds} rounds:")
        runs = interleave(commands, rounds)
        mine = runs["backtest.py"]
        # Memory of the whole tree from separate sampled rounds (sampling slows a run ~4%).
        trees = interleave([sampled(c) for c in commands], 1)
        for (label, measured_runs), tree_runs in zip(runs.items(), trees.values(), strict=True):
            print(f"  {label:12s} {spread([r.seconds for r in measured_runs])}, peak RSS "
                  f"{spread([r.peak_mb for r in measured_runs], 'MB', 0)}; 1 sampled round: "
                  f"{tree_text(tree_runs)}")
            print(f"  {'':12s} in-process: {phase_medians(measured_runs)}")
        for label in runs:
            if label != "backtest.py":
                print(f"  {label} / backtest.py: {spread(ratios(runs[label], mine), 'x', 1)}")
        jit = interleave([Command("vectorbt --twice", measured(
            [peer, "bench/peer_vectorbt.py", str(path), "--twice"]))], 1)["vectorbt --twice"][0]
        first, again = jit.phases["backtest"], jit.phases["backtest again"]
        print(f"  vectorbt JIT and cache loading: {first - again:.2f} s (first simulation "
              f"{first:.2f} s, the same again in that process {again:.2f} s)")
    _cold_vectorbt(peer)


def _cold_vectorbt(peer: str) -> None:
    path = csv_file(*SIZES["126,000"])
    with tempfile.TemporaryDirectory() as cache:
        cold = interleave([Command("vectorbt, cold numba cache", measured(
            [peer, "bench/peer_vectorbt.py", str(path)]), {"NUMBA_CACHE_DIR": cache})], 1)
    run = next(iter(cold.values()))[0]
    print(f"vectorbt at 126,000 bars with a cold numba cache: {run.seconds:.2f} s "
          f"({phase_medians([run])})")


def memory(rounds: int, out: Path, big_rounds: int = BIG_ROUNDS) -> None:
    print("\n== backtest.py from CSV: time, peak resident memory of the process, and peak "
          "memory of the process and its helper together ==")
    for size, (symbols, sessions) in {"2.5 M": (500, 5000), "12.6 M": (5000, 2520)}.items():
        # 12.6 M bars take minutes a run: one round unless asked (--big-rounds).
        times = rounds if size == "2.5 M" else big_rounds
        if times == 0:  # --big-rounds 0: 2.5 M bars only
            continue
        command = ours("backtest.py", symbols, sessions, out)
        runs = interleave([command], times)["backtest.py"]
        # The tree's memory from separate rounds: sampling it slows the run (~4%).
        trees = interleave([sampled(command)], times)[sampled(command).label]
        print(f"{size} bars ({symbols} x {sessions:,}), {times} rounds: "
              f"{spread([r.seconds for r in runs])}, "
              f"peak RSS of the process {spread([r.peak_mb for r in runs], 'MB', 0)}")
        print(f"  {times} sampled rounds: {tree_text(trees)}")
        print(f"  in-process: {phase_medians(runs)}")


def helper(rounds: int, out: Path) -> None:
    # BACKTEST_PROCESSES=1 turns every helper off (loading's and the backtest's too); the
    # files and report phases are the outputs' helper alone.
    print("\n== everything in one process (BACKTEST_PROCESSES=1) against the default (helper "
          "processes beside loading, the backtest, and the files for the report) ==")
    for size, (symbols, sessions) in SIZES.items():
        two = ours("helper", symbols, sessions, out / "helper")
        one = Command("one process", two.argv, {**two.env, "BACKTEST_PROCESSES": "1"})
        runs = interleave([one, two], rounds)
        print(f"{size} bars ({symbols} x {sessions:,}), {rounds} rounds:")
        for label, measured_runs in runs.items():
            print(f"  {label:12s} {spread([r.seconds for r in measured_runs])}, CPU s "
                  f"{spread([r.cpu_s for r in measured_runs])}; in-process: "
                  f"{phase_medians(measured_runs)}")
            # files + report: what the user waits for after the backtest.
            waited = [r.phases["files"] + r.phases["report"] for r in measured_runs]
            print(f"  {'':12s} files and report, as waited for: {spread(waited)}")
        print(f"  one process / helper, whole process: "
              f"{spread(ratios(runs['one process'], runs['helper']), 'x')}")


def sweep(rounds: int, out: Path) -> None:
    print("\n== 9-combination sweep on 500 x 2,520: --processes 1 against 2 ==")
    commands = [ours(f"--processes {n}", 500, 2520, out / str(n), "--grid", *GRID,
                     "--processes", str(n)) for n in (1, 2)]
    runs = interleave(commands, rounds)
    one, two = runs["--processes 1"], runs["--processes 2"]
    for label, measured_runs in runs.items():
        print(f"  {label}: {spread([r.seconds for r in measured_runs])}; in-process: "
              f"{phase_medians(measured_runs)}")
    print(f"  whole process, 1 / 2: {spread(ratios(one, two), 'x')}")
    sweeping = [a.phases["sweep and backtest"] / b.phases["sweep and backtest"]
                for a, b in zip(one, two, strict=True)]
    print(f"  the sweep phase alone, 1 / 2: {spread(sweeping, 'x')}")
    for label, measured_runs in runs.items():
        busy = [r.cpu_s / r.seconds for r in measured_runs]
        print(f"  {label}: cores busy on average (CPU s / wall s): {spread(busy, '', 2)}; "
              f"CPU s in all: {spread([r.cpu_s for r in measured_runs])}")
    # What the design allows, from the 1-process runs: the phases outside the sweep stay
    # serial, and the sweep phase can at best halve.
    bound = [r.seconds / (r.seconds - r.phases["sweep and backtest"] / 2) for r in one]
    serial = [r.seconds - r.phases["sweep and backtest"] for r in one]
    print(f"  serial part of the 1-process run (imports, load, files, report; the lanes' "
          f"start and end): {spread(serial)}; best possible 1 / 2 with a sweep phase split "
          f"perfectly in two: {spread(bound, 'x')}")


def hugepages(rounds: int, out: Path) -> None:
    print("\n== 2.5 M bars from CSV: numpy's huge pages off (default) against on ==")
    off = ours("huge pages off", 500, 5000, out)
    on = Command("huge pages on", off.argv, {**off.env, "NUMPY_MADVISE_HUGEPAGE": "1"})
    runs = interleave([off, on], rounds)
    for label, measured_runs in runs.items():
        print(f"  {label}: {spread([r.seconds for r in measured_runs])}, peak "
              f"{spread([r.peak_mb for r in measured_runs], 'MB', 0)}; in-process: "
              f"{phase_medians(measured_runs)}")
    print(f"  on / off: {spread(ratios(runs['huge pages on'], runs['huge pages off']), 'x')}")


def startup(rounds: int, out: Path) -> None:
    print("\n== trading_bot.py --sim --days 1 against its import floor ==")
    sim_dir = out / "sim"
    shutil.rmtree(sim_dir, ignore_errors=True)
    run = Command("--sim --days 1", measured(
        ["sh", "-c", f"rm -rf {sim_dir} && exec {PY} trading_bot.py --sim --days 1 "
                     f"--sim-dir {sim_dir}"]))
    # Through sh as the run is (which also removes the last run's directory), so that the
    # ratio is not the shell's start.
    floor = Command("imports only", measured(
        ["sh", "-c", f"exec {PY} -c 'import trading_bot, sim_runner'"]))
    runs = interleave([run, floor], rounds)
    for label, measured_runs in runs.items():
        print(f"  {label}: {spread([r.seconds for r in measured_runs])}")
    print(f"  run / floor: {spread(ratios(runs['--sim --days 1'], runs['imports only']), 'x')}")
    # CPU seconds (the process and its children) depend less on what else the machine runs.
    cpu = [a.cpu_s / b.cpu_s for a, b in zip(runs["--sim --days 1"], runs["imports only"],
                                             strict=True)]
    print(f"  CPU seconds: {spread([r.cpu_s for r in runs['--sim --days 1']])} against "
          f"{spread([r.cpu_s for r in runs['imports only']])}, run / floor {spread(cpu, 'x')}")
    for argv in (["backtest.py", "--help"], ["-c", "import trading_bot, sim_runner"]):
        print(f"heavy packages imported by python {' '.join(argv)} (python -X importtime, "
              "cumulative):")
        print("  " + ", ".join(_heavy_imports(argv)))


HEAVY = ("numpy", "pandas", "plotly", "pandas_market_calendars", "alpaca_trade_api", "aiohttp",
         "requests", "tqdm", "dask", "distributed")


def _heavy_imports(argv: list[str]) -> list[str]:
    err = subprocess.run([PY, "-X", "importtime", *argv], cwd=ROOT, capture_output=True,
                         text=True, check=True).stderr
    seen = {}
    for line in err.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            seen.setdefault(parts[2].strip(), int(parts[1]))
    return [f"{name} {seen[name] / 1e6:.3f} s" if name in seen else f"{name} not imported"
            for name in HEAVY]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peer-python", default=PY,
                        help="the Python with vectorbt and backtrader (default: this one)")
    parser.add_argument("--big-rounds", type=int, default=BIG_ROUNDS,
                        help="rounds of the 12.6 M-bar memory run (default %(default)s; 0: "
                             "none)")
    parser.add_argument("--only", nargs="+",
                        choices=PARTS, default=PARTS)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"commit: {_commit()}")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        for part in args.only:
            if part == "peers":
                peers(args.rounds, args.peer_python, out)
            elif part == "memory":
                memory(args.rounds, out, args.big_rounds)
            else:
                {"sweep": sweep, "hugepages": hugepages, "helper": helper,
                 "startup": startup}[part](args.rounds, out)
    return 0


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() or "unknown"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
