"""Two checkouts of this project, A/B interleaved: the start-up or the sweep of each.

    .venv/bin/python bench/bench_checkouts.py --before DIR [--after DIR] [--rounds 5]
                                              [--only startup shipped sweep]

`--before` is another checkout (e.g. `git archive COMMIT | tar -x -C DIR`); `--after` is this
one by default. Both run with this venv's Python.

* ``startup``: `trading_bot.py --sim --days 1` of each, and the import floor (`import
  trading_bot, sim_runner`) of `--after`: wall and CPU seconds, each run over the floor.
* ``shipped``: `backtest.py` with its defaults (us-stocks, report written) of each: wall
  and CPU seconds, before / after pair by pair.
* ``sweep``: the 9-combination `--grid` on 500 x 2,520 of bench_whole.py, `--processes 1` and
  2 of each: wall and CPU seconds, cores busy, the in-process phases, 1 / 2 pair by pair.

Medians [min-max] over the rounds; ratios pair by pair within a round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab import (  # noqa: E402
    ROOT,
    RULES,
    Command,
    Run,
    csv_file,
    interleave,
    machine,
    measured,
    run,
    spread,
    tickers,
)

PY = sys.executable
PARTS = ("startup", "shipped", "sweep")
GRID = "entry_z=1.0,1.5,2.0 window=20,30,60"


def _in(root: Path, command: str) -> list[str]:
    return measured(["sh", "-c", f"cd {root} && {command}"])


def startup(roots: dict[str, Path], rounds: int, scratch: Path) -> None:
    print("\n== trading_bot.py --sim --days 1 of each checkout, and the import floor ==")
    commands = [Command(label, _in(root, f"rm -rf {scratch / label} && exec {PY} "
                                         f"trading_bot.py --sim --days 1 --sim-dir "
                                         f"{scratch / label}"), _cache(scratch, label))
                for label, root in roots.items()]
    commands.append(Command("floor", _in(roots["after"],
                                         f'exec {PY} -c "import trading_bot, sim_runner"')))
    runs = _warm_then_interleave(commands, rounds)
    for label, measured_runs in runs.items():
        print(f"  {label}: {spread([r.seconds for r in measured_runs])}, CPU "
              f"{spread([r.cpu_s for r in measured_runs])}")
    for label in roots:
        _ratio(f"{label} / floor", runs[label], runs["floor"])


def _cache(scratch: Path, label: str) -> dict[str, str]:
    """Each checkout its own disk cache (simbroker/array_cache.py): two versions of the code
    sharing one would replace each other's entries at every run."""
    return {"SIMBROKER_CACHE_DIR": str(scratch / f"cache-{label}")}


def _warm_then_interleave(commands: list[Command], rounds: int) -> dict[str, list[Run]]:
    """One unmeasured run of each command first (its caches and compiled files written, as on
    a user's second day), then the measured rounds."""
    for command in commands:
        run(command)
    return interleave(commands, rounds)


def shipped(roots: dict[str, Path], rounds: int, scratch: Path) -> None:
    print("\n== backtest.py on the shipped us-stocks (its defaults, report included) of each "
          "checkout ==")
    commands = [Command(label, _in(root, f"exec {PY} backtest.py --out {scratch / label}"),
                        _cache(scratch, label))
                for label, root in roots.items()]
    runs = _warm_then_interleave(commands, rounds)
    for label, measured_runs in runs.items():
        print(f"  {label}: {spread([r.seconds for r in measured_runs])}, CPU "
              f"{spread([r.cpu_s for r in measured_runs])}")
    _ratio("before / after", runs["before"], runs["after"])


def sweep(roots: dict[str, Path], rounds: int, scratch: Path) -> None:
    print("\n== 9-combination sweep on 500 x 2,520 of each checkout: --processes 1 and 2 ==")
    path = csv_file(500, 2520)
    env = {**RULES, "TICKERS": tickers(500)}
    commands = [Command(f"{label} -p{n}", _in(root, f"exec {PY} backtest.py --data {path} "
                                                    f"--timings --out {scratch / label / str(n)}"
                                                    f" --grid {GRID} --processes {n}"), env)
                for label, root in roots.items() for n in (1, 2)]
    runs = interleave(commands, rounds)
    for label, measured_runs in runs.items():
        phases = {name: statistics.median(r.phases[name] for r in measured_runs)
                  for name in measured_runs[0].phases}
        print(f"  {label}: {spread([r.seconds for r in measured_runs])}, CPU "
              f"{spread([r.cpu_s for r in measured_runs])}, cores busy "
              f"{spread([r.cpu_s / r.seconds for r in measured_runs], '', 2)}; in-process: "
              + ", ".join(f"{name} {value:.2f}" for name, value in phases.items()))
    for label in roots:
        one, two = runs[f"{label} -p1"], runs[f"{label} -p2"]
        _ratio(f"{label}, whole process 1 / 2", one, two)
        phase = [a.phases["sweep and backtest"] / b.phases["sweep and backtest"]
                 for a, b in zip(one, two, strict=True)]
        print(f"  {label}, sweep phase 1 / 2: {spread(phase, 'x')}")


def _ratio(label: str, slow: list[Run], fast: list[Run]) -> None:
    wall = [a.seconds / b.seconds for a, b in zip(slow, fast, strict=True)]
    cpu = [a.cpu_s / b.cpu_s for a, b in zip(slow, fast, strict=True)]
    print(f"  {label}: {spread(wall, 'x')} wall, {spread(cpu, 'x')} CPU")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--after", type=Path, default=ROOT, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS)
    args = parser.parse_args()
    roots = {"before": args.before.resolve(), "after": args.after.resolve()}
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        for part in args.only:
            {"startup": startup, "shipped": shipped, "sweep": sweep}[part](
                roots, args.rounds, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
