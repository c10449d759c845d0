"""Sweeps: the same rows whether run in one process, in forked workers sharing the data, or on
a Dask cluster of two workers on 127.0.0.1; the command line's run is done once, with them."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

import backtester.sweep
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


def test_a_dask_cluster_of_two_local_workers_gives_the_same_rows(market):
    import distributed  # requirements-dask.txt, installed by make test

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
    from backtester.distributed import run_on_cluster

    with pytest.raises(ValueError, match=r"--scheduler tcp://127.0.0.1:9: no Dask scheduler"):
        run_on_cluster("tcp://127.0.0.1:9", None, [], lambda: None, timeout_s=2)


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


def test_workers_get_the_own_run_first_then_the_loosest_entries():
    from backtester.sweep import longest_first

    common = dict(start=None, end=None, symbols=None, settings=Settings(), split=None)
    grid = [("entry_z", ["2.0", "1.0", "1.5"]), ("window", ["60", "20"])]
    jobs = jobs_for(grid, ENV, [], **common)
    tasks = [(job, job.params == (("entry_z", "1.5"), ("window", "60"))) for job in jobs]
    order = [dict(tasks[i][0].params) for i in longest_first(tasks)]
    assert [(p["entry_z"], p["window"]) for p in order] == [
        ("1.5", "60"), ("1.0", "20"), ("1.0", "60"), ("1.5", "20"), ("2.0", "20"),
        ("2.0", "60")]
