"""Run directories in the order the runs happened, whatever their names sort to as text.

run_dir_for names a run by its start (New York time, to the second) and numbers the runs
that start in the same second `_2`, `_3`, ...; as text `_10` sorts before `_2`, so with ten
runs in one second "the previous run" (its equity, the time costs are reported from,
whether it ended badly) was the wrong one."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from logger import run_dir_for, run_order
from market_calendar import NEW_YORK
from run_digest import earlier_summaries, previous_equity


def _summary(run_dir: Path, now: datetime, equity: float) -> None:
    (run_dir / "summary.json").write_text(json.dumps(
        {"now": now.isoformat(), "started_at": now.isoformat(), "outcome": "ok",
         "equity_usd": equity}), encoding="utf-8")


def test_runs_in_one_second_sort_by_their_number(tmp_path: Path) -> None:
    started = datetime(2026, 3, 2, 12, 0, 0, tzinfo=NEW_YORK)
    dirs = [run_dir_for(tmp_path, started) for _ in range(11)]
    assert dirs[-1].name.endswith("_11") and dirs[1].name.endswith("_2")
    for n, run_dir in enumerate(dirs):
        _summary(run_dir, started, 1000.0 + n)
    assert sorted(reversed(dirs), key=run_order) == dirs
    assert sorted(dirs, key=lambda p: p.name) != dirs  # the text order that misled
    newest = tmp_path / "runs" / "newest"
    newest.mkdir()
    assert previous_equity(tmp_path, newest) == 1010.0
    assert [s["equity_usd"] for s in earlier_summaries(tmp_path, dirs[-1], limit=2)] \
        == [1009.0, 1008.0]


def test_a_directory_the_bot_did_not_name_sorts_first(tmp_path: Path) -> None:
    odd = tmp_path / "runs" / "copied by hand"
    odd.mkdir(parents=True)
    assert run_order(odd) == ("", 0)
    real = run_dir_for(tmp_path, datetime(2026, 3, 2, 12, 0, tzinfo=NEW_YORK))
    assert sorted([real, odd], key=run_order) == [odd, real]

