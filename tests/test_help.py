"""Help and input: every command documents itself, and bad input gets a message that says
what was given and how to fix it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import trading_bot
from backtester import cli
from config import load_config
from errors import ConfigError
from tests.bot_process import ROOT
from version import VERSION

COMMANDS = [["trading_bot.py"], ["backtest.py"], ["report.py"], ["-m", "simbroker"]]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
def test_every_command_has_help_with_exit_codes_and_examples_and_a_version(command):
    shown = run(*command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "exit codes:" in shown.stdout and "examples:" in shown.stdout
    assert "(see config.py)" not in shown.stdout
    version = run(*command, "--version")
    assert version.returncode == 0 and version.stdout.strip().endswith(VERSION)


def test_backtest_options_have_one_name_defaults_and_flags():
    shown = run("backtest.py", "--help").stdout
    assert "--z-score-window" in shown and "(default 30)" in shown
    assert "--allow-shorts, --no-allow-shorts" in shown
    assert "ALLOW_SHORTS" not in shown.replace("--allow-shorts", "")
    for alias in ("--window ", "--size-usd ", "--max-hold-days "):
        assert f"  {alias}" not in shown  # not offered twice; listed as older spellings
    assert cli.overrides(cli.parse_args(["--no-allow-shorts"])) == [("allow_shorts", "false")]
    assert cli.overrides(cli.parse_args(["--same-day-stop-loss"])) == \
        [("same_day_stop_loss", "true")]
    assert cli.overrides(cli.parse_args(["--window", "20"])) == [("window", "20")]  # still works


@pytest.mark.parametrize("args, message", [
    (["--start", "2030-01-01"], "--start 2030-01-01 is after the data's last day"),
    (["--start", "2020-01-01", "--end", "2019-01-01"],
     "--end 2019-01-01 is before --start 2020-01-01; swap them"),
    (["--end", "1990-01-01"], "--end 1990-01-01 is before the data's first day"),
    (["--start", "2020-01-01", "--split", "2019-06-01"], "--split 2019-06-01 must fall after"),
])
def test_backtest_dates_are_checked_with_what_was_given(args, message, capsys, tmp_path):
    assert cli.main([*args, "--out", str(tmp_path)], environ={}) == 2
    err = capsys.readouterr().err
    assert message in err and "swap them" not in err.replace(
        "--end 2019-01-01 is before --start 2020-01-01; swap them", "")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_tickers_setting_is_an_error():
    for empty in ("", " ", ",", " , "):
        with pytest.raises(ConfigError, match="TICKERS is set but lists no symbol"):
            load_config({"TICKERS": empty})
    assert len(load_config({}).tickers) == 50  # not set at all: the defaults


def test_bot_messages_say_what_was_given(capsys):
    with pytest.raises(SystemExit) as stopped:
        trading_bot.parse_args(["--sim-start", "2022-03-01"])
    assert stopped.value.code == 2
    assert "--sim-start only applies with --sim; add --sim, or drop it" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        trading_bot.parse_args(["--sim", "--days", "0"])
    assert "--days 0: give at least 1" in capsys.readouterr().err


def files_of(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_a_sim_dry_run_leaves_the_clock_and_every_file_untouched(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no developer .env
    sim = ["--sim", "--sim-dir", "sim"]
    assert trading_bot.main([*sim, "--days", "2", "--sim-start", "2022-03-01"], environ={}) == 0
    before = files_of(tmp_path)
    dirs = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    capsys.readouterr()
    assert trading_bot.main([*sim, "--days", "2", "--dry-run"], environ={}) == 0
    err = capsys.readouterr().err
    assert "DRY RUN run 2022-03-03" in err and "DRY RUN run 2022-03-04" in err
    assert files_of(tmp_path) == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == dirs
    # The next real run continues from the saved clock, as if the dry run never happened.
    assert trading_bot.main([*sim], environ={}) == 0
    assert "run 2022-03-03 done" in capsys.readouterr().err


def test_a_sim_dry_run_of_a_new_exchange_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert trading_bot.main(["--sim", "--dry-run", "--sim-start", "2022-03-01"],
                            environ={}) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("day, why, session", [
    ("2022-03-05", "(Saturday) is a weekend day", "2022-03-07 (Monday)"),
    ("2022-07-04", "(Monday) is a market holiday", "2022-07-05 (Tuesday)"),
])
def test_a_sim_start_that_is_not_a_session_says_so(tmp_path, monkeypatch, capsys, day, why,
                                                   session):
    monkeypatch.chdir(tmp_path)
    assert trading_bot.main(["--sim", "--dry-run", "--sim-start", day], environ={}) == 0
    err = capsys.readouterr().err
    assert f"--sim-start {day} {why}, not a trading session; the simulation starts at the " \
        f"next session, {session}" in err
    assert f"run {session[:10]}" in err
