"""market_calendar: one NYSE calendar per process, grown only when asked for days it lacks."""

from __future__ import annotations

from datetime import date

import nyse_table
from market_calendar import (
    _from_pandas_market_calendars,
    _from_table,
    nyse,
    nyse_around,
    table_text,
)


def test_a_narrower_request_reuses_the_process_calendar():
    full = nyse()
    assert nyse_around(date(2024, 3, 1), years_back=2) is full
    assert nyse(date(2013, 1, 2), date(2022, 12, 28)) is full
    assert nyse() is full


def test_a_wider_request_builds_one_calendar_covering_both():
    before = nyse()
    wider = nyse(date(2030, 1, 2), date(2040, 6, 1))
    assert wider is not before
    assert wider.session(date(2039, 1, 3)) is not None  # beyond the default range
    assert wider.session(date(1990, 1, 2)) is not None  # and the earlier range still there
    assert nyse() is wider and nyse_around(date(2024, 3, 1)) is wider
    # Holidays stay holidays: the union is the same calendar, not a longer list of weekdays.
    assert wider.session(date(2035, 12, 25)) is None
    assert [s.day for s in wider.sessions_between(date(2024, 1, 1), date(2024, 12, 31))] == \
        [s.day for s in before.sessions_between(date(2024, 1, 1), date(2024, 12, 31))]


def test_sessions_made_when_asked_for_are_made_once_and_match_the_packages():
    calendar = _from_table(date(2019, 1, 1), date(2019, 12, 31))
    assert calendar.first_day == date(2019, 1, 2) and calendar.last_day == date(2019, 12, 31)
    thanksgiving_friday = calendar.session(date(2019, 11, 29))  # an early close, 13:00
    assert thanksgiving_friday is calendar.session(date(2019, 11, 29))
    assert calendar.sessions_between(date(2019, 11, 29), date(2019, 11, 29)) == \
        [thanksgiving_friday]
    assert thanksgiving_friday.is_early_close
    package = _from_pandas_market_calendars(date(2019, 1, 1), date(2019, 12, 31))
    assert calendar.sessions_between(date(2019, 1, 1), date(2019, 12, 31)) == \
        package.sessions_between(date(2019, 1, 1), date(2019, 12, 31))
    empty = _from_table(date(2019, 12, 25), date(2019, 12, 25))
    assert empty.first_day is None and empty.last_day is None


def test_a_simulated_day_builds_one_calendar_for_the_datas_years(tmp_path, monkeypatch):
    import market_calendar
    import trading_bot

    builds = []
    build = market_calendar._build

    def counted(first, last):
        builds.append((first, last))
        return build(first, last)

    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setattr(market_calendar, "_build", counted)
    monkeypatch.setattr(market_calendar, "_calendar", None)  # as in a fresh process
    monkeypatch.setattr(market_calendar, "_covered", None)
    code = trading_bot.main(["--sim", "--days", "2", "--sim-start", "2021-03-01",
                             "--sim-dir", str(tmp_path / "sim")], environ={})
    assert code == 0
    # us-stocks is 2013..2022: the exchange, the runner and both daily runs share one build.
    assert builds == [(date(2007, 1, 1), date(2025, 12, 31))]


def test_the_shipped_table_is_pandas_market_calendars_day_by_day():
    package = _from_pandas_market_calendars(nyse_table.FIRST, nyse_table.LAST)
    table = _from_table(nyse_table.FIRST, nyse_table.LAST)
    seen = [(s.day, s.open, s.close, s.open.tzinfo, s.close.tzinfo)
            for s in table.sessions_between(nyse_table.FIRST, nyse_table.LAST)]
    assert seen == [(s.day, s.open, s.close, s.open.tzinfo, s.close.tzinfo)
                    for s in package.sessions_between(nyse_table.FIRST, nyse_table.LAST)]
    assert len(seen) > 15_000
    # Regenerated from the installed package, the table is the same text: an upgrade that
    # moves a holiday shows here (write it again with `python market_calendar.py`).
    shipped = open(nyse_table.__file__, encoding="utf-8").read()
    assert table_text(nyse_table.FIRST, nyse_table.LAST) == shipped


def test_days_outside_the_table_come_from_the_package():
    early = nyse(date(1975, 1, 1), date(1976, 12, 31))
    assert early.session(date(1975, 1, 2)).open.hour == 15  # 10:00 New York then, EST
    assert early.session(date(1975, 12, 25)) is None
    assert early.session(date(2024, 7, 3)).is_early_close  # the table's range is there too
