"""Order-history paging that makes no progress stops with a clear error instead of looping:
a broker that ignores `after`, or 500 orders that share one submitted_at; in a whole run,
before any order and without changing a record."""

from __future__ import annotations

from datetime import timedelta

import pytest

import broker
import config
from errors import BrokerError
from market_calendar import new_york_noon
from simbroker import Exchange, ExchangeConfig, serve, wire
from tests.reliability_support import check_invariants
from tests.simbroker_fixtures import NOON_MAR1, tiny_market
from tests.test_bot_e2e import DAYS, E, scenario


@pytest.fixture
def exchange_and_broker():
    exchange = Exchange(tiny_market(), ExchangeConfig(spread_bps=0.0), now=NOON_MAR1)
    with serve(exchange, port=0) as server:
        yield exchange, server, broker.Broker(
            config.Credentials(exchange.config.key_id, exchange.config.secret_key),
            base_url=server.trading_url, data_url=server.data_url, retries=0)


def full_page(exchange: Exchange) -> list[dict]:
    """500 orders, all submitted at the same instant (as Alpaca's may be)."""
    order = exchange.submit_order({"symbol": "FLAT", "side": "buy", "qty": 1,
                                   "type": "market", "time_in_force": "day"})
    base = wire.order_json(order)
    return [{**base, "id": f"{i:08d}-0000-4000-8000-000000000000",
             "client_order_id": f"same-instant-{i}"} for i in range(500)]


def test_a_broker_that_ignores_after_stops_paging_with_a_clear_error(exchange_and_broker):
    exchange, server, bot_broker = exchange_and_broker
    page = full_page(exchange)
    server.faults.add(method="GET", path="/v2/orders", status=200, body=page, count=50)
    with pytest.raises(BrokerError, match="paging made no progress"):
        bot_broker.orders_since(NOON_MAR1 - timedelta(days=1))
    pages = server.request_counts()["GET /v2/orders"]
    assert pages == 2  # the first page, the same page again: stop
    assert len(server.faults.armed()) == 1  # the rest never asked for


def test_paging_that_advances_reads_every_page(exchange_and_broker):
    exchange, server, bot_broker = exchange_and_broker
    for i in range(1003):
        exchange.submit_order({"symbol": "FLAT", "side": "buy" if i % 2 else "sell",
                               "qty": 1, "type": "market", "time_in_force": "day"})
    orders = bot_broker.orders_since(NOON_MAR1 - timedelta(days=1))
    assert len(orders) == 1003 and len({o.id for o in orders}) == 1003
    assert server.request_counts()["GET /v2/orders"] == 3


def test_a_run_whose_history_paging_stalls_fails_before_any_order_and_loses_nothing(
        sim_factory):
    series, _ = scenario(["z=0.5", "z=0.0"])
    sim = sim_factory(series)
    assert sim.run(DAYS[E]) == 0
    held, before = sim.store.load_holdings(), sim.store.positions_path.read_bytes()
    # Day E + 1, the exit is due; the order history answers the same full page for ever.
    sim.exchange.advance_to(new_york_noon(DAYS[E + 1]))
    (entry,) = sim.exchange.orders.values()
    page = [{**wire.order_json(entry), "id": f"{i:08d}-0000-4000-8000-000000000000",
             "client_order_id": f"same-instant-{i}"} for i in range(500)]
    sim.server.faults.add(method="GET", path="/v2/orders", status=200, body=page, count=50)
    posts = sim.server.request_counts().get("POST /v2/orders", 0)
    assert sim.run() == 1
    summary = sim.last_summary()
    assert "paging made no progress" in summary["failure"]
    assert sim.server.request_counts().get("POST /v2/orders", 0) == posts  # nothing sent
    assert sim.store.load_holdings() == held
    assert sim.store.positions_path.read_bytes() == before
    sim.server.faults.clear()
    assert sim.run() == 0  # the broker pages right again: the exit goes out, once
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion"
    assert check_invariants(sim.exchange, sim.log_dir) == []
