"""Timing whole processes as a user waits for them, A/B interleaved, for the bench_* scripts.

Each measurement is one child process: its wall time (perf_counter around spawn and wait), its
own peak resident memory (wait4's rusage, that child only) and what it printed on stderr (the
`timings: ...` line of in-process phases). Rounds alternate the order of the commands (A B, then
B A, ...) so that a machine getting busier or quieter during the run favours neither, and the
ratio is taken pair by pair (same round) before its median is reported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".bench" / "data"
SEED = 20240601
# The rules of bench/bench_backtest.py, which the peers follow too: 30-session window, entry
# 1.5, exit 0.1, stop 3.0, 5-day hold, $100, DAY limits at the current price for every order.
RULES = {"Z_SCORE_WINDOW": "30", "LONG_ENTRY_Z": "-1.5", "SHORT_ENTRY_Z": "1.5",
         "LONG_EXIT_Z": "-0.1", "SHORT_EXIT_Z": "0.1", "LONG_STOP_Z": "-3.0",
         "SHORT_STOP_Z": "3.0", "MAX_HOLDING_DAYS": "5", "POSITION_SIZE_USD": "100",
         "ENTRY_ORDER_TYPE": "limit", "EXIT_ORDER_TYPE": "limit", "STOP_ORDER_TYPE": "limit",
         "EXIT_ESCALATE_AFTER_DAYS": "0"}
ORDER_RULES = ("ENTRY_ORDER_TYPE", "EXIT_ORDER_TYPE", "STOP_ORDER_TYPE",
               "EXIT_ESCALATE_AFTER_DAYS")


@dataclass(frozen=True)
class Command:
    label: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    phases: dict[str, float]
    stdout: str
    cpu_s: float = float("nan")  # CPU seconds of the process and the children it waited for
    # Peak of the summed proportional set sizes of the process and every process it forked
    # (bench/peak.py --tree); NaN when not sampled.
    tree_mb: float = float("nan")


def run(command: Command, timeout_s: float = 1800) -> Run:
    """One child process to its end; raises with its stderr if it fails."""
    env = {**os.environ, **command.env}
    began = time.perf_counter()
    child = subprocess.Popen(command.argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        raise RuntimeError(f"{command.label} failed ({child.returncode}): {err[-2000:]}")
    wall, peak_mb, phases = _report(err)
    cpu, tree = (next((float(x.split()[1]) for x in err.splitlines() if x.startswith(key)),
                      float("nan")) for key in ("cpu_s ", "tree_pss_kb "))
    return Run(wall if wall == wall else seconds, peak_mb, phases, out, cpu, tree / 1024)


def _report(err: str) -> tuple[float, float, dict[str, float]]:
    """bench/peak.py's wall time and peak RSS, and the `timings:` phases, from stderr."""
    wall, peak, phases = float("nan"), float("nan"), {}
    for line in err.splitlines():
        if line.startswith("wall_s "):
            wall = float(line.split()[1])
        elif line.startswith("peak_rss_kb "):
            peak = int(line.split()[1]) / 1024
        elif line.startswith("timings: "):
            for part in line.removeprefix("timings: ").split(", "):
                name, value = part.rsplit(" ", 2)[0], part.rsplit(" ", 2)[1]
                phases[name] = float(value)
    return wall, peak, phases


def measured(argv: Sequence[str], tree: bool = False) -> list[str]:
    """argv run under bench/peak.py, which reports the child's own peak RSS on stderr (and,
    with `tree`, the peak memory of it and the processes it forks, sampled: a slower run)."""
    return [sys.executable, str(ROOT / "bench" / "peak.py"), *(["--tree"] if tree else []),
            *argv]


def interleave(commands: Sequence[Command], rounds: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {c.label: [] for c in commands}
    for r in range(rounds):
        for command in (commands if r % 2 == 0 else list(reversed(commands))):
            runs[command.label].append(run(command))
            print(f"  round {r + 1}/{rounds} {command.label}: "
                  f"{runs[command.label][-1].seconds:.2f} s", file=sys.stderr, flush=True)
    return runs


def spread(values: Sequence[float], unit: str = "s", digits: int = 2) -> str:
    """median [min-max]"""
    return (f"{statistics.median(values):.{digits}f} {unit} "
            f"[{min(values):.{digits}f}-{max(values):.{digits}f}]")


def ratios(slow: Sequence[Run], fast: Sequence[Run]) -> list[float]:
    return [s.seconds / f.seconds for s, f in zip(slow, fast, strict=True)]


def phase_medians(runs: Sequence[Run]) -> str:
    names = list(dict.fromkeys(n for r in runs for n in r.phases))
    return ", ".join(f"{n} {statistics.median(r.phases[n] for r in runs if n in r.phases):.2f}"
                     for n in names)


def machine() -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
            f"at start (a shared machine), Python {sys.version.split()[0]}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def csv_file(symbols: int, sessions: int) -> Path:
    """The seeded synthetic long CSV of `symbols` x `sessions`, written once and reused."""
    path = DATA_DIR / f"synthetic_{symbols}x{sessions}_seed{SEED}.csv"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "write_csv.py"), str(symbols),
                        str(sessions), str(path)], check=True, cwd=ROOT)
    return path


def tickers(symbols: int) -> str:
    return ",".join(f"S{i:04d}" for i in range(symbols))
