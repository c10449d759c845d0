"""Download daily bars from Alpaca into the backtester's CSV (symbol,date,open,high,low,close,
volume), with a cache, resumption and a progress line.

    .venv/bin/python scripts/download_bars.py --symbols AAPL,MSFT --start 2019-01-01 \\
        --end 2024-12-31 --out data/my_bars.csv
    .venv/bin/python backtest.py --data data/my_bars.csv --symbols AAPL,MSFT

Keys come from .env or the environment as the bot reads them (ALPACA_API_KEY /
ALPACA_SECRET_KEY or APCA_API_KEY_ID / APCA_API_SECRET_KEY; APCA_API_DATA_URL to point
elsewhere, e.g. at the local exchange). The feed defaults to SIP: Alpaca's free plan serves
SIP history that ends at least 15 minutes ago (a download of past days always does).

Each (symbol, calendar year) is fetched once and kept in the cache directory (default
`<out>.cache/`) as its own CSV, written atomically; an interrupted download resumes where it
stopped, and a later run with a wider range fetches only what is missing. The year that
contains today is never cached (its bars are not final). `--adjustment` is Alpaca's: `all`
(the default: split- and dividend-adjusted, so the backtester's raw-price model sees no split
and dividends are inside the prices) or `raw` (as traded; splits then need a splits file).
A sidecar `<out>.json` states the source, feed, adjustment and range of the file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker import Bar, Broker  # noqa: E402
from config import load_credentials, read_env  # noqa: E402
from errors import BotError, BrokerError  # noqa: E402
from state_files import atomic_write_text  # noqa: E402

DATA_URL = "https://data.alpaca.markets"
COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
ADJUSTMENTS = ("all", "raw", "split", "dividend")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,MSFT")
    parser.add_argument("--start", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write")
    parser.add_argument("--adjustment", default="all", choices=ADJUSTMENTS)
    parser.add_argument("--feed", default="sip", choices=("sip", "iex"))
    parser.add_argument("--cache-dir", type=Path, help="default: <out>.cache")
    return parser.parse_args(argv)


def chunks(symbols: list[str], start: date, end: date) -> list[tuple[str, int]]:
    return [(s, year) for s in symbols for year in range(start.year, end.year + 1)]


def chunk_path(cache: Path, adjustment: str, feed: str, symbol: str, year: int) -> Path:
    return cache / f"{adjustment}-{feed}" / symbol / f"{year}.csv"


def rows_text(symbol: str, bars: list[Bar]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for b in bars:
        writer.writerow([symbol, b.day.isoformat(), repr(b.open), repr(b.high), repr(b.low),
                         repr(b.close), repr(b.volume)])
    return out.getvalue()


def download(broker: Broker, symbols: list[str], start: date, end: date, *, cache: Path,
             adjustment: str, feed: str, today: date, progress: TextIO) -> dict[str, int]:
    """Fetch every (symbol, year) not in the cache; returns counts of fetched and cached."""
    todo = chunks(symbols, start, end)
    counts = {"fetched": 0, "cached": 0}
    for done, (symbol, year) in enumerate(todo, start=1):
        path = chunk_path(cache, adjustment, feed, symbol, year)
        if path.exists():
            counts["cached"] += 1
        else:
            # Never past yesterday: SIP history must end before the last 15 minutes.
            last = min(date(year, 12, 31), date.fromordinal(today.toordinal() - 1))
            bars = broker.daily_bars([symbol], date(year, 1, 1), last,
                                     adjustment=adjustment).get(symbol, [])
            if year < today.year:  # a past year is final: keep it
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, rows_text(symbol, bars))
            else:
                path = path.with_suffix(".partial")
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, rows_text(symbol, bars))
            counts["fetched"] += 1
        bar = "#" * (30 * done // len(todo))
        progress.write(f"\r[{bar:<30}] {done}/{len(todo)} {symbol} {year}   ")
        progress.flush()
    progress.write("\n")
    return counts


def assemble(symbols: list[str], start: date, end: date, *, cache: Path, adjustment: str,
             feed: str) -> str:
    """The output CSV from the cache, sorted by symbol then date, within [start, end]."""
    lines = [",".join(COLUMNS)]
    for symbol in sorted(symbols):
        for year in range(start.year, end.year + 1):
            path = chunk_path(cache, adjustment, feed, symbol, year)
            if not path.exists():
                path = path.with_suffix(".partial")
            for row in csv.reader(path.read_text().splitlines()):
                if start.isoformat() <= row[1] <= end.isoformat():
                    lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None,
         today: date | None = None) -> int:
    args = parse_args(argv)
    symbols = sorted({s.strip().upper() for s in args.symbols.split(",") if s.strip()})
    if not symbols or args.end < args.start:
        print("download_bars.py: give --symbols and --start <= --end", file=sys.stderr)
        return 2
    env = read_env(".env", environ)
    try:
        creds = load_credentials(env)
    except BotError as exc:
        print(f"download_bars.py: {exc}", file=sys.stderr)
        return 2
    broker = Broker(creds, base_url=env.get("APCA_API_BASE_URL", "http://127.0.0.1:1"),
                    data_url=env.get("APCA_API_DATA_URL") or DATA_URL, bars_feed=args.feed)
    cache = args.cache_dir or args.out.with_name(args.out.name + ".cache")
    today = today or datetime.now().date()
    try:
        counts = download(broker, symbols, args.start, args.end, cache=cache,
                          adjustment=args.adjustment, feed=args.feed, today=today,
                          progress=sys.stderr)
    except BrokerError as exc:
        print(f"\ndownload_bars.py: {exc}; what was fetched is in {cache}: run the same "
              "command again to resume", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, assemble(symbols, args.start, args.end, cache=cache,
                                         adjustment=args.adjustment, feed=args.feed))
    meta = {"source": "Alpaca Market Data v2 /v2/stocks/bars, timeframe 1Day",
            "feed": args.feed, "adjustment": args.adjustment, "symbols": symbols,
            "start": args.start.isoformat(), "end": args.end.isoformat(), **counts}
    atomic_write_text(args.out.with_name(args.out.name + ".json"),
                      json.dumps(meta, indent=2) + "\n")
    print(f"{args.out}: {len(symbols)} symbols, {args.start}..{args.end}, adjustment "
          f"{args.adjustment}, feed {args.feed} ({counts['fetched']} fetched, "
          f"{counts['cached']} from the cache)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
