"""`--rebuild-state`: the bot's records rebuilt from the broker alone, then managed as before.

Runs `trading_bot.py --sim` (the embedded exchange over HTTP, the real SDK) on the shipped
data: once straight through, once with positions.json and pending_orders.json deleted in the
middle of holdings and rebuilt. The second must trade exactly as the first.
"""

from __future__ import annotations

import json

import trading_bot
from position_manager import StateStore
from simbroker import Exchange, market_data

START, BEFORE, AFTER = "2021-03-01", 6, 8
SAME = ["symbol", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price",
        "pnl_usd", "holding_days", "entry_order_id", "exit_order_id", "entry_client_order_id",
        "exit_client_order_id"]


# Limit exits at the noon price (the design's), so that exit orders are still working when the
# records are lost: the default marketable exits fill at once.
LIMIT_EXITS = {"EXIT_ORDER_TYPE": "limit", "STOP_ORDER_TYPE": "limit",
               "EXIT_ESCALATE_AFTER_DAYS": "0"}


def sim(sim_dir, *args: str) -> int:
    return trading_bot.main(["--sim", "--sim-dir", str(sim_dir), *args], environ=LIMIT_EXITS)


def test_rebuilt_records_trade_as_if_nothing_happened(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no developer .env
    straight, rebuilt = tmp_path / "straight", tmp_path / "rebuilt"
    assert sim(straight, "--sim-start", START, "--days", str(BEFORE + AFTER)) == 0
    assert sim(rebuilt, "--sim-start", START, "--days", str(BEFORE)) == 0
    store = StateStore(rebuilt / "logs")
    held, pending = store.load_holdings(), store.load_pending()
    assert held and pending  # mid-holding, with orders still working
    store.positions_path.unlink()
    store.pending_path.unlink()

    assert sim(rebuilt, "--rebuild-state") == 0
    again = store.load_holdings()
    assert set(again) == set(held)
    for symbol, h in held.items():
        a = again[symbol]
        assert (a.side, a.qty, a.entry_price, a.entry_time, a.entry_client_order_id) == \
            (h.side, h.qty, h.entry_price, h.entry_time, h.entry_client_order_id)
        assert a.entry_z is None  # not on the broker
    assert set(store.load_pending()) == set(pending)
    report = json.loads(next((rebuilt / "logs" / "runs").glob("*/rebuild.json")).read_text())
    assert len(report["recovered"]) == len(held) + len(pending)
    assert report["not_recovered"] == []

    assert sim(rebuilt, "--days", str(AFTER)) == 0
    want = StateStore(straight / "logs").load_trades()
    got = store.load_trades()
    assert [[r[c] for c in SAME] for r in got] == [[r[c] for c in SAME] for r in want]
    rebuilt_exits = {p.client_order_id for p in pending.values() if p.intent == "exit"}
    assert any(r["exit_client_order_id"] in rebuilt_exits for r in got)
    for g, w in zip(got, want, strict=True):
        if g["exit_client_order_id"] in rebuilt_exits:
            assert g["exit_reason"] == "unknown"  # sent before the records were lost
        else:
            assert g["exit_reason"] == w["exit_reason"]
    assert store.load_holdings().keys() == StateStore(straight / "logs").load_holdings().keys()
    for run in (rebuilt / "logs" / "runs").glob("*/summary.json"):
        assert not any("left alone" in n for n in json.loads(run.read_text())["notes"])


def test_a_damaged_file_points_to_the_rebuild_which_names_what_it_cannot_explain(
        tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    sim_dir = tmp_path / "s"
    assert sim(sim_dir, "--sim-start", START, "--days", "2") == 0
    held = StateStore(sim_dir / "logs").load_holdings()
    assert held
    # A position opened by hand, outside the bot, on the same account.
    exchange = Exchange.load(sim_dir / "exchange.json", market_data.load("us-stocks"))
    symbol = next(s for s in exchange.market_data.symbols if s not in held)
    exchange.submit_order({"symbol": symbol, "qty": "1", "side": "buy", "type": "market",
                           "time_in_force": "day", "client_order_id": "by-hand-1"})
    exchange.save(sim_dir / "exchange.json")
    store = StateStore(sim_dir / "logs")
    store.positions_path.write_text("{not json")
    capfd.readouterr()
    assert sim(sim_dir, "--days", "1") == 1  # the damaged file stops the run
    err = capfd.readouterr().err
    assert "positions.json" in err and "--rebuild-state" in err and "delete it" not in err
    assert sim(sim_dir, "--rebuild-state") == 0
    err = capfd.readouterr().err
    assert f"not rebuilt: {symbol}: long 1 shares: no filled entry of the bot's" in err
    kept = list((sim_dir / "logs").glob("positions.json.before-rebuild-*"))
    assert [k.read_text() for k in kept] == ["{not json"]
    # Every position but the one by hand: also the entries that filled after day 2's run.
    broker = Exchange.load(sim_dir / "exchange.json", market_data.load("us-stocks"))
    assert held.keys() < store.load_holdings().keys() == set(broker.book.positions) - {symbol}
