"""The run lock, with real processes: `python trading_bot.py` as cron starts it.

A first run is held inside its run (the exchange hangs its first request), so it holds
logs/bot.lock. Every other run started meanwhile must exit 3 at once, having sent nothing
and written nothing. Then the first run is SIGKILLed: the kernel releases its lock, and
the next run must go through.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from simbroker import Fault
from simbroker.faults import MAX_HANG_SECONDS
from tests.bot_process import ROOT
from tests.reliability_support import SCENARIOS, bot_env, check_invariants, prepare

BOT = [sys.executable, str(ROOT / "trading_bot.py")]


def start(env: dict[str, str], logs: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*BOT, "--log-dir", str(logs)], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(env: dict[str, str], logs: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*BOT, "--log-dir", str(logs)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def state_of(logs: Path) -> dict[str, bytes]:
    return {str(p.relative_to(logs)): p.read_bytes() for p in sorted(logs.rglob("*"))
            if p.is_file() and p.name != "bot.lock"}


@pytest.fixture
def held(tmp_path):
    """An exchange, and a first run that holds the lock: it waits on its first request, as
    long as the exchange may hang one (60 s) - far longer than the other runs need to start,
    even on a loaded machine. The wait below only guards against a run that never asks."""
    prepared = prepare(SCENARIOS["entries"], tmp_path / "prepared")
    with prepared.fresh(tmp_path) as (exchange, server, logs):
        server.faults.add(Fault(method="GET", path="/v2/clock", hang=True,
                                hang_seconds=MAX_HANG_SECONDS))
        env = bot_env(server, exchange, prepared.scenario.tickers, REQUEST_TIMEOUT_SECONDS="120",
                      RUN_DEADLINE_SECONDS="600")
        first = start(env, logs, tmp_path)
        try:
            deadline = time.monotonic() + 120
            while server.faults.armed():  # taken once the first run asked for the clock
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            yield first, exchange, env, logs
        finally:
            if first.poll() is None:
                first.kill()  # our own child, by its pid
            first.communicate()


def test_runs_started_while_one_holds_the_lock_exit_3_at_once(held, tmp_path):
    first, exchange, env, logs = held
    before, requests = state_of(logs), len(exchange.requests.entries)
    with ThreadPoolExecutor(3) as pool:
        others = list(pool.map(lambda _: run(env, logs, tmp_path), range(3)))
    # "At once": every other run has exited while the first still holds the lock - none of
    # them waited for it to be released.
    assert first.poll() is None
    for done in others:
        assert done.returncode == 3, done.stderr
        assert "another run holds" in done.stderr and "bot.lock" in done.stderr
    assert state_of(logs) == before  # no run directory, no state file
    assert len(exchange.requests.entries) == requests  # not one request


def test_a_killed_runs_lock_does_not_block_the_next_run(held, tmp_path):
    first, exchange, env, logs = held
    first.kill()
    first.wait(timeout=10)
    assert first.returncode == -9
    assert (logs / "bot.lock").read_text().strip() == str(first.pid)  # left behind
    done = run(env, logs, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(exchange.orders) == 3  # the killed run had placed nothing; this one did
    assert check_invariants(exchange, logs) == []
