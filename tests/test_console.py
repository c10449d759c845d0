"""What the terminal shows: zoned timestamps, the simulated time first, colours only on a
terminal and never with NO_COLOR, notices said once per process, one line per run."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, datetime

import pytest

import console
from alert_messages import run_line
from tests.sim_harness import Sim, flat_bars, market
from tests.test_alerts import SUMMARY
from tests.test_bot_e2e import DAYS, E, scenario


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(level: int = logging.INFO, message: str = "hello", **extra: object):
    made = logging.LogRecord("bot", level, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


@pytest.fixture(autouse=True)
def no_sim_clock():
    console.set_sim_clock(None)
    yield
    console.set_sim_clock(None)


def test_timestamps_name_their_zone():
    line = console.ConsoleFormatter(colour=False).format(record())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z][A-Za-z0-9+-]* INFO    bot: hello",
                        line), line


def test_the_simulated_time_comes_first():
    console.set_sim_clock(lambda: datetime(2022, 3, 1, 17, 0, tzinfo=UTC))
    line = console.ZonedFormatter().format(record())
    assert re.fullmatch(r"\[sim 2022-03-01 12:00 EST\] \d\d:\d\d:\d\d \S+ INFO    bot: hello",
                        line), line


def test_colours_only_on_a_terminal_and_never_with_no_color():
    assert console.wants_colour(Terminal(), {}) is True
    assert console.wants_colour(Terminal(), {"NO_COLOR": "1"}) is False
    assert console.wants_colour(io.StringIO(), {}) is False  # piped
    coloured = console.ConsoleFormatter(colour=True)
    assert coloured.format(record(logging.WARNING)).startswith("\033[33m")
    assert coloured.format(record(logging.ERROR)).startswith("\033[31m")
    assert coloured.format(record(logging.ERROR)).endswith("\033[0m")
    assert "\033[" not in coloured.format(record(logging.INFO))
    assert "\033[1m" in coloured.format(record(logging.INFO, headline=True))
    plain = console.ConsoleFormatter(colour=False)
    assert "\033[" not in plain.format(record(logging.ERROR, headline=True))


def test_a_notice_marked_once_is_shown_once_per_process():
    once = console.OncePerProcess()
    assert once.filter(record(message="unique notice 1", once=True))
    assert not once.filter(record(message="unique notice 1", once=True))
    assert console.OncePerProcess().filter(record(message="unique notice 1", once=True)) is False
    assert once.filter(record(message="unique notice 2", once=True))
    assert once.filter(record(message="unique notice 2"))  # not marked: always shown


def test_one_line_per_run():
    assert run_line(SUMMARY) == ("run 2022-03-01 done: equity $100,012.50 (+$12.50, +0.01%); "
                                 "2 exits, 1 entry, 1 fill; 1 trade gross -$1.20 net -$1.23; "
                                 "account costs $0.06; 2 open")
    failed = {**SUMMARY, "outcome": "failed", "failure": "the broker did not answer",
              "trades": [], "dry_run": True}
    assert run_line(failed).startswith(
        "DRY RUN run 2022-03-01 FAILED (the broker did not answer): equity $100,012.50")
    assert run_line({"outcome": "market_closed", "now": "2022-03-05T17:00:00+00:00"}) == \
        "run 2022-03-05: market closed, nothing to do"


def test_two_runs_in_one_process_say_a_standing_notice_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    aaa, _ = scenario(["z=0.5"], symbol="AAA")
    sim = Sim(tmp_path, market(flat_bars("AAA", aaa["AAA"])), DAYS[E - 1], spread_bps=0.0)
    sim.env["TICKERS"] = "AAA,ONCEX"  # ONCEX: not offered by the exchange
    try:
        assert sim.run(DAYS[E]) == 0
        assert sim.run(DAYS[E + 1]) == 0
    finally:
        sim.close()
    err = capsys.readouterr().err
    assert err.count("1 of 2 tickers are not tradable at this broker, skipped: ONCEX") == 1
    runs = sorted((tmp_path / "logs" / "runs").iterdir())
    for run in runs:  # every run's own log keeps it
        assert "not tradable at this broker, skipped: ONCEX" in (run / "bot.log").read_text()
    assert re.search(rf"run {DAYS[E]} done: equity \$100,000.00; 0 exits, 1 entry, 1 fill; "
                     r"0 trades; 1 open", err)
    assert re.search(rf"run {DAYS[E + 1]} done: equity \$[\d,.]+ \([+-]\$[\d.]+, [+-][\d.]+%\);"
                     r" 1 exit, 0 entries, 1 fill; 1 trade gross [+-]\$[\d.]+ net [+-]\$[\d.]+;"
                     r"( account costs \$[\d.]+;)? 0 open", err)
    assert "\033[" not in err  # not a terminal: no colour


def test_a_wait_for_fills_says_how_it_goes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    aaa, _ = scenario([], symbol="AAA")
    # A wide spread: the entry's limit at the price never meets the ask, so it rests.
    sim = Sim(tmp_path, market(flat_bars("AAA", aaa["AAA"])), DAYS[E - 1], spread_bps=50.0)
    sim.env.update(TICKERS="AAA", FILL_WAIT_SECONDS="0.6", FILL_POLL_SECONDS="0.2")
    try:
        assert sim.run(DAYS[E]) == 0
    finally:
        sim.close()
    err = capsys.readouterr().err
    # One line at the first poll (then one every 10 s): not one per 0.2 s poll.
    assert len(re.findall(r"waiting for fills: 1 of 1 orders open, \d+ s left of "
                          r"FILL_WAIT_SECONDS", err)) == 1
