"""Sweeps: the same rows whether run in one process, in forked workers sharing the data, or on
a Dask cluster of two workers on 127.0.0.1; the command line's run is done once, with them."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backtester.sweep
import forked
from backtester import Settings, run_backtest
from backtester.outputs import trade_rows
from backtester.params import build_config
from backtester.sweep import Job, jobs_for, ranked_text, run_sweep
from simbroker import synthetic

ENV = {"TICKERS": "S0000", "POSITION_SIZE_USD": "100"}
GRID = [("entry_z", ["1.2", "1.8"]), ("window", ["15", "25"])]


@pytest.fixture(scope="module")
def market():
    return synthetic.generate(12, start=date(2016, 1, 4), sessions=260, seed=11)


def _jobs(market, base_changes=()):
    common = dict(start=None, end=None, symbols=market.symbols, settings=Settings(),
                  split=date(2016, 9, 1))
    base = Job(params=(), config=build_config(ENV, list(base_changes)), **common)
    return jobs_for(GRID, ENV, list(base_changes), **common), base


def test_forked_workers_give_the_rows_of_one_process(market):
    jobs, base = _jobs(market)
    alone = run_sweep(market, jobs, base, processes=1)
    forked = run_sweep(market, jobs, base, processes=2)
    pd.testing.assert_frame_equal(alone.grid, forked.grid)
    assert list(zip(alone.grid["entry_z"], alone.grid["window"], strict=True)) == [
        (1.2, 15), (1.2, 25), (1.8, 15), (1.8, 25)]
    assert alone.grid["trades"].nunique() > 1  # the parameters reach the runs
    direct = run_backtest(market, base.config, symbols=market.symbols)
    assert trade_rows(forked.base) == trade_rows(direct) == trade_rows(alone.base)


@pytest.mark.parametrize("processes", [1, 2])
def test_the_base_run_is_handed_over_once_before_the_sweep_ends(market, monkeypatch, processes):
    runs = []
    real = backtester.sweep.run_backtest

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(backtester.sweep, "run_backtest", counting)  # workers count apart
    jobs, base = _jobs(market)  # the base is not in the grid: the first task
    handed = []
    sweep = run_sweep(market, jobs, base, processes=processes,
                      on_base=lambda result: handed.append((result, len(runs))))
    assert len(handed) == 1 and trade_rows(handed[0][0]) == trade_rows(sweep.base)
    if processes == 1:  # in one process the runs are counted here: the base came first
        assert handed[0][1] == 1 and len(runs) == len(jobs) + 1


def test_the_command_lines_run_is_not_repeated_when_the_grid_holds_it(market, monkeypatch):
    runs = []
    real = backtester.sweep.run_backtest

    def counting(*args, **kwargs):
        runs.append(kwargs["start"])
        return real(*args, **kwargs)

    monkeypatch.setattr(backtester.sweep, "run_backtest", counting)
    jobs, base = _jobs(market, [("entry_z", "1.8"), ("window", "25")])
    sweep = run_sweep(market, jobs, base, processes=1)
    assert len(runs) == len(jobs) == 4  # the base is the grid's (1.8, 25)
    assert trade_rows(sweep.base) == trade_rows(
        run_backtest(market, base.config, symbols=market.symbols))
    jobs, base = _jobs(market, [("window", "20")])  # not in the grid: one more run
    runs.clear()
    assert len(run_sweep(market, jobs, base, processes=1).grid) == 4
    assert len(runs) == 5


def test_ranked_text_puts_the_best_in_sample_first(market):
    jobs, base = _jobs(market)
    grid = run_sweep(market, jobs, base, processes=1).grid
    text = ranked_text(grid, ["entry_z", "window"], count=3)
    lines = text.splitlines()
    assert lines[0] == "sweep: 4 runs ranked by in_sample_sharpe (best 3; all in grid.csv)"
    assert lines[1].split()[:4] == ["rank", "entry_z", "window", "in_sample_sharpe"]
    shown = [float(line.split()[3]) for line in lines[2:]]
    assert shown == sorted(grid["in_sample_sharpe"].round(4), reverse=True)[:3]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]


@pytest.mark.parametrize("axes", [["entry_z", "window"], ["entry_z"]])
def test_the_report_made_before_the_sweep_ends_is_the_whole_report(market, axes):
    from backtester.outputs import period_stats
    from backtester.report import build_report, with_sweep

    jobs, base = _jobs(market)
    sweep = run_sweep(market, jobs, base, processes=1)
    stats = period_stats(sweep.base)
    grid = sweep.grid if len(axes) == 2 else sweep.grid[sweep.grid["window"] == 15]
    page = dict(title="t", parameters={"data": "synthetic"})
    whole = build_report(sweep.base, stats, grid=grid, grid_axes=axes, **page)
    assert with_sweep(build_report(sweep.base, stats, **page), grid, axes) == whole
    assert whole.count("chart-sweep") >= 1 and "<table id='sweep'>" in whole


def test_a_sweep_without_trades_keeps_its_heatmap(market):
    from backtester.outputs import period_stats
    from backtester.report import build_report

    never = [("entry_z", ["50", "60"]), ("window", ["15", "25"])]  # no z-score gets there
    common = dict(start=None, end=None, symbols=market.symbols, settings=Settings(), split=None)
    jobs = jobs_for(never, ENV, [("stop_z", "100")], **common)
    sweep = run_sweep(market, jobs, jobs[0], processes=1)
    assert (sweep.grid["trades"] == 0).all()
    page = build_report(sweep.base, period_stats(sweep.base), title="t", grid=sweep.grid,
                        grid_axes=["entry_z", "window"])
    assert "chart-sweep" in page


def _lanes_end(order, lengths, lanes):
    """When the last of `lanes` lanes ends, each taking the next task of `order` when free."""
    ends = [0.0] * lanes
    for i in order:
        lane = ends.index(min(ends))
        ends[lane] += lengths[i]
    return max(ends)


def _best_end(lengths, first, lanes):
    """The earliest end of any split of the tasks into lanes, `first` in the first one."""
    rest = [i for i in range(len(lengths)) if i != first]
    best = float("inf")
    for lanes_of in itertools.product(range(lanes), repeat=len(rest)):
        ends = [lengths[first]] + [0.0] * (lanes - 1)
        for i, lane in zip(rest, lanes_of, strict=True):
            ends[lane] += lengths[i]
        best = min(best, max(ends))
    return best


def test_lanes_taking_the_planned_order_end_as_early_as_any_split():
    from backtester.sweep import lane_order

    # Longest first would end at 7: (3, 2, 2) and (3, 2); the best split is (3, 3), (2, 2, 2).
    lengths = [3.0, 2.0, 3.0, 2.0, 2.0]
    order = lane_order(lengths, 0, 2)
    assert order[0] == 0
    assert _lanes_end(order, lengths, 2) == _best_end(lengths, 0, 2) == 6.0
    assert _lanes_end([0, 2, 1, 3, 4], lengths, 2) == 7.0
    rng = random.Random(7)
    for _ in range(40):
        n, lanes = rng.randint(2, 9), rng.choice([2, 3])
        lengths = [rng.choice([0.6, 0.65, 0.9, 1.3, 1.5]) * rng.uniform(0.9, 1.1)
                   for _ in range(n)]
        first = rng.randrange(n)
        order = lane_order(lengths, first, lanes)
        assert sorted(order) == list(range(n)) and order[0] == first
        assert _lanes_end(order, lengths, lanes) == pytest.approx(
            _best_end(lengths, first, lanes))


def test_many_tasks_go_longest_first_after_the_first():
    from backtester.sweep import EXHAUSTIVE, lane_order

    lengths = [float(i % 7) for i in range(40)]
    assert 2 ** 39 > EXHAUSTIVE
    order = lane_order(lengths, 5, 2)
    assert order[0] == 5
    assert [lengths[i] for i in order[1:]] == sorted(
        (x for i, x in enumerate(lengths) if i != 5), reverse=True)


def test_the_length_model_grows_with_looser_entries_and_with_shorts():
    from backtester.sweep import plan, run_length

    def length(*changes):
        return run_length(build_config(ENV, list(changes)))

    assert length(("entry_z", "1.0")) > length(("entry_z", "1.5")) > length(("entry_z", "2.0"))
    assert length(("allow_shorts", "false")) < length()
    assert length(("window", "20")) == length(("window", "60"))
    # The grid of the benchmark: 9 runs of 1.27, 0.87 and 0.62 s by entry (one process).
    ratio = length(("entry_z", "1.0")) / length(("entry_z", "2.0"))
    assert 1.27 / 0.62 * 0.95 < ratio < 1.27 / 0.62 * 1.05
    common = dict(start=None, end=None, symbols=None, settings=Settings(), split=None)
    jobs = jobs_for([("entry_z", ["2.0", "1.0", "1.5"]), ("window", ["60", "20"])], ENV, [],
                    **common)
    tasks = [(job, job.params == (("entry_z", "1.5"), ("window", "60"))) for job in jobs]
    order = plan(tasks, 2, prepare_share=0.7)
    assert tasks[order[0]][1]  # the command line's own run first
    assert sorted(order) == list(range(len(tasks)))


def _pid_of_each_run(monkeypatch, jobs):
    """Which process ran each job's backtest, in shared memory so that forked lanes write it."""
    pids = forked.shared_array(len(jobs) + 1, np.int64)
    configs = [job.config for job in jobs]
    real = backtester.sweep.run_backtest

    def recording(market, config, **kwargs):
        pids[configs.index(config) if config in configs else len(jobs)] = os.getpid()
        return real(market, config, **kwargs)

    monkeypatch.setattr(backtester.sweep, "run_backtest", recording)
    return pids


@pytest.fixture
def lanes(as_if_single_threaded):
    """The forked lanes' path of run_sweep, which needs a platform that forks and two CPUs."""
    if not hasattr(os, "fork") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("forked lanes need a platform that forks and two CPUs")
    assert forked.can_fork()


def test_two_lanes_this_process_with_the_own_run_and_a_forked_child(market, monkeypatch,
                                                                    lanes):
    jobs, base = _jobs(market)  # the base is not in the grid: pids[-1] is its run's
    pids = _pid_of_each_run(monkeypatch, jobs)
    handed = []
    sweep = run_sweep(market, jobs, base, processes=2, on_base=handed.append)
    assert pids[-1] == os.getpid() and len(handed) == 1
    assert set(pids[:-1].tolist()) - {os.getpid()}, "no run in a second process"
    assert 0 not in pids.tolist()
    alone = run_sweep(market, jobs, base, processes=1)
    pd.testing.assert_frame_equal(alone.grid, sweep.grid)
    assert trade_rows(handed[0]) == trade_rows(alone.base)
    with pytest.raises(ChildProcessError):  # the child was reaped
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("where", ["child", "parent"])
def test_a_failing_run_fails_the_sweep_alike_in_one_process_and_in_lanes(market, monkeypatch,
                                                                         where, lanes):
    from backtester.sweep import PREPARE_SHARE, plan

    jobs, base = _jobs(market)  # the base is not in the grid: the first task
    # The child lane's first task is the plan's second; the parent's is the base.
    childs = jobs[plan([(base, True), *((job, False) for job in jobs)], 2, PREPARE_SHARE)[1] - 1]
    bad = base.config if where == "parent" else childs.config
    failed_in = forked.shared_array(1, np.int64)
    real = backtester.sweep.run_backtest

    def failing(market, config, **kwargs):
        if config == bad:
            failed_in[0] = os.getpid()
            raise ValueError("bars.csv: field 'close' is not a number")
        return real(market, config, **kwargs)

    monkeypatch.setattr(backtester.sweep, "run_backtest", failing)
    for processes in (1, 2):
        handed = []
        with pytest.raises(ValueError, match="^bars.csv: field 'close' is not a number$"):
            run_sweep(market, jobs, base, processes=processes, on_base=handed.append)
        assert (failed_in[0] == os.getpid()) == (processes == 1 or where == "parent")
        assert len(handed) == (0 if where == "parent" else 1)  # the base runs first
    with pytest.raises(ChildProcessError):  # no child left behind
        os.waitpid(-1, os.WNOHANG)


# A Dask client leaves threads in its process for good (its IO loop, its offload thread), and a
# process with a second thread does not fork (forked.can_fork): the cluster's tests run in a
# fresh interpreter each, so that the tests after them in this session may fork.
def _in_a_fresh_process(name: str) -> None:
    source = f"import tests.{Path(__file__).stem} as t; t.{name}()"
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_dask_cluster_of_two_local_workers_gives_the_same_rows():
    _in_a_fresh_process("dask_cluster_gives_the_same_rows")


def dask_cluster_gives_the_same_rows() -> None:
    import distributed  # requirements-dask.txt, installed by make test

    market = synthetic.generate(12, start=date(2016, 1, 4), sessions=260, seed=11)
    jobs, base = _jobs(market)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = run_sweep(market, jobs, base, scheduler=cluster.scheduler_address)
        with distributed.Client(cluster.scheduler_address) as client:
            held = client.run(lambda dask_worker: len(dask_worker.data))
    local = run_sweep(market, jobs, base, processes=1)
    pd.testing.assert_frame_equal(remote.grid, local.grid)
    assert trade_rows(remote.base) == trade_rows(local.base)
    assert len(held) == 2


def test_an_unreachable_scheduler_is_named():
    _in_a_fresh_process("an_unreachable_scheduler_is_named")


def an_unreachable_scheduler_is_named() -> None:
    from backtester.distributed import run_on_cluster

    with pytest.raises(ValueError, match=r"--scheduler tcp://127.0.0.1:9: no Dask scheduler"):
        run_on_cluster("tcp://127.0.0.1:9", None, [], lambda: None, timeout_s=2)
