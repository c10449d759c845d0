"""End-to-end: the bot's order types per purpose, escalation and partial-fill policies, against
the local exchange over HTTP (the real bot, the real SDK).

Bars are flat (open = high = low = close) unless a test shapes a day: with a 2 bps spread a
limit at the current price then never fills (the bid and ask straddle it all day), and a
marketable order always does, at the quote.
"""

from __future__ import annotations

import pytest

from simbroker import price_model
from tests.sim_harness import Sim, flat_bars, market
from tests.test_bot_e2e import DAYS, E, scenario

MARKETABLE = {"ENTRY_ORDER_TYPE": "marketable_limit"}
NOON = 2.5 / 6.5  # of a regular session


def make_sim(tmp_path, monkeypatch, series: dict, shape: dict | None = None, **exchange) -> Sim:
    """A Sim on `series`; `shape` maps a day index to (open, high, low, close)."""
    monkeypatch.chdir(tmp_path)  # no developer .env leaks into a test
    frame = flat_bars("AAA", series["AAA"])
    for i, ohlc in (shape or {}).items():
        frame.loc[frame["date"] == DAYS[i].isoformat(), ["open", "high", "low", "close"]] = ohlc
    exchange.setdefault("spread_bps", 2.0)
    sim = Sim(tmp_path, market(frame), DAYS[E - 1], **exchange)
    sim.env["TICKERS"] = "AAA"
    return sim


def falling_afternoon(noon: float, drop: float) -> tuple[float, float, float, float]:
    """A down bar from `noon` that closes `drop` lower, at its low. Where its model path is at
    12:00 and whether it comes back up after noon is the model's (simbroker/price_model.py):
    tests ask `after_noon` rather than assume it."""
    high = noon + drop * 2 / 11
    return (noon, high, noon - drop, noon - drop)


def after_noon(bar: tuple[float, float, float, float], day) -> tuple[float, bool]:
    """AAA's model price at noon of `day` on `bar`, and whether a sell limit at that price (to
    the cent, 2 bp spread) placed at noon fills before the close."""
    key = price_model.path_key("AAA", day)
    noon = float(price_model.price_at(*bar, NOON, key=key))
    filled, _, _ = price_model.limit_fill(*bar, is_buy=False, limit=round(round(noon, 4), 2),
                                          start=NOON, end=1.0, spread_bps=2.0, key=key)
    return noon, bool(filled)


def exchange_orders(sim: Sim) -> dict[str, object]:
    return {o.client_order_id: o for o in sim.exchange.orders.values()}


# -- stop-loss ---------------------------------------------------------------------------------


@pytest.mark.parametrize("settings,stop_type,exits_today", [
    ({}, "market", True), ({"STOP_ORDER_TYPE": "limit"}, "limit", False)])
def test_stop_loss_exits_on_the_signal_day_on_a_continuing_decline(tmp_path, monkeypatch,
                                                                   settings, stop_type,
                                                                   exits_today):
    """With the default settings (no STOP_ORDER_TYPE) the stop exits at once; the design's
    limit at the noon price does not, as the price keeps falling."""
    series, _ = scenario(["z=-4.5"])
    bar = falling_afternoon(series["AAA"][DAYS[E + 1]], 5.0)
    noon, comes_back = after_noon(bar, DAYS[E + 1])
    sim = make_sim(tmp_path, monkeypatch, series, {E + 1: bar})
    try:
        assert sim.run(DAYS[E], **MARKETABLE) == 0
        assert "AAA" in sim.store.load_holdings()
        assert sim.run(DAYS[E + 1], **MARKETABLE, **settings) == 0
        sim.exchange.advance_to(sim.exchange.now.replace(hour=21))  # through the close
        stop = exchange_orders(sim)[f"mr-{DAYS[E + 1]:%Y%m%d}-AAA-exit"]
        assert stop.type.value == stop_type
        if exits_today:
            # At once, at the noon bid, whatever the path does after noon.
            assert stop.status.value == "filled" and stop.filled_at == stop.submitted_at
            assert stop.filled_avg_price == pytest.approx(noon * (1 - 0.0001), abs=0.01)
            (trade,) = sim.trades()
            assert trade["exit_reason"] == "stop_loss" and trade["holding_days"] != ""
        elif not comes_back:
            # The design's limit at the noon price: the path falls away and it expires.
            assert stop.status.value == "expired" and stop.filled_qty == 0
            assert sim.trades() == []
        else:
            # The path comes back up to the noon price: it fills later, at its limit.
            assert stop.status.value == "filled" and stop.filled_at > stop.submitted_at
    finally:
        sim.close()


# -- escalation --------------------------------------------------------------------------------


@pytest.mark.parametrize("after_days,filled_on", [(1, E + 2), (0, None), (2, E + 3)])
def test_unfilled_exit_escalates_after_the_set_days(tmp_path, monkeypatch, after_days,
                                                    filled_on):
    series, _ = scenario(["z=0.5", "z=0.5", "z=0.5"])
    sim = make_sim(tmp_path, monkeypatch, series)
    env = {**MARKETABLE, "EXIT_ORDER_TYPE": "limit",
           "EXIT_ESCALATE_AFTER_DAYS": str(after_days), "MAX_HOLDING_DAYS": "30"}
    try:
        for day in range(E, E + 4):
            assert sim.run(DAYS[day], **env) == 0
        sim.exchange.advance_to(sim.exchange.now.replace(hour=21))  # through the close
        orders = exchange_orders(sim)
        exits = [orders.get(f"mr-{DAYS[d]:%Y%m%d}-AAA-exit") for d in range(E + 1, E + 4)]
        kinds = [(o.type.value, o.status.value) if o else None for o in exits]
        if filled_on is None:
            assert kinds == [("limit", "expired")] * 3
            assert sim.trades() == []
            return
        # Each day's exit has that day's client_order_id; the escalated one is a marketable
        # limit below the bid, and fills at once.
        unfilled = filled_on - (E + 1)
        assert kinds[:unfilled] == [("limit", "expired")] * unfilled
        assert kinds[unfilled] == ("limit", "filled")
        escalated = exits[unfilled]
        noon = series["AAA"][DAYS[filled_on]]
        assert escalated.limit_price < noon * (1 - 0.0001) - 0.05  # 10 bps through the bid
        (trade,) = sim.trades()
        assert trade["exit_client_order_id"] == f"mr-{DAYS[filled_on]:%Y%m%d}-AAA-exit"
        assert kinds[unfilled + 1:] == [None] * (2 - unfilled)
    finally:
        sim.close()


# -- partial fills -----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["keep_working", "cancel_remainder"])
def test_entry_partial_fill_policy(tmp_path, monkeypatch, policy):
    series, _ = scenario([])
    sim = make_sim(tmp_path, monkeypatch, series, partial_fill_probability=1.0, seed=7)
    try:
        assert sim.run(DAYS[E], **MARKETABLE, POSITION_SIZE_USD="1000",
                       ENTRY_PARTIAL_FILL=policy) == 0
        entry = exchange_orders(sim)[f"mr-{DAYS[E]:%Y%m%d}-AAA-long"]
        first = sim.store.load_holdings()["AAA"].qty
        assert 0 < first < entry.qty
        sim.exchange.advance_to(sim.exchange.now.replace(hour=21))
        entry = exchange_orders(sim)[f"mr-{DAYS[E]:%Y%m%d}-AAA-long"]
        if policy == "cancel_remainder":
            # Canceled when the run stopped waiting: the position is what had filled.
            assert entry.status.value == "canceled" and entry.filled_qty == first
        else:
            # The rest kept working until the close, a part every 30 minutes (the exchange's
            # partial-fill model takes 30-70% of what is left each time).
            assert entry.status.value == "expired" and first < entry.filled_qty < entry.qty
            assert entry.fill_count > 2
        sim.run(DAYS[E + 1], **MARKETABLE, POSITION_SIZE_USD="1000", ENTRY_PARTIAL_FILL=policy)
        assert sim.store.load_holdings()["AAA"].qty == pytest.approx(entry.filled_qty)
        assert sim.broker_position("AAA")["qty"] == pytest.approx(entry.filled_qty)
    finally:
        sim.close()


@pytest.mark.parametrize("policy", ["keep_working", "finish_next_day", "cancel_remainder"])
def test_exit_partial_fill_policy(tmp_path, monkeypatch, policy):
    """The exit day: part of the exit fills at noon, then the price falls away for good, so the
    rest does not fill that day. The next day no exit rule fires (z between stop and exit)."""
    series, _ = scenario(["z=0.5", "z=-1.0"])
    noon = series["AAA"][DAYS[E + 1]]
    sim = make_sim(tmp_path, monkeypatch, series, {E + 1: falling_afternoon(noon, 5.0)},
                   partial_fill_probability=1.0, seed=7)
    env = {**MARKETABLE, "EXIT_ORDER_TYPE": "marketable_limit", "POSITION_SIZE_USD": "1000",
           "EXIT_PARTIAL_FILL": policy}
    try:
        assert sim.run(DAYS[E], **env) == 0
        assert sim.run(DAYS[E + 1], **env) == 0
        full = sim.store.load_holdings()["AAA"].qty if policy != "cancel_remainder" else None
        first_exit = exchange_orders(sim)[f"mr-{DAYS[E + 1]:%Y%m%d}-AAA-exit"]
        assert 0 < first_exit.filled_qty < first_exit.qty
        assert sim.run(DAYS[E + 2], **env) == 0
        orders = exchange_orders(sim)
        first_exit = orders[f"mr-{DAYS[E + 1]:%Y%m%d}-AAA-exit"]
        assert first_exit.status.value == ("canceled" if policy == "cancel_remainder"
                                           else "expired")
        rest = first_exit.qty - first_exit.filled_qty
        second = orders.get(f"mr-{DAYS[E + 2]:%Y%m%d}-AAA-exit")
        if policy == "finish_next_day":
            assert second is not None and second.qty == pytest.approx(rest)
            assert sim.last_summary()["exits"][0]["exit_reason"] == "rest_of_partial_exit"
        else:
            # The rest is held, and the exit rules decide it again (today: hold).
            assert second is None
            assert sim.store.load_holdings()["AAA"].qty == pytest.approx(rest)
        assert full is None or full == pytest.approx(first_exit.qty)
    finally:
        sim.close()
