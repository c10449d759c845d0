"""Invariants of the exchange under random order flow (hypothesis), through its Python API:
the book always agrees with the fills, no fill overshoots its order, no position flips in
one order, and balances obey Alpaca's identities."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market_calendar import new_york_noon
from simbroker import Exchange, ExchangeConfig, synthetic
from simbroker.errors import ApiError

SYMBOLS = ["S0000", "S0001", "S0002"]
DATA = synthetic.generate(3, start=date(2022, 3, 1), sessions=15, seed=11)

orders = st.fixed_dictionaries({
    "symbol": st.sampled_from(SYMBOLS),
    "side": st.sampled_from(["buy", "sell"]),
    "qty": st.integers(min_value=1, max_value=400),
    "type": st.sampled_from(["market", "limit"]),
    "offset": st.floats(min_value=-0.03, max_value=0.03),
    "time_in_force": st.sampled_from(["day", "gtc"]),
})
steps = st.lists(st.tuples(orders, st.integers(min_value=0, max_value=20 * 3600)),
                 min_size=1, max_size=25)


def place(exchange: Exchange, spec: dict) -> None:
    body = {k: spec[k] for k in ("symbol", "side", "qty", "type", "time_in_force")}
    if spec["type"] == "limit":
        quote = exchange.view.quote(spec["symbol"], exchange.moment())
        body["limit_price"] = round(quote.ask * (1 + spec["offset"]), 2)
    try:
        exchange.submit_order(body)
    except ApiError as exc:
        assert exc.status in (403, 422), exc.message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, partial=st.sampled_from([0.0, 0.6]))
def test_book_agrees_with_fills(steps, partial):
    config = ExchangeConfig(starting_cash=50_000.0, partial_fill_probability=partial, seed=3)
    exchange = Exchange(DATA, config, now=new_york_noon(DATA.first_day))
    for spec, wait in steps:
        place(exchange, spec)
        exchange.advance_to(exchange.now + timedelta(seconds=wait))
        check_invariants(exchange)


def check_invariants(exchange: Exchange) -> None:
    book = exchange.book
    held: dict[str, float] = defaultdict(float)
    cash = 50_000.0
    filled: dict[str, float] = defaultdict(float)
    for fill in book.fills:
        signed = fill.qty if fill.side == "buy" else -fill.qty
        if exchange.orders[fill.order_id].intent in ("sell_to_close", "buy_to_close"):
            # A closing order never takes the position through zero.
            before = held[fill.symbol]
            assert before * signed < 0 and abs(signed) <= abs(before) + 1e-9
        held[fill.symbol] += signed
        cash -= round(signed * fill.price, 2)
        filled[fill.order_id] += fill.qty
    # Non-trade activities (the account's costs at each close, corporate actions) move cash.
    cash += sum(activity.net_amount for activity in exchange.activities)
    assert book.cash == pytest.approx(cash, abs=0.01 * max(1, len(book.fills)))
    for symbol in SYMBOLS:
        position = book.positions.get(symbol)
        assert (position.qty if position else 0.0) == pytest.approx(held[symbol], abs=1e-6)
    for order in exchange.orders.values():
        assert filled[order.id] == pytest.approx(order.filled_qty, abs=1e-9)
        assert order.filled_qty <= order.qty + 1e-9
        assert (order.status == "filled") == (order.filled_qty == order.qty)
    balances = exchange.balances()
    assert balances.equity == pytest.approx(balances.cash + balances.long_market_value
                                            + balances.short_market_value)
    assert balances.regt_buying_power >= 0 and balances.non_marginable_buying_power >= 0
