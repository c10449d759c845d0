"""The plain read of a large file in two pieces (the parent and a forked child): the same bars
to the bit as the one-piece read, wherever the file is cut, and every failure of a piece or of
the child leaves the file to the one-piece read, with its messages."""

from __future__ import annotations

import gzip
import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest

import forked
from market_calendar import nyse
from simbroker import market_data

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a platform that forks")

HEADER = "symbol,date,open,high,low,close,volume\n"


def _rows(symbols: tuple[str, ...], *, by_day: bool, seed: int = 5) -> list[str]:
    """Plain rows of random bars on the sessions of early 2021: symbol by symbol, or day by
    day with the symbols mixed (a file that must be sorted)."""
    rng = np.random.default_rng(seed)
    sessions = [s.day for s in nyse(date(2021, 1, 1), date(2021, 12, 31)).sessions_between(
        date(2021, 1, 4), date(2021, 3, 31))]
    cells = [(symbol, day) for day in sessions for symbol in symbols] if by_day else [
        (symbol, day) for symbol in symbols for day in sessions]
    rows = []
    for symbol, day in cells:
        close = float(np.round(rng.uniform(1, 900), int(rng.integers(0, 7))))
        rows.append(f"{symbol},{day.isoformat()},{close * 0.99!r},{close * 1.02!r},"
                    f"{close / 1.03!r},{close},{int(rng.integers(0, 10**7))}")
    return rows


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


@pytest.fixture()
def may_fork(monkeypatch, as_if_single_threaded):
    """forked.can_fork() as in a fresh process on a machine of two cores."""
    monkeypatch.delenv("BACKTEST_PROCESSES", raising=False)
    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    assert forked.can_fork()


@pytest.fixture()
def split_everything(monkeypatch, may_fork):
    """Every plain file read in two pieces, however small."""
    monkeypatch.setattr(market_data, "SPLIT_READ_BYTES", 0)


def _one_piece(path: Path, monkeypatch) -> market_data.MarketData:
    with monkeypatch.context() as one:
        one.setenv("BACKTEST_PROCESSES", "1")  # forked.can_fork() is then False
        return market_data.load(path)


def _assert_same_bits(split: market_data.MarketData, alone: market_data.MarketData) -> None:
    assert split.symbols == alone.symbols
    assert (split.first_day, split.last_day) == (alone.first_day, alone.last_day)
    assert split.model_ohlc == alone.model_ohlc
    for symbol in alone.symbols:
        a, b = split._series[symbol], alone._series[symbol]
        for mine, theirs in ((a.days, b.days), (a.values, b.values)):
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
            assert mine.strides == theirs.strides
            assert mine.tobytes() == theirs.tobytes()
            assert not mine.flags.writeable


def _assert_same_table(path: Path, monkeypatch) -> None:
    """The two-piece read's table is the one-piece read's (a wrong table could otherwise pass
    unseen: the load would refuse it and read the file with pandas)."""
    split = market_data._read_plain_split(path, len(HEADER))
    assert split is not None  # two pieces were read
    with monkeypatch.context() as one:
        one.setenv("BACKTEST_PROCESSES", "1")
        alone = market_data._read_plain_csv(path)
    assert split.names.tolist() == alone.names.tolist()
    for mine, theirs in ((split.keys, alone.keys), (split.days, alone.days),
                         (split.values, alone.values)):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        assert mine.strides == theirs.strides
        assert mine.tobytes() == theirs.tobytes()


SYMBOLS = ("S07", "A", "S10", "ZZZZ", "B2", "S01")


LAYOUTS = {"in-order": (tuple(sorted(SYMBOLS)), False), "symbol-by-symbol": (SYMBOLS, False),
           "day-by-day": (SYMBOLS, True)}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("child_share", [0.01, 0.3, 0.5, 0.77, 0.99])
def test_a_file_read_in_two_pieces_gives_the_bits_of_the_one_piece_read(
        tmp_path, monkeypatch, split_everything, layout, child_share):
    # Files in order (no sort), by symbol out of order, by day (a sort); cut anywhere: a
    # symbol spans the two pieces, a piece starts inside a symbol or holds a single row.
    symbols, by_day = LAYOUTS[layout]
    path = _write(tmp_path / "bars.csv", _rows(symbols, by_day=by_day))
    monkeypatch.setattr(market_data, "_CHILD_SHARE", child_share)
    _assert_same_table(path, monkeypatch)
    _assert_same_bits(market_data.load(path), _one_piece(path, monkeypatch))


def test_every_cut_of_a_small_file_gives_the_same_bars(tmp_path, monkeypatch, split_everything):
    rows = _rows(("B", "A", "C"), by_day=True)[:12]
    path = _write(tmp_path / "small.csv", rows)
    alone = _one_piece(path, monkeypatch)
    size, header = path.stat().st_size, len(HEADER)
    for cut_after in range(1, len(rows)):  # the child starts at each row in turn
        start = header + sum(len(r) + 1 for r in rows[:cut_after])
        monkeypatch.setattr(market_data, "_CHILD_SHARE", (size - start) / (size - header))
        assert market_data._line_start(path, header + int((size - header) * (
            1 - market_data._CHILD_SHARE))) == start
        _assert_same_table(path, monkeypatch)
        _assert_same_bits(market_data.load(path), alone)


def test_pieces_with_different_tickers_are_numbered_among_all_of_them(
        tmp_path, monkeypatch, split_everything):
    # The first half has tickers the second has not and the other way round.
    rows = _rows(("M", "C", "X"), by_day=False) + _rows(("B", "N"), by_day=True, seed=6)
    path = _write(tmp_path / "mixed.csv", rows)
    _assert_same_table(path, monkeypatch)
    split = market_data.load(path)
    assert split.symbols == ("B", "C", "M", "N", "X")
    _assert_same_bits(split, _one_piece(path, monkeypatch))


@pytest.mark.parametrize("where", [0.1, 0.9], ids=["first-piece", "second-piece"])
def test_a_bad_bar_in_either_piece_gets_the_one_piece_message(
        tmp_path, monkeypatch, split_everything, where):
    rows = _rows(SYMBOLS, by_day=False)
    bad = int(len(rows) * where)
    fields = rows[bad].split(",")
    fields[3], fields[4] = fields[4], fields[3]  # high below low
    rows[bad] = ",".join(fields)
    path = _write(tmp_path / "bad.csv", rows)
    assert market_data._read_plain_split(path, len(HEADER)) is None
    expected = f"bad.csv, line {bad + 2}, column 'high': high is below low"
    with pytest.raises(ValueError, match=expected):
        market_data.load(path)
    with pytest.raises(ValueError, match=expected):
        _one_piece(path, monkeypatch)


@pytest.mark.parametrize("change", [
    ("2021-03-01", "2021-02-29"),  # no such day, in the second piece
    ("\nS10,", "\n S10,"),  # not a plain ticker
    ("\n", "\r\n"),  # a carriage return: cut at newlines only here, so left to one piece
])
def test_a_file_either_piece_refuses_is_read_as_it_always_was(
        tmp_path, monkeypatch, split_everything, change):
    rows = _rows(SYMBOLS, by_day=True)
    text = HEADER + "\n".join(rows) + "\n"
    at = text.rfind(change[0]) if change[0] != "\n" else 0
    changed = text[:at] + text[at:].replace(change[0], change[1])
    path = tmp_path / "odd.csv"
    path.write_bytes(changed.encode())
    assert market_data._read_plain_split(path, len(HEADER)) is None
    try:
        expected = _one_piece(path, monkeypatch)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error).split(";")[0]):
            market_data.load(path)
    else:
        _assert_same_bits(market_data.load(path), expected)


@pytest.mark.parametrize("blank", [0.2, 0.9], ids=["first-piece", "second-piece"])
@pytest.mark.parametrize("lines", [1, 3])
def test_blank_lines_in_either_piece_give_the_one_piece_bars(
        tmp_path, monkeypatch, split_everything, blank, lines):
    # numpy skips a blank line; the first piece, which reads so many rows from the path, then
    # reads past its end, sees it and leaves the file to one piece; the second reads lines.
    rows = _rows(SYMBOLS, by_day=False)
    at = int(len(rows) * blank)
    rows[at:at] = [""] * lines
    path = _write(tmp_path / "blank.csv", rows)
    split = market_data._read_plain_split(path, len(HEADER))
    assert (split is None) == (blank < 0.5)
    if split is not None:
        _assert_same_table(path, monkeypatch)
    _assert_same_bits(market_data.load(path), _one_piece(path, monkeypatch))


def test_the_same_row_twice_across_the_cut_gets_the_one_piece_message(
        tmp_path, monkeypatch, split_everything):
    rows = _rows(SYMBOLS, by_day=False)
    size = len(HEADER) + sum(len(r) + 1 for r in rows)
    half = len(rows) // 2
    rows[half] = rows[half - 1]  # the last row of the first piece and the first of the second
    rows[half - 5:half - 5] = [""]  # a blank line in the first piece too
    path = _write(tmp_path / "twice.csv", rows)
    start = len(HEADER) + sum(len(r) + 1 for r in rows[:half + 1])
    monkeypatch.setattr(market_data, "_CHILD_SHARE", (size + 1 - start) / (size + 1 - len(HEADER)))
    with pytest.raises(ValueError) as alone:
        _one_piece(path, monkeypatch)
    assert "already has a bar" in str(alone.value)
    with pytest.raises(ValueError, match=str(alone.value).split(";")[0]):
        market_data.load(path)


def _child_that_dies(*args):
    os._exit(3)


def _child_that_fails_at_the_end(*args):
    market_data_child = _real_child(*args)
    raise MemoryError(f"no memory left after {len(market_data_child)} tickers")


_real_child = market_data._child_piece


@pytest.mark.parametrize("child", [_child_that_dies, _child_that_fails_at_the_end])
def test_a_child_that_fails_leaves_the_file_to_the_one_piece_read(
        tmp_path, monkeypatch, split_everything, child):
    path = _write(tmp_path / "bars.csv", _rows(SYMBOLS, by_day=False))
    alone = _one_piece(path, monkeypatch)
    before = _children()
    monkeypatch.setattr(market_data, "_child_piece", child)
    assert market_data._read_plain_split(path, len(HEADER)) is None
    _assert_same_bits(market_data.load(path), alone)
    assert _children() <= before  # the helpers were reaped


def _children() -> set[int]:
    """This process's child processes (Linux), zombies included."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    if not tasks.is_dir():
        pytest.skip("needs /proc to list child processes")
    return {int(pid) for task in tasks.iterdir()
            for pid in (task / "children").read_text().split()}


def test_small_files_gzip_files_and_no_fork_are_read_in_one_piece(tmp_path, monkeypatch,
                                                                   may_fork):
    path = _write(tmp_path / "bars.csv", _rows(SYMBOLS, by_day=False))
    pieces = []
    monkeypatch.setattr(market_data, "_read_plain_split",
                        lambda *args: pieces.append(args) or None)
    monkeypatch.setattr(market_data, "SPLIT_READ_BYTES", path.stat().st_size + 1)
    market_data.load(path)
    assert pieces == []  # below the threshold
    monkeypatch.setattr(market_data, "SPLIT_READ_BYTES", 0)
    market_data.load(path)
    assert len(pieces) == 1
    monkeypatch.setenv("BACKTEST_PROCESSES", "1")
    market_data.load(path)
    assert len(pieces) == 1
    monkeypatch.delenv("BACKTEST_PROCESSES")
    gzipped = tmp_path / "bars.csv.gz"
    gzipped.write_bytes(gzip.compress(path.read_bytes()))
    assert market_data.load(gzipped).symbols == market_data.load(path).symbols
    assert len(pieces) == 2  # the plain file again, not the gzip file
