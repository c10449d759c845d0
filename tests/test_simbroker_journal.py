"""The exchange's state file and its journal: every committed change is on disk before the
request is answered, a load replays it exactly, a torn last line or a stale generation is
ignored, and compaction keeps the journal no larger than the snapshot."""

from __future__ import annotations

import json
import os
import stat

import requests

from simbroker import Exchange, ExchangeConfig, journal, serve
from tests.simbroker_fixtures import MAR1, MAR2, NOON_MAR1, limit_buy, ny, sdk, tiny_market

HEADERS = {"APCA-API-KEY-ID": "SIMKEY", "APCA-API-SECRET-KEY": "SIMSECRET"}


def without_log(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "requests"}


def test_every_answered_change_is_on_disk_and_replays_exactly(monkeypatch, tmp_path):
    path = tmp_path / "exchange.json"
    exchange = Exchange(tiny_market(), ExchangeConfig(spread_bps=0.0), now=NOON_MAR1)
    with serve(exchange, state_path=str(path)) as server:
        monkeypatch.setenv("APCA_API_DATA_URL", server.data_url)
        api = sdk(server)

        def on_disk() -> dict:
            return without_log(Exchange.load(path, tiny_market()).to_state())

        limit_buy(api, "AAA", 10, 105.0, client_order_id="a")  # fills at once
        assert on_disk() == without_log(exchange.to_state())
        resting = limit_buy(api, "FLAT", 5, 19.0, client_order_id="b", time_in_force="gtc")
        api.submit_order("SPL", qty=3, side="buy", type="market", time_in_force="day")
        assert on_disk() == without_log(exchange.to_state())
        refused = requests.post(server.trading_url + "/v2/orders", headers=HEADERS, json={
            "symbol": "AAA", "qty": 1, "side": "buy", "type": "limit", "limit_price": 1e9,
            "time_in_force": "day"}, timeout=10)
        assert refused.status_code == 403  # refused, yet it drew an order id: saved too
        assert on_disk() == without_log(exchange.to_state())
        api.cancel_order(resting.id)
        requests.post(server.trading_url + "/_sim/clock", json={"to": "2022-03-03T22:00:00Z"},
                      headers=HEADERS, timeout=10)  # a close, an open and the split
        assert on_disk() == without_log(exchange.to_state())
        for endpoint, body in (("/_sim/activities", {"activity_type": "DIV", "net_amount": 2.5,
                                                 "symbol": "AAA", "qty": 10,
                                                 "per_share_amount": 0.25, "sub_type": "CDIV"}),
                           ("/_sim/account", {"shorting_enabled": False})):
            answer = requests.post(server.trading_url + endpoint, json=body, headers=HEADERS,
                                   timeout=10)
            assert answer.status_code == 200, answer.text
            assert on_disk() == without_log(exchange.to_state())
        requests.post(server.trading_url + "/_sim/reset", headers=HEADERS, timeout=10)
        limit_buy(api, "AAA", 1, 200.0, client_order_id="after-reset")
        assert on_disk() == without_log(exchange.to_state())
    assert Exchange.load(path, tiny_market()).to_state() == exchange.to_state()  # log too
    for name in (path, journal.journal_path(path)):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600  # the keys are in the state


def test_a_loaded_exchange_continues_like_the_one_that_was_journaled(tmp_path):
    path = tmp_path / "exchange.json"
    exchange = Exchange(tiny_market(), now=NOON_MAR1)
    book = journal.Journal(path).attach(exchange)
    exchange.submit_order({"symbol": "FLAT", "side": "buy", "qty": 2, "type": "market",
                           "time_in_force": "day"})
    book.commit(exchange)
    exchange.advance_to(ny(MAR2, 12))
    book.commit(exchange)
    loaded = Exchange.load(path, tiny_market())
    for ex in (exchange, loaded):
        ex.submit_order({"symbol": "AAA", "side": "buy", "qty": 1, "type": "market",
                         "time_in_force": "day"})
    assert loaded.to_state() == exchange.to_state()  # the same next order id, fill, clock


def test_a_torn_last_line_and_a_stale_generation_are_ignored(tmp_path):
    path = tmp_path / "exchange.json"
    exchange = Exchange(tiny_market(), now=NOON_MAR1)
    book = journal.Journal(path).attach(exchange)
    exchange.submit_order({"symbol": "FLAT", "side": "buy", "qty": 2, "type": "market",
                           "time_in_force": "day", "client_order_id": "kept"})
    book.commit(exchange)
    committed = exchange.to_state()
    lines = journal.journal_path(path)
    with open(lines, "ab") as out:  # a crash in the middle of the next line
        out.write(b'{"generation": "' + book.generation.encode() + b'", "orders": [{"id')
    assert Exchange.load(path, tiny_market()).to_state() == committed
    # the next commit cuts the torn line away before appending its own
    exchange.advance_to(ny(MAR1, 13))
    book.commit(exchange)
    assert Exchange.load(path, tiny_market()).to_state() == exchange.to_state()
    # lines of another generation (a crash between a compaction's two steps) are not applied
    stale = json.loads(lines.read_bytes().splitlines()[0])
    stale["generation"] = "0" * 16
    stale["scalars"]["cash"] = 1.0
    with open(lines, "ab") as out:
        out.write((json.dumps(stale) + "\n").encode())
    assert Exchange.load(path, tiny_market()).to_state() == exchange.to_state()


def test_compaction_keeps_the_journal_no_larger_than_the_snapshot(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 10_000)
    path = tmp_path / "exchange.json"
    exchange = Exchange(tiny_market(), now=NOON_MAR1)
    book = journal.Journal(path).attach(exchange)
    compactions = 0
    for i in range(300):
        before = book.generation
        exchange.submit_order({"symbol": "FLAT", "side": "buy" if i % 2 else "sell",
                               "qty": 1, "type": "market", "time_in_force": "day"})
        book.commit(exchange)
        compactions += book.generation != before
        size = journal.journal_path(path).stat().st_size
        assert size <= max(journal.MIN_COMPACT_BYTES, path.stat().st_size)
    assert compactions >= 3
    assert Exchange.load(path, tiny_market()).to_state() == exchange.to_state()
