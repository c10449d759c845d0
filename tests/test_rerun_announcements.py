"""A same-day rerun announces only the orders it sent: end to end over HTTP.

A rerun on the day of a run (by hand, or after a kill) finds the day's orders at the broker
under their deterministic client_order_ids. Every surface that announces orders - the
run's summary.json, its bot.log (and so the terminal), the alerts and the dashboard - must
list as sent exactly the orders that run POSTed; an order it found at the broker is listed as
found, placed by an earlier run, never as its own. And nothing is applied twice.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time

import pytest

from market_calendar import NEW_YORK
from report import build_report, load_records
from tests.reliability_support import check_invariants
from tests.sim_harness import Sim, flat_bars, market
from tests.test_alerts import webhook  # noqa: F401 (a fixture: the local webhook receiver)
from tests.test_bot_e2e import DAYS, E, scenario
from tests.test_order_status import set_status

ORDERS = ("POST", "/v2/orders")


def resting_then_filling(tmp_path, **exchange) -> Sim:
    """AAA's entry limit rests at noon of day E and fills on the way down in the afternoon."""
    series, entry = scenario(["z=0.5"] * 3, entry_z=-2.5)
    frame = flat_bars("AAA", series["AAA"])
    day = frame["date"] == DAYS[E].isoformat()
    frame.loc[day, ["open", "high", "low", "close"]] = [entry + 0.5, entry + 1, entry - 1,
                                                       entry - 0.5]
    sim = Sim(tmp_path, market(frame), DAYS[E - 1], spread_bps=2.0, **exchange)
    sim.env["TICKERS"] = "AAA"
    return sim


def posted(sim: Sim, since: int) -> int:
    """How many order POSTs were answered 2xx after request `since`."""
    return sum(1 for r in sim.server.requests()[since:]
               if (r["method"], r["path"]) == ORDERS and r["status"] < 300)


def announced_as_sent(sim: Sim, webhook) -> dict[str, list[str]]:  # noqa: F811
    """What each surface says the last run sent: client_order_ids, or symbols where a
    surface names orders only by symbol."""
    summary = sim.last_summary()
    run_log = (sim.log_dir / "runs" / sorted(p.name for p in (sim.log_dir / "runs")
                                               .iterdir())[-1] / "bot.log").read_text()
    placed_alerts = [p[2] for p in webhook.posts if "Orders placed" in json.dumps(p[2])]
    page = build_report(load_records(sim.log_dir), source=str(sim.log_dir))
    latest = page[page.index("Latest run"):]
    return {
        "summary": [e["client_order_id"] for e in summary["exits"] + summary["entries"]],
        "bot.log": [line.split("order ", 1)[1].split(":")[0] for line in run_log.splitlines()
                    if "bot.orders: order mr-" in line and "->" in line],
        "alerts": [line for a in placed_alerts for line in json.dumps(a).split("\\n")
                   if "ENTRY" in line or "EXIT" in line],
        "run line": [m.group(0) for m in re.finditer(
            r"; (\d+) exits?, (\d+) entr(?:y|ies)", run_log) if m.group(1, 2) != ("0", "0")],
        "dashboard": [row for row in latest.split("<tr>")[1:]
                      if row.startswith(("<td>entry</td>", "<td>exit</td>"))],
    }


def nothing_announced(sim: Sim, webhook) -> None:  # noqa: F811
    assert announced_as_sent(sim, webhook) == {"summary": [], "bot.log": [], "alerts": [],
                                               "run line": [], "dashboard": []}


@pytest.fixture
def sims(tmp_path, monkeypatch, webhook):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    made: list[Sim] = []

    def make(**exchange) -> Sim:
        sim = resting_then_filling(tmp_path / f"sim{len(made)}", **exchange)
        sim.env.update(ALERT_WEBHOOK_URL=webhook.url, ALERT_EVENTS="all")
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


def rerun(sim: Sim, webhook) -> int:  # noqa: F811
    webhook.posts.clear()
    return sim.run()


def test_a_rerun_lists_an_order_it_found_at_the_broker_as_found_not_as_sent(sims, webhook):  # noqa: F811
    sim = sims(rejection_probability=1.0)  # the entry is rejected after its pending_new
    assert sim.run(DAYS[E]) == 0
    assert posted(sim, 0) == 1
    first = announced_as_sent(sim, webhook)
    (cid,) = first["summary"]
    assert first["bot.log"] == [cid]  # every surface shows the order the first run sent
    assert all(len(first[surface]) == 1 for surface in ("alerts", "run line", "dashboard"))
    start = len(sim.server.requests())
    # The rerun decides the same entry and finds it, rejected, under its client_order_id.
    assert rerun(sim, webhook) == 0
    assert posted(sim, start) == 0
    nothing_announced(sim, webhook)
    summary = sim.last_summary()
    (found,) = summary["found_placed"]
    assert (found["client_order_id"], found["status"], found["intent"]) == \
        (cid, "rejected", "entry")
    daily = [p[2] for p in webhook.posts if "Daily summary" in json.dumps(p[2])]
    assert "placed by an earlier run today, not sent again" in json.dumps(daily)
    assert "1 more found placed earlier, not sent" in \
        (sim.log_dir / "runs" / sorted(p.name for p in (sim.log_dir / "runs").iterdir())[-1]
         / "bot.log").read_text()
    page = build_report(load_records(sim.log_dir), source=str(sim.log_dir))
    assert "entry found, not sent" in page and "rejected (placed earlier)" in page
    assert sim.store.load_pending() == {} and sim.store.load_holdings() == {}
    assert check_invariants(sim.exchange, sim.log_dir) == []


def test_a_dry_run_does_not_offer_to_place_an_order_the_broker_has(sims, webhook,  # noqa: F811
                                                                    capfd):
    sim = sims(rejection_probability=1.0)
    assert sim.run(DAYS[E]) == 0
    capfd.readouterr()
    assert sim.run(None, "--dry-run") == 0
    out = capfd.readouterr()
    shown = out.out + out.err
    assert "already at the broker, placed by an earlier run today" in shown
    assert "would place" not in shown
    assert "1 more found placed earlier, not sent" in shown


@pytest.mark.parametrize("between", ["still working", "filled", "canceled", "exited"])
def test_a_same_day_rerun_announces_only_what_it_sent(sims, webhook, between):  # noqa: F811
    sim = sims()
    assert sim.run(DAYS[E]) == 0
    (record,) = sim.store.load_pending().values()  # the entry rests
    if between == "filled":
        sim.exchange.advance_to(datetime.combine(DAYS[E], time(15, 30), tzinfo=NEW_YORK))
    elif between == "canceled":  # e.g. by hand in the broker's app
        set_status(sim, record.order_id, "canceled")
    elif between == "exited":  # the rerun is on the exit's day, after the exit filled
        assert sim.run(DAYS[E + 1]) == 0 and len(sim.trades()) == 1
    start = len(sim.server.requests())
    assert rerun(sim, webhook) == 0
    assert posted(sim, start) == 0
    nothing_announced(sim, webhook)
    fills = sim.last_summary()["fills"]
    assert [f["status"] for f in fills] == (["filled"] if between == "filled" else [])
    assert check_invariants(sim.exchange, sim.log_dir) == []
    for i in (E + 1, E + 2):  # and on to the exit, once
        assert sim.run(DAYS[i]) == 0
    assert posted(sim, 0) == (1 if between == "canceled" else 2)
    assert len(sim.trades()) == (0 if between == "canceled" else 1)
    assert check_invariants(sim.exchange, sim.log_dir) == []


@pytest.mark.parametrize("after_post", [0, 1])
def test_a_rerun_after_a_kill_at_the_post_announces_nothing(bots, sims, webhook,  # noqa: F811
                                                            after_post):
    traced, killed = sims(), sims()
    trace = traced.tmp_path / "trace.json"
    traced.tmp_path.mkdir(exist_ok=True)
    traced.exchange.advance_to(datetime.combine(DAYS[E], time(12), tzinfo=NEW_YORK))
    run = bots.run(["--log-dir", str(traced.log_dir)], env=traced.env, cwd=traced.tmp_path,
                   trace=trace)
    assert run.returncode == 0, run.stderr
    post = json.loads(trace.read_text())["requests"].index("POST /v2/orders") + 1
    killed.tmp_path.mkdir(exist_ok=True)
    killed.exchange.advance_to(datetime.combine(DAYS[E], time(12), tzinfo=NEW_YORK))
    # Right after the POST's answer (its order id not yet recorded), or after the next request.
    dead = bots.run(["--log-dir", str(killed.log_dir)], env=killed.env, cwd=killed.tmp_path,
                    kill={"after_request": post + after_post})
    assert dead.killed
    start = len(killed.server.requests())
    assert rerun(killed, webhook) == 0
    assert posted(killed, start) == 0
    nothing_announced(killed, webhook)
    assert any("left no readable summary.json" in n for n in killed.last_summary()["notes"])
    assert check_invariants(killed.exchange, killed.log_dir) == []


def test_a_rerun_does_not_apply_an_exit_that_ended_in_part_a_second_time(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    series, _ = scenario(["z=0.5"] * 3)
    sim = Sim(tmp_path, market(flat_bars("AAA", series["AAA"])), DAYS[E - 1], spread_bps=0.0,
              partial_fill_probability=1.0, seed=7)
    sim.env.update(TICKERS="AAA", EXIT_PARTIAL_FILL="cancel_remainder",
                   ENTRY_PARTIAL_FILL="cancel_remainder")
    try:
        assert sim.run(DAYS[E]) == 0
        assert sim.run(DAYS[E + 1]) == 0  # the exit fills in part; the rest is canceled
        assert sim.run(DAYS[E + 1]) == 0  # the rerun records it, and finds the exit again
        summary = sim.last_summary()
        assert summary["exits"] == [] and [f["status"] for f in summary["found_placed"]] == \
            ["canceled"]
        assert "not sent again" in summary["unmanaged"]["AAA"]
        (trade,) = sim.trades()
        assert sim.store.load_holdings()["AAA"].qty == \
            pytest.approx(sim.broker_position("AAA")["qty"], abs=1e-9)
        assert check_invariants(sim.exchange, sim.log_dir) == []
        assert sim.run(DAYS[E + 2]) == 0  # the next day exits the rest
        assert check_invariants(sim.exchange, sim.log_dir) == []
        assert float(trade["qty"]) < sum(float(t["qty"]) for t in sim.trades())
    finally:
        sim.close()
