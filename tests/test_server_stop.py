"""Stopping the local exchange's server does not wait for its serving loop's next poll: a
simulated day ends as soon as its run does."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import requests

from market_calendar import new_york_noon
from simbroker import Exchange, ExchangeConfig, serve, synthetic
from simbroker.server import _Handler, _HTTPServer


def test_shutdown_wakes_a_loop_that_would_poll_only_once_an_hour():
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    loop = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 3600},
                            daemon=True)
    loop.start()
    httpd.shutdown()  # socketserver's own loop would notice only after the hour
    loop.join(timeout=30)
    assert not loop.is_alive()
    httpd.server_close()


def test_a_served_exchange_answers_then_stops_and_is_gone():
    market = synthetic.generate(2, start=date(2022, 1, 3), sessions=30, seed=1)
    exchange = Exchange(market, ExchangeConfig(), now=new_york_noon(date(2022, 2, 1)))
    with serve(exchange, port=0) as server:
        answer = requests.get(server.trading_url + "/v2/clock", timeout=10, headers={
            "APCA-API-KEY-ID": exchange.config.key_id,
            "APCA-API-SECRET-KEY": exchange.config.secret_key})
        assert answer.status_code == 200
        url = server.trading_url
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/v2/clock", timeout=2)


def test_stopping_twice_is_harmless():
    market = synthetic.generate(1, start=date(2022, 1, 3), sessions=30, seed=1)
    exchange = Exchange(market, ExchangeConfig(), now=new_york_noon(date(2022, 2, 1)))
    server = serve(exchange, port=0)
    server.close()
    server.close()
