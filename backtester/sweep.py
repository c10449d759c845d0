"""Parameter sweeps: every combination of a grid, one backtest each, on all cores or a cluster.

The data is loaded once, by the command, and handed to the workers: forked worker processes
inherit it (no copy, no pickling, where the platform forks; elsewhere it is pickled once per
worker), and a Dask cluster gets it once per worker (`Client.scatter(..., broadcast=True)`).
Workers are processes, not threads: the day loop is Python, so threads would share one core
through the GIL. The run the command line asks for (its report, trades and equity) is one more
job of the same pool, or the grid's own run when a combination equals it, so it is never run
twice nor alone after the sweep. A progress bar shows only when stderr is a terminal.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from tqdm import tqdm

import forked
from backtester.engine import Result, Settings, run_backtest
from backtester.outputs import period_stats
from backtester.params import build_config
from config import Config
from simbroker.market_data import MarketData

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
    while the other jobs may still run: the command prepares its files meanwhile, on the core
    the last jobs leave idle."""
    same = next((i for i, job in enumerate(jobs) if job.same_run(base)), None)
    tasks = [(job, i == same) for i, job in enumerate(jobs)]
    if same is None:
        tasks.insert(0, (base, True))  # first: it is also the one the command waits for
    bar = tqdm(total=len(tasks), desc="sweep", unit="run", disable=not sys.stderr.isatty())

    def answered(answer: tuple[dict[str, Any], Result | None]) -> None:
        bar.update()
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
            answers = _run_here(market, tasks, processes, answered)
    results = [result for _, result in answers if result is not None]
    rows = [row for (job, keep), (row, _) in zip(tasks, answers, strict=True)
            if not (keep and same is None)]
    return Sweep(grid=pd.DataFrame(rows), base=results[0])


def _run_here(market: MarketData, tasks: Sequence[tuple[Job, bool]], processes: int | None,
              answered: Callable[[Any], object]) -> list[tuple[dict[str, Any], Result | None]]:
    """The tasks' answers in task order; `answered` is called with each as it arrives."""
    processes = max(1, min(processes or os.cpu_count() or 1, len(tasks)))
    if processes == 1:
        answers = []
        for job, keep in tasks:
            answers.append(run_job(market, job, keep))
            answered(answers[-1])
        return answers
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=processes, mp_context=context,
                             initializer=_hold_market, initargs=(market,)) as pool:
        futures = {pool.submit(_run_held, *tasks[i]): i for i in longest_first(tasks)}
        return _in_order(futures, answered)


def longest_first(tasks: Sequence[tuple[Job, bool]]) -> list[int]:
    """The order to hand the tasks to the workers in: the command line's own run first (the
    command prepares its files from it meanwhile), then the likely longest, so that the last
    job to start is a short one and the workers end close together.

    A model of a run's length, not a measurement: a run takes longer the more it trades, and
    it trades more the nearer the mean its entry thresholds are, a little more with a
    shorter z-score window (on 500 x 2,520 bars, one process: entry 1.0 1.3-1.5 s, 1.5
    0.9-1.0 s, 2.0 0.65-0.7 s; window 20 to 60 within 0.15 s). Whatever the order, each
    task's answer goes back to its place: the rows and the ranking do not depend on it."""
    def length(i: int) -> tuple[bool, float, int]:
        job, keep = tasks[i]
        c = job.config
        return (not keep, min(abs(c.long_entry_z), abs(c.short_entry_z)), c.z_score_window)

    return sorted(range(len(tasks)), key=length)


def _in_order(futures: Mapping[Future, int], answered: Callable[[Any], object]) -> list[Any]:
    answers: list[Any] = [None] * len(futures)
    for future in as_completed(futures):
        answers[futures[future]] = future.result()
        answered(answers[futures[future]])
    return answers


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
