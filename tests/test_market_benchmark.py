"""The market benchmark of every backtest: the shipped S&P 500 index, or a file of closes given
with --benchmark (backtester/benchmark.py), and its figures in stats.json."""

from __future__ import annotations

import gzip
import json
from datetime import date

import numpy as np
import pytest

from backtester.benchmark import SHIPPED_INDEX, load_index, market_value
from backtester.cli import main
from simbroker.market_data import DATA_DIR

PERIOD = ["--start", "2022-01-03", "--end", "2022-03-31", "--symbols", "AAPL,AMZN,KO,XOM"]


def write_index(tmp_path, rows: str, name: str = "spy.csv"):
    path = tmp_path / name
    path.write_text("date,close\n" + rows)
    return path


def test_market_value_starts_at_the_close_before_the_first_day_and_keeps_the_last_close(
        tmp_path):
    index = load_index(str(write_index(tmp_path, "2022-03-01,100\n2022-03-02,110\n"
                                                 "2022-03-04,99\n")))
    days = [date(2022, 3, 2), date(2022, 3, 3), date(2022, 3, 4)]
    # 1,000 put in at 03-01's close of 100; 03-03 has no close and keeps 03-02's.
    assert market_value(index, days, 1_000.0).tolist() == [1_100.0, 1_100.0, 990.0]
    assert market_value(index, [date(2022, 3, 1), *days], 1_000.0) is None  # nothing before
    assert market_value(index, [*days, date(2022, 3, 7)], 1_000.0) is None  # ends too soon


@pytest.mark.parametrize(("rows", "message"), [
    ("2022-03-01,100\n2022-03-02,-5\n", r"line 3: '2022-03-02','-5' is not"),
    ("2022-03-02,100\n2022-03-01,101\n", r"line 3: dates must increase"),
    ("", r"needs a header with date and close and at least one row"),
])
def test_a_bad_benchmark_file_names_the_line(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        load_index(str(write_index(tmp_path, rows, f"bad{abs(hash(rows))}.csv")))


def test_the_shipped_index_is_the_sp500_price_index():
    index = load_index(SHIPPED_INDEX)
    with gzip.open(DATA_DIR / "sp500_index_1990_2022.csv.gz", "rt") as handle:
        lines = handle.read().splitlines()
    assert len(index.close) == len(lines) - 1 == 8313
    assert (index.close[0], index.close[-1]) == (359.69, 3783.22)
    assert "price return" in index.name


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        code = main([*PERIOD, "--out", str(tmp_path / "out"), *args], environ={})
        stats = json.loads((tmp_path / "out" / "stats.json").read_text()) if code == 0 else None
        return code, capsys.readouterr(), stats
    return invoke


def test_every_backtest_is_compared_with_the_sp500_by_default(run):
    code, printed, stats = run()
    assert code == 0, printed.err
    # From 2021-12-31's close to 2022-03-31's, in the shipped file.
    index = load_index(SHIPPED_INDEX)
    first = int(np.searchsorted(index.days, (date(2022, 1, 3) - date(1970, 1, 1)).days)) - 1
    last = int(np.searchsorted(index.days, (date(2022, 3, 31) - date(1970, 1, 1)).days))
    expected = index.close[last] / index.close[first] - 1
    assert stats["market_benchmark_total_return"] == pytest.approx(expected, rel=1e-12)
    assert stats["market_benchmark"] == "S&P 500 index (price return, no dividends)"
    assert {"market_beta", "market_correlation", "market_excess_total_return"} <= set(stats)
    assert stats["market_excess_total_return"] == pytest.approx(
        stats["total_return"] - expected, abs=1e-12)
    assert stats["parameters"]["benchmark"] == stats["market_benchmark"]
    assert "Beta to the market (daily)" in printed.out


def test_benchmark_file_and_none(run, tmp_path):
    # A benchmark that doubles on the first day and then stays: total return 100%, and no
    # daily variation after the first day to correlate with.
    spy = write_index(tmp_path, "2021-12-31,100\n" + "".join(
        f"2022-{m:02d}-{d:02d},200\n" for m in (1, 2, 3) for d in range(1, 32)
        if (m, d) not in ((1, 1), (1, 2), (2, 29), (2, 30), (2, 31))), "double.csv")
    code, printed, stats = run("--benchmark", str(spy))
    assert code == 0, printed.err
    assert stats["market_benchmark"] == "double.csv (closes)"
    assert stats["market_benchmark_total_return"] == pytest.approx(1.0)
    code, printed, stats = run("--benchmark", "none")
    assert code == 0 and stats["market_benchmark"] == "none"
    assert "market_beta" not in stats


def test_a_benchmark_that_does_not_cover_the_days_is_said_so(run, tmp_path):
    short = write_index(tmp_path, "2021-12-31,100\n2022-01-03,101\n", "short.csv")
    code, printed, stats = run("--benchmark", str(short))
    assert code == 0, printed.err
    assert stats["market_benchmark"] == (
        "none: short.csv (closes) does not cover the backtest's days")
    code, printed, _ = run("--benchmark", str(tmp_path / "missing.csv"))
    assert code == 2 and "neither 'sp500'" in printed.err and "a symbol of the data" in printed.err


def test_a_symbol_of_the_data_as_the_benchmark(run):
    # KO from the shipped data: its own closes, so its return is KO's over the period.
    code, printed, stats = run("--benchmark", "KO")
    assert code == 0, printed.err
    from simbroker import market_data

    ko = market_data.load("us-stocks")
    start = ko.last_bar_before("KO", date(2022, 1, 3)).close
    assert stats["market_benchmark"] == "KO (its closes in the data)"
    assert stats["market_benchmark_total_return"] == pytest.approx(
        ko.bar("KO", date(2022, 3, 31)).close / start - 1, rel=1e-12)


def test_plain_files_are_read_without_pandas_to_the_same_closes(tmp_path):
    from backtester import benchmark

    shipped = benchmark._SHIPPED_FILE
    plain, general = benchmark._read_plain_index(shipped), benchmark._read_index(shipped)
    assert plain is not None
    assert plain[0].tolist() == general[0].tolist()
    assert plain[1].tobytes() == general[1].tobytes()  # every bit of every close
    # Anything but plain rows is left to the general read, which accepts or names it.
    for rows in ["2022-03-01, 100\n", "2022-03-01,1e2\n", "2022-03-01,100\n\n",
                 "2022-3-01,100\n", "2022-03-02,100\n2022-03-01,99\n", "2022-02-30,100\n",
                 "2022-03-01,0\n", "2022-03-01,\u0661\u0660\u0660\n"]:
        assert benchmark._read_plain_index(write_index(tmp_path, rows)) is None, rows
    spaced = load_index(str(write_index(tmp_path, "2022-03-01, 100\n", "spaced.csv")))
    assert spaced.close.tolist() == [100.0]
    with pytest.raises(ValueError, match=r"line 3: dates must increase"):
        load_index(str(write_index(tmp_path, "2022-03-02,100\n2022-03-01,99\n", "back.csv")))
