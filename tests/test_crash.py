"""Crash at every step: the real bot, SIGKILLed at each point of a run, then run again.

The exchange is served from this test process, so it outlives the bot; the bot runs in its
own process (tests/bot_process.py), killed right after each HTTP response it receives, right
after each state file it writes, and in the middle of each write (temporary file written,
not yet renamed). The kill points are counted from an unkilled run of the same scenario, so
every one of them is tried. After each kill the bot runs again, and then:

* the invariants of tests/reliability_support.py hold (nothing doubled at the broker, every
  round trip in trades.csv once, positions and pending orders equal to the broker's);
* the outcome is the unkilled run's: the same orders at the broker and the same
  positions.json, pending_orders.json and trades.csv, byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bot_process import ROOT, BotProcesses
from tests.reliability_support import (
    SCENARIOS,
    Prepared,
    bot_env,
    bot_orders,
    check_invariants,
    prepare,
    record_figure,
)

KINDS = ("after_request", "after_write", "mid_write")
STATE_FILES = ("positions.json", "pending_orders.json", "trades.csv")
WORKERS = 3


@dataclass(frozen=True)
class Outcome:
    """What a run leaves behind: the bot's orders at the broker and its three state files."""

    orders: tuple[tuple, ...]
    files: tuple[str, ...]

    @classmethod
    def of(cls, exchange, logs: Path) -> Outcome:
        orders = tuple(sorted((o.client_order_id, o.side.value, o.qty, o.limit_price,
                               o.filled_qty, o.status.value) for o in bot_orders(exchange)))
        files = tuple((logs / name).read_text() if (logs / name).exists() else ""
                      for name in STATE_FILES)
        return cls(orders, files)

    def differences(self, other: Outcome) -> list[str]:
        out = []
        if self.orders != other.orders:
            out.append(f"orders differ from the unkilled run: {other.orders} != {self.orders}")
        out += [f"{name} differs from the unkilled run"
                for name, mine, theirs in zip(STATE_FILES, self.files, other.files, strict=True)
                if mine != theirs]
        return out


@dataclass(frozen=True)
class Baseline:
    prepared: Prepared
    requests: list[str]
    writes: list[str]
    outcome: Outcome

    def points(self, kind: str) -> list[int]:
        count = len(self.requests) if kind == "after_request" else len(self.writes)
        return list(range(1, count + 1))

    def label(self, kind: str, k: int) -> str:
        if kind == "after_request":
            return f"after request {k} ({self.requests[k - 1]})"
        where = "after" if kind == "after_write" else "in the middle of"
        return f"{where} write {k} ({Path(self.writes[k - 1]).name})"


@pytest.fixture(scope="module")
def baselines(bots, tmp_path_factory):
    """Per scenario: the state before the run, and an unkilled run's trace and outcome."""
    made: dict[str, Baseline] = {}

    def get(name: str) -> Baseline:
        if name not in made:
            root = tmp_path_factory.mktemp(f"baseline-{name}")
            prepared = prepare(SCENARIOS[name], root / "prepared")
            workdir = root / "run"
            workdir.mkdir()
            with prepared.fresh(workdir) as (exchange, server, logs):
                env = bot_env(server, exchange, prepared.scenario.tickers)
                trace = workdir / "trace.json"
                run = bots.run(["--log-dir", str(logs)], env=env, cwd=workdir, trace=trace)
                assert run.returncode == 0, run.stderr
                assert check_invariants(exchange, logs) == []
                outcome = Outcome.of(exchange, logs)
            points = json.loads(trace.read_text())
            made[name] = Baseline(prepared, points["requests"], points["writes"], outcome)
        return made[name]

    return get


def kill_and_rerun(bots: BotProcesses, base: Baseline, kind: str, k: int,
                   workdir: Path) -> list[str]:
    """Kill the run at point k, run again; every problem found (empty when none)."""
    workdir.mkdir()
    with base.prepared.fresh(workdir) as (exchange, server, logs):
        env = bot_env(server, exchange, base.prepared.scenario.tickers)
        argv = ["--log-dir", str(logs)]
        killed = bots.run(argv, env=env, cwd=workdir, kill={kind: k})
        if not killed.killed:
            return [f"the kill point was not reached (exit {killed.returncode})"]
        again = bots.run(argv, env=env, cwd=workdir)
        if again.returncode != 0:
            return [f"the run after the kill exited {again.returncode}: {again.stderr[-2000:]}"]
        return check_invariants(exchange, logs) + \
            Outcome.of(exchange, logs).differences(base.outcome)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kill_at_every_point_then_rerun(bots, baselines, tmp_path, scenario, kind):
    base = baselines(scenario)
    points = base.points(kind)
    assert len(points) >= 10  # a run has that many requests and writes at least
    with ThreadPoolExecutor(WORKERS) as pool:
        found = dict(zip(points, pool.map(
            lambda k: kill_and_rerun(bots, base, kind, k, tmp_path / f"k{k}"), points),
            strict=True))
    failures = {base.label(kind, k): problems for k, problems in found.items() if problems}
    record_figure("crash", scenario=scenario, kind=kind, points=len(points),
                  survived=len(points) - len(failures))
    assert not failures, "\n".join(f"killed {label}: {'; '.join(problems)}"
                                    for label, problems in failures.items())


def test_a_standalone_process_killed_at_the_order_post(baselines, tmp_path):
    """The same kill without the fork server: `python tests/bot_process.py` started from
    scratch, killed right after its first order POST was answered, then `python
    trading_bot.py` as cron would start it."""
    base = baselines("both")
    k = base.requests.index("POST /v2/orders") + 1
    with base.prepared.fresh(tmp_path) as (exchange, server, logs):
        env = bot_env(server, exchange, base.prepared.scenario.tickers)
        killed = subprocess.run([sys.executable, str(ROOT / "tests" / "bot_process.py"),
                                 "--kill-after-request", str(k), "--", "--log-dir", str(logs)],
                                env=env, cwd=tmp_path, capture_output=True, timeout=60)
        assert killed.returncode == -9
        before = len(base.prepared.exchange().orders)
        assert len(exchange.orders) == before + 1  # the order of the first POST
        again = subprocess.run([sys.executable, str(ROOT / "trading_bot.py"), "--log-dir",
                                str(logs)], env=env, cwd=tmp_path, capture_output=True,
                               timeout=60)
        assert again.returncode == 0, again.stderr
        assert check_invariants(exchange, logs) == []
        assert Outcome.of(exchange, logs).differences(base.outcome) == []
