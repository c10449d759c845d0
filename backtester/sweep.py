"""Parameter sweeps: every combination of a grid, one backtest each, on all cores.

Workers are processes (the day loop is Python, so threads would share one core through the
GIL); each loads the data once. A progress bar shows only when stderr is a terminal.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from tqdm import tqdm

from backtester.engine import Settings, run_backtest
from backtester.outputs import period_stats
from backtester.params import build_config
from config import Config
from simbroker import market_data

GRID_STATS = ("total_return", "cagr", "annual_volatility", "sharpe", "max_drawdown", "trades",
              "win_rate", "exposure")


@dataclass(frozen=True)
class Job:
    """One backtest of a sweep, with everything a worker process needs to run it."""

    params: tuple[tuple[str, str], ...]
    config: Config
    data: str
    start: date | None
    end: date | None
    symbols: tuple[str, ...] | None
    settings: Settings
    split: date | None


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


@functools.lru_cache(maxsize=2)
def _market(data: str) -> market_data.MarketData:
    return market_data.load(data)


def run_job(job: Job) -> dict[str, Any]:
    """The grid row of one job: its parameters, then its statistics."""
    result = run_backtest(_market(job.data), job.config, start=job.start, end=job.end,
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
    return row


def run_sweep(jobs: Sequence[Job], processes: int | None = None) -> pd.DataFrame:
    """All jobs, `processes` at a time (default: every core); rows in grid order."""
    processes = max(1, min(processes or os.cpu_count() or 1, len(jobs)))
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc="sweep", unit="run", disable=not sys.stderr.isatty())
    with bar:
        if processes == 1:
            for i, job in enumerate(jobs):
                rows[i] = run_job(job)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=processes) as pool:
                futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
                for future in as_completed(futures):
                    rows[futures[future]] = future.result()
                    bar.update()
    return pd.DataFrame(rows)


def _number(text: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
