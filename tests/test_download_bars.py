"""scripts/download_bars.py end to end against the local exchange: the CSV, the cache, the
resumption, cash dividends from the corporate actions, and the backtester reading the result."""

import importlib.util
import json
from datetime import date
from pathlib import Path

import pandas as pd
import requests

from simbroker import market_data
from simbroker.dividends import Dividend
from simbroker.market_data import Split
from tests.simbroker_fixtures import DAYS, KEY, MAR2, MAR3, MAR7, SECRET, _rows, make_sim, ny

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "download_bars.py"
spec = importlib.util.spec_from_file_location("download_bars", SCRIPT)
download_bars = importlib.util.module_from_spec(spec)
spec.loader.exec_module(download_bars)


def run(sim, out: Path, *extra: str) -> int:
    env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET,
           "APCA_API_DATA_URL": sim.server.data_url}
    return download_bars.main(["--symbols", "AAA,FLAT", "--start", "2022-02-28", "--end",
                               "2022-03-08", "--out", str(out), *extra], environ=env,
                              today=date(2023, 1, 3))


def bar_requests(sim) -> int:
    return sum(1 for r in sim.exchange.requests.entries if "/bars" in r["path"])


def test_download_writes_the_exchanges_bars_caches_them_and_resumes(monkeypatch, tmp_path,
                                                                     capsys):
    out = tmp_path / "bars.csv"
    for sim in make_sim(monkeypatch, ny(DAYS[8], 17, 0)):
        assert run(sim, out, "--adjustment", "raw") == 0
        frame = pd.read_csv(out)
        assert list(frame.columns) == list(download_bars.COLUMNS)
        assert sorted(set(frame["symbol"])) == ["AAA", "FLAT"]
        assert frame["date"].min() == "2022-02-28" and frame["date"].max() == "2022-03-08"
        expected = sim.exchange.market_data.bar("AAA", DAYS[1])
        row = frame[(frame["symbol"] == "AAA") & (frame["date"] == "2022-03-01")].iloc[0]
        assert (row["open"], row["high"], row["low"], row["close"]) == (
            expected.open, expected.high, expected.low, expected.close)
        meta = (tmp_path / "bars.csv.json").read_text()
        assert '"adjustment": "raw"' in meta and '"feed": "sip"' in meta
        first = bar_requests(sim)
        assert first == 2  # one (symbol, year) each
        # Interrupted after AAA: FLAT's year is missing from the cache. The rerun fetches
        # only that, and writes the same file.
        text = out.read_text()
        (tmp_path / "bars.csv.cache" / "raw-sip" / "FLAT" / "2022.csv").unlink()
        assert run(sim, out, "--adjustment", "raw") == 0
        assert bar_requests(sim) == first + 1
        assert out.read_text() == text
        assert "1 fetched, 1 from the cache" in capsys.readouterr().out
    # The backtester reads it.
    data = market_data.load(out)
    assert data.symbols == ("AAA", "FLAT") and data.bar("AAA", DAYS[1]).close == 103.0


def test_missing_keys_say_how_to_fix(tmp_path, capsys):
    code = download_bars.main(["--symbols", "AAA", "--start", "2022-01-03", "--end",
                               "2022-01-04", "--out", str(tmp_path / "x.csv")], environ={},
                              today=date(2023, 1, 3))
    assert code == 2 and "ALPACA_API_KEY is not set" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def dividend_market():
    """FLAT at 20.00 paying $0.10 ex 03-02 (payable 03-25); SPL at 200.00, split 2-for-1 on
    03-07, paying $1.00 ex 03-03 (before the split: $0.50 a split-adjusted share) and $0.60
    ex 03-08 (after it)."""
    rows = _rows("FLAT", {d: (20.0, 20.0, 20.0, 20.0, 500_000) for d in DAYS})
    rows += _rows("SPL", {d: ((200.0,) * 4 + (100_000,)) if d < MAR7 else
                          ((100.0,) * 4 + (200_000,)) for d in DAYS})
    return market_data.from_frame(
        pd.DataFrame(rows), [Split("SPL", MAR7, 2.0)], name="dividends",
        dividends=[Dividend("FLAT", MAR2, 0.10, date(2022, 3, 25)),
                   Dividend("SPL", MAR3, 1.00), Dividend("SPL", DAYS[6], 0.60)])


def test_dividends_download_with_split_bars_and_the_backtester_pays_them(monkeypatch,
                                                                          tmp_path, capsys):
    out = tmp_path / "mine.csv"
    for sim in make_sim(monkeypatch, ny(DAYS[8], 17, 0), dividend_market()):
        env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET,
               "APCA_API_DATA_URL": sim.server.data_url}
        args = ["--symbols", "FLAT,SPL", "--start", "2022-02-28", "--end", "2022-03-10",
                "--out", str(out), "--dividends"]
        assert download_bars.main([*args, "--adjustment", "split"], environ=env,
                                  today=date(2023, 1, 3)) == 0
        assert "3 cash dividends in" in capsys.readouterr().out
        assert sum(1 for r in sim.exchange.requests.entries
                   if r["path"] == "/v1/corporate-actions") == 1
        # With dividend-adjusted bars it refuses before asking for anything.
        assert download_bars.main([*args, "--adjustment", "all"], environ=env,
                                  today=date(2023, 1, 3)) == 2
        assert "would count every dividend twice" in capsys.readouterr().err
    dividends = pd.read_csv(tmp_path / "mine_dividends.csv", keep_default_na=False)
    assert dividends.to_dict("records") == [
        {"symbol": "FLAT", "ex_date": "2022-03-02", "pay_date": "2022-03-25", "amount": 0.1},
        {"symbol": "SPL", "ex_date": "2022-03-03", "pay_date": "", "amount": 0.5},
        {"symbol": "SPL", "ex_date": "2022-03-08", "pay_date": "", "amount": 0.6}]
    meta = json.loads((tmp_path / "mine.csv.json").read_text())
    assert meta["adjustment"] == "split" and meta["dividends"]["count"] == 3
    # The backtester's loader takes the bars (split-adjusted: SPL at 100.00 throughout) with
    # the dividends beside them.
    data = market_data.load(out)
    assert data.bar("SPL", MAR3).close == 100.0
    assert [(d.symbol, d.amount) for d in data.dividends()] == [
        ("FLAT", 0.1), ("SPL", 0.5), ("SPL", 0.6)]


def test_the_corporate_actions_endpoint_pages_filters_and_refuses_bad_parameters(monkeypatch):
    for sim in make_sim(monkeypatch, ny(DAYS[8], 17, 0), dividend_market()):
        url = f"{sim.server.data_url}/v1/corporate-actions"
        headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
        seen, token = [], None
        while True:
            params = {"symbols": "SPL", "start": "2022-01-01", "end": "2022-12-31",
                      "limit": "1", **({"page_token": token} if token else {})}
            page = requests.get(url, params=params, headers=headers, timeout=10).json()
            for key, items in page["corporate_actions"].items():
                seen += [(key, i["ex_date"], i.get("rate"), i.get("new_rate")) for i in items]
            token = page["next_page_token"]
            if not token:
                break
        assert seen == [("cash_dividends", "2022-03-03", 1.0, None),
                        ("forward_splits", "2022-03-07", None, 2.0),
                        ("cash_dividends", "2022-03-08", 0.6, None)]
        only = requests.get(url, params={"types": "forward_split", "start": "2022-01-01"},
                            headers=headers, timeout=10).json()["corporate_actions"]
        assert list(only) == ["forward_splits"]
        bad = requests.get(url, params={"types": "dividend"}, headers=headers, timeout=10)
        assert bad.status_code == 400 and "types dividend unknown" in bad.json()["message"]
        assert requests.get(url, timeout=10).status_code == 401
