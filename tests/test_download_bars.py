"""scripts/download_bars.py end to end against the local exchange: the CSV, the cache, the
resumption, and the backtester reading the result."""

import importlib.util
from datetime import date
from pathlib import Path

import pandas as pd

from simbroker import market_data
from tests.simbroker_fixtures import DAYS, KEY, SECRET, make_sim, ny

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
