"""State files (atomic writes, strict reads, the lock) and reconciliation with the broker."""

import json
import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from broker import Order, Position
from errors import LockHeldError, StateFileError
from position_manager import (
    CLOSED_OUTSIDE,
    TRADE_COLUMNS,
    Holding,
    PendingOrder,
    StateStore,
    reconcile,
)
from state_files import RunLock, read_json, write_json

T0 = datetime(2022, 3, 1, 17, 0, tzinfo=UTC)
T1 = datetime(2022, 3, 3, 17, 0, tzinfo=UTC)


def order(cid, symbol="AAPL", side="buy", qty=2.0, filled=2.0, price=10.0, status="filled",
          when=T0, oid=None):
    return Order(id=oid or f"id-{cid}", client_order_id=cid, symbol=symbol, side=side, qty=qty,
                 filled_qty=filled, filled_avg_price=price if filled else None, limit_price=price,
                 status=status, submitted_at=when, filled_at=when if filled else None,
                 updated_at=when)


def pending(cid, intent="entry", side="long", order_side="buy", symbol="AAPL", reason=""):
    return PendingOrder(client_order_id=cid, symbol=symbol, intent=intent, position_side=side,
                        order_side=order_side, qty=2.0, limit_price=10.0, z=-2.0,
                        trading_day="2022-03-01", created_at=T0.isoformat(), exit_reason=reason)


def holding(symbol="AAPL", side="long", qty=2.0, price=10.0):
    return Holding(symbol=symbol, side=side, qty=qty, entry_time=T0.isoformat(),
                   entry_price=price, entry_z=-2.0, entry_order_id="id-e",
                   entry_client_order_id="mr-20220301-AAPL-long")


def test_atomic_write_leaves_no_temp_files_and_round_trips(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert read_json(path, default=None) == {"a": 2}
    assert sorted(os.listdir(tmp_path)) == ["x.json"]


def test_a_store_writes_records_again_only_when_they_or_the_file_changed(tmp_path):
    store, copy = StateStore(tmp_path), tmp_path / "run" / "positions.json"
    store.save_holdings({"AAPL": holding()}, copy)
    written = [p.stat().st_ino for p in (store.positions_path, copy)]
    store.save_holdings({"AAPL": holding()}, copy)  # the same records: both files left alone
    assert [p.stat().st_ino for p in (store.positions_path, copy)] == written
    store.save_holdings({"AAPL": holding(qty=3.0)}, copy)  # changed: both written again
    assert [p.stat().st_ino for p in (store.positions_path, copy)] != written
    assert store.load_holdings()["AAPL"].qty == 3.0
    # The file changed under the store (here emptied in place): the same records are written.
    store.positions_path.write_text("")
    store.save_holdings({"AAPL": holding(qty=3.0)})
    assert store.load_holdings()["AAPL"].qty == 3.0
    store.positions_path.unlink()
    store.save_holdings({"AAPL": holding(qty=3.0)})
    assert store.load_holdings()["AAPL"].qty == 3.0


def test_unreadable_state_file_stops_and_is_not_replaced(tmp_path):
    store = StateStore(tmp_path)
    store.positions_path.write_text('{"version": 1, "positions": {"AAPL": ')
    with pytest.raises(StateFileError, match="positions.json"):
        store.load_holdings()
    assert store.positions_path.read_text() == '{"version": 1, "positions": {"AAPL": '


@pytest.mark.parametrize("content, message", [
    ('[]', "version-1 state file"),
    ('{"version": 1, "positions": {"AAPL": {"symbol": "AAPL"}}}', "incomplete"),
    ('{"version": 1, "positions": {"AAPL": {"bogus": 1}}}', "unknown fields"),
])
def test_malformed_state_names_the_file(tmp_path, content, message):
    store = StateStore(tmp_path)
    store.positions_path.write_text(content)
    with pytest.raises(StateFileError, match=message):
        store.load_holdings()


def test_wrong_type_in_state_is_refused(tmp_path):
    store = StateStore(tmp_path)
    store.save_holdings({"AAPL": holding()})
    data = json.loads(store.positions_path.read_text())
    data["positions"]["AAPL"]["qty"] = "two"
    store.positions_path.write_text(json.dumps(data))
    with pytest.raises(StateFileError, match="qty"):
        store.load_holdings()


def test_state_round_trip(tmp_path):
    store = StateStore(tmp_path)
    store.save_holdings({"AAPL": holding()})
    store.save_pending({"c1": pending("c1")})
    assert store.load_holdings() == {"AAPL": holding()}
    assert store.load_pending() == {"c1": pending("c1")}


def test_trades_are_appended_once(tmp_path):
    store = StateStore(tmp_path)
    row = {c: "" for c in TRADE_COLUMNS} | {"exit_client_order_id": "x1", "exit_order_id": "o1"}
    assert len(store.append_trades([row])) == 1
    assert store.append_trades([row]) == []
    assert len(store.load_trades()) == 1


def test_trades_read_again_when_the_file_changed_and_each_caller_gets_its_own_rows(tmp_path):
    store = StateStore(tmp_path)
    row = {c: "" for c in TRADE_COLUMNS} | {"exit_client_order_id": "x1", "exit_order_id": "o1"}
    store.append_trades([row])
    first = store.load_trades()
    first[0]["symbol"] = "changed by a caller"
    assert store.load_trades()[0]["symbol"] == ""
    # Another process (or an editor) doubles the row: the next read sees it and refuses.
    text = store.trades_path.read_text()
    store.trades_path.write_text(text + text.splitlines(keepends=True)[1])
    with pytest.raises(StateFileError, match="trades.csv"):
        store.load_trades()


def test_trade_rows_with_any_text_read_back_as_written(tmp_path):
    # An exit reason with a carriage return (from a pending_orders.json edited by hand) made
    # a trades.csv that the next read refused: Python 3.11's csv left the field unquoted.
    store = StateStore(tmp_path)
    texts = ["cr\r", "crlf\r\nend", "lf\nend", 'a "quote", a comma', "", "plain"]
    rows = [{c: "" for c in TRADE_COLUMNS} | {"exit_client_order_id": f"x{i}",
                                              "exit_order_id": f"o{i}", "exit_reason": text}
            for i, text in enumerate(texts)]
    store.append_trades(rows)
    assert [r["exit_reason"] for r in StateStore(tmp_path).load_trades()] == texts
    # A row without such a field is written as before, unquoted.
    [plain] = [line for line in store.trades_path.read_text().splitlines() if ",plain," in line]
    assert '"' not in plain


def test_malformed_trades_csv_is_refused(tmp_path):
    store = StateStore(tmp_path)
    store.trades_path.write_text("symbol,side\nAAPL,long\n")
    with pytest.raises(StateFileError, match="trades.csv"):
        store.load_trades()


def test_lock_is_exclusive(tmp_path):
    with RunLock(tmp_path / "bot.lock"):
        with pytest.raises(LockHeldError):
            with RunLock(tmp_path / "bot.lock"):
                pass
    with RunLock(tmp_path / "bot.lock"):  # released
        pass


def test_reconcile_entry_fill_becomes_holding():
    r = reconcile({}, {"e": pending("e")}, [order("e", price=10.5)],
                  {"AAPL": Position("AAPL", True, 2.0, 10.5, 10.5)})
    assert r.holdings["AAPL"].entry_price == 10.5 and r.holdings["AAPL"].qty == 2.0
    assert r.pending == {} and r.trades == []


def test_reconcile_partial_entry_stays_pending_with_filled_qty():
    o = order("e", filled=0.5, status="partially_filled")
    r = reconcile({}, {"e": pending("e")}, [o], {"AAPL": Position("AAPL", True, 0.5, 10, 10)})
    assert r.holdings["AAPL"].qty == 0.5
    assert r.pending["e"].order_id == o.id


def test_reconcile_exit_fill_becomes_one_trade_row():
    p = pending("x", intent="exit", order_side="sell", reason="mean_reversion")
    r = reconcile({"AAPL": holding()}, {"x": p}, [order("x", side="sell", price=11.0, when=T1)],
                  {})
    assert r.holdings == {} and r.pending == {}
    (row,) = r.trades
    assert (row["pnl_usd"], row["exit_reason"], row["holding_days"]) == ("2.00", "mean_reversion",
                                                                        "2")


def test_reconcile_short_pnl_sign():
    p = pending("x", intent="exit", side="short", order_side="buy", reason="stop_loss")
    r = reconcile({"AAPL": holding(side="short")}, {"x": p},
                  [order("x", side="buy", price=12.0, when=T1)], {})
    assert r.trades[0]["pnl_usd"] == "-4.00"


def test_reconcile_expired_unfilled_entry_is_dropped():
    r = reconcile({}, {"e": pending("e")}, [order("e", filled=0, status="expired")], {})
    assert r.holdings == {} and r.pending == {}


def test_reconcile_order_that_never_reached_broker_is_dropped():
    r = reconcile({}, {"e": pending("e")}, [], {})
    assert r.pending == {} and "never reached" in r.notes[0]


def test_reconcile_position_closed_outside_needs_the_closing_fill():
    outside = order("web-123", side="sell", price=9.0, when=T1)
    r = reconcile({"AAPL": holding()}, {}, [outside], {})
    assert r.trades[0]["exit_reason"] == CLOSED_OUTSIDE
    assert r.trades[0]["exit_price"] == "9" and r.trades[0]["pnl_usd"] == "-2.00"
    assert r.holdings == {} and r.missing == {}
    # No fill closed it: an absence alone is no evidence; the record stays, untraded.
    r = reconcile({"AAPL": holding()}, {}, [], {})
    assert r.trades == [] and r.holdings == {"AAPL": holding()}
    assert "no fill in its order history closed it" in r.missing["AAPL"]


def test_reconcile_re_adopts_a_position_its_own_filled_entry_explains():
    entry = order("mr-20220301-AAPL-long", price=10.0)
    r = reconcile({}, {}, [entry], {"AAPL": Position("AAPL", True, 2.0, 10.0, 10.5)})
    held = r.holdings["AAPL"]
    assert (held.side, held.qty, held.entry_price, held.entry_time, held.entry_z) == \
        ("long", 2.0, 10.0, T0.isoformat(), None)
    assert held.entry_client_order_id == "mr-20220301-AAPL-long"
    assert any("re-adopted" in n for n in r.notes)
    # Not an entry of the bot's, the other side, or an entry closed since: left alone.
    for orders, pos in [([order("web-1")], Position("AAPL", True, 2.0, 10.0, 10.5)),
                        ([entry], Position("AAPL", False, 2.0, 10.0, 10.5)),
                        ([entry, order("web-2", side="sell", when=T1)],
                         Position("AAPL", True, 2.0, 10.0, 10.5))]:
        r = reconcile({}, {}, orders, {"AAPL": pos})
        assert r.holdings == {} and any("left alone" in n for n in r.notes)


def test_reconcile_keeps_a_record_the_broker_is_known_to_have():
    for known in [{"order_id": "id-x"}, {"broker_evidence": "POST answered 422"}]:
        p = replace(pending("x"), **known)
        r = reconcile({}, {"x": p}, [], {})
        assert r.pending == {"x": p} and "missing from its answers" in r.notes[0]


def test_reconcile_foreign_position_left_alone_and_qty_adopted():
    r = reconcile({"AAPL": holding()}, {}, [],
                  {"AAPL": Position("AAPL", True, 1.5, 10, 10),
                   "TSLA": Position("TSLA", True, 3, 100, 100)})
    assert r.holdings["AAPL"].qty == 1.5
    assert "TSLA" not in r.holdings
    assert any("TSLA" in n and "left alone" in n for n in r.notes)


def test_reconcile_split_scales_entry_price():
    r = reconcile({"AAPL": holding(qty=2.0, price=10.0)}, {}, [],
                  {"AAPL": Position("AAPL", True, 4.0, 5.0, 5.1)})
    assert r.holdings["AAPL"].qty == 4.0 and r.holdings["AAPL"].entry_price == 5.0
    assert "split" in r.notes[0]
