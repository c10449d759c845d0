"""`trading_bot.py --sim` killed at random points, then run again.

In `--sim` the exchange lives in the bot's own process, so a signal ends both. Each run below
is the real bot in its own process (tests/bot_process.py), sent SIGKILL or SIGTERM right after
a seeded random one of the HTTP responses or state-file writes of a six-day simulation (or,
once, from outside at a random moment), then run again for two more days. The exchange is
then loaded from its files and must agree with the bot's records:

* the invariants of tests/reliability_support.py (no order doubled, every exit in
  trades.csv once, positions and pending orders equal to the exchange's): no orphaned
  position, no phantom trade row;
* every order id the bot recorded names, at the exchange, the order the bot sent under that
  client_order_id: no order id issued twice;
* SIGTERM is a clean stop: exit 143, and the killed run's summary says it failed.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from position_manager import StateStore
from simbroker import Exchange, market_data
from tests.bot_process import ROOT, BotProcesses
from tests.reliability_support import check_invariants, record_figure

DAYS = 6
SIM = ["--sim", "--sim-start", "2022-06-01"]
POINTS = 6  # per signal and kind of point
SEED = 20260601


def sim_env() -> dict[str, str]:
    import os

    return {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def baseline(bots: BotProcesses, tmp_path_factory) -> dict[str, list[str]]:
    """An unkilled run's kill points."""
    workdir = tmp_path_factory.mktemp("sim-baseline")
    trace = workdir / "trace.json"
    run = bots.run([*SIM, "--days", str(DAYS), "--sim-dir", str(workdir / "sim")],
                   env=sim_env(), cwd=workdir, trace=trace)
    assert run.returncode == 0, run.stderr[-3000:]
    points = json.loads(trace.read_text())
    assert points["requests"].count("POST /v2/orders") >= 3
    return points


def problems_after_rerun(bots: BotProcesses, workdir: Path) -> list[str]:
    again = bots.run(["--sim", "--days", "2", "--sim-dir", str(workdir / "sim")], env=sim_env(),
                     cwd=workdir)
    if again.returncode != 0:
        return [f"the run after the kill exited {again.returncode}: {again.stderr[-2000:]}"]
    return sim_problems(workdir / "sim")


def sim_problems(sim_dir: Path) -> list[str]:
    exchange = Exchange.load(sim_dir / "exchange.json", market_data.load("us-stocks"))
    logs = sim_dir / "logs"
    return check_invariants(exchange, logs) + _ids_problems(exchange, logs)


def _ids_problems(exchange: Exchange, logs: Path) -> list[str]:
    """Each order id in the bot's records is, at the exchange, its own order."""
    store = StateStore(logs)
    named = [(r["exit_order_id"], r["exit_client_order_id"]) for r in store.load_trades()]
    named += [(p.order_id, cid) for cid, p in store.load_pending().items() if p.order_id]
    problems = []
    for order_id, client_id in named:
        order = exchange.orders.get(order_id)
        if order is None or order.client_order_id != client_id:
            problems.append(f"order id {order_id} of {client_id} is at the exchange "
                            f"{order and order.client_order_id}")
    ids = [o.id for o in exchange.orders.values()]
    seqs = [o.seq for o in exchange.orders.values()]
    if len(set(seqs)) != len(seqs) or len(set(ids)) != len(ids):
        problems.append("the exchange issued an order number twice")
    return problems


def _kill_points(baseline: dict[str, list[str]]) -> list[tuple[str, int, int]]:
    rng = random.Random(SEED)
    points = []
    for sig in (signal.SIGKILL, signal.SIGTERM):
        posts = [i + 1 for i, r in enumerate(baseline["requests"]) if r == "POST /v2/orders"]
        chosen = {rng.choice(posts)} | set(rng.sample(range(1, len(baseline["requests"]) + 1),
                                                      POINTS - 1))
        points += [("after_request", k, sig) for k in sorted(chosen)]
        points += [("after_write", k, sig)
                   for k in sorted(rng.sample(range(1, len(baseline["writes"]) + 1), POINTS))]
        points += [("mid_write", k, sig) for k in sorted(rng.sample(range(1, 40), 2))]
    return points


def test_killed_at_random_points_then_rerun(bots, baseline, tmp_path):
    found = {}
    for kind, k, sig in _kill_points(baseline):
        workdir = tmp_path / f"{kind}-{k}-{int(sig)}"
        workdir.mkdir()
        killed = bots.run([*SIM, "--days", str(DAYS), "--sim-dir", str(workdir / "sim")],
                          env=sim_env(), cwd=workdir, kill={kind: k, "signal": int(sig)})
        expected = -signal.SIGKILL if sig == signal.SIGKILL else 143
        label = f"{signal.Signals(sig).name} {kind} {k}"
        if killed.returncode != expected:
            found[label] = [f"exit {killed.returncode}, expected {expected}: "
                            f"{killed.stderr[-1500:]}"]
            continue
        if sig == signal.SIGTERM:
            assert "stopped by SIGTERM" in killed.stderr
            assert "Traceback" not in killed.stderr
        problems = problems_after_rerun(bots, workdir)
        if problems:
            found[label] = problems
    tried = len(_kill_points(baseline))
    record_figure("sim-crash", points=tried, survived=tried - len(found))
    assert not found, "\n".join(f"{label}: {'; '.join(p)}" for label, p in found.items())


def test_sigterm_from_outside_then_rerun(tmp_path):
    """`python trading_bot.py --sim` as a user starts it, SIGTERMed at a seeded random moment
    of a long simulation (as `timeout` would), then started again."""
    rng = random.Random(SEED)
    for attempt in range(2):
        workdir = tmp_path / f"outside-{attempt}"
        workdir.mkdir()
        argv = [sys.executable, str(ROOT / "trading_bot.py"), *SIM, "--days", "40",
                "--sim-dir", str(workdir / "sim")]
        process = subprocess.Popen(argv, cwd=workdir, env=sim_env(), stderr=subprocess.PIPE,
                                   text=True)
        # wait until the first simulated day started, then a random moment after it
        deadline = time.monotonic() + 120
        while not (workdir / "sim" / "logs" / "runs").exists() and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.0))
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
        if process.returncode == 0:
            continue  # it finished first: nothing to test in this attempt
        assert process.returncode == 143, err[-2000:]
        assert "stopped by SIGTERM" in err and "Traceback" not in err
        summaries = sorted((workdir / "sim" / "logs" / "runs").glob("*/summary.json"))
        assert summaries, "the stopped run wrote no summary"
        last = json.loads(summaries[-1].read_text())
        assert last["outcome"] in ("failed", "done", "market_closed"), last["outcome"]
        again = subprocess.run([*argv[:3], "--days", "2", "--sim-dir", str(workdir / "sim")],
                               cwd=workdir, env=sim_env(), capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        assert sim_problems(workdir / "sim") == []


@pytest.mark.parametrize("kill_after_request", [None, 3, 8])
def test_a_rename_through_the_journal_is_followed_to_the_close(bots, tmp_path,
                                                               kill_after_request):
    """A held symbol renamed between two `--sim` days over the exchange's control, saved only
    in its journal; the next day's run (SIGKILLed at one of its first requests, or not) and
    the one after follow the holding to its exit under the new name."""
    from simbroker import serve
    from tests.test_bot_e2e import DAYS as SESSIONS
    from tests.test_bot_e2e import E, scenario

    series, entry = scenario(["z=-1.0", "z=0.5", "z=0.0"], symbol="OLD")
    closes = series["OLD"]
    rows = [f"OLD,{d},{p},{p},{p},{p},1000000" for d, p in closes.items() if d <= SESSIONS[E]]
    rows += [f"NEW,{d},{p},{p},{p},{p},1000000" for d, p in closes.items()]
    data = tmp_path / "bars.csv"
    data.write_text("symbol,date,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    env = {**sim_env(), "SIM_DATA": str(data), "SIM_SPREAD_BPS": "0", "TICKERS": "OLD"}
    sim_dir = tmp_path / "sim"
    argv = ["--sim", "--sim-dir", str(sim_dir)]
    first = bots.run([*argv, "--sim-start", str(SESSIONS[E]), "--days", "1"], env=env,
                     cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    held = StateStore(sim_dir / "logs").load_holdings()["OLD"]
    # The rename, over HTTP, by a server that journals the saved exchange.
    state = sim_dir / "exchange.json"
    market = market_data.load(str(data))
    exchange = Exchange.load(state, market)
    exchange.advance_to(exchange.now.replace(hour=23))  # after the close (UTC)
    with serve(exchange, state_path=str(state)) as server:
        answer = server_post(server, "/_sim/corporate_actions",
                             {"type": "name_change", "symbol": "OLD", "new_symbol": "NEW"})
        assert answer.status_code == 200, answer.text
    assert "NEW" not in json.loads(state.read_text())["renamed"]  # in the journal only
    assert '"NEW"' in (sim_dir / "exchange.json.journal").read_text()
    if kill_after_request:
        killed = bots.run([*argv, "--days", "1"], env=env, cwd=tmp_path,
                          kill={"after_request": kill_after_request})
        assert killed.killed
    again = bots.run([*argv, "--days", "2" if kill_after_request is None else "1"], env=env,
                     cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    exchange = Exchange.load(state, market)
    logs = sim_dir / "logs"
    assert check_invariants(exchange, logs) + _ids_problems(exchange, logs) == []
    (trade,) = StateStore(logs).load_trades()
    assert (trade["symbol"], trade["exit_reason"]) == ("NEW", "mean_reversion")
    assert (float(trade["entry_price"]), trade["entry_client_order_id"]) == \
        (entry, held.entry_client_order_id)
    assert float(trade["qty"]) == pytest.approx(held.qty, abs=1e-5)  # the CSV rounds
    assert exchange.book.positions == {} and StateStore(logs).load_holdings() == {}


def server_post(server, path: str, body: dict):
    import requests

    return requests.post(f"{server.trading_url}{path}", json=body, timeout=10, headers={
        "APCA-API-KEY-ID": server.exchange.config.key_id,
        "APCA-API-SECRET-KEY": server.exchange.config.secret_key})


def test_a_failed_sim_day_says_why_once(bots, tmp_path):
    env = {**sim_env(), "SIM_FAULT_RATE": "1.0", "REQUEST_RETRIES": "0"}
    run = bots.run([*SIM, "--days", "2", "--sim-dir", str(tmp_path / "sim")], env=env,
                   cwd=tmp_path)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    reasons = [line.split("run failed: ", 1)[1] for line in lines if "run failed: " in line]
    assert len(reasons) == 2  # one per day
    for reason in reasons:
        assert sum(reason in line for line in lines if "ERROR" in line and "FAILED" not in
                   line) == 1, reason
    assert sum("failed at the broker; the next day goes on" in line for line in lines) == 2
