"""The local exchange's server: binding, control endpoints, every fault type, the request
log, save/load, and the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from alpaca_trade_api.rest import APIError

from simbroker import Exchange, ExchangeConfig, serve, synthetic
from tests.simbroker_fixtures import (
    AAA_MARKETABLE,
    KEY,
    MAR1,
    MAR2,
    NOON_MAR1,
    SECRET,
    Sim,
    limit_buy,
    make_sim,
    ny,
    sdk,
    tiny_market,
)

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1)


def control(sim, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, sim.server.trading_url + path, json=body, headers=HEADERS,
                            timeout=10)


def test_binds_loopback_only(sim):
    assert sim.server._httpd.socket.getsockname()[0] == "127.0.0.1"
    assert sim.server.trading_url == f"http://127.0.0.1:{sim.server.port}"
    assert sim.server.data_url == sim.server.trading_url


def test_unknown_endpoint_and_method(sim):
    missing = control(sim, "GET", "/v2/nothing")
    assert (missing.status_code, missing.json()["code"]) == (404, 40410000)
    wrong = control(sim, "PUT", "/v2/account")
    assert wrong.status_code == 405


def test_assets_and_their_filters(sim):
    assets = sim.api.list_assets(status="active", asset_class="us_equity")
    assert [a.symbol for a in assets] == ["AAA", "FLAT", "HALT", "PENNY", "SPL"]
    assert sim.api.list_assets(status="inactive") == []
    assert sim.api.list_assets(asset_class="crypto") == []
    aaa = sim.api.get_asset("AAA")._raw
    assert (aaa["class"], aaa["status"], aaa["tradable"], aaa["exchange"]) == (
        "us_equity", "active", True, "NYSE")
    assert sim.api.get_asset(aaa["id"]).symbol == "AAA"  # by asset id too


# -- clock ----------------------------------------------------------------------------------------


def test_clock_control_moves_forward_only(sim):
    state = control(sim, "GET", "/_sim/clock").json()
    assert (state["now"], state["is_open"]) == ("2022-03-01T17:00:00.000000Z", True)
    assert control(sim, "POST", "/_sim/clock", {"next": "close"}).json()["new_york"] == \
        "2022-03-01T16:00:00-05:00"
    assert control(sim, "POST", "/_sim/clock", {"next": "open"}).json()["now"] == \
        "2022-03-02T14:30:00.000000Z"
    assert control(sim, "POST", "/_sim/clock", {"next": "noon"}).json()["now"] == \
        "2022-03-02T17:00:00.000000Z"
    assert control(sim, "POST", "/_sim/clock", {"advance_seconds": 90}).json()["now"] == \
        "2022-03-02T17:01:30.000000Z"
    assert control(sim, "POST", "/_sim/clock", {"to": "2022-03-03"}).json()["now"] == \
        "2022-03-03T17:00:00.000000Z"
    back = control(sim, "POST", "/_sim/clock", {"to": "2022-03-01T12:00:00Z"})
    assert (back.status_code, back.json()["code"]) == (422, 42210000)
    assert "never goes back" in back.json()["message"]
    assert control(sim, "POST", "/_sim/clock", {"next": "lunch"}).status_code == 422
    assert control(sim, "POST", "/_sim/clock", {}).status_code == 422


def test_v2_clock(sim):
    clock = sim.api.get_clock()._raw
    assert clock == {"timestamp": "2022-03-01T12:00:00-05:00", "is_open": True,
                     "next_open": "2022-03-02T09:30:00-05:00",
                     "next_close": "2022-03-01T16:00:00-05:00"}
    sim.advance_to(ny(MAR1, 16, 0))
    clock = sim.api.get_clock()._raw
    assert clock["is_open"] is False and clock["next_close"] == "2022-03-02T16:00:00-05:00"


def test_clock_moves_fill_orders(sim):
    order = limit_buy(sim.api, "AAA", 1, 97.00, time_in_force="gtc")
    control(sim, "POST", "/_sim/clock", {"to": "2022-03-02T21:00:00Z"})
    assert sim.api.get_order(order.id).status == "filled"


# -- faults ---------------------------------------------------------------------------------------


def test_status_fault_then_normal(sim):
    sim.server.faults.add(method="GET", path="/v2/account", status=500, count=2)
    for _ in range(2):
        with pytest.raises(APIError) as failed:
            sim.api.get_account()
        assert (failed.value.status_code, failed.value.code) == (500, 50000000)
    assert sim.api.get_account().cash == "100000"
    statuses = [r["status"] for r in sim.server.requests()]
    assert statuses == [500, 500, 200]


def test_rate_limit_fault_has_rate_limit_headers(sim):
    control(sim, "POST", "/_sim/faults", {"path": "/v2/clock", "status": 429})
    response = requests.get(sim.server.trading_url + "/v2/clock", headers=HEADERS, timeout=5)
    assert response.status_code == 429 and response.json()["code"] == 42900000
    assert response.headers["X-RateLimit-Limit"] == "200"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())


def test_sdk_retries_a_429(sim, monkeypatch):
    monkeypatch.setenv("APCA_RETRY_MAX", "1")
    monkeypatch.setenv("APCA_RETRY_WAIT", "0")
    sim.server.faults.add(path="/v2/positions", status=429)
    assert sdk(sim.server).list_positions() == []
    assert [r["status"] for r in sim.server.requests()] == [429, 200]


def test_lost_response_after_commit_still_places_the_order(sim):
    sim.server.faults.add(method="POST", path="/v2/orders", status=504, after_commit=True)
    with pytest.raises(APIError) as lost:
        limit_buy(sim.api, "AAA", 1, 90.00, client_order_id="lost-1")
    assert lost.value.status_code == 504
    assert sim.api.get_order_by_client_order_id("lost-1").status == "new"


def test_status_fault_without_commit_places_nothing(sim):
    sim.server.faults.add(method="POST", path="/v2/orders", status=503)
    with pytest.raises(APIError):
        limit_buy(sim.api, "AAA", 1, 90.00, client_order_id="never-1")
    with pytest.raises(APIError) as missing:
        sim.api.get_order_by_client_order_id("never-1")
    assert missing.value.status_code == 404


def test_delay_fault_slows_then_answers(sim):
    sim.server.faults.add(path="/v2/clock", delay_seconds=0.3)
    started = time.monotonic()
    assert sim.api.get_clock().is_open
    assert time.monotonic() - started >= 0.3


def test_hang_fault_holds_until_the_client_gives_up(sim):
    sim.server.faults.add(path="/v2/account", hang=True, hang_seconds=60)
    # A timeout, not a closed connection: the client gave up while the exchange still held
    # the request (a hang that ran out closes the connection unanswered).
    with pytest.raises(requests.Timeout):
        requests.get(sim.server.trading_url + "/v2/account", headers=HEADERS, timeout=0.3)
    assert sim.api.get_account().status == "ACTIVE"
    assert sim.server.requests()[0]["fault"] == "hang"


def test_reset_fault_closes_the_connection(sim):
    sim.server.faults.add(method="POST", path="/v2/orders", reset=True, after_commit=True)
    with pytest.raises(requests.ConnectionError):
        limit_buy(sim.api, "AAA", 1, 90.00, client_order_id="reset-1")
    assert sim.api.get_order_by_client_order_id("reset-1").status == "new"


def test_malformed_fault_sends_200_with_a_body_that_is_not_json(sim):
    sim.server.faults.add(path="/v2/stocks", malformed=True)
    with pytest.raises(ValueError):
        sim.api.get_latest_trade("AAA")
    assert sim.api.get_latest_trade("AAA").price > 0


def test_fault_controls_over_http(sim):
    added = control(sim, "POST", "/_sim/faults",
                    {"method": "post", "path": "/v2/orders", "status": 504, "count": 3})
    assert added.json()["kind"] == "status" and added.json()["method"] == "POST"
    listed = control(sim, "GET", "/_sim/faults").json()
    assert [(f["path"], f["count"]) for f in listed] == [("/v2/orders", 3)]
    assert control(sim, "DELETE", "/_sim/faults").status_code == 204
    assert control(sim, "GET", "/_sim/faults").json() == []
    for bad in ({"status": 42}, {"hang": True, "reset": True}, {"path": "/x"}, {"colour": 1}):
        assert control(sim, "POST", "/_sim/faults", bad).status_code == 422, bad


def test_faults_match_method_and_path_prefix(sim):
    sim.server.faults.add(method="DELETE", path="/v2/orders", status=500)
    order = limit_buy(sim.api, "AAA", 1, 90.00)  # a POST: untouched
    assert sim.api.get_order(order.id).status == "new"  # a GET: untouched
    with pytest.raises(APIError):
        sim.api.cancel_order(order.id)
    sim.api.cancel_order(order.id)


# -- request log, reset ---------------------------------------------------------------------------


def test_request_log_and_counts(sim):
    sim.api.get_account()
    sim.api.get_account()
    limit_buy(sim.api, "AAA", 1, 90.00)
    log = control(sim, "GET", "/_sim/requests").json()
    assert log["counts"] == {"GET /v2/account": 2, "POST /v2/orders": 1}
    assert log["requests"][-1] == {"method": "POST", "path": "/v2/orders", "status": 200,
                                   "time": "2022-03-01T17:00:00.000000Z"}
    assert control(sim, "DELETE", "/_sim/requests").status_code == 204
    assert control(sim, "GET", "/_sim/requests").json() == {"requests": [], "counts": {}}


def test_reset_gives_a_fresh_account_at_the_same_time(sim):
    limit_buy(sim.api, "AAA", 10, AAA_MARKETABLE)
    account = control(sim, "POST", "/_sim/reset").json()
    assert account["equity"] == "100000"
    assert sim.api.list_positions() == [] and sim.api.list_orders(status="all") == []
    assert sim.api.get_clock().is_open


# -- save and load --------------------------------------------------------------------------------


def busy_exchange() -> Exchange:
    """Open and filled orders, partial fills, long and short positions, day trades."""
    config = ExchangeConfig(partial_fill_probability=0.5, seed=9, legacy_pdt=True,
                            shortable=frozenset({"FLAT", "PENNY"}))
    exchange = Exchange(tiny_market(), config, now=NOON_MAR1)
    for i, (symbol, side, qty) in enumerate([("FLAT", "buy", 100), ("FLAT", "sell", 40),
                                             ("AAA", "buy", 7), ("PENNY", "sell", 300)]):
        exchange.submit_order({"symbol": symbol, "side": side, "qty": qty, "type": "market",
                               "time_in_force": "day", "client_order_id": f"o{i}"})
    exchange.submit_order({"symbol": "AAA", "side": "buy", "qty": "3", "type": "limit",
                           "limit_price": "97", "time_in_force": "gtc"})
    exchange.advance_to(ny(MAR1, 14, 0))
    return exchange


def test_save_load_round_trip_equals_and_continues_identically(tmp_path):
    exchange = busy_exchange()
    path = tmp_path / "state" / "exchange.json"
    exchange.save(path)
    loaded = Exchange.load(path, tiny_market())
    assert loaded.to_state() == exchange.to_state()
    for ex in (exchange, loaded):
        ex.advance_to(ny(MAR2, 16, 0))
        ex.submit_order({"symbol": "FLAT", "side": "buy", "qty": 5, "type": "market",
                         "time_in_force": "day"})
    assert loaded.to_state() == exchange.to_state()
    assert [p.name for p in path.parent.iterdir()] == ["exchange.json"]  # no temp files left


def test_load_refuses_a_damaged_or_foreign_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        Exchange.load(bad, tiny_market())
    good = tmp_path / "good.json"
    Exchange(tiny_market(), now=NOON_MAR1).save(good)
    other = synthetic.generate(["X"], start=MAR1, sessions=3, seed=1)
    with pytest.raises(ValueError, match="same data"):
        Exchange.load(good, other)


def test_save_and_load_over_http(monkeypatch, tmp_path):
    state = tmp_path / "state.json"
    exchange = Exchange(tiny_market(), ExchangeConfig(spread_bps=0.0), now=NOON_MAR1)
    with serve(exchange, state_path=str(state)) as server:
        monkeypatch.setenv("APCA_API_DATA_URL", server.data_url)
        sim = Sim(exchange, server, sdk(server))
        limit_buy(sim.api, "AAA", 10, AAA_MARKETABLE)
        saved = control(sim, "POST", "/_sim/save", {"path": "saved.json"}).json()["saved"]
        assert saved == str(tmp_path / "saved.json")
        sim.api.close_position("AAA")
        control(sim, "POST", "/_sim/clock", {"to": "2022-03-02"})
        assert control(sim, "POST", "/_sim/load", {"path": "saved.json"}).json()["now"] == \
            "2022-03-01T17:00:00.000000Z"
        assert sim.api.get_position("AAA").qty == "10"
        assert control(sim, "POST", "/_sim/load", {"path": "missing.json"}).status_code == 422


def test_save_and_load_stay_in_the_state_directory(sim, monkeypatch, tmp_path):
    assert control(sim, "POST", "/_sim/save", {}).status_code == 422  # no --state file
    state = tmp_path / "state" / "state.json"
    state.parent.mkdir()
    exchange = Exchange(tiny_market(), now=NOON_MAR1)
    with serve(exchange, state_path=str(state)) as server:
        confined = Sim(exchange, server, sdk(server))
        for path in ("../escape.json", str(tmp_path / "escape.json"), "/tmp/x.json",
                     "$(touch pwned).json", "state.sh", "sub/dir.json", ""):
            for endpoint in ("/_sim/save", "/_sim/load"):
                answer = control(confined, "POST", endpoint, {"path": path})
                assert answer.status_code == 422, (endpoint, path)
                assert "state directory" in answer.json()["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
    assert not (tmp_path / "state" / "pwned").exists()


def test_server_with_state_path_saves_after_changes(monkeypatch, tmp_path):
    path = tmp_path / "auto.json"
    exchange = Exchange(tiny_market(), now=NOON_MAR1)
    with serve(exchange, state_path=str(path)) as server:
        monkeypatch.setenv("APCA_API_DATA_URL", server.data_url)
        api = sdk(server)
        api.get_account()
        assert not path.exists()  # reads change nothing
        limit_buy(api, "AAA", 1, 90.00, client_order_id="auto-1")
    assert Exchange.load(path, tiny_market()).get_order_by_client_id("auto-1").qty == 1


# -- command line ---------------------------------------------------------------------------------


def test_command_line_serves_prints_the_environment_and_saves_on_ctrl_c(tmp_path):
    state = tmp_path / "cli.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "simbroker", "--port", "0", "--data", "splits", "--start",
         "2005-02-25", "--state", str(state), "--secret", "s3cret"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        lines = []
        while not any(line.startswith("APCA_API_SECRET_KEY=") for line in lines):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line.strip())
        env = dict(line.split("=", 1) for line in lines if line.startswith("APCA_"))
        assert env["APCA_API_SECRET_KEY"] == "<the secret you passed>"
        assert env["APCA_API_KEY_ID"] == "SIMKEY"
        assert env["APCA_API_BASE_URL"].startswith("http://127.0.0.1:")
        clock = requests.get(env["APCA_API_BASE_URL"] + "/v2/clock", timeout=5, headers={
            "APCA-API-KEY-ID": "SIMKEY", "APCA-API-SECRET-KEY": "s3cret"}).json()
        assert clock["timestamp"] == "2005-02-25T12:00:00-05:00"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "state saved" in out and state.exists()
