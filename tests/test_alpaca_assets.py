"""Assets as Alpaca sends them now: shortability from `borrow_status`, margin requirements from
the string fields, the deprecated fields only from an older account (both sides, over HTTP)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import requests

import broker
import config
from simbroker import wire
from simbroker.faults import Fault
from tests.simbroker_fixtures import KEY, NOON_MAR1, SECRET, make_sim
from tests.test_bot_e2e import DAYS, E, scenario


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1, easy_to_borrow=frozenset({"AAA", "FLAT"}))


def bot_broker(sim) -> broker.Broker:
    return broker.Broker(config.Credentials(KEY, SECRET), base_url=sim.server.trading_url,
                         data_url=sim.server.data_url)


def raw_asset(sim, symbol: str) -> dict:
    return requests.get(f"{sim.server.trading_url}/v2/assets/{symbol}", timeout=10, headers={
        "APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}).json()


def test_exchange_sends_todays_asset_shape_by_default(sim):
    asset = raw_asset(sim, "HALT")
    assert "easy_to_borrow" not in asset and "maintenance_margin_requirement" not in asset
    assert asset["borrow_status"] == "hard_to_borrow"
    assert (asset["margin_requirement_long"], asset["margin_requirement_short"]) == ("25", "30")
    assert raw_asset(sim, "AAA")["borrow_status"] == "easy_to_borrow"


def test_legacy_option_brings_the_deprecated_fields_back(sim):
    sim.exchange.config = replace(sim.exchange.config, legacy_assets=True)
    halt, aaa = raw_asset(sim, "HALT"), raw_asset(sim, "AAA")
    assert (halt["easy_to_borrow"], aaa["easy_to_borrow"]) == (False, True)
    assert aaa["maintenance_margin_requirement"] == 25 and aaa["borrow_status"] == \
        "easy_to_borrow"


def test_bot_reads_borrow_status_and_margin_strings(sim):
    assets = bot_broker(sim).assets()
    assert {s for s, a in assets.items() if a.easy_to_borrow} == {"AAA", "FLAT"}
    assert (assets["AAA"].margin_requirement_long_pct,
            assets["AAA"].margin_requirement_short_pct) == (25.0, 30.0)


def _serve_assets(sim, edit) -> None:
    """The next GET /v2/assets answers the exchange's assets changed by `edit`."""
    assets = [edit(wire.asset_json(sim.exchange, s)) for s in sim.exchange.market_data.symbols]
    sim.server.faults.add(Fault(method="GET", path="/v2/assets", status=200, body=assets))


def test_an_older_account_sending_only_easy_to_borrow_is_read_the_same(sim):
    def older(asset: dict) -> dict:
        easy = asset.pop("borrow_status") == "easy_to_borrow"
        del asset["margin_requirement_long"], asset["margin_requirement_short"]
        return {**asset, "easy_to_borrow": easy, "maintenance_margin_requirement": 40}

    _serve_assets(sim, older)
    assets = bot_broker(sim).assets()
    assert {s for s, a in assets.items() if a.easy_to_borrow} == {"AAA", "FLAT"}
    assert assets["AAA"].margin_requirement_short_pct == 40.0


def test_an_asset_without_either_field_is_not_shorted_and_the_log_says_so(sim, caplog):
    def bare(asset: dict) -> dict:
        asset.pop("borrow_status")
        return asset

    _serve_assets(sim, bare)
    with caplog.at_level(logging.WARNING, logger="bot.broker"):
        assets = bot_broker(sim).assets()
    assert not any(a.easy_to_borrow for a in assets.values())
    (record,) = [r for r in caplog.records if "borrow_status" in r.getMessage()]
    assert "5 shortable assets" in record.getMessage() and "AAA" in record.getMessage()


def test_bot_places_its_short_when_assets_carry_no_easy_to_borrow(sim_factory):  # noqa: F811
    series, _ = scenario([], entry_z=2.0, level=20.0)
    sim = sim_factory(series)
    body = requests.get(f"{sim.server.trading_url}/v2/assets", timeout=10, headers={
        "APCA-API-KEY-ID": sim.exchange.config.key_id,
        "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}).json()
    assert body and all("easy_to_borrow" not in a for a in body)
    assert sim.run(DAYS[E]) == 0
    (entry,) = sim.last_summary()["entries"]
    # Placed (the POST answers pending_new, as Alpaca's does), then filled: a short position.
    assert (entry["symbol"], entry["side"]) == ("AAA", "sell")
    assert entry["status"] in ("pending_new", "new", "filled")
    assert sim.store.load_holdings()["AAA"].side == "short"
