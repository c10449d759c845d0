"""Fixtures shared by several test modules."""

import atexit
import os
import shutil
import tempfile

import pytest

from tests.bot_process import BotProcesses
from tests.sim_harness import Sim, flat_bars, market

# The test session's own disk cache (simbroker/array_cache.py), not the user's; the bot
# processes of tests/bot_process.py get it too.
if "SIMBROKER_CACHE_DIR" not in os.environ:
    os.environ["SIMBROKER_CACHE_DIR"] = tempfile.mkdtemp(prefix="simbroker-cache-")
    atexit.register(shutil.rmtree, os.environ["SIMBROKER_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="module")
def bots():
    """A fork server of real bot processes, one per test module."""
    runner = BotProcesses()
    yield runner
    runner.close()


@pytest.fixture
def sim_factory(tmp_path, monkeypatch):
    """Exchanges served on loopback for end-to-end runs, made from {symbol: {day: close}}
    series and starting the day before the entry day of tests/test_bot_e2e.py (zero spread
    unless given); closed after the test."""
    from tests.test_bot_e2e import DAYS, E  # the shared calendar of those scenarios

    monkeypatch.chdir(tmp_path)  # no developer .env leaks into a test
    made = []

    def make(series: dict, **exchange) -> Sim:
        data = market(*(flat_bars(s, c) for s, c in series.items()))
        exchange.setdefault("spread_bps", 0.0)
        sim = Sim(tmp_path, data, DAYS[E - 1], **exchange)
        sim.env["TICKERS"] = ",".join(series)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


@pytest.fixture
def may_fork(monkeypatch):
    """This test process as forked.can_fork wants it, whatever ran before in it: forking
    allowed again (a main(--processes 1) turns it off for the process) and tqdm's monitor
    thread, which an earlier progress bar leaves running, stopped (a process with a thread
    forks no helper)."""
    import sys

    import forked

    monkeypatch.setattr(forked, "_allowed", True)
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None and tqdm.tqdm.monitor is not None:
        tqdm.tqdm.monitor.exit()
        tqdm.tqdm.monitor = None
