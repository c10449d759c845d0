"""`--rebuild-state`: the bot's records rebuilt from the broker alone, then managed as before.

Runs `trading_bot.py --sim` (the embedded exchange over HTTP, the real SDK) on the shipped
data: once straight through, once with positions.json and pending_orders.json deleted in the
middle of holdings and rebuilt. The second must trade exactly as the first.
"""

from __future__ import annotations

import json

import pytest

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


# -- over the local exchange's controls: a symbol change, a replaced entry ------------------

def _lose_records(sim) -> None:
    sim.store.positions_path.unlink()
    sim.store.pending_path.unlink()


def _rebuilt(sim) -> dict:
    assert sim.run(None, "--rebuild-state") == 0
    runs = sorted((sim.log_dir / "runs").iterdir())
    return json.loads((runs[-1] / "rebuild.json").read_text())


def test_a_renamed_holding_is_rebuilt_from_its_entry_under_the_old_symbol(tmp_path,
                                                                          monkeypatch):
    import requests

    from tests.reliability_support import check_invariants
    from tests.sim_harness import Sim, flat_bars, market
    from tests.test_bot_e2e import DAYS, E, scenario

    monkeypatch.chdir(tmp_path)
    series, entry = scenario(["z=-1.0", "z=0.5"], symbol="OLD")
    closes = series["OLD"]
    old = {d: p for d, p in closes.items() if d <= DAYS[E]}
    sim = Sim(tmp_path, market(flat_bars("OLD", old), flat_bars("NEW", closes)), DAYS[E - 1],
              spread_bps=0.0)
    sim.env["TICKERS"] = "OLD"
    try:
        assert sim.run(DAYS[E]) == 0
        held = sim.store.load_holdings()["OLD"]
        sim.exchange.advance_to(sim.exchange.now.replace(hour=23))  # after the close (UTC)
        answer = requests.post(f"{sim.server.trading_url}/_sim/corporate_actions", json={
            "type": "name_change", "symbol": "OLD", "new_symbol": "NEW"}, timeout=10, headers={
            "APCA-API-KEY-ID": sim.exchange.config.key_id,
            "APCA-API-SECRET-KEY": sim.exchange.config.secret_key})
        assert answer.status_code == 200, answer.text
        _lose_records(sim)
        report = _rebuilt(sim)
        assert report["not_recovered"] == []
        rebuilt = sim.store.load_holdings()
        assert list(rebuilt) == ["NEW"]
        assert (rebuilt["NEW"].entry_client_order_id, rebuilt["NEW"].entry_price,
                rebuilt["NEW"].qty, rebuilt["NEW"].asset_id) == \
            (held.entry_client_order_id, held.entry_price, held.qty, held.asset_id)
        for i in (E + 1, E + 2):
            assert sim.run(DAYS[i]) == 0
        (trade,) = sim.trades()
        assert (trade["symbol"], trade["exit_reason"], float(trade["entry_price"])) == \
            ("NEW", "mean_reversion", entry)
        assert check_invariants(sim.exchange, sim.log_dir) == []
    finally:
        sim.close()


@pytest.mark.parametrize("lost", ["while the replacement works", "after it filled"])
def test_a_position_opened_by_a_replaced_entry_is_rebuilt(tmp_path, monkeypatch, lost):
    from datetime import datetime, time

    from market_calendar import NEW_YORK
    from tests.reliability_support import check_invariants
    from tests.sim_harness import Sim, flat_bars, market
    from tests.test_bot_e2e import DAYS, E, scenario
    from tests.test_order_status import set_status

    monkeypatch.chdir(tmp_path)
    # The noon entry limit rests, then fills on the way down in the afternoon.
    series, entry = scenario(["z=0.5"] * 3, entry_z=-2.5)
    frame = flat_bars("AAA", series["AAA"])
    day = frame["date"] == DAYS[E].isoformat()
    frame.loc[day, ["open", "high", "low", "close"]] = [entry + 0.5, entry + 1, entry - 1,
                                                       entry - 0.5]
    sim = Sim(tmp_path, market(frame), DAYS[E - 1], spread_bps=2.0)
    sim.env["TICKERS"] = "AAA"
    try:
        assert sim.run(DAYS[E]) == 0
        (record,) = sim.store.load_pending().values()
        replacement = set_status(sim, record.order_id, "replaced")["replaced_by"]
        if lost == "after it filled":
            sim.exchange.advance_to(datetime.combine(DAYS[E], time(15, 30), tzinfo=NEW_YORK))
            assert sim.exchange.orders[replacement].filled_qty > 0
        _lose_records(sim)
        report = _rebuilt(sim)
        assert report["not_recovered"] == []
        if lost == "after it filled":
            rebuilt = sim.store.load_holdings()["AAA"]
            assert (rebuilt.entry_client_order_id, rebuilt.entry_order_id) == \
                (record.client_order_id, replacement)
        else:
            (pending,) = sim.store.load_pending().values()
            assert (pending.client_order_id, pending.order_id) == \
                (record.client_order_id, replacement)
        for i in (E + 1, E + 2):
            assert sim.run(DAYS[i]) == 0
            assert not any("left alone" in n for n in sim.last_summary()["notes"])
        (trade,) = sim.trades()
        assert trade["entry_client_order_id"] == record.client_order_id
        assert trade["exit_reason"] == "mean_reversion"
        assert check_invariants(sim.exchange, sim.log_dir) == []
    finally:
        sim.close()
