"""Parity: the live bot on the local exchange (`trading_bot.py --sim`) and the backtester,
over the same days, data and configuration, make the same trades.

The bot runs in-process, one daily run per session at noon New York, over HTTP against the
embedded exchange; it records trades.csv through reconciliation with the broker. The
backtester replays the same days without any of that. The sim's last run only reconciles the
fills of the day before it (its own orders never get to fill), so the backtest ends one
session earlier and the sim's trades are compared up to that session.

The trades' costs are compared too: the bot books them from the exchange's account
activities (trade_costs.py), the backtester charges them itself (backtester/costs.py).
"""

import csv
from datetime import date

import pytest

import trading_bot
from backtester import run_backtest
from backtester.outputs import cost_columns, trade_columns
from config import load_config
from market_calendar import nyse
from simbroker import market_data

TICKERS = "AAPL,AMZN,BAC,CVX,JPM,KO,MSFT,NVDA,PFE,XOM"
# Everything a trade row says except the order ids, which only the broker assigns.
COMPARED = ("symbol", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price",
            "pnl_usd", "exit_reason", "holding_days", "entry_z", "exit_z",
            "entry_client_order_id", "exit_client_order_id", "fees_usd", "gross_pnl_usd",
            "net_pnl_usd")


def _key(row):
    return (row["exit_time"], row["symbol"])


def backtest_rows(result) -> list[dict[str, str]]:
    """The backtest's trades.csv rows (the bot's columns and the costs')."""
    columns = trade_columns(result) | cost_columns(result)
    return [dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)]


DESIGN = {"ENTRY_ORDER_TYPE": "limit", "EXIT_ORDER_TYPE": "limit", "STOP_ORDER_TYPE": "limit",
          "EXIT_ESCALATE_AFTER_DAYS": "0"}
ON_CLOSE = {"EXIT_ORDER_TYPE": "market_on_close", "STOP_ORDER_TYPE": "market_on_close"}
ESCALATING = {"ENTRY_ORDER_TYPE": "marketable_limit", "LIMIT_OFFSET_BPS": "5",
              "EXIT_ORDER_TYPE": "limit", "EXIT_ESCALATE_AFTER_DAYS": "1"}
# On-close entries are whole shares (Alpaca: fractional quantities only in DAY orders).
CLOSE_ENTRIES = {"ENTRY_ORDER_TYPE": "limit_on_close", "EXIT_ORDER_TYPE": "market",
                 "STOP_ORDER_TYPE": "marketable_limit", "POSITION_SIZE_USD": "500"}


# Spring 2019 has mean-reversion exits, the 2020 crash a stop-loss, spring 2022 shorts; the
# default order settings, the design's all-limit ones, and three other combinations.
@pytest.mark.parametrize("first_day, days, settings", [
    (date(2019, 3, 4), 30, {}), (date(2020, 2, 24), 30, {}), (date(2022, 5, 2), 25, {}),
    (date(2020, 2, 24), 30, DESIGN), (date(2020, 2, 24), 30, ON_CLOSE),
    (date(2019, 3, 4), 30, ESCALATING), (date(2020, 2, 24), 30, CLOSE_ENTRIES)])
def test_backtest_makes_the_trades_the_bot_makes_on_the_exchange(tmp_path, monkeypatch,
                                                                  first_day, days, settings):
    monkeypatch.chdir(tmp_path)  # no developer .env
    env = {"TICKERS": TICKERS, **settings}
    code = trading_bot.main(["--sim", "--days", str(days), "--sim-start", first_day.isoformat(),
                             "--sim-dir", str(tmp_path / "sim")], environ=env)
    assert code == 0
    sessions = nyse().sessions_between(first_day, date(2023, 1, 1))[:days]
    settled = sessions[-2].day  # the last day whose fills the sim has reconciled
    with open(tmp_path / "sim" / "logs" / "trades.csv") as handle:
        bot = [r for r in csv.DictReader(handle) if r["exit_time"][:10] <= settled.isoformat()]

    result = run_backtest(market_data.load("us-stocks"), load_config(env), start=first_day,
                          end=settled)
    backtest = backtest_rows(result)

    assert len(bot) >= 10, "too few trades for the comparison to mean anything"
    bot_rows = [{k: r[k] for k in COMPARED} for r in sorted(bot, key=_key)]
    compared = [{k: r[k] for k in COMPARED} for r in sorted(backtest, key=_key)]
    assert compared == bot_rows
    if any(r["side"] == "short" for r in bot_rows):
        assert any(float(r["fees_usd"]) > 0 for r in bot_rows)  # the costs were compared
