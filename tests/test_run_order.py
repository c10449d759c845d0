"""Run directories in the order the runs happened, whatever their names sort to as text.

run_dir_for names a run by its start (New York time, to the second) and numbers the runs
that start in the same second `_2`, `_3`, ...; the dry run reuses `runs/dry-run`. As text,
`_10` sorts before `_2` and `dry-run` after every date, so "the previous run" (its equity,
the time costs are reported from, whether it ended badly) was the wrong one."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import report
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


def test_the_dry_run_sorts_by_the_time_its_summary_recorded(tmp_path: Path) -> None:
    monday = datetime(2026, 3, 2, 12, 0, tzinfo=NEW_YORK)
    dry = tmp_path / "runs" / "dry-run"
    dry.mkdir(parents=True)
    _summary(dry, datetime(2026, 2, 27, 9, 30, tzinfo=NEW_YORK), 500.0)  # a week-old dry run
    real = run_dir_for(tmp_path, monday)
    _summary(real, monday, 700.0)
    this = run_dir_for(tmp_path, datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK))
    assert previous_equity(tmp_path, this) == 700.0  # not the old dry run's
    assert [r.name for r in report.load_records(tmp_path).runs] == ["dry-run", real.name]
    _summary(dry, datetime(2026, 3, 2, 13, 0, tzinfo=NEW_YORK), 650.0)  # a dry run after it
    assert previous_equity(tmp_path, this) == 650.0
    assert [r.name for r in report.load_records(tmp_path).runs] == [real.name, "dry-run"]


def test_a_directory_without_a_readable_summary_sorts_first(tmp_path: Path) -> None:
    odd = tmp_path / "runs" / "dry-run"
    odd.mkdir(parents=True)
    assert run_order(odd) == ("", 0)
    (odd / "summary.json").write_text('{"now": "yesterday"}', encoding="utf-8")
    assert run_order(odd) == ("", 0)
    real = run_dir_for(tmp_path, datetime(2026, 3, 2, 12, 0, tzinfo=NEW_YORK))
    assert sorted([real, odd], key=run_order) == [odd, real]
