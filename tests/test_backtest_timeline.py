"""The backtest's two ways of computing the same answer agree: the per-symbol timelines
(backtester/timeline.py, used whenever no run's entries can depend on the account) and the
day loop that replays the bot's runs one by one (engine._Run, the reference, also checked
against the bot itself by test_parity.py).

Markets are seeded synthetic bars with halts, forward and reverse splits, gaps and flat
symbols; settings and thresholds are drawn per case. Trades must be identical field by
field; equity values are sums over the same positions in another order, so they may differ
in the last bits and are compared to 1e-9 dollars.
"""

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

import backtester.engine
import backtester.timeline
from backtester import Settings, run_backtest
from backtester.engine import _TRADE_FIELDS
from backtester.outputs import trade_rows
from config import load_config
from market_calendar import nyse
from simbroker import synthetic
from simbroker.market_data import Split

SESSIONS = [s.day for s in nyse().sessions_between(date(2015, 1, 2), date(2017, 6, 30))]


def day_loop(market, config, settings, monkeypatch):
    with monkeypatch.context() as patch:
        def refuse(*args, **kwargs):
            raise backtester.engine.Binds("the test asks for the day loop")
        patch.setattr(backtester.engine, "run_timelines", refuse)
        return run_backtest(market, config, symbols=market.symbols, settings=settings)


def draw_case(seed: int):
    rng = np.random.default_rng(seed)
    n, sessions = int(rng.integers(3, 14)), int(rng.integers(120, 400))
    days = SESSIONS[:sessions]
    names = [f"S{k:04d}" for k in range(n)]
    splits = [Split(names[int(rng.integers(n))], days[int(rng.integers(15, sessions))],
                    float(rng.choice([2.0, 3.0, 0.5, 0.25, 1.5])))
              for _ in range(int(rng.integers(0, 6)))]
    splits = list({(s.symbol, s.ex_date): s for s in splits}.values())
    halts = {names[int(rng.integers(n))]: [days[int(d)] for d in
                                           rng.integers(0, sessions, int(rng.integers(1, 8)))]
             for _ in range(int(rng.integers(0, 3)))}
    gaps = {names[0]: {days[int(rng.integers(20, sessions))]: float(rng.uniform(-0.3, 0.3))}}
    market = synthetic.generate(
        names, start=days[0], sessions=sessions, seed=seed, splits=splits, halts=halts,
        gaps=gaps, flat=names[-1:] if rng.random() < 0.3 else (),
        start_price=float(rng.choice([0.6, 12.0, 80.0, 300.0])),
        daily_vol=float(rng.uniform(0.01, 0.05)))
    entry = float(rng.uniform(0.8, 2.2))
    env = {"TICKERS": ",".join(names), "Z_SCORE_WINDOW": str(int(rng.integers(3, 40))),
           "LONG_ENTRY_Z": str(-entry), "SHORT_ENTRY_Z": str(entry),
           "LONG_EXIT_Z": str(-float(rng.uniform(0.0, 0.5))),
           "SHORT_EXIT_Z": str(float(rng.uniform(0.0, 0.5))),
           "LONG_STOP_Z": str(-entry - float(rng.uniform(0.3, 2.0))),
           "SHORT_STOP_Z": str(entry + float(rng.uniform(0.3, 2.0))),
           "MAX_HOLDING_DAYS": str(int(rng.integers(1, 15))),
           "POSITION_SIZE_USD": str(float(rng.choice([50.0, 100.0, 250.0, 1000.0]))),
           "ALLOW_SHORTS": "true" if rng.random() < 0.8 else "false",
           # The exit kinds the timelines know (limits at the current price, never escalated,
           # or kinds that fill at once); on-close orders and other entries go the day loop.
           "ENTRY_ORDER_TYPE": "limit",
           "EXIT_ORDER_TYPE": str(rng.choice(["limit", "marketable_limit", "market"])),
           "STOP_ORDER_TYPE": str(rng.choice(["limit", "marketable_limit", "market"])),
           "LIMIT_OFFSET_BPS": str(float(rng.choice([0.0, 10.0, 50.0])))}
    limits = "limit" in (env["EXIT_ORDER_TYPE"], env["STOP_ORDER_TYPE"])
    env["EXIT_ESCALATE_AFTER_DAYS"] = "0" if limits else str(int(rng.integers(0, 3)))
    subset = frozenset(names[::2])
    settings = Settings(
        spread_bps=float(rng.choice([0.0, 2.0, 10.0])),
        commission_usd=float(rng.choice([0.0, 1.0])),
        slippage_bps=float(rng.choice([0.0, 5.0])),
        shortable=subset if rng.random() < 0.3 else None,
        easy_to_borrow=subset if rng.random() < 0.2 else None,
        fractionable=subset if rng.random() < 0.3 else None)
    return market, load_config(env), settings, splits


def assert_same(fast, slow):
    assert len(fast.trades) == len(slow.trades)
    for name in _TRADE_FIELDS:
        assert np.array_equal(getattr(fast.trades, name), getattr(slow.trades, name),
                              equal_nan=True), name
    assert np.array_equal(fast.positions, slow.positions)
    for name in ("equity", "cash", "long_value", "short_value"):
        assert np.allclose(getattr(fast, name), getattr(slow, name), rtol=0, atol=1e-9), name
    assert np.array_equal(fast.z, slow.z, equal_nan=True)
    assert np.array_equal(fast.prices, slow.prices, equal_nan=True)
    # The same orders placed and filled, at the same cost (each order once, in another order).
    for log in (fast.orders, slow.orders):
        assert len(log.day) == len(log.purpose) == len(log.filled) == len(log.shortfall_bps)
    key = [np.lexsort((o.shortfall_bps, o.filled, o.purpose, o.day)) for o in (fast.orders,
                                                                             slow.orders)]
    for name in ("day", "purpose", "filled", "shortfall_bps"):
        a, b = (getattr(o, name)[k] for o, k in zip((fast.orders, slow.orders), key,
                                                    strict=True))
        assert np.allclose(a, b, rtol=0, atol=1e-9, equal_nan=True), name


def test_timelines_and_day_loop_agree_on_random_markets_and_settings(monkeypatch):
    split_while_held = trades = handed = 0
    for seed in range(40):
        market, config, settings, splits = draw_case(seed)
        fast = run_backtest(market, config, symbols=market.symbols, settings=settings)
        slow = day_loop(market, config, settings, monkeypatch)
        if fast.engine != "timelines":
            # A reverse split that turns a held position into cash in lieu is the one case
            # the timelines hand to the day loop without the account binding.
            assert "leaves no" in fast.engine, (seed, fast.engine)
            handed += 1
        assert_same(fast, slow)
        trades += len(fast.trades)
        days = fast.days
        for split in splits:
            if split.ex_date not in days:
                continue
            d = days.index(split.ex_date)
            t = fast.trades
            j = fast.symbols.index(split.symbol)
            split_while_held += int(np.any((t.symbol == j) & (t.entry_session < d)
                                           & (t.exit_session >= d)))
    # The comparison means something: many trades, and splits that hit held positions.
    assert trades > 2_000
    assert split_while_held >= 3
    assert handed <= 4  # and the timelines themselves are what most cases compare


def test_following_by_cell_and_by_round_give_the_same_backtest_to_the_bit(monkeypatch):
    # Few symbols follow every entry cell's exit at once, many follow one position per symbol
    # a round: the same positions, fills, balances and order log, in the same order.
    trades = 0
    for seed in range(12):
        market, config, settings, _ = draw_case(seed)
        by_cell = run_backtest(market, config, symbols=market.symbols, settings=settings)
        with monkeypatch.context() as patch:
            patch.setattr(backtester.timeline, "_FEW_SYMBOLS", 0)
            by_round = run_backtest(market, config, symbols=market.symbols, settings=settings)
        assert by_cell.engine == by_round.engine
        for name in _TRADE_FIELDS:
            assert np.array_equal(getattr(by_cell.trades, name), getattr(by_round.trades, name),
                                  equal_nan=True), (seed, name)
        for name in ("equity", "cash", "long_value", "short_value", "positions"):
            assert np.array_equal(getattr(by_cell, name), getattr(by_round, name)), (seed, name)
        for name in ("day", "purpose", "filled", "shortfall_bps"):
            assert np.array_equal(getattr(by_cell.orders, name), getattr(by_round.orders, name),
                                  equal_nan=True), (seed, name)
        trades += len(by_cell.trades)
    assert trades > 500


def test_where_the_account_binds_the_day_loop_takes_over_from_the_timelines(monkeypatch):
    # $1,000 positions on a few thousand dollars: sooner or later a run's entries do not all
    # fit. The timelines are exact up to that run, and the day loop carries on from there
    # with the positions, cash, order numbers and trades they hand over.
    handed_over = []
    resume = backtester.engine._Run.resume
    monkeypatch.setattr(backtester.engine._Run, "resume", lambda self, prefix: (
        handed_over.append(len(prefix.open)), resume(self, prefix))[1])
    engines = []
    for seed in range(16):  # enough cases that several hand over part-way, whatever the paths
        market, config, settings, _ = draw_case(seed)
        config = replace(config, position_size_usd=1_000.0)
        small = replace(settings, starting_cash=float(3_000 + 1_000 * (seed % 4)))
        result = run_backtest(market, config, symbols=market.symbols, settings=small)
        engines.append(result.engine)
        assert_same(result, day_loop(market, config, small, monkeypatch))
        rich = run_backtest(market, config, symbols=market.symbols,
                            settings=replace(small, starting_cash=1e7))
        assert rich.engine == "timelines" or "leaves no" in rich.engine, rich.engine
        if result.engine != "timelines" and "leaves no" not in result.engine:
            assert trade_rows(result) != trade_rows(rich)  # the account did bind
    assert sum(e.startswith("timelines to ") for e in engines) >= 6, engines
    assert sum(n > 0 for n in handed_over) >= 3, handed_over


@pytest.mark.parametrize("limit", ["MAX_OPEN_POSITIONS", "MAX_ENTRIES_PER_RUN",
                                   "MAX_GROSS_EXPOSURE_USD", "DAILY_LOSS_LIMIT_USD"])
def test_risk_limits_go_through_the_day_loop(limit):
    market, config, settings, _ = draw_case(5)
    limited = load_config({"TICKERS": ",".join(market.symbols), limit: "3"})
    result = run_backtest(market, limited, symbols=market.symbols, settings=settings)
    assert result.engine == f"day loop: risk limits set ({limit.lower()})"


@pytest.mark.parametrize("commission", [0.0, 1.0, 0.35])
def test_cash_settled_in_bulk_is_the_exchange_s_cent_by_cent_rounding(commission):
    """Cash through many fills in bulk equals the exchange's own loop, round(cash - amount -
    commission, 2) fill after fill, bit for bit: amounts of fractional shares, of whole shares
    at whole cents, exact half cents (where the rounding is decided on the binary value) and
    a starting balance that is not whole cents."""
    from backtester.timeline import _settle

    rng = np.random.default_rng(int(commission * 100) + 7)
    n = 30_000
    qty = np.where(rng.random(n) < 0.5, np.round(rng.uniform(0.01, 5, n), 9),
                   rng.integers(1, 20, n).astype(float))
    price = rng.uniform(0.5, 300, n)
    price = np.where(rng.random(n) < 0.2, np.round(price, 4), np.round(price, 2))
    amounts = np.where(rng.random(n) < 0.5, 1.0, -1.0) * qty * price
    halves = rng.random(n) < 0.05
    amounts[halves] = rng.integers(-99_999, 99_999, int(halves.sum())) / 100 + 0.005
    amounts[::997] = 12.345  # a decimal half cent that is not one in binary
    amounts = amounts.tolist()
    cash = expected_cash = 100_000.123456
    expected = []
    for a in amounts:
        expected_cash = round(expected_cash - a - commission, 2)
        expected.append(expected_cash)
    got: list[float] = []
    assert _settle(cash, amounts, commission, got) == expected_cash
    assert got == expected
    assert _settle(cash, [], commission, got) == cash


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_closes_settled_in_bulk_equal_the_close_by_close_loop(seed):
    """The timelines' cash through fills and each day's borrow, SEC and TAF charges at its
    close, settled in bulk, equals the loop that takes them one close after the other with
    `close_cash` (the exchange's order), balance for balance and key for key: days without
    fills, several fills a day, days with several shorts' fees, sub-cent fees, dividends at
    some opens."""
    from backtester.costs import Charges
    from backtester.timeline import _Closes
    from simbroker.costs import CostRates

    rng = np.random.default_rng(seed)
    days, n = 300, 4_000
    fill_day = np.sort(rng.integers(0, days, n))
    amounts = (rng.choice([-1.0, 1.0], n) * rng.uniform(1, 500, n)
               * np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.01, 3, n))).tolist()
    borrow_day = np.sort(rng.integers(0, days, 900))
    scale = 10.0 ** rng.integers(2, 6, 900)  # fees of 2 to 5 decimals
    borrow_cells = (borrow_day, rng.integers(0, 20, 900),
                    np.round(rng.uniform(0.0, 2.0, 900) * scale) / scale)
    sec = np.where(rng.random(days) < 0.6, np.round(rng.uniform(0, 1, days), 2), 0.0)
    taf = np.where(rng.random(days) < 0.6, np.round(rng.uniform(0, 1, days), 2), 0.0)
    nothing = (np.zeros(0, np.int64),) * 2 + (np.zeros(0),) * 2
    # cash dividends at some opens, whole cents, paid (long) or charged (short)
    dividends = np.where(rng.random(days) < 0.1, np.round(rng.uniform(-30, 30, days), 2), 0.0)
    gap = np.ones(days)
    split_at = sorted(rng.choice(np.arange(1, n), 5, replace=False).tolist())

    def run(bulk: bool) -> tuple[list[int], list[float]]:
        charges = Charges(borrow_cells, sec, taf, np.zeros(days), nothing, dividends)
        keys, balances = [-1], [100_000.123]
        closes = _Closes(CostRates(), gap, charges, keys, balances)
        closes.bulk = bulk
        cash, done = 100_000.123, 0
        day_keys = (3 * fill_day + 1).tolist()
        for upto in [*split_at, n]:  # in pieces, as book pays between splits
            cash = closes.pay(cash, amounts[done:upto], day_keys[done:upto], 0.35)
            cash = closes.through(int(fill_day[min(upto, n - 1)]), cash)
            done = upto
        closes.through(days, cash)
        return keys, balances

    bulk_keys, bulk_balances = run(True)
    loop_keys, loop_balances = run(False)
    assert bulk_keys == loop_keys
    assert bulk_balances == loop_balances
    assert len(loop_keys) == 1 + n + days + np.count_nonzero(dividends[1:])  # day 0: none held
