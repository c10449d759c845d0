"""The dashboard's "how long ago" counts from the time the run recorded, not from its
summary.json's file time (a log directory copied or restored has new file times)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

from market_calendar import UTC
from report import build_report, load_records
from tests.test_bot_e2e import DAYS, E, scenario


def status(page: str) -> str:
    start = page.index("id='status'")
    return page[start:page.index("</div>", start)]


def test_the_age_of_the_last_run_is_its_recorded_time(sim_factory, tmp_path):
    series, _ = scenario([])
    sim = sim_factory(series)
    assert sim.run(DAYS[E]) == 0
    summary_path = next((sim.log_dir / "runs").glob("*/summary.json"))
    summary = json.loads(summary_path.read_text())
    ran = summary["now"]
    # The local exchange's account is a simulated one: its clock says nothing of real time.
    assert "simulated clock" in status(build_report(load_records(sim.log_dir), source="x"))
    # The same run as a paper account records it, copied elsewhere five days later.
    summary_path.write_text(json.dumps({**summary, "account": "paper"}))
    copy = tmp_path / "restored"
    shutil.copytree(sim.log_dir, copy)  # new file times
    later = datetime.fromisoformat(ran).astimezone(UTC) + timedelta(days=5, hours=1)
    shown = status(build_report(load_records(copy), source="x", now=later))
    assert "5 days ago" in shown and "class='warn'>5 days ago" in shown
