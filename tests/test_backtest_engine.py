"""The backtest engine on tiny hand-made bars, where every entry, fill and exit can be worked
out by hand.

The trick that keeps the arithmetic small: with Z_SCORE_WINDOW=5, four flat closes at 10 and
today's price p != 10, z = +/-4/sqrt(5) = +/-1.789 whatever the size of the move (mean
10 + d/5, deviations -d/5 four times and 4d/5, sample variance 0.2 d^2). Flat bars (open =
high = low = close) make the noon price the bar's price, and a spread of 0 makes the quote
equal that price, so a limit at the price fills at noon. Sessions are 2021-03-01 (Mon)
onward; noon is 5/13 of a regular session (2.5 h of 6.5 h).
"""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

import backtester.signals
from backtester import Settings, run_backtest
from backtester.outputs import trade_rows
from backtester.panels import session_clock
from config import load_config
from market_calendar import new_york_noon, nyse
from simbroker import synthetic
from simbroker.costs import CostRates
from simbroker.market_data import Split, from_frame
from simbroker.price_model import limit_fill, path_key, price_at

DAYS = [date(2021, 3, d) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12)]
FLAT_DAYS = DAYS[:4]  # the window of the first decision day, 2021-03-05
NO_SPREAD = Settings(spread_bps=0.0)


def bars(*rows):
    """rows: (symbol, day, open, high, low, close); a bare price means a flat bar."""
    records = []
    for row in rows:
        symbol, day, *prices = row
        o, h, low, c = prices if len(prices) == 4 else prices * 4
        records.append({"symbol": symbol, "date": day.isoformat(), "open": o, "high": h,
                        "low": low, "close": c, "volume": 1000.0})
    return from_frame(pd.DataFrame(records))


def flat_start(symbol, level=10.0):
    return [(symbol, d, level) for d in FLAT_DAYS]


def config(**env):
    values = {"Z_SCORE_WINDOW": "5", "TICKERS": "AAA"}
    values.update({k.upper(): str(v) for k, v in env.items()})
    return load_config(values)


def backtest(market, cfg=None, settings=NO_SPREAD, end=DAYS[-1], symbols=("AAA",)):
    return run_backtest(market, cfg or config(), start=DAYS[4], end=end, symbols=symbols,
                        settings=settings)


def only_trade(result):
    rows = trade_rows(result)
    assert len(rows) == 1, rows
    return rows[0]


def test_long_entry_then_reversion_exit():
    # 03-05 at 9: z = -1.789 < -1.5, buy $100 at limit 9.00: 11.111111111 shares (fractional,
    # truncated to 9 decimals), filled at noon at the ask 9.00.
    # 03-08 at 10: window 10, 10, 10, 9 and 10: mean 9.8, sample std sqrt(0.8 / 4) = 0.4472,
    # z = 0.2 / 0.4472 = +0.447 >= -0.1: reversion, sell at 10.00 at noon.
    market = bars(*flat_start("AAA"), ("AAA", DAYS[4], 9.0), ("AAA", DAYS[5], 10.0))
    row = only_trade(backtest(market, end=DAYS[5]))
    assert (row["side"], row["qty"], row["entry_price"], row["exit_price"]) == (
        "long", "11.1111", "9", "10")
    assert row["entry_time"].startswith("2021-03-05T17:00:00")  # noon New York, in UTC
    assert row["exit_time"].startswith("2021-03-08T17:00:00")
    assert row["exit_reason"] == "mean_reversion"
    assert row["holding_days"] == "3"
    assert row["pnl_usd"] == "11.11"  # (10 - 9) * 11.111111111
    assert row["entry_z"] == "-1.7889" and row["exit_z"] == "0.4472"
    assert row["entry_client_order_id"] == "mr-20210305-AAA-long"
    assert row["exit_client_order_id"] == "mr-20210308-AAA-exit"


def test_max_holding_period_exit():
    # Held at 9 from 03-05: z on 03-08 (10,10,10,9 | 9) = -0.6 / sqrt(0.3) = -1.095, on 03-09
    # (10,10,9,9 | 9) = -0.4 / sqrt(0.3) = -0.730: between the stop and the exit, held. On
    # 03-10 (10,9,9,9 | 9) z = -0.447, still held by z, but 5 calendar days have passed.
    market = bars(*flat_start("AAA"), *[("AAA", d, 9.0) for d in DAYS[4:8]])
    result = backtest(market, end=DAYS[7])
    row = only_trade(result)
    assert row["exit_time"].startswith("2021-03-10")
    assert (row["exit_reason"], row["holding_days"], row["pnl_usd"]) == (
        "max_holding_period", "5", "0.00")
    assert row["exit_z"] == "-0.4472"
    assert list(result.positions) == [1, 1, 1, 0]


def test_stop_loss_exit():
    # Entry -1.2, stop -1.6. 03-08 at 7: window 10, 10, 10, 9 | 7: mean 9.2, squared
    # deviations 0.64 * 3 + 0.04 + 4.84 = 6.8, std sqrt(1.7) = 1.30384, z = -2.2 / 1.30384 =
    # -1.68732 <= -1.6: stop-loss, sold at 7.
    cfg = config(long_entry_z=-1.2, short_entry_z=1.2, long_stop_z=-1.6, short_stop_z=1.6)
    market = bars(*flat_start("AAA"), ("AAA", DAYS[4], 9.0), ("AAA", DAYS[5], 7.0))
    row = only_trade(backtest(market, cfg, end=DAYS[5]))
    assert (row["exit_reason"], row["exit_price"], row["exit_z"]) == ("stop_loss", "7",
                                                                      "-1.6873")
    assert row["pnl_usd"] == "-22.22"  # (7 - 9) * 11.111111111


NOON = 5 / 13  # of a regular session


def model(bar, day, symbol="AAA"):
    """The model path's noon price of a bar, and its key (simbroker/price_model.py)."""
    key = path_key(symbol, day)
    return float(price_at(*bar, NOON, key=key)), key


def test_short_filled_later_at_its_limit_then_covered():
    # 03-05 is a real up bar whose noon price p on the model path is above 10, so z = +1.789
    # > 1.5: sell short floor(100 / L) shares at the bot's limit L = p to the cent. The symbol
    # is picked (its path depends on it) so that, at a 2 bp spread, the bid at noon is below L
    # (the order rests) and the path rises to L / (1 - 1 bp) later: it fills then, at L.
    # 03-08 flat at 10: window 10, 10, 10, 10.9 | 10: reversion, bought back at the 10.00
    # limit (the design's exit order, EXIT_ORDER_TYPE=limit), which the flat bar's ask (10.01
    # at 2 bp) never reaches: still held.
    bar = (10.5, 11.6, 10.2, 10.9)
    for k in range(500):
        symbol = f"S{k:03d}"
        p, key = model(bar, DAYS[4], symbol)
        limit = round(round(p, 4), 2)
        filled, price, when = limit_fill(*bar, is_buy=False, limit=limit, start=NOON,
                                         end=1.0, spread_bps=2.0, key=key)
        if p > 10 and filled and when > NOON:
            break
    else:
        pytest.fail("no symbol's path rests and then fills")
    market = bars(*flat_start(symbol), (symbol, DAYS[4], *bar), (symbol, DAYS[5], 10.0))
    result = backtest(market, config(tickers=symbol, exit_order_type="limit"), end=DAYS[5],
                      symbols=(symbol,),
                      settings=Settings(spread_bps=2.0, costs=CostRates(enabled=False)))
    qty = float(np.floor(100.0 / limit))
    assert list(result.positions) == [1, 1] and len(result.trades) == 0
    # Short proceeds sit in cash (the borrow and sale fees the held short pays at each
    # close are turned off here: tests/test_costs.py has them): 100,000 + qty * L (whole
    # cents) from 03-05 on.
    assert result.cash[0] == pytest.approx(100_000 + round(qty * limit, 2))
    assert result.cash[1] == result.cash[0]
    # The fill time is the model's: after noon, where the bid first reaches the limit.
    assert float(price_at(*bar, when, key=key)) * (1 - 1e-4) == pytest.approx(limit, abs=1e-9)


def test_unfilled_entry_expires_at_the_close():
    # 03-05 is a real down bar (9.8 -> 9.0) with its noon price below 10: z = -1.789, buy at
    # the noon price to the cent. The symbol is picked (its path depends on it) so that the
    # model's path never comes back down to that limit after noon: the DAY order expires at
    # the close and nothing is held the next day.
    bar = (9.8, 9.87, 8.5, 9.0)
    for k in range(500):
        symbol = f"S{k:03d}"
        p, key = model(bar, DAYS[4], symbol)
        filled, _, _ = limit_fill(*bar, is_buy=True, limit=round(round(p, 4), 2), start=NOON,
                                  end=1.0, spread_bps=0.0, key=key)
        if not filled:
            break
    else:
        pytest.fail("no symbol leaves the noon buy unfilled")
    market = bars(*flat_start(symbol), (symbol, DAYS[4], *bar), (symbol, DAYS[5], 10.0))
    result = backtest(market, config(tickers=symbol), end=DAYS[5], symbols=(symbol,))
    assert result.z[0, 0] == pytest.approx(-1.7889, abs=1e-4)  # an entry was placed
    assert trade_rows(result) == []
    assert list(result.positions) == [0, 0]
    assert list(result.equity) == [100_000.0, 100_000.0]
    assert result.prices[0, 0] == round(p, 4)


def test_cash_limited_day_funds_the_first_candidate_only():
    # $150 of cash (no margin, no shorts under $2,000): AAA and BBB both drop to 9 on 03-05
    # with the same z (-1.789). Ties keep alphabetical order: AAA costs $99.999999999, which
    # leaves $50, less than BBB needs.
    market = bars(*flat_start("AAA"), *flat_start("BBB"), ("AAA", DAYS[4], 9.0),
                  ("BBB", DAYS[4], 9.0))
    result = backtest(market, settings=Settings(spread_bps=0.0, starting_cash=150.0),
                      end=DAYS[4], symbols=("AAA", "BBB"))
    assert result.positions[0] == 1
    held = result.trades  # nothing closed yet
    assert len(held) == 0
    # Cash moves by qty * price in whole cents: 150 - 100.00.
    assert result.cash[0] == pytest.approx(50.0)
    assert result.long_value[0] == pytest.approx(9.0 * 11.111111111)


def test_no_look_ahead_a_later_bar_never_changes_an_earlier_day():
    base = [*flat_start("AAA"), ("AAA", DAYS[4], 9.0), ("AAA", DAYS[5], 10.0)]
    a = backtest(bars(*base, ("AAA", DAYS[6], 10.0)), end=DAYS[6])
    b = backtest(bars(*base, ("AAA", DAYS[6], 50.0)), end=DAYS[6])
    assert np.array_equal(a.z[:2], b.z[:2])
    assert np.array_equal(a.equity[:2], b.equity[:2])


def test_settings_errors_name_the_field_and_the_fix():
    with pytest.raises(ValueError, match="spread_bps=-1.0: give basis points"):
        Settings(spread_bps=-1.0)


def test_a_split_while_held_adjusts_the_window_and_the_position():
    # As test_long_entry_then_reversion_exit, with a 2-for-1 split at the open of 03-08: raw
    # prices halve. The window as of 03-08 is split-adjusted (5, 5, 5, 4.5 | 5), so z is the
    # same +0.447 and no crash is seen; the exchange's book turns the position into
    # 22.222222222 shares at 4.50, and the trade's P&L is unchanged.
    frame = pd.DataFrame([
        {"symbol": "AAA", "date": d.isoformat(), "open": p, "high": p, "low": p, "close": p,
         "volume": 1000.0}
        for d, p in [*[(d, 10.0) for d in FLAT_DAYS], (DAYS[4], 9.0), (DAYS[5], 5.0)]])
    market = from_frame(frame, [Split("AAA", DAYS[5], 2.0)])
    row = only_trade(backtest(market, end=DAYS[5]))
    assert (row["qty"], row["entry_price"], row["exit_price"]) == ("22.2222", "4.5", "5")
    assert row["exit_reason"] == "mean_reversion" and row["exit_z"] == "0.4472"
    assert row["pnl_usd"] == "11.11"


def test_a_held_symbol_without_a_bar_is_marked_at_its_last_close():
    # Bought on 03-05 at 9.00 (as test_long_entry_then_reversion_exit); no bar on 03-08, so
    # the bot cannot price AAA (no exit) and the exchange marks it at the last close, 9, both
    # at noon and at the close: 11.111111111 shares are worth 99.999999999.
    market = bars(*flat_start("AAA"), ("AAA", DAYS[4], 9.0), ("BBB", DAYS[5], 20.0))
    result = backtest(market, end=DAYS[5], symbols=("AAA", "BBB"))
    assert result.positions.tolist() == [1, 1]
    assert np.isnan(result.z[1, 0])
    assert result.cash[1] == 99_900.0  # 100,000 - 100.00 for the entry
    assert result.long_value[1] == 11.111111111 * 9.0
    assert result.equity[1] == 99_900.0 + 11.111111111 * 9.0


def test_chunks_of_days_do_not_change_the_result(monkeypatch):
    # Signals are computed in chunks of days; carried from one chunk to the next are the
    # positions, cash and each symbol's last close. Halts while held (marks at the last close,
    # windows with a missing bar), a symbol that starts late and a split while held must give
    # the same run one day at a time as in one chunk. The halts and the split are placed on
    # positions this seed opens (S0001 on day 34, S0005 on 61, S0003 on 44).
    days = [s.day for s in nyse().sessions_between(date(2021, 1, 4), date(2021, 6, 30))]
    market = synthetic.generate(
        8, start=days[0], sessions=90, seed=11, daily_vol=0.04,
        halts={"S0001": days[35:42], "S0005": days[62:64], "S0002": days[:12]},
        splits=[Split("S0003", days[46], 2.0)])
    cfg = config(tickers=",".join(market.symbols), z_score_window=10, position_size_usd=5_000)
    whole = run_backtest(market, cfg, symbols=market.symbols)
    monkeypatch.setattr(backtester.signals, "_CHUNK_ELEMENTS", 1)  # one day per chunk
    by_day = run_backtest(market, cfg, symbols=market.symbols)
    rows = trade_rows(whole)
    assert any(r["symbol"] == "S0001" and r["entry_time"] < days[35].isoformat()
               and r["exit_time"] > days[42].isoformat() for r in rows)
    for name in ("equity", "cash", "long_value", "short_value", "positions", "prices", "z"):
        assert np.array_equal(getattr(whole, name), getattr(by_day, name), equal_nan=True), name
    assert rows == trade_rows(by_day)


def test_a_held_symbol_with_a_gap_in_its_window_is_still_exited_on_time():
    # Bought on 03-05; no bar on 03-08 (no price that day: nothing is decided). Every window up
    # to 03-12 holds the missing close of 03-08, but a held position is managed from the
    # closes it has (3 of the window's 4, held_min_closes(5) = 3), and the holding limit
    # needs no z: on 03-10, 5 calendar days after the entry, it closes the position. (This
    # test asserted the opposite before: no exit at all while the gap was in the window.)
    rows = [*flat_start("AAA"), ("AAA", DAYS[4], 9.0),
            *[("AAA", d, 9.0) for d in DAYS[6:]], ("BBB", DAYS[5], 20.0)]
    result = backtest(bars(*rows), end=DAYS[-1], symbols=("AAA", "BBB"))
    assert result.positions.tolist() == [1, 1, 1, 0, 0, 0]
    (trade,) = trade_rows(result)
    assert trade["exit_reason"] == "max_holding_period"
    assert trade["exit_time"][:10] == DAYS[7].isoformat() and trade["holding_days"] == "5"
    assert np.isnan(result.z[1:, 0]).all()  # entries still need the whole window


def test_the_session_clock_is_each_session_s_own_noon_and_length_to_the_microsecond():
    # Across every DST rule change, late open and early close of the calendar, the clock is
    # what each Session gives (the exchange's fraction of the session at noon).
    sessions = nyse().sessions_between(date(1990, 1, 1), date(2035, 12, 31))
    clock = session_clock(sessions)
    noon = [(new_york_noon(s.day) - s.open) // timedelta(microseconds=1) for s in sessions]
    assert clock.noon_us.tolist() == noon
    assert clock.length_s.tolist() == [(s.close - s.open).total_seconds() for s in sessions]
    assert clock.ordinal.tolist() == [s.day.toordinal() for s in sessions]
    assert len(set(noon)) > 1  # late opens are in it: not every noon is 2.5 hours in
