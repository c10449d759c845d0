"""backtester.outputs: trades.csv written column by column says exactly what the bot's own
`trade_row` says, row by row, for every kind of fill and exit."""

from __future__ import annotations

import csv
from datetime import date

import pytest

from backtester import Settings, run_backtest
from backtester.outputs import (
    COST_COLUMNS,
    cost_columns,
    trade_columns,
    trade_rows,
    write_columns,
    write_results,
)
from config import load_config
from position_manager import TRADE_COLUMNS
from simbroker import market_data, synthetic

RULES = {"Z_SCORE_WINDOW": "20", "LONG_ENTRY_Z": "-1.2", "SHORT_ENTRY_Z": "1.2",
         "LONG_EXIT_Z": "-0.1", "SHORT_EXIT_Z": "0.1", "LONG_STOP_Z": "-2.0",
         "SHORT_STOP_Z": "2.0", "MAX_HOLDING_DAYS": "5", "POSITION_SIZE_USD": "100"}


def _rows_of(columns):
    rows = zip(*columns.values(), strict=True)
    return [dict(zip(columns, values, strict=True)) for values in rows]


@pytest.mark.parametrize("cash", [2_000.0, 10_000_000.0])  # the account binds / never binds
def test_columns_are_the_rows_of_trade_row(cash):
    market = synthetic.generate(30, start=date(2015, 1, 2), sessions=400, seed=7,
                                halts={"S0003": [date(2015, 6, 1)]})
    config = load_config({**RULES, "TICKERS": market.symbols[0]})
    result = run_backtest(market, config, symbols=market.symbols,
                          settings=Settings(starting_cash=cash, slippage_bps=3.0))
    rows = trade_rows(result)
    assert len(rows) > 100
    assert {r["exit_reason"] for r in rows} == {"max_holding_period", "stop_loss",
                                                "mean_reversion"}
    assert _rows_of(trade_columns(result)) == rows


def test_columns_on_real_data_and_no_trades():
    market = market_data.load("us-stocks")
    config = load_config({**RULES, "TICKERS": "AAPL,MSFT,KO,XOM,JPM"})
    result = run_backtest(market, config, start=date(2019, 1, 2), end=date(2020, 12, 31))
    assert len(trade_rows(result)) > 10
    assert _rows_of(trade_columns(result)) == trade_rows(result)
    none = run_backtest(market, load_config({**RULES, "LONG_ENTRY_Z": "-40", "LONG_STOP_Z": "-50",
                                             "SHORT_ENTRY_Z": "40", "SHORT_STOP_Z": "50",
                                             "TICKERS": "AAPL"}),
                        start=date(2019, 1, 2), end=date(2019, 3, 1))
    assert trade_rows(none) == [] and trade_columns(none) == {c: [] for c in TRADE_COLUMNS}


def test_written_file_reads_back_as_the_rows(tmp_path):
    market = synthetic.generate(10, start=date(2015, 1, 2), sessions=300, seed=3)
    config = load_config({**RULES, "TICKERS": market.symbols[0]})
    result = run_backtest(market, config, symbols=market.symbols)
    write_results(result, tmp_path, {"trades": len(result.trades)})
    with open(tmp_path / "trades.csv", newline="") as f:
        reader = csv.DictReader(f)
        # The bot's columns, then the backtest's own (fees, P&L before and after them).
        assert reader.fieldnames == [*TRADE_COLUMNS, *COST_COLUMNS]
        rows = list(reader)
    assert [{k: r[k] for k in TRADE_COLUMNS} for r in rows] == trade_rows(result)
    costs = cost_columns(result)
    assert [[r[k] for k in COST_COLUMNS] for r in rows] == [
        list(v) for v in zip(*(costs[k] for k in COST_COLUMNS), strict=True)]
    equity = (tmp_path / "equity.csv").read_text().splitlines()
    assert equity[0] == "date,equity,cash,long_value,short_value,drawdown"
    assert equity[1].startswith(result.days[0].isoformat() + ",")
    assert len(equity) == len(result.days) + 1


def test_write_columns_quotes_what_csv_must(tmp_path):
    path = tmp_path / "t.csv"
    write_columns(path, {"a": ["x,y", 'say "hi"', ""], "b": ["1", "2", "3"]})
    with open(path, newline="") as f:
        assert list(csv.reader(f)) == [["a", "b"], ["x,y", "1"], ['say "hi"', "2"], ["", "3"]]


def test_csv_text_is_the_csv_modules_with_or_without_quoting():
    import csv
    import io

    from backtester.outputs import csv_text

    plain = {"symbol": ["AAPL", "BRK.B", ""], "qty": ["1", "2.5", "3"], "z": ["", "-0.1", "x"]}
    tricky = [{"a": ["x,y", "1"], "b": ["2", "3"]}, {"a": ['say "hi"', "1"], "b": ["", "3"]},
              {"a": ["two\nlines", "1"], "b": ["2", "3"]}, {"a": ["cr\r", "1"], "b": ["", ""]},
              {"a,b": ["1"], "c": ["2"]}, {"only": ["", "1"]}]
    for columns in [plain, *tricky]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
        assert csv_text(columns) == buffer.getvalue(), columns
