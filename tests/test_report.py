"""The HTML report: hand-made log directories with hand-computed numbers, and errors that name
the file."""

import csv
import json
import re
from pathlib import Path

import pytest

import report
from position_manager import TRADE_COLUMNS, Holding, PendingOrder, StateStore
from state_files import write_json


def trade(symbol, side, entry, exit_, pnl, reason, exit_price="1"):
    row = dict.fromkeys(TRADE_COLUMNS, "")
    row.update(symbol=symbol, side=side, qty="1", entry_time=entry, entry_price="1",
               exit_time=exit_, exit_price=exit_price, pnl_usd=pnl, exit_reason=reason,
               exit_client_order_id=f"mr-{exit_[:10]}-{symbol}-exit")
    return row


TRADES = [
    trade("AAPL", "long", "2022-03-01T17:00:00+00:00", "2022-03-03T17:00:00+00:00", "10.00",
          "mean_reversion"),
    trade("KO", "short", "2022-03-02T17:00:00+00:00", "2022-03-04T17:00:00+00:00", "-6.00",
          "stop_loss"),
    trade("AAPL", "long", "2022-03-07T17:00:00+00:00", "2022-03-09T17:00:00+00:00", "2.50",
          "max_holding_period"),
    trade("PG", "long", "2022-03-01T17:00:00+00:00", "", "", "closed_outside_bot",
          exit_price=""),
]


def holding(symbol, side, qty, when, price, z):
    return Holding(symbol=symbol, side=side, qty=qty, entry_time=when, entry_price=price,
                   entry_z=z, entry_order_id=f"id-{symbol}",
                   entry_client_order_id=f"mr-x-{symbol}-{side}")


def summary(now, outcome="done", equity=None, prices=None, z=None, errors=()):
    return {"started_at": now, "outcome": outcome, "now": now, "equity_usd": equity,
            "symbols_evaluated": len(prices or {}), "z_scores": z or {}, "prices": prices or {},
            "skipped": {}, "exits": [], "entries": [], "fills": [], "trades_recorded": 0,
            "notes": [], "errors": list(errors), "requests": 7}


@pytest.fixture
def log_dir(tmp_path) -> Path:
    store = StateStore(tmp_path)
    with open(store.trades_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRADE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(TRADES)
    store.save_holdings({
        "MSFT": holding("MSFT", "long", 0.5, "2022-03-07T17:00:05+00:00", 280.0, -1.7),
        "JPM": holding("JPM", "short", 1.0, "2022-03-08T17:00:05+00:00", 130.0, 1.8)})
    store.save_pending({"mr-20220310-MSFT-exit": PendingOrder(
        client_order_id="mr-20220310-MSFT-exit", symbol="MSFT", intent="exit",
        position_side="long", order_side="sell", qty=0.5, limit_price=291.25, z=-0.05,
        trading_day="2022-03-10", created_at="2022-03-10T17:00:01+00:00",
        exit_reason="mean_reversion", order_id="ord-1")})
    runs = tmp_path / "runs"
    write_json(runs / "2022-03-09_12-00-00" / "summary.json", summary(
        "2022-03-09T17:00:00+00:00", equity=100006.5, prices={"MSFT": 290.0, "JPM": 128.0},
        z={"MSFT": -0.5, "JPM": 0.9}))
    write_json(runs / "2022-03-10_12-00-00" / "summary.json", summary(
        "2022-03-10T17:00:00+00:00", outcome="failed", equity=100010.0,
        errors=["TemporaryBrokerError: GET /v2/stocks/bars: HTTP 503"]))
    (runs / "2022-03-11_12-00-00").mkdir()  # killed before its summary
    write_json(runs / "2022-03-12_12-00-00" / "summary.json",
               summary("2022-03-12T17:00:00+00:00", outcome="market_closed"))
    return tmp_path


def text_of(page: str) -> str:
    """The page's visible text, without tags, for assertions on table cells."""
    return re.sub(r"\|+", "|", re.sub(r"<[^>]+>", "|", page.split("</style>")[1]))


# -- the numbers --------------------------------------------------------------------------

def test_numbers_by_hand(log_dir):
    records = report.load_records(log_dir)
    trades = report.parse_trades(records.trades)
    assert [v for _, v in report.cumulative_pnl(trades)] == [10.0, 4.0, 6.5]
    by_symbol = {s.name: s for s in report.group_stats(trades, lambda t: t.symbol)}
    assert set(by_symbol) == {"AAPL", "KO"}  # PG has no known P&L
    aapl = by_symbol["AAPL"]
    assert (aapl.count, aapl.wins, aapl.total_pnl_usd, aapl.average_pnl_usd, aapl.win_rate) == \
        (2, 2, 12.5, 6.25, 1.0)
    assert by_symbol["KO"].win_rate == 0.0
    assert [(s.name, s.total_pnl_usd) for s in
            report.group_stats(trades, lambda t: t.exit_reason)] == \
        [("max_holding_period", 2.5), ("mean_reversion", 10.0), ("stop_loss", -6.0)]
    snapshot = report.market_snapshot(records.runs)
    assert snapshot.name == "2022-03-09_12-00-00"  # later runs priced nothing
    positions = {p.symbol: p for p in report.open_positions(records.holdings, snapshot)}
    assert (positions["MSFT"].age_days, positions["MSFT"].z,
            positions["MSFT"].unrealised_pnl_usd) == (2, -0.5, 5.0)
    assert (positions["JPM"].age_days, positions["JPM"].z,
            positions["JPM"].unrealised_pnl_usd) == (1, 0.9, 2.0)
    assert [v for _, v in report.equity_points(records.runs)] == [100006.5, 100010.0]
    # One point per run, on the runs' dates (every trade here exited by the first run).
    assert [v for _, v in report.realised_per_run(trades, records.runs)] == [6.5, 6.5, 6.5]
    assert report.run_axis(records.runs) == (report._time("2022-03-09T17:00:00+00:00"),
                                             report._time("2022-03-12T17:00:00+00:00"))
    assert records.runs_without_summary == ["2022-03-11_12-00-00"]


def test_two_trades_closed_by_one_run_make_one_step():
    at = report._time
    trades = [report.Trade("A", "mean_reversion", at("2022-03-02T17:00:01+00:00"), 5.0),
              report.Trade("B", "stop_loss", at("2022-03-02T17:00:02+00:00"), -2.0),
              report.Trade("C", "mean_reversion", at("2022-03-03T17:00:01+00:00"), 1.0)]
    runs = [report.RunRecord(f"r{i}", {"now": f"2022-03-0{i}T17:00:00+00:00"})
            for i in (1, 2, 3)]
    assert [v for _, v in report.realised_per_run(trades, runs)] == [0.0, 3.0, 4.0]


def test_html_shows_the_numbers_and_charts_inline(log_dir):
    assert report.main(["--log-dir", str(log_dir)]) == 0
    page = (log_dir / "report.html").read_text()
    text = text_of(page)
    for cell in ("|+$6.50|",  # realised P&L
                 "|AAPL|2|2|100%|+$12.50|+$6.25|", "|KO|1|0|0%|-$6.00|-$6.00|",
                 "|all|3|2|67%|+$6.50|+$2.17|", "|stop_loss|1|0|0%|-$6.00|-$6.00|",
                 "|MSFT|long|0.5|2022-03-07 12:00 EST|280.00|-1.70|2|-0.50|290.00|+$5.00|",
                 "|JPM|short|1|2022-03-08 12:00 EST|130.00|1.80|1|0.90|128.00|+$2.00|",
                 "|+$7.00|",  # unrealised P&L
                 "|+0.0035%|equity $100,010.00|",  # return against the first run's equity
                 "|MSFT|exit|sell|0.5|291.25|-0.05|mean_reversion|2022-03-10|ord-1|",
                 "|2022-03-10_12-00-00|failed|$100,010.00|0|0|0|0|0|7|TemporaryBrokerError",
                 "|2022-03-12_12-00-00|market_closed|-|", "|Runs|3|",
                 "1 of the last 3 runs failed",
                 # A closed trade of a file from before the cost columns: costs not known.
                 "|2022-03-04|KO|short|1|1.00|1.00|-$6.00|-|-|stop_loss|-|",
                 "1 trade(s) closed outside the bot", "1 run(s) left no summary"):
        assert cell in text, cell
    assert text.index("2022-03-12_12-00-00") < text.index("2022-03-09_12-00-00")  # newest first
    for chart in ("chart-realised-pnl", "chart-equity", "chart-by-symbol", "chart-by-reason"):
        assert f"<svg id='{chart}' class='chart'" in page
    assert "Plotly" not in page


def test_page_needs_no_network(log_dir):
    page = report.build_report(report.load_records(log_dir), source=str(log_dir))
    assert "<script src=" not in page
    assert not re.search(r"<(script|link|img|iframe)[^>]*\b(src|href)\s*=", page)
    assert "@import" not in page and "url(" not in page
    assert "plotly" not in page.lower()  # charts are inline SVG


def test_empty_log_dir_says_there_is_nothing_yet(tmp_path, capsys):
    assert report.main(["--log-dir", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Nothing recorded yet" in page and "Plotly" not in page
    assert "report written to" in capsys.readouterr().out


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "trades.csv").write_text("symbol,pnl\nAAPL,1\n"), "trades.csv: header"),
    (lambda d: (d / "positions.json").write_text("{"), "positions.json: invalid JSON"),
    (lambda d: (d / "runs" / "2022-03-09_12-00-00" / "summary.json").write_text("[1]"),
     "summary.json: not a run summary"),
    (lambda d: (d / "trades.csv").write_text(
        (d / "trades.csv").read_text().replace("-6.00", "minus six")),
     "trades.csv: line 3 has pnl_usd 'minus six'"),
])
def test_damaged_files_are_named(log_dir, capsys, damage, message):
    damage(log_dir)
    assert report.main(["--log-dir", str(log_dir)]) == 1
    assert message in capsys.readouterr().err
    assert not (log_dir / "report.html").exists()


def test_missing_log_dir_is_named(tmp_path, capsys):
    assert report.main(["--log-dir", str(tmp_path / "nope")]) == 1
    assert "nope: no such directory" in capsys.readouterr().err


def test_report_does_not_change_state(log_dir):
    before = {p: p.read_bytes() for p in log_dir.rglob("*") if p.is_file()}
    report.main(["--log-dir", str(log_dir)])
    after = {p: p.read_bytes() for p in log_dir.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before
    assert json.loads((log_dir / "positions.json").read_text())["version"] == 1


# -- a real multi-day run on the local exchange -------------------------------------------

def test_report_of_a_25_day_simulated_run(tmp_path, monkeypatch):
    import trading_bot

    monkeypatch.chdir(tmp_path)  # no developer .env; the run's files land in tmp_path
    assert trading_bot.main(["--sim", "--days", "25", "--sim-start", "2022-03-01",
                             "--sim-dir", "sim"], environ={}) == 0
    log_dir = tmp_path / "sim" / "logs"
    assert report.main(["--log-dir", str(log_dir)]) == 0
    page = (log_dir / "report.html").read_text()
    text = text_of(page)

    with open(log_dir / "trades.csv", newline="") as handle:
        trades = list(csv.DictReader(handle))
    assert trades, "25 days of the shipped data close some trades"
    realised = round(sum(float(t["pnl_usd"]) for t in trades if t["pnl_usd"]), 2)
    sign = "-" if realised < 0 else "+" if realised > 0 else ""
    assert f"|Realised P&amp;L, gross|{sign}${abs(realised):,.2f}|" in text
    net = round(sum(float(t["net_pnl_usd"]) for t in trades), 2)
    fees = round(sum(float(t["fees_usd"]) for t in trades), 2)
    assert fees > 0  # borrow on the shorts at least
    assert f"|Realised P&amp;L, net of costs|{'-' if net < 0 else '+'}${abs(net):,.2f}|" \
        f"costs ${fees:,.2f} on {len(trades)} trades|" in text
    assert "|Account costs|$" in text and "borrow $" in text
    assert f"|Closed trades|{len(trades)}|" in text
    held = json.loads((log_dir / "positions.json").read_text())["positions"]
    pending = json.loads((log_dir / "pending_orders.json").read_text())["orders"]
    assert f"|Open positions ({len(held)})|" in text
    assert f"|Pending orders ({len(pending)})|" in text
    assert "|Runs|25|" in text and "0 of the last 10 runs failed" in text
    runs = sorted(p.name for p in (log_dir / "runs").iterdir())
    assert text.index(f"|{runs[-1]}|done|") < text.index(f"|{runs[0]}|done|")
    assert page.count("<svg id='chart-") == 4
    assert "<script src=" not in page
