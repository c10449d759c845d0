"""The fault matrix: every fault the exchange can inject, at every request of a daily run.

The bot runs in its own process (tests/bot_process.py) against an exchange served here, on
the "both" scenario (an exit and two entries: 14 requests). For each fault kind and each
request index k, the k-th request suffers the fault; the run must then recover - exit 0, a
warning naming the failed request, and the unfaulted run's outcome exactly: the same orders
at the broker and the same state files. An outage (every request from the k-th on fails)
must end the run with exit 1 and a clear error, and the next run, once the exchange is back,
must reach the unfaulted outcome. Then the refusals and bad answers a broker gives: empty
bars, unknown, inactive and unshortable symbols, insufficient buying power, the pattern day
trader rule; and the timeout of every request and the deadline of the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from config import Config
from position_manager import StateStore
from simbroker import Fault, wire
from simbroker.faults import MAX_HANG_SECONDS, Faults, RandomFaults
from tests.bot_process import BotProcesses, Finished
from tests.reliability_support import (
    DAYS,
    SCENARIOS,
    Prepared,
    bot_env,
    bot_orders,
    check_invariants,
    prepare,
    record_figure,
)
from tests.test_crash import Outcome

TIMEOUT = "1"  # REQUEST_TIMEOUT_SECONDS: a hang costs one second
WORKERS = 14  # the runs mostly wait (backoff, timeouts): all requests of a kind at once

KINDS: dict[str, Fault] = {
    "429": Fault(status=429),
    "500": Fault(status=500),
    "502": Fault(status=502),
    "503": Fault(status=503),
    "504": Fault(status=504),
    "429 after commit": Fault(status=429, after_commit=True),
    "500 after commit": Fault(status=500, after_commit=True),
    "502 after commit": Fault(status=502, after_commit=True),
    "503 after commit": Fault(status=503, after_commit=True),
    "504 after commit": Fault(status=504, after_commit=True),
    "reset": Fault(reset=True),
    "reset after commit": Fault(reset=True, after_commit=True),
    "hang": Fault(hang=True, hang_seconds=5),
    "hang after commit": Fault(hang=True, hang_seconds=5, after_commit=True),
    "malformed": Fault(malformed=True),
    "malformed after commit": Fault(malformed=True, after_commit=True),
    # Answered after the client gave up: the order is committed while the bot looks it up
    # and re-sends it.
    "late commit": Fault(delay_seconds=1.5),
}
LOOKUP = "GET /v2/orders:by_client_order_id"
OUTAGES: dict[str, Fault] = {"503 outage": Fault(status=503), "reset outage": Fault(reset=True)}


class AtRequest(Faults):
    """The k-th request (from 1) suffers `fault`; with `lasting`, every one from the k-th on
    does. `hits` lists the requests that suffered it."""

    def __init__(self, k: int, fault: Fault, *, lasting: bool = False) -> None:
        super().__init__()
        self.k, self.fault, self.lasting = k, fault, lasting
        self.seen = 0
        self.hits: list[str] = []
        self.log: list[str] = []  # every request, in order

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.seen += 1
            self.log.append(f"{method} {path}")
            if self.seen == self.k or (self.lasting and self.seen > self.k):
                self.hits.append(f"{method} {path}")
                return self.fault
        return None


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> Prepared:
    return prepare(SCENARIOS["both"], tmp_path_factory.mktemp("faults") / "prepared")


@pytest.fixture(scope="module")
def unfaulted(bots, both, tmp_path_factory) -> tuple[Outcome, int, list[str]]:
    """The outcome of the run without faults, how many requests it makes, and which."""
    workdir = tmp_path_factory.mktemp("unfaulted")
    with both.fresh(workdir) as (exchange, server, logs):
        recorder = Recorder()
        server.faults = recorder
        run = bots.run(["--log-dir", str(logs)], env=env_for(server, exchange, both),
                       cwd=workdir)
        assert run.returncode == 0, run.stderr
        return Outcome.of(exchange, logs), len(recorder.seen), recorder.seen


def env_for(server, exchange, prepared: Prepared, **extra: str) -> dict[str, str]:
    return bot_env(server, exchange, prepared.scenario.tickers,
                   **{"REQUEST_TIMEOUT_SECONDS": TIMEOUT, **extra})


def run_with(bots: BotProcesses, prepared: Prepared, workdir: Path, faults: Faults,
             check: Callable[..., list[str]], **env: str) -> list[str]:
    """One run with `faults` installed on a fresh exchange; `check(run, exchange, logs,
    server)` returns the problems found."""
    workdir.mkdir()
    with prepared.fresh(workdir) as (exchange, server, logs):
        server.faults = faults
        run = bots.run(["--log-dir", str(logs)], env=env_for(server, exchange, prepared, **env),
                       cwd=workdir)
        return check(run, exchange, logs, server)


def recovered(expected: Outcome, faults: AtRequest) -> Callable[..., list[str]]:
    def check(run: Finished, exchange, logs: Path, server) -> list[str]:
        if run.returncode != 0:
            return [f"exit {run.returncode}: {run.stderr[-1500:]}"]
        (hit,) = faults.hits
        path = hit.split(" ", 1)[1]
        warned = [line for line in run.stderr.splitlines()
                  if path in line and (" WARNING " in line or " ERROR " in line)]
        problems = [] if warned else [f"no warning names the failed request {hit}"]
        if hit == "POST /v2/orders" and faults.log[faults.k:faults.k + 1] != [LOOKUP]:
            problems.append(f"after the failed POST came {faults.log[faults.k:][:1]}, not "
                            "the look-up of its client_order_id")
        return problems + check_invariants(exchange, logs) + \
            Outcome.of(exchange, logs).differences(expected)
    return check


def outage_then_back(bots: BotProcesses, prepared: Prepared, expected: Outcome,
                     faults: AtRequest) -> Callable[..., list[str]]:
    def check(run: Finished, exchange, logs: Path, server) -> list[str]:
        problems = []
        if run.returncode != 1:
            problems.append(f"exit {run.returncode} during an outage, not 1")
        if " ERROR " not in run.stderr or "run failed" not in run.stderr:
            problems.append("no 'run failed' error line")
        problems += check_invariants_after_failure(exchange, logs)
        server.faults = Faults()  # the exchange is back
        again = bots.run(["--log-dir", str(logs)], env=env_for(server, exchange, prepared),
                         cwd=logs.parent)
        if again.returncode != 0:
            return problems + [f"the run after the outage exited {again.returncode}"]
        return problems + check_invariants(exchange, logs) + \
            Outcome.of(exchange, logs).differences(expected)
    return check


def check_invariants_after_failure(exchange, logs: Path) -> list[str]:
    """After a failed run only the broker-side invariants must hold (nothing doubled); the
    records may lag until the next run."""
    return [p for p in check_invariants(exchange, logs)
            if "used" in p or "orders for" in p]


def matrix(bots, prepared: Prepared, tmp_path: Path, count: int, make_faults, make_check,
           **env: str) -> dict[int, list[str]]:
    with ThreadPoolExecutor(WORKERS) as pool:
        def one(k: int) -> list[str]:
            faults = make_faults(k)
            return run_with(bots, prepared, tmp_path / f"k{k}", faults, make_check(faults),
                            **env)
        return dict(zip(range(1, count + 1), pool.map(one, range(1, count + 1)), strict=True))


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_fault_at_every_request_is_survived(bots, both, unfaulted, tmp_path, kind):
    expected, count, _ = unfaulted
    hits: dict[int, str] = {}

    def make(k: int) -> AtRequest:
        faults = AtRequest(k, KINDS[kind])
        hits[k] = faults
        return faults

    # The short timeout only where the fault needs it: a loaded machine must not turn a
    # slow answer into a second fault.
    timeout = TIMEOUT if KINDS[kind].hang or KINDS[kind].delay_seconds else "10"
    found = matrix(bots, both, tmp_path, count, make,
                   lambda faults: recovered(expected, faults), REQUEST_TIMEOUT_SECONDS=timeout)
    failures = {f"{k} ({hits[k].hits})": p for k, p in found.items() if p}
    record_figure("faults", kind=kind, requests=count, survived=count - len(failures))
    assert not failures, "\n".join(f"{kind} at request {k}: {'; '.join(p)}"
                                   for k, p in failures.items())


@pytest.mark.parametrize("kind", list(OUTAGES))
def test_an_outage_from_every_request_fails_the_run_and_the_next_run_recovers(
        bots, both, unfaulted, tmp_path, kind):
    expected, count, _ = unfaulted
    found = matrix(bots, both, tmp_path, count,
                   lambda k: AtRequest(k, OUTAGES[kind], lasting=True),
                   lambda faults: outage_then_back(bots, both, expected, faults),
                   REQUEST_TIMEOUT_SECONDS="10")
    failures = {k: p for k, p in found.items() if p}
    record_figure("outages", kind=kind, requests=count, survived=count - len(failures))
    assert not failures, "\n".join(f"{kind} from request {k}: {'; '.join(p)}"
                                   for k, p in failures.items())


# -- what a broker refuses or answers badly ---------------------------------------------------

class Recorder(Faults):
    """Armed faults as usual, and the list of requests seen."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.seen.append(f"{method} {path}")
        return super().take(method, path)


def one_run(bots, prepared: Prepared, workdir: Path, faults: Faults, *, setup=None,
            **env: str) -> tuple[Finished, object, Path, float]:
    """A run with `faults`, after `setup(exchange)`; returns the run, the exchange, the log
    directory and the run's wall time in seconds."""
    workdir.mkdir(exist_ok=True)
    with prepared.fresh(workdir) as (exchange, server, logs):
        if setup is not None:
            setup(exchange)
        server.faults = faults
        started = time.monotonic()
        run = bots.run(["--log-dir", str(logs)], env=env_for(server, exchange, prepared, **env),
                       cwd=workdir)
        return run, exchange, logs, time.monotonic() - started


def today_orders(exchange) -> dict[str, object]:
    """The bot's orders of the run under test (day E+1), by symbol."""
    day = DAYS[SCENARIOS["both"].day].strftime("%Y%m%d")
    return {o.symbol: o for o in bot_orders(exchange) if f"-{day}-" in o.client_order_id}


def test_empty_bars_skip_every_symbol_and_postpone_the_exit(bots, both, tmp_path):
    faults = Faults()
    faults.add(Fault(method="GET", path="/v2/stocks/bars", status=200,
                     body={"bars": {}, "next_page_token": None}))
    run, exchange, logs, _ = one_run(bots, both, tmp_path, faults)
    assert run.returncode == 0, run.stderr
    assert "skip BBB: no daily bar" in run.stderr and "skip AAA" not in run.stderr
    # AAA is held and has a price: it stays managed (the holding limit needs no bars; with
    # no close at all there is no z for a stop-loss or reversion), and held one day: no exit.
    assert "AAA: held, no daily bar for 29 of the 29 window sessions" in run.stderr
    assert today_orders(exchange) == {}
    assert check_invariants(exchange, logs) == []
    assert "AAA" in StateStore(logs).load_holdings()


def test_an_unknown_symbol_is_skipped_and_the_rest_trades(bots, both, unfaulted, tmp_path):
    run, exchange, logs, _ = one_run(bots, both, tmp_path, Faults(),
                                     TICKERS="AAA,BBB,CCC,DDD,ZZZZ")
    assert run.returncode == 0, run.stderr
    assert "not tradable at this broker, skipped: ZZZZ" in run.stderr
    assert check_invariants(exchange, logs) == []
    assert Outcome.of(exchange, logs).differences(unfaulted[0]) == []


def test_inactive_assets_are_not_entered_but_a_held_one_is_still_closed(bots, both, tmp_path):
    def inactive(exchange) -> None:
        assets = [wire.asset_json(exchange, s) for s in exchange.market_data.symbols]
        for asset in assets:
            if asset["symbol"] in ("AAA", "CCC"):
                asset.update(status="inactive", tradable=False)
        faults.add(Fault(method="GET", path="/v2/assets", status=200, body=assets))

    faults = Faults()
    run, exchange, logs, _ = one_run(bots, both, tmp_path, faults, setup=inactive)
    assert run.returncode == 0, run.stderr
    assert "not tradable at this broker, skipped: AAA, CCC" in run.stderr
    orders = today_orders(exchange)
    assert sorted(orders) == ["AAA", "BBB"]  # AAA's exit (held), BBB's entry; no CCC
    assert orders["AAA"].intent.value == "sell_to_close"
    assert check_invariants(exchange, logs) == []


def test_a_symbol_that_cannot_be_shorted_is_skipped_before_sending(bots, both, tmp_path):
    def not_shortable(exchange) -> None:
        exchange.config = replace(exchange.config, shortable=frozenset({"AAA", "CCC", "DDD"}))

    run, exchange, logs, _ = one_run(bots, both, tmp_path, Faults(), setup=not_shortable)
    assert run.returncode == 0, run.stderr
    assert "skip entry BBB: z=2.0" in run.stderr and "cannot be shorted" in run.stderr
    assert sorted(today_orders(exchange)) == ["AAA", "CCC"]
    assert check_invariants(exchange, logs) == []


def test_too_little_cash_skips_entries_before_sending(bots, tmp_path):
    poor = replace(SCENARIOS["entries"], name="poor", exchange={"starting_cash": 150.0})
    prepared = prepare(poor, tmp_path / "prepared")
    run, exchange, logs, _ = one_run(bots, prepared, tmp_path / "run", Faults())
    assert run.returncode == 0, run.stderr
    # CCC (strongest signal) is bought; AAA finds $50 of cash left; BBB cannot be shorted
    # in a cash account (equity under $2,000: FINRA Rule 4210(b)).
    skipped = [line for line in run.stderr.splitlines() if "skip entry" in line]
    assert any("AAA" in line and "cash" in line for line in skipped), skipped
    assert any("BBB" in line and "cannot be shorted" in line for line in skipped), skipped
    assert sorted(o.symbol for o in bot_orders(exchange)) == ["CCC"]
    assert check_invariants(exchange, logs) == []


REFUSALS = {
    # (which POST of the run: 1 AAA's exit, 2 CCC's entry, 3 BBB's entry), status, body
    "insufficient buying power": (2, 403, {"code": 40310000,
                                           "message": "insufficient buying power"}),
    "unknown asset": (2, 422, {"code": 42210000, "message": 'could not find asset "CCC"'}),
    "not shortable": (3, 403, {"code": 40310000,
                               "message": "asset BBB cannot be sold short"}),
    "pattern day trader": (1, 403, {"code": 40310100,
                                    "message": "trade denied due to pattern day trading "
                                               "protection"}),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_order_is_logged_and_the_run_goes_on(bots, both, unfaulted, tmp_path,
                                                       refusal):
    nth, status, body = REFUSALS[refusal]
    posts = [i for i, r in enumerate(unfaulted[2], start=1) if r == "POST /v2/orders"]
    refused = {1: "AAA", 2: "CCC", 3: "BBB"}[nth]
    faults = AtRequest(posts[nth - 1], Fault(status=status, body=body))
    run, exchange, logs, _ = one_run(bots, both, tmp_path, faults)
    assert run.returncode == 0, run.stderr
    assert f"{refused}: order refused: POST /v2/orders" in run.stderr
    assert body["message"] in run.stderr
    assert refused not in today_orders(exchange)
    assert len(today_orders(exchange)) == 2  # the other two
    pending = StateStore(logs).load_pending()
    assert not any(p.symbol == refused for p in pending.values())
    if refused == "AAA":  # the exit was refused: the position is still held and recorded
        assert "AAA" in StateStore(logs).load_holdings()
    assert check_invariants(exchange, logs) == []


def _small_legacy_account(name: str, tmp_path: Path) -> Prepared:
    """The 'both' scenario on a legacy-PDT exchange with $10,000: under the $25,000 line."""
    legacy = replace(SCENARIOS["both"], name=name,
                     exchange={"legacy_pdt": True, "starting_cash": 10_000.0})
    return prepare(legacy, tmp_path / "prepared")


def _three_day_trades(exchange) -> None:
    """Three round trips in DDD today, by hand: the account's 5-day count reaches 3."""
    for i in range(3):
        for side in ("buy", "sell"):
            exchange.submit_order({"symbol": "DDD", "qty": 1, "side": side, "type": "market",
                                   "time_in_force": "day",
                                   "client_order_id": f"manual-{i}-{side}"})
            exchange.settle()  # accepted and filled after the answer, as at Alpaca
    assert exchange.daytrade_count() == 3


def test_pattern_day_trader_protection_blocks_entries_of_a_small_account(bots, tmp_path):
    prepared = _small_legacy_account("legacy-pdt", tmp_path)
    run, exchange, logs, _ = one_run(bots, prepared, tmp_path / "run", Faults(),
                                     setup=_three_day_trades)
    assert run.returncode == 0, run.stderr
    assert "no new entries: the account could make a 4th day trade" in run.stderr
    orders = today_orders(exchange)
    assert sorted(orders) == ["AAA"]  # the exit of yesterday's position is no day trade
    assert check_invariants(exchange, logs) == []


def test_the_exchange_refuses_a_day_trade_the_bot_did_not_see_coming(bots, tmp_path):
    """Alpaca's real PDT refusal (legacy exchange): the account is under $25,000 with 3 day
    trades, and someone bought one more AAA share by hand today, so closing AAA today is a
    day trade at the broker - though the bot's record says it opened AAA yesterday."""
    prepared = _small_legacy_account("legacy-pdt-refusal", tmp_path)

    def day_trades_and_a_manual_buy(exchange) -> None:
        _three_day_trades(exchange)
        exchange.submit_order({"symbol": "AAA", "qty": 1, "side": "buy", "type": "market",
                               "time_in_force": "day", "client_order_id": "manual-aaa"})
        exchange.settle()

    run, exchange, logs, _ = one_run(bots, prepared, tmp_path / "run", Faults(),
                                     setup=day_trades_and_a_manual_buy)
    assert run.returncode == 0, run.stderr
    assert "AAA: order refused" in run.stderr and "pattern day trading" in run.stderr
    assert today_orders(exchange) == {}  # refused, and no entries (blocked by the rule)
    assert "AAA" in StateStore(logs).load_holdings()
    assert StateStore(logs).load_pending() == {}
    assert check_invariants(exchange, logs) == []


# -- the timeout of every request, the deadline of the run ----------------------------------------

def test_every_request_has_a_timeout(bots, both, tmp_path):
    assert Config().request_timeout_seconds == 30.0
    faults = Faults()
    faults.add(Fault(method="GET", path="/v2/account", hang=True, hang_seconds=MAX_HANG_SECONDS))
    run, exchange, logs, _ = one_run(bots, both, tmp_path, faults, REQUEST_RETRIES="0")
    assert run.returncode == 1
    # The client gave up after its own timeout (1 s), while the exchange still held the
    # request: a hang that ran out would have closed the connection unanswered, which the
    # bot reports as a failed connection, not as a timeout.
    assert f"GET /v2/account: no answer within the timeout of {TIMEOUT} s" in run.stderr
    assert "run failed" in run.stderr
    assert [r["path"] for r in exchange.requests.entries if r.get("fault")] == ["/v2/account"]


def test_a_rate_limit_answer_is_retried_after_a_backoff(bots, both, tmp_path):
    faults = Faults()
    faults.add(Fault(method="GET", path="/v2/account", status=429))
    run, exchange, logs, seconds = one_run(bots, both, tmp_path, faults)
    assert run.returncode == 0, run.stderr
    assert "GET /v2/account failed (GET /v2/account: HTTP 429" in run.stderr
    assert "retry 1/1 in 0.5 s" in run.stderr
    assert seconds >= 0.5
    assert check_invariants(exchange, logs) == []
    # What the bot was answered: Alpaca's 429 with its rate-limit headers.
    with both.fresh(tmp_path / "direct") as (exchange, server, _):
        server.faults.add(Fault(method="GET", path="/v2/account", status=429))
        answer = requests.get(server.trading_url + "/v2/account", timeout=5, headers={
            "APCA-API-KEY-ID": exchange.config.key_id,
            "APCA-API-SECRET-KEY": exchange.config.secret_key})
    assert answer.status_code == 429 and answer.headers["X-RateLimit-Remaining"] == "0"
    assert {"X-RateLimit-Limit", "X-RateLimit-Reset"} <= set(answer.headers)


@pytest.mark.parametrize("what", ["every request hangs", "every order POST fails"])
def test_the_run_ends_at_its_deadline(bots, both, tmp_path, what):
    if what == "every request hangs":
        fault = Fault(hang=True, hang_seconds=30, count=1000)
    else:
        fault = Fault(method="POST", path="/v2/orders", status=503, count=1000)
    faults = Faults()
    faults.add(fault)
    run, exchange, logs, _ = one_run(bots, both, tmp_path, faults, REQUEST_RETRIES="8",
                                     RUN_DEADLINE_SECONDS="4")
    assert run.returncode == 1
    assert "run deadline passed" in run.stderr
    # No request starts after the deadline and no backoff waits past it. Each hanging request
    # takes at least its timeout (1 s), and the backoffs between failed POSTs at least
    # 0.5 + 1 + 2 s, so within 4 s at most 5 requests can start (fewer on a slow machine).
    # Without the deadline, the 8 retries of the first request alone would make 9.
    tried = [r for r in exchange.requests.entries if r.get("fault")]
    assert 1 <= len(tried) <= 5
    assert check_invariants_after_failure(exchange, logs) == []


def test_a_fill_wait_longer_than_the_deadline_ends_at_the_deadline(bots, tmp_path):
    resting = replace(SCENARIOS["entries"], name="resting", exchange={"spread_bps": 50.0})
    prepared = prepare(resting, tmp_path / "prepared")  # the limits never meet the ask
    # One poll interval is an hour: a wait that the deadline did not cut would outlast the
    # harness's 120 s limit for a run, which then raises TimeoutError. So the run ending at
    # all shows the wait was cut at the deadline (3 s), whatever the machine's load.
    run, exchange, logs, _ = one_run(bots, prepared, tmp_path / "run", Faults(),
                                     FILL_WAIT_SECONDS="7200", FILL_POLL_SECONDS="3600",
                                     RUN_DEADLINE_SECONDS="3")
    assert run.returncode == 1
    assert "run deadline passed before GET /v2/orders" in run.stderr
    assert len(StateStore(logs).load_pending()) == 3  # the next run asks the broker
    assert check_invariants_after_failure(exchange, logs) == []


def test_random_faults_are_seeded_and_armed_faults_come_first():
    def draws(rate: float, seed: str) -> list[str | None]:
        faults = RandomFaults(rate, seed=seed)
        faults.add(Fault(method="POST", path="/v2/orders", status=422))
        taken = [faults.take("GET", "/v2/clock") for _ in range(200)]
        first_post = faults.take("POST", "/v2/orders")
        assert first_post is not None and first_post.status == 422
        return [None if f is None else f.kind for f in taken]

    assert draws(0.05, "11:2021-01-04") == draws(0.05, "11:2021-01-04")
    assert draws(0.05, "11:2021-01-04") != draws(0.05, "11:2021-01-05")
    assert set(draws(0.0, "x")) == {None}
    hits = sum(1 for f in draws(0.25, "y") if f)
    assert 25 <= hits <= 75
    with pytest.raises(ValueError):
        RandomFaults(1.5)
    with pytest.raises(Exception, match="body needs a status"):
        Fault(body={"bars": {}})
