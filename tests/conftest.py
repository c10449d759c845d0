"""Fixtures shared by several test modules."""

import atexit
import os
import shutil
import tempfile

import pytest
import tqdm

from tests.bot_process import BotProcesses
from tests.sim_harness import Sim, flat_bars, market

# The test session's own disk cache (simbroker/array_cache.py), not the user's; the bot
# processes of tests/bot_process.py get it too.
if "SIMBROKER_CACHE_DIR" not in os.environ:
    os.environ["SIMBROKER_CACHE_DIR"] = tempfile.mkdtemp(prefix="simbroker-cache-")
    atexit.register(shutil.rmtree, os.environ["SIMBROKER_CACHE_DIR"], ignore_errors=True)


# tqdm's monitor thread (started by a sweep's progress bar) would outlive its test and keep
# every later test from forking a helper process (forked.can_fork: a single thread only).
tqdm.tqdm.monitor_interval = 0


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty disk cache of its own (simbroker/array_cache.py) for one test."""
    monkeypatch.setenv("SIMBROKER_CACHE_DIR", str(tmp_path))
    return tmp_path


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


@pytest.fixture(autouse=True)
def _forking_as_the_session_began():
    """`backtest.py --processes 1` turns forking off for the rest of its process
    (forked.disable()); a test that runs it in this process must not turn it off for the
    tests after it."""
    import forked

    allowed = forked._allowed
    yield
    forked._allowed = allowed


@pytest.fixture
def as_if_single_threaded(monkeypatch):
    """Threads that earlier tests left running (dask's event loop once a local cluster ran, a
    slow local server's request thread) counted out of `threading.active_count`, so that
    `forked.can_fork()` sees this test's own threads alone, as in a fresh process."""
    import threading

    # Those threads themselves, not their number: one that ends during the test must not be
    # counted out again (the count would then fall below this test's own one thread).
    left = [t for t in threading.enumerate() if t is not threading.current_thread()]
    real = threading.active_count
    monkeypatch.setattr(threading, "active_count",
                        lambda: real() - sum(t.is_alive() for t in left))
