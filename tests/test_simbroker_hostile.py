"""The local exchange under hostile input: requests without keys, oversized or lying bodies,
odd methods, malformed JSON, impossible clock moves, malformed faults, paths outside the state
directory and more connections than threads. Each answer is JSON in Alpaca's
``{"code", "message"}`` shape, and none of them changes, logs or saves anything it should not.
"""

from __future__ import annotations

import json
import socket

import pytest
import requests

from simbroker import Exchange, ExchangeConfig, requestlog, serve, server
from tests.simbroker_fixtures import KEY, NOON_MAR1, SECRET, make_sim, tiny_market

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
AUTH = f"APCA-API-KEY-ID: {KEY}\r\nAPCA-API-SECRET-KEY: {SECRET}\r\n"


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1)


def raw(port: int, request: str, *, timeout: float = 30.0, keep_open: bool = False) -> bytes:
    """Send `request` as written and read the answer until the server closes (or, with
    keep_open, until one complete answer has arrived)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request.encode())
        answer = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return answer
            answer += chunk
            if keep_open and _complete(answer):
                return answer


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def status_and_json(answer: bytes) -> tuple[int, dict | None]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, (json.loads(body) if body else None)


def assert_alpaca_error(body: dict | None, status: int) -> None:
    assert body is not None and set(body) == {"code", "message"}
    assert body["code"] // 100_000 == status


def test_requests_without_keys_are_neither_logged_nor_saved(monkeypatch, tmp_path):
    state = tmp_path / "exchange.json"
    exchange = Exchange(tiny_market(), now=NOON_MAR1)
    with serve(exchange, state_path=str(state)) as running:
        requests.post(running.trading_url + "/_sim/clock", json={"advance_seconds": 60},
                      headers=HEADERS, timeout=10)
        before = (state.stat().st_size, exchange.to_state())
        with requests.Session() as session:
            for i in range(300):
                answer = session.post(f"{running.trading_url}/v2/orders/{'x' * 2000}{i}",
                                      data=b"{}", timeout=10,
                                      headers={"APCA-API-KEY-ID": KEY,
                                               "APCA-API-SECRET-KEY": "wrong"})
                assert answer.status_code == 401
                assert_alpaca_error(answer.json(), 401)
        assert running.unauthorized == 300
        assert exchange.to_state() == before[1]  # no log entry, no count
    assert state.stat().st_size == before[0]
    assert (tmp_path / "exchange.json.journal").stat().st_size == 0


def test_keys_are_checked_before_the_body_is_read(sim):
    # 10 MB declared, nothing sent: the answer comes at once, without waiting for the body.
    answer = raw(sim.server.port, "POST /v2/orders HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Length: 10000000\r\n\r\n")
    status, body = status_and_json(answer)
    assert status == 401
    assert_alpaca_error(body, 401)
    assert sim.server.requests() == []


def test_a_short_body_with_a_long_declared_length_is_refused(sim, monkeypatch):
    monkeypatch.setattr(server, "BODY_SECONDS", 0.5)
    # The socket would wait 30 s; the server gives the body only BODY_SECONDS to arrive.
    answer = raw(sim.server.port, f"POST /v2/orders HTTP/1.1\r\nHost: x\r\n{AUTH}"
                                  "Content-Length: 1000\r\n\r\n{\"symbol\":", keep_open=True)
    status, body = status_and_json(answer)
    assert status == 400 and "1000 bytes" in body["message"]
    assert sim.exchange.orders == {}


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", " 12x"])
def test_a_content_length_that_is_not_a_number_is_refused(sim, length):
    answer = raw(sim.server.port, f"POST /v2/orders HTTP/1.1\r\nHost: x\r\n{AUTH}"
                                  f"Content-Length: {length}\r\n\r\n{{}}")
    status, body = status_and_json(answer)
    assert status == 400 and "Content-Length" in body["message"]
    assert_alpaca_error(body, 400)


def test_a_body_larger_than_the_exchange_reads_is_refused_unread(sim):
    answer = raw(sim.server.port, f"POST /v2/orders HTTP/1.1\r\nHost: x\r\n{AUTH}"
                                  f"Content-Length: {server.MAX_BODY_BYTES + 1}\r\n\r\n")
    status, body = status_and_json(answer)
    assert status == 413
    assert_alpaca_error(body, 413)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"])
def test_every_method_is_answered_in_alpacas_error_shape(sim, method):
    answer = raw(sim.server.port, f"{method} /v2/account HTTP/1.1\r\nHost: x\r\n{AUTH}"
                                  "Connection: close\r\n\r\n")
    status, body = status_and_json(answer)
    assert status in (405, 501)
    if method == "HEAD":
        assert body is None  # HEAD answers carry no body
    else:
        assert_alpaca_error(body, status)


def test_a_malformed_request_line_is_answered_in_json(sim):
    answer = raw(sim.server.port, "GARBAGE\r\n\r\n")
    status, body = status_and_json(answer)
    assert status == 400
    assert_alpaca_error(body, 400)


def test_json_nested_too_deeply_is_a_400(sim):
    body = "[" * 100_000 + "]" * 100_000
    answer = requests.post(sim.server.trading_url + "/v2/orders", data=body, headers=HEADERS,
                           timeout=30)
    assert answer.status_code == 400 and "nested" in answer.json()["message"]
    assert sim.exchange.orders == {}


@pytest.mark.parametrize("body", ['{"advance_seconds": NaN}', '{"advance_seconds": Infinity}',
                                  '{"symbol": "AAA", "qty": -Infinity}'])
def test_nan_and_infinity_are_not_json(sim, body):
    before = sim.exchange.to_state()
    path = "/_sim/clock" if "advance" in body else "/v2/orders"
    answer = requests.post(sim.server.trading_url + path, data=body, headers=HEADERS,
                           timeout=10)
    assert answer.status_code == 400 and "not a JSON number" in answer.json()["message"]
    assert sim.exchange.to_state()["now"] == before["now"]


@pytest.mark.parametrize("body", [{"advance_seconds": 1e308}, {"advance_seconds": -1},
                                  {"to": "2200-01-02"}, {"to": "2200-01-05T22:00:00Z"}])
def test_a_clock_move_the_calendar_cannot_make_changes_nothing(sim, tmp_path, body):
    before = sim.exchange.to_state()
    answer = requests.post(sim.server.trading_url + "/_sim/clock", json=body, headers=HEADERS,
                           timeout=10)
    assert answer.status_code == 422
    assert_alpaca_error(answer.json(), 422)
    assert sim.exchange.to_state() == before
    sim.exchange.save(tmp_path / "after.json")  # and what is left can be loaded again
    assert Exchange.load(tmp_path / "after.json", tiny_market()).to_state() == before


@pytest.mark.parametrize("fault", [
    {"status": 500, "headers": ["X-A", "1"]},
    {"status": 500, "headers": {"X-A": 1}},
    {"status": 500, "headers": {"X-A": "1\r\nSet-Cookie: x"}},
    {"status": 500, "headers": {"Bad Name": "1"}},
    {"method": 5, "status": 500},
    {"path": ["/v2"], "status": 500},
    {"delay_seconds": "abc"},
    {"hang": "yes"},
    {"status": True},
    {"count": 1.5, "status": 500},
])
def test_a_malformed_fault_is_refused_when_armed(sim, fault):
    answer = requests.post(sim.server.trading_url + "/_sim/faults", json=fault,
                           headers=HEADERS, timeout=10)
    assert answer.status_code in (400, 422), answer.text
    assert_alpaca_error(answer.json(), answer.status_code)
    assert sim.server.faults.armed() == []
    assert sim.api.get_account().status == "ACTIVE"  # and every request goes on normally


def test_more_connections_than_threads_get_a_503(monkeypatch):
    monkeypatch.setattr(server, "MAX_THREADS", 3)
    exchange = Exchange(tiny_market(), ExchangeConfig(), now=NOON_MAR1)
    with serve(exchange) as running:
        idle = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(3)]
        try:
            answer = raw(running.port, f"GET /v2/clock HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
            status, body = status_and_json(answer)
            assert status == 503
            assert_alpaca_error(body, 503)
        finally:
            for connection in idle:
                connection.close()
        # once they are gone, requests are served again
        for _ in range(50):
            answer = raw(running.port, f"GET /v2/clock HTTP/1.1\r\nHost: x\r\n{AUTH}"
                                       "Connection: close\r\n\r\n")
            if status_and_json(answer)[0] == 200:
                break
        assert status_and_json(answer)[0] == 200


def test_the_request_log_is_bounded_in_bytes():
    log = requestlog.RequestLog()
    for i in range(30_000):
        log.record("GET", f"/v2/orders/{i}{'x' * 5000}", 404, "2022-03-01T17:00:00Z")
    assert log.bytes <= requestlog.MAX_BYTES
    assert len(json.dumps(log.to_state())) < 2 * requestlog.MAX_BYTES + 2_000_000
    assert len(log.counts) <= requestlog.MAX_COUNT_KEYS + 1
    assert sum(log.counts.values()) == 30_000  # every request is still counted
    assert all(len(e["path"]) <= requestlog.MAX_PATH_CHARS for e in log.entries)
