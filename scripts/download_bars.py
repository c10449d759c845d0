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

`--dividends` also writes the cash dividends with ex-dates in the range to
`<out>_dividends.csv` (symbol,ex_date,pay_date,amount; simbroker/dividends.py), from Alpaca's
corporate actions (Market Data API, GET /v1/corporate-actions, types cash_dividend,
forward_split and reverse_split; market-data spec, June 2026), for bars that leave dividends
out of their prices: `--adjustment split` (each amount divided by the splits that went ex
after it, so that it is per share of the split-adjusted bars) or `raw` (amounts as paid).
With `all` or `dividend` the dividends are already in the prices, and the script refuses.
The corporate actions are asked for by processing date, from --start to today: a dividend
that goes ex before --end but is processed (paid) after today is not listed yet.

    .venv/bin/python scripts/download_bars.py --symbols AAPL,KO --start 2015-01-01 \
        --end 2024-12-31 --adjustment split --dividends --out data/mine.csv
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

from broker import Bar, Broker, CorporateAction  # noqa: E402
from config import load_credentials, read_env  # noqa: E402
from errors import BotError, BrokerError  # noqa: E402
from simbroker.dividends import HEADER as DIVIDEND_COLUMNS  # noqa: E402
from simbroker.dividends import WITHOUT_DIVIDENDS, path_beside  # noqa: E402
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
    parser.add_argument("--dividends", action="store_true",
                        help="also write the cash dividends to <out>_dividends.csv (needs "
                             "--adjustment split or raw)")
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


def dividends_text(actions: list[CorporateAction], start: date, end: date, *,
                   adjustment: str) -> tuple[str, int]:
    """The dividends file: cash dividends going ex in [start, end], sorted by symbol then
    ex-date, each amount per share of the bars (divided by the later splits for `split`)."""
    splits = [a for a in actions if a.kind == "split"]
    rows = []
    for d in actions:
        if d.kind != "cash_dividend" or not start <= d.ex_date <= end:
            continue
        amount = d.rate
        if adjustment == "split":
            for split in splits:
                if split.symbol == d.symbol and split.ex_date > d.ex_date:
                    amount /= split.rate
        rows.append((d.symbol, d.ex_date.isoformat(),
                     d.payable_date.isoformat() if d.payable_date else "", repr(amount)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DIVIDEND_COLUMNS)
    writer.writerows(sorted(rows))
    return out.getvalue(), len(rows)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None,
         today: date | None = None) -> int:
    args = parse_args(argv)
    symbols = sorted({s.strip().upper() for s in args.symbols.split(",") if s.strip()})
    if not symbols or args.end < args.start:
        print("download_bars.py: give --symbols and --start <= --end", file=sys.stderr)
        return 2
    if args.dividends and args.adjustment not in WITHOUT_DIVIDENDS:
        print(f"download_bars.py: --dividends with --adjustment {args.adjustment} would count "
              "every dividend twice (it is already in those prices); use --adjustment split",
              file=sys.stderr)
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
        actions = broker.corporate_actions(symbols, args.start, today) if args.dividends \
            else None
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
    dividends_path = path_beside(args.out)
    if actions is not None:
        text, count = dividends_text(actions, args.start, args.end, adjustment=args.adjustment)
        atomic_write_text(dividends_path, text)
        meta["dividends"] = {
            "file": dividends_path.name, "count": count,
            "source": "Alpaca Market Data /v1/corporate-actions, cash_dividend rates"
                      + (", divided by the forward and reverse splits after each ex-date"
                         if args.adjustment == "split" else ", as paid")}
    elif dividends_path.exists():
        print(f"download_bars.py: note: {dividends_path} is from another download; the "
              "backtester pays it with these bars: remove it, or rerun with --dividends",
              file=sys.stderr)
    atomic_write_text(args.out.with_name(args.out.name + ".json"),
                      json.dumps(meta, indent=2) + "\n")
    print(f"{args.out}: {len(symbols)} symbols, {args.start}..{args.end}, adjustment "
          f"{args.adjustment}, feed {args.feed} ({counts['fetched']} fetched, "
          f"{counts['cached']} from the cache)"
          + (f"; {meta['dividends']['count']} cash dividends in {dividends_path}"
             if actions is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
