"""State-file integrity, end to end: a JSON key given twice, a trades.csv row doubled or
lost, and a UTF-8 byte order mark. The real bot over HTTP against the local exchange: a
damaged file stops the run naming the file and what is wrong, before any order, without
changing a byte; a BOM is read as nothing."""

from __future__ import annotations

import json

import pytest

import trading_bot
from position_manager import StateStore
from tests.reliability_support import SCENARIOS, bot_env, check_invariants, post_count, prepare


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare(SCENARIOS["both"], tmp_path_factory.mktemp("integrity") / "prepared")


def run(exchange, server, logs, prepared) -> int:
    env = bot_env(server, exchange, prepared.scenario.tickers)
    return trading_bot.main(["--log-dir", str(logs)], environ=env)


def files(logs) -> dict:
    return {p.name: p.read_bytes() for p in logs.iterdir() if p.is_file() and p.suffix != ".lock"}


def test_a_key_given_twice_stops_the_run_naming_it(prepared, tmp_path, capsys):
    with prepared.fresh(tmp_path) as (exchange, server, logs):
        path = logs / "positions.json"
        text = path.read_text()
        assert text.lstrip().startswith("{")
        path.write_text(text.replace("{", '{"version": 1,', 1))
        before, posts = files(logs), post_count(exchange)
        assert run(exchange, server, logs, prepared) == 1
        err = capsys.readouterr().err
        assert "positions.json" in err and "'version' appears twice" in err
        assert files(logs) == before and post_count(exchange) == posts


def test_a_byte_order_mark_is_read_as_nothing(prepared, tmp_path):
    with prepared.fresh(tmp_path) as (exchange, server, logs):
        for name in ("positions.json", "pending_orders.json"):
            path = logs / name
            if path.exists():
                path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        assert run(exchange, server, logs, prepared) == 0
        assert check_invariants(exchange, logs) == []


@pytest.fixture
def with_a_trade(prepared, tmp_path):
    """The run of the day done (AAA exited: one trade row); the same day's rerun is next."""
    with prepared.fresh(tmp_path) as (exchange, server, logs):
        assert run(exchange, server, logs, prepared) == 0
        assert len(StateStore(logs).load_trades()) == 1
        yield exchange, server, logs


def test_a_doubled_trade_row_is_named(prepared, with_a_trade, capsys):
    exchange, server, logs = with_a_trade
    path = logs / "trades.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1]]))
    before, posts = files(logs), post_count(exchange)
    assert run(exchange, server, logs, prepared) == 1
    err = capsys.readouterr().err
    assert "trades.csv: line 3 repeats line 2" in err and "mr-" in err
    assert files(logs) == before and post_count(exchange) == posts


def test_a_lost_trade_row_is_named(prepared, with_a_trade, capsys):
    exchange, server, logs = with_a_trade
    path = logs / "trades.csv"
    exit_id = StateStore(logs).load_trades()[0]["exit_client_order_id"]
    path.write_text(path.read_text().splitlines(keepends=True)[0])  # the header only
    before, posts = files(logs), post_count(exchange)
    assert run(exchange, server, logs, prepared) == 1
    err = capsys.readouterr().err
    assert f"the row of the exit {exit_id} is missing" in err and "trades_index.json" in err
    assert files(logs) == before and post_count(exchange) == posts


def test_the_index_follows_every_row(prepared, with_a_trade):
    _, _, logs = with_a_trade
    index = json.loads((logs / "trades_index.json").read_text())
    assert len(index["exits"]) == len(StateStore(logs).load_trades()) == 1
