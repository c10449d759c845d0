"""backtest.py end to end on short periods of the shipped data: files, sweep, split, report."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backtester.cli import main
from backtester.outputs import COST_COLUMNS
from position_manager import TRADE_COLUMNS

PERIOD = ["--start", "2022-01-03", "--end", "2022-03-31", "--symbols", "AAPL,AMZN,KO,XOM"]


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's leaks in

    def invoke(*args):
        code = main([*PERIOD, "--out", str(tmp_path / "out"), *args], environ={})
        return code, capsys.readouterr(), tmp_path / "out"
    return invoke


def test_sweep_writes_grid_and_a_self_contained_report_with_the_heatmap(run):
    code, printed, out = run("--grid", "entry_z=1.5,2.0", "window=20,30", "--processes", "2")
    assert code == 0, printed.err
    with open(out / "grid.csv") as handle:
        grid = list(csv.DictReader(handle))
    assert [(r["entry_z"], r["window"]) for r in grid] == [
        ("1.5", "20"), ("1.5", "30"), ("2.0", "20"), ("2.0", "30")]
    assert {"sharpe", "total_return", "trades"} <= set(grid[0])
    ranked = printed.out.split("sweep: 4 runs ranked by sharpe\n")[1].splitlines()
    assert ranked[0].split() == ["rank", "entry_z", "window", "sharpe", "total_return",
                                 "max_drawdown", "trades"]
    best = sorted(grid, key=lambda r: -float(r["sharpe"]))
    assert [line.split()[1:3] for line in ranked[1:5]] == [[r["entry_z"], r["window"]]
                                                           for r in best]
    page = (out / "report.html").read_text()
    assert '"type":"heatmap"' in page and '"zmid":0' in page  # a loss is never green
    assert "Sweep: Sharpe (daily, rf=0) by entry_z and window" in page
    assert '<script src="http' not in page
    assert "plotly.js v" in page  # the library itself is inlined: the page works offline
    # The sweep as a table ranked by Sharpe, best first, with a filter.
    ranks = re.findall(r"<tr><td>(\d+)</td><td>([\d.]+)</td><td>(\d+)</td>", page)
    assert [r[0] for r in ranks] == ["1", "2", "3", "4"]
    by_cell = {(float(r["entry_z"]), int(r["window"])): float(r["sharpe"]) for r in grid}
    ordered = [by_cell[(float(z), int(w))] for _, z, w in ranks]
    assert ordered == sorted(ordered, reverse=True)
    assert "id='sweep-filter'" in page
    assert sorted(p.name for p in out.iterdir()) == [
        "equity.csv", "grid.csv", "report.html", "stats.json", "trades.csv"]  # no temporary
    # What the run was: its settings first, then every traded symbol in the menu.
    assert page.index("<h2>Settings</h2>") < page.index("<h2>Statistics</h2>")
    assert "<th>symbols</th><td class='left'>4: AAPL, AMZN, KO, XOM</td>" in page
    assert "<h2>Monthly returns</h2>" in page and "<h2>Worst drawdowns</h2>" in page
    assert "Rolling Sharpe over 126 sessions" in page
    assert '"title.text":' in page  # the menu keeps each symbol's title


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_sweep_run_that_fails_stops_the_command_with_its_message_and_no_files(
        run, monkeypatch, processes):
    import backtester.sweep

    real = backtester.sweep.run_backtest

    def failing(market, config, **kwargs):
        if config.short_entry_z == 2.0:  # in the second lane as well as in one process
            raise ValueError("bars.csv: row 7: field 'close' is not a number")
        return real(market, config, **kwargs)

    monkeypatch.setattr(backtester.sweep, "run_backtest", failing)
    code, printed, out = run("--grid", "entry_z=1.5,2.0", "window=20,30",
                             "--processes", processes)
    assert code == 2
    assert printed.err == "backtest.py: error: bars.csv: row 7: field 'close' is not a number\n"
    assert not out.exists() or list(out.iterdir()) == []  # not even the report's start


def test_split_reports_both_periods(run):
    code, printed, out = run("--split", "2022-02-15")
    assert code == 0, printed.err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["in_sample"]["end"] == "2022-02-14"
    assert stats["out_of_sample"]["start"] == "2022-02-15"
    header = printed.out.splitlines()[0]
    assert "in-sample" in header and "out-of-sample" in header
    assert "Walk-forward" in (out / "report.html").read_text()


def test_a_sweep_with_a_split_is_ranked_and_drawn_out_of_sample(run):
    code, printed, out = run("--grid", "entry_z=1.5,2.0", "--split", "2022-02-15",
                             "--processes", "1")
    assert code == 0, printed.err
    page = (out / "report.html").read_text()
    assert "Sweep: out-of-sample Sharpe (daily, rf=0) by entry_z and _" in page
    assert "best first by out-of-sample Sharpe (daily, rf=0)" in page


def test_files_and_parameter_overrides(run):
    code, printed, out = run("--entry-z", "2.0", "--long-entry-z", "-2.5", "--window", "20")
    assert code == 0, printed.err
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["parameters"]["long_entry_z"], stats["parameters"]["short_entry_z"]) == (
        -2.5, 2.0)
    assert stats["parameters"]["z_score_window"] == 20
    with open(out / "trades.csv") as handle:
        # The bot's columns, then the backtest's own: fees and P&L before and after them.
        assert next(csv.reader(handle)) == [*TRADE_COLUMNS, *COST_COLUMNS]
    with open(out / "equity.csv") as handle:
        assert next(csv.reader(handle)) == ["date", "equity", "cash", "long_value",
                                            "short_value", "drawdown"]
    assert "Sharpe" in printed.out
    # How it was computed is said, and this run's entries never depend on the account.
    assert stats["engine"] == "timelines"
    assert f"computed by: {stats['engine']}" in printed.out
    # Per order purpose: placed, filled and the implementation shortfall, printed and saved.
    assert set(stats["orders"]) == {"entry", "exit", "stop"}
    assert stats["orders"]["exit"]["placed"] >= stats["orders"]["exit"]["filled"] > 0
    assert "Orders (exit): filled / placed, shortfall" in printed.out


def test_order_settings_as_options_and_sweep_dimensions(run):
    code, printed, out = run("--grid", "exit_order_type=limit,marketable_limit",
                             "--stop-order-type", "market", "--exit-escalate-after-days", "0",
                             "--processes", "1")
    assert code == 0, printed.err
    with open(out / "grid.csv") as handle:
        grid = {r["exit_order_type"]: r for r in csv.DictReader(handle)}
    assert set(grid) == {"limit", "marketable_limit"}
    # Marketable limits fill every exit, paying the spread (a positive shortfall against the
    # decision price); limits at the noon price fill at their limit when they fill.
    assert float(grid["limit"]["exit_fill_rate"]) <= 1.0
    assert float(grid["marketable_limit"]["exit_fill_rate"]) == 1.0
    assert float(grid["marketable_limit"]["exit_shortfall_bps"]) > \
        float(grid["limit"]["exit_shortfall_bps"]) + 0.5
    assert {"entry_fill_rate", "stop_fill_rate", "stop_shortfall_bps"} <= set(grid["limit"])
    code, printed, _ = run("--exit-order-type", "stop")
    assert code == 2 and "EXIT_ORDER_TYPE='stop' is unknown" in printed.err


def test_bad_values_are_refused_with_the_setting_named(run):
    code, printed, _ = run("--entry-z", "0.05")  # entry inside the exit band
    assert code == 2
    assert "LONG_ENTRY_Z" in printed.err
    code, printed, _ = run("--scheduler", "tcp://127.0.0.1:9")
    assert code == 2
    assert "give the sweep with --grid" in printed.err
    code, printed, _ = run("--grid", "entry=1,2")
    assert code == 2
    assert "'entry' is not a strategy parameter" in printed.err


def test_timings_name_every_phase_and_add_up(run):
    code, printed, _ = run("--timings")
    assert code == 0, printed.err
    line = next(x for x in printed.err.splitlines() if x.startswith("timings: "))
    parts = [p.rsplit(" ", 2) for p in line.removeprefix("timings: ").split(", ")]
    names = [name for name, _, unit in parts]
    assert names == ["load", "calendar", "backtest", "files", "report", "total"]
    seconds = [float(value) for _, value, _ in parts]
    assert abs(sum(seconds[:-1]) - seconds[-1]) < 0.01  # laps of one stopwatch


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_sweeps_timings_give_each_lanes_runs_and_times(run, processes, as_if_single_threaded):
    import forked

    code, printed, _ = run("--grid", "entry_z=1.5,2.0", "window=20,30", "--timings",
                           "--processes", processes)
    assert code == 0, printed.err
    line = next(x for x in printed.err.splitlines() if x.startswith("sweep lanes: "))
    lanes = re.findall(r"(this process|child \d) (\d+) runs, ended ([\d.]+) s, CPU ([\d.]+) s",
                       line)
    lanes_expected = 1 if processes == "1" or not forked.can_fork() else 2
    assert [name for name, *_ in lanes] == ["this process", "child 1"][:lanes_expected]
    assert sum(int(runs) for _, runs, _, _ in lanes) == 4  # the base run is the grid's (1.5, 30)
    assert all(float(end) > 0 and float(cpu) > 0 for _, _, end, cpu in lanes)


def test_a_sweeps_files_are_put_in_place_together_or_not_at_all(run, tmp_path):
    (tmp_path / "out" / "grid.csv").mkdir(parents=True)  # grid.csv cannot be written
    code, printed, out = run("--grid", "entry_z=1.5,2.0", "--processes", "1")
    assert code == 1
    assert "grid.csv" in printed.err
    assert sorted(p.name for p in out.iterdir()) == ["grid.csv"]  # none of the others either


def test_backtest_processes_in_the_environment_is_the_default_of_processes(
        tmp_path, monkeypatch, capsys, as_if_single_threaded):
    monkeypatch.chdir(tmp_path)
    out = ["--out", str(tmp_path / "out")]
    grid = ["--grid", "entry_z=1.5,2.0", "--timings"]
    code = main([*PERIOD, *out, *grid], environ={"BACKTEST_PROCESSES": "1"})
    printed = capsys.readouterr()
    assert code == 0, printed.err
    line = next(x for x in printed.err.splitlines() if x.startswith("sweep lanes: "))
    assert "this process" in line and "child" not in line
    code = main([*PERIOD, *out, *grid], environ={"BACKTEST_PROCESSES": "two"})
    printed = capsys.readouterr()
    assert code == 2
    assert "BACKTEST_PROCESSES='two' is not a number of processes" in printed.err


@pytest.mark.parametrize(("given", "expected"), [(None, "False"), ("1", "True")])
def test_backtest_py_turns_numpy_huge_pages_off_unless_asked(given, expected):
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if given is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = given
    probe = ("import runpy, sys; sys.argv = ['backtest.py', '--version']\n"
             "try:\n    runpy.run_path('backtest.py', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "import numpy._core.multiarray as m; print(m._get_madvise_hugepage())")
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env,
                          capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == expected


def test_a_backtest_of_a_plain_csv_file_does_not_import_pandas(tmp_path):
    from simbroker.market_data import load

    us = load("us-stocks")
    rows = ["symbol,date,open,high,low,close,volume"]
    for symbol in ("AAPL", "AMZN"):
        frame = us.frame(symbol).loc["2019-01-01":"2020-06-30"]
        rows += [f"{symbol},{day:%Y-%m-%d},{o!r},{h!r},{lo!r},{c!r},{v!r}" for day, o, h, lo, c, v
                 in zip(frame.index, *(frame[f].tolist() for f in frame.columns), strict=True)]
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    root = Path(__file__).resolve().parent.parent
    probe = ("import runpy, sys\n"
             f"sys.argv = ['backtest.py', '--data', {str(path)!r}, '--out', "
             f"{str(tmp_path / 'out')!r}]\n"
             f"try:\n    runpy.run_path({str(root / 'backtest.py')!r}, run_name='__main__')\n"
             "except SystemExit as done:\n    assert done.code == 0, done.code\n"
             "print('pandas imported:', 'pandas' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "TICKERS"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={
        **env, "PYTHONPATH": str(root), "TICKERS": "AAPL,AMZN"}, capture_output=True,
        text=True, check=True)
    assert (tmp_path / "out" / "report.html").is_file()
    assert done.stdout.splitlines()[-1] == "pandas imported: False"
