"""Parameter sweeps: every combination of a grid, one backtest each, on all cores or a cluster.

The data is loaded once, by the command, and handed to the workers. Where the process may fork
(`forked.can_fork`), the sweep runs in lanes: this process and one forked child per further
core, sharing the data (copy on write, nothing pickled on the way in) and taking the tasks one
by one in a planned order (`plan`). This process runs the command line's own run (its report,
trades and equity) and prepares its files while the children run, so that run is never run
twice nor alone after the sweep, and its result is never pickled. Elsewhere a process pool
gets the data pickled once per worker, and a Dask cluster once per worker
(`Client.scatter(..., broadcast=True)`). Workers are processes, not threads: the day loop is
Python, so threads would share one core through the GIL. A progress bar shows only when stderr
is a terminal.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

import forked
from backtester.engine import Result, Settings, run_backtest
from backtester.outputs import period_stats
from backtester.params import build_config
from config import Config
from simbroker.market_data import MarketData

if TYPE_CHECKING:
    import pandas as pd

GRID_STATS = ("total_return", "cagr", "annual_volatility", "sharpe", "max_drawdown", "trades",
              "win_rate", "exposure")
RANKED_ROWS = 10


@dataclass(frozen=True)
class Job:
    """One backtest of a sweep: its grid values and everything a worker needs besides the data."""

    params: tuple[tuple[str, str], ...]
    config: Config
    start: date | None
    end: date | None
    symbols: tuple[str, ...] | None
    settings: Settings
    split: date | None

    def same_run(self, other: Job) -> bool:
        """True when both jobs compute the same backtest (whatever their grid labels)."""
        return (self.config, self.start, self.end, self.symbols, self.settings) == (
            other.config, other.start, other.end, other.symbols, other.settings)


@dataclass(frozen=True)
class Sweep:
    """The grid rows (in grid order) and the full result of the command line's own run."""

    grid: pd.DataFrame
    base: Result


def jobs_for(grid: Sequence[tuple[str, Sequence[str]]], env: Mapping[str, str],
             overrides: Sequence[tuple[str, str]], **common: Any) -> list[Job]:
    """One job per combination; grid values override the command line's."""
    names = [name for name, _ in grid]
    jobs = []
    for values in itertools.product(*(choices for _, choices in grid)):
        params = tuple(zip(names, values, strict=True))
        jobs.append(Job(params=params, config=build_config(env, [*overrides, *params]),
                        **common))
    return jobs


def run_job(market: MarketData, job: Job, keep_result: bool = False,
            ) -> tuple[dict[str, Any], Result | None]:
    """The grid row of one job (its parameters, then its statistics), and its full result
    when `keep_result` (the run the command writes files for)."""
    result = run_backtest(market, job.config, start=job.start, end=job.end,
                          symbols=job.symbols, settings=job.settings)
    row: dict[str, Any] = {name: _number(value) for name, value in job.params}
    whole = period_stats(result)
    row.update({k: whole[k] for k in GRID_STATS})
    for purpose, counts in whole["orders"].items():  # per order purpose: what a setting costs
        row[f"{purpose}_fill_rate"] = counts["fill_rate"]
        row[f"{purpose}_shortfall_bps"] = counts["shortfall_bps"]
    if job.split is not None:
        before = period_stats(result, None, job.split - timedelta(days=1))
        after = period_stats(result, job.split, None)
        for key in ("sharpe", "total_return", "max_drawdown", "trades"):
            row[f"in_sample_{key}"] = before[key]
            row[f"out_of_sample_{key}"] = after[key]
    return row, (result if keep_result else None)


def run_sweep(market: MarketData, jobs: Sequence[Job], base: Job, *,
              processes: int | None = None, scheduler: str | None = None,
              on_base: Callable[[Result], object] | None = None) -> Sweep:
    """All `jobs` and the command line's run `base`, `processes` at a time on this machine
    (default: every core), or on the Dask cluster whose scheduler is at `scheduler`.
    `on_base` is called with the base run's result in this process as soon as it is known,
    while the other jobs may still run: the command prepares its files meanwhile."""
    same = next((i for i, job in enumerate(jobs) if job.same_run(base)), None)
    tasks = [(job, i == same) for i, job in enumerate(jobs)]
    if same is None:
        tasks.insert(0, (base, True))  # first: it is also the one the command waits for
    bar = _Bar(total=len(tasks), desc="sweep", unit="run", disable=not sys.stderr.isatty())

    def answered(answer: tuple[dict[str, Any], Result | None]) -> None:
        if answer[1] is not None and on_base is not None:
            on_base(answer[1])

    with bar:
        if scheduler is not None:
            from backtester.distributed import run_on_cluster  # needs the dask extra

            answers = run_on_cluster(scheduler, market, tasks, bar.update)
            base_result = next(result for _, result in answers if result is not None)
            if on_base is not None:
                on_base(base_result)
        else:
            answers = _run_here(market, tasks, processes, answered, bar.update)
    results = [result for _, result in answers if result is not None]
    rows = [row for (job, keep), (row, _) in zip(tasks, answers, strict=True)
            if not (keep and same is None)]
    import pandas as pd  # imported by then in the lanes (see _run_in_lanes)

    return Sweep(grid=pd.DataFrame(rows), base=results[0])


class _Bar(tqdm):
    """tqdm's bar without its monitor thread (started by every bar, even a disabled one): a
    process with a second thread does not fork (`forked.can_fork`)."""

    monitor_interval = 0


Answer = tuple[dict[str, Any], Result | None]


def _run_here(market: MarketData, tasks: Sequence[tuple[Job, bool]], processes: int | None,
              answered: Callable[[Answer], object], progress: Callable[[int], object],
              ) -> list[Answer]:
    """The tasks' answers in task order. `answered` is called in this process with each
    answer this process gets as it gets it (the base run's among them), `progress` with how
    many more tasks are done."""
    processes = max(1, min(processes or os.cpu_count() or 1, len(tasks)))
    if processes == 1:
        answers = []
        for job, keep in tasks:
            answers.append(run_job(market, job, keep))
            answered(answers[-1])
            progress(1)
        return answers
    if forked.can_fork():
        return _run_in_lanes(market, tasks, plan(tasks, processes, PREPARE_SHARE), processes,
                             answered, progress)
    # No fork here (another platform, or a process with threads): a pool of workers, which
    # get the data pickled once each; the command prepares its files beside them.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=processes, mp_context=context,
                             initializer=_hold_market, initargs=(market,)) as pool:
        futures = {pool.submit(_run_held, *tasks[i]): i for i in plan(tasks, processes)}
        answers: list[Any] = [None] * len(futures)
        for future in as_completed(futures):
            answers[futures[future]] = future.result()
            answered(answers[futures[future]])
            progress(1)
        return answers


def _run_in_lanes(market: MarketData, tasks: Sequence[tuple[Job, bool]], order: Sequence[int],
                  lanes: int, answered: Callable[[Answer], object],
                  progress: Callable[[int], object]) -> list[Answer]:
    """The tasks in `lanes` lanes: this process and `lanes - 1` forked children
    (`forked.Child`: they share the data, copy on write, nothing pickled on the way in).
    This process runs `order[0]`, the command line's own run, whose result and what the
    command makes of it (`answered`) stay here; then every lane takes the next task of
    `order` whenever it is free, so a lane that runs late takes fewer. The children hand
    back their rows when they end. No lane forks a helper of its own."""
    answers: list[Any] = [None] * len(tasks)
    # [how many of `order` are taken, how many the children have done]
    shared = forked.shared_array(2, np.int64)
    shared[0] = 1  # order[0] is this process's
    lock = multiprocessing.get_context("fork").Lock()

    def take(stop: bool = False) -> int | None:
        with lock:
            taken = int(shared[0])
            shared[0] = len(order) if stop else min(taken + 1, len(order))
        return None if stop or taken >= len(order) else order[taken]

    def lane() -> list[tuple[int, Answer]]:
        done = []
        try:
            while (i := take()) is not None:
                done.append((i, run_job(market, *tasks[i])))
                with lock:
                    shared[1] += 1
        except BaseException:
            take(stop=True)  # the others take no more: the sweep fails
            raise
        return done

    reported = 0

    def report_children() -> None:
        nonlocal reported
        with lock:
            done = int(shared[1])
        progress(done - reported)
        reported = done

    with forked.held(), ExitStack() as stack:
        children = [stack.enter_context(forked.Child(lane)) for _ in range(lanes - 1)]
        # The grid's DataFrame needs pandas (0.2-0.4 s of imports): imported in this lane,
        # beside the children, rather than before them or after the sweep.
        import pandas  # noqa: F401
        i: int | None = order[0]
        try:
            while i is not None:
                answers[i] = run_job(market, *tasks[i])
                answered(answers[i])
                progress(1)
                report_children()
                i = take()
        except BaseException:
            take(stop=True)
            raise
        for child in children:
            for i, answer in child.join():
                answers[i] = answer
        report_children()
    return answers


# What the command does with the base run's result (`on_base`: the texts of its files, its
# charts, the start of its report) against the run itself: 0.62 s against 0.87-0.90 s on
# 500 x 2,520 bars with the entry at 1.5 (one process, quiet machine). A model like the next.
PREPARE_SHARE = 0.7
# A run's length apart from its trades, in units of `run_length`'s signal share: runs of
# 1.27, 0.87 and 0.62 s with the entry at 1.0, 1.5 and 2.0 on 500 x 2,520 bars (one process)
# lie on 2.39 s x (0.21 + share) within 0.04 s.
RUN_FIXED = 0.21
EXHAUSTIVE = 20_000  # most assignments of tasks to lanes tried one by one


def run_length(config: Config) -> float:
    """A model of how long a run takes, relative to the other runs of the same sweep, not a
    measurement: a fixed part and a part in proportion to how often a z-score crosses the
    entry thresholds, taken as if z-scores were standard normal (the share of symbol-days
    below `long_entry_z`, plus above `short_entry_z` when shorts are allowed). Fat tails,
    exits, order types and limits on positions are not in it; the z-score window hardly
    matters (within 0.15 s of 1-1.5 s runs from 20 to 60 sessions)."""
    share = _normal_cdf(config.long_entry_z)
    if config.allow_shorts:
        share += 1.0 - _normal_cdf(config.short_entry_z)
    return RUN_FIXED + share


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def plan(tasks: Sequence[tuple[Job, bool]], lanes: int, prepare_share: float = 0.0,
         ) -> list[int]:
    """The order to hand the tasks out in, to `lanes` lanes each taking the next task when
    free: the command line's own run first (the command prepares its files from it; that
    work, `prepare_share` of the run, counts in its lane), then so that the lanes end close
    together by `run_length`'s model (`lane_order`). Whatever the order, each answer goes back
    to its task's place: the rows and the ranking do not depend on it."""
    first = next(i for i, (_, keep) in enumerate(tasks) if keep)
    lengths = [run_length(job.config) * (1.0 + prepare_share if keep else 1.0)
               for job, keep in tasks]
    return lane_order(lengths, first, lanes)


def lane_order(lengths: Sequence[float], first: int, lanes: int) -> list[int]:
    """Task `first` (the first lane's), then the others, for `lanes` lanes that each take the
    next task when free, given each task's (modelled) length. For a few tasks the split into
    lanes that ends earliest is searched (`EXHAUSTIVE`); each lane runs its longest first, and
    the order is that of the planned starts, so that lanes taking tasks one by one follow the
    plan when the lengths are right and even out by themselves when they are not. More tasks:
    the longest first."""
    rest = sorted((i for i in range(len(lengths)) if i != first), key=lambda i: -lengths[i])
    if lanes < 2 or lanes ** len(rest) > EXHAUSTIVE:
        return [first, *rest]
    best: tuple[float, tuple[int, ...]] | None = None
    for lanes_of in itertools.product(range(lanes), repeat=len(rest)):
        ends = [lengths[first]] + [0.0] * (lanes - 1)
        for i, lane in zip(rest, lanes_of, strict=True):
            ends[lane] += lengths[i]
        if best is None or max(ends) < best[0] - 1e-9:
            best = (max(ends), lanes_of)
    assert best is not None
    starts = {first: (0.0, 0)}
    ends = [lengths[first]] + [0.0] * (lanes - 1)
    for i, lane in zip(rest, best[1], strict=True):  # `rest` is longest first
        starts[i] = (ends[lane], lane)
        ends[lane] += lengths[i]
    return sorted(range(len(lengths)), key=lambda i: (starts[i], i))


_market: MarketData | None = None  # a worker process's data, set once when it starts


def _hold_market(market: MarketData) -> None:
    """A worker's start: the data it runs on, and no helper process of its own (the sweep's
    workers already keep every core busy)."""
    global _market
    _market = market
    forked.disable()


def _run_held(job: Job, keep: bool) -> tuple[dict[str, Any], Result | None]:
    assert _market is not None, "worker started without its data"
    return run_job(_market, job, keep)


def ranking_key(grid: pd.DataFrame) -> str:
    """The column a sweep is ranked by: the in-sample Sharpe ratio with a walk-forward split
    (choosing by out-of-sample figures would leak them into the choice), else the Sharpe."""
    return "in_sample_sharpe" if "in_sample_sharpe" in grid.columns else "sharpe"


def ranked_text(grid: pd.DataFrame, axes: Sequence[str], count: int = RANKED_ROWS) -> str:
    """The best `count` runs of a sweep as an aligned table, best first."""
    key = ranking_key(grid)
    shown = [*axes, key, "total_return", "max_drawdown", "trades"]
    if key == "in_sample_sharpe":
        shown += ["out_of_sample_sharpe", "out_of_sample_total_return"]
    best = grid.sort_values(key, ascending=False, na_position="last", kind="stable")
    table = best[[c for c in dict.fromkeys(shown) if c in grid.columns]].head(count)
    table.insert(0, "rank", range(1, len(table) + 1))
    title = f"sweep: {len(grid)} runs ranked by {key}"
    if len(grid) > count:
        title += f" (best {count}; all in grid.csv)"
    as_given = {name: str for name in axes}  # grid values as typed: 2.0 stays "2.0"
    return title + "\n" + table.to_string(index=False, formatters=as_given,
                                           float_format=lambda v: f"{v:.4f}")


def _number(text: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
