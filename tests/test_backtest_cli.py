"""backtest.py end to end on short periods of the shipped data: files, sweep, split, report."""

import csv
import json

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
    page = (out / "report.html").read_text()
    assert '"type":"heatmap"' in page
    assert "Sweep: sharpe by entry_z and window" in page
    assert '<script src="http' not in page
    assert "plotly.js v" in page  # the library itself is inlined: the page works offline


def test_split_reports_both_periods(run):
    code, printed, out = run("--split", "2022-02-15")
    assert code == 0, printed.err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["in_sample"]["end"] == "2022-02-14"
    assert stats["out_of_sample"]["start"] == "2022-02-15"
    header = printed.out.splitlines()[0]
    assert "in-sample" in header and "out-of-sample" in header
    assert "Walk-forward" in (out / "report.html").read_text()


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
    assert "computed by: timelines" in printed.out


def test_bad_values_are_refused_with_the_setting_named(run):
    code, printed, _ = run("--entry-z", "0.05")  # entry inside the exit band
    assert code == 2
    assert "LONG_ENTRY_Z" in printed.err
    code, printed, _ = run("--grid", "entry=1,2")
    assert code == 2
    assert "'entry' is not a strategy parameter" in printed.err
