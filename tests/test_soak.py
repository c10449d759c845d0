"""Soak: `trading_bot.py --sim --days 250` on the shipped data, with seeded partial fills
and faults injected into 5% of the requests, checked after every simulated day.

The simulation is the one `--sim` runs (`sim_runner.run_simulation`), with a hook after
each day. After every day that ended well, the invariants of tests/reliability_support.py
hold (the bot's records equal the broker's, nothing doubled, every round trip recorded
once); after a day that failed at the broker, the broker-side ones hold and the next day
must end well. Every day, the account's equity change equals the realised plus unrealised
P&L replayed from the exchange's own fills, and the bot's trades.csv adds up to the same
realised P&L.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import logger as run_logging
import trading_bot
from config import load_config
from position_manager import StateStore
from sim_runner import SimDay, run_simulation
from tests.reliability_support import check_invariants, record_figure
from tests.test_faults import check_invariants_after_failure

DAYS = 250
ENV = {"SIM_PARTIAL_FILL_PROBABILITY": "0.3", "SIM_SEED": "11", "SIM_FAULT_RATE": "0.05",
       # The simulated clock stands still while the bot backs off: wait little.
       "RETRY_BACKOFF_SECONDS": "0.01", "LOG_LEVEL": "WARNING"}


def replay_pnl(exchange) -> tuple[Counter[str], float, dict[str, tuple[float, float]]]:
    """Realised P&L by closing order and unrealised P&L, replayed from the exchange's fills
    (average cost), and the positions the replay leads to (symbol -> signed qty, price)."""
    book: dict[str, tuple[float, float]] = {}
    realised: Counter[str] = Counter()
    for fill in exchange.book.fills:
        qty, avg = book.get(fill.symbol, (0.0, 0.0))
        signed = fill.qty if fill.side.value == "buy" else -fill.qty
        if qty == 0 or (qty > 0) == (signed > 0):
            new = qty + signed
            avg = (avg * abs(qty) + fill.price * abs(signed)) / abs(new)
            qty = new
        else:
            closing = min(abs(signed), abs(qty))
            realised[fill.order_id] += closing * (fill.price - avg) * (1 if qty > 0 else -1)
            qty = round(qty + (closing if signed > 0 else -closing), 9)
            rest = abs(signed) - closing
            if rest > 1e-9:
                qty, avg = (rest if signed > 0 else -rest), fill.price
        book[fill.symbol] = (qty, avg)
    open_positions = {s: v for s, v in book.items() if abs(v[0]) > 1e-9}
    prices = exchange.prices()
    unrealised = sum(q * (prices[s] - a) for s, (q, a) in open_positions.items())
    return realised, unrealised, open_positions


@dataclass
class Soak:
    days: int = 0
    failed: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    previous_failed: bool = False
    failed_twice_in_a_row: int = 0
    exchange: object = None

    def after_day(self, day: SimDay) -> None:
        self.days += 1
        self.exchange = day.exchange
        if day.exit_code != 0 and self.previous_failed:
            self.failed_twice_in_a_row += 1
        self.faults.update(day.faults)
        when = day.exchange.now.date().isoformat()
        if day.exit_code == 0:
            found = check_invariants(day.exchange, day.log_dir)
        else:
            self.failed.append(when)
            found = check_invariants_after_failure(day.exchange, day.log_dir)
        found += self.money(day)
        self.problems += [f"{when}: {p}" for p in found]
        self.previous_failed = day.exit_code != 0

    def money(self, day: SimDay) -> list[str]:
        exchange = day.exchange
        by_order, unrealised, replayed = replay_pnl(exchange)
        realised = sum(by_order.values())
        problems = []
        fills = len(exchange.book.fills)
        change = exchange.balances().equity - exchange.config.starting_cash
        # Non-trade activities (the account's borrow, SEC and FINRA fees at each close) move
        # cash.
        costs = sum(activity.net_amount for activity in exchange.activities)
        # Cash settles in whole cents per fill.
        if abs(change - (realised + unrealised + costs)) > 0.005 * fills + 1e-6:
            problems.append(f"equity changed by {change:.4f}, realised {realised:.4f} + "
                            f"unrealised {unrealised:.4f} + costs {costs:.2f}")
        held = {s: p.qty for s, p in exchange.book.positions.items()}
        if {s: round(q, 6) for s, (q, _) in replayed.items()} != \
                {s: round(q, 6) for s, q in held.items()}:
            problems.append(f"positions {held} are not what the fills add up to {replayed}")
        if day.exit_code == 0:
            # An exit still working has its round trip recorded when it ends.
            ended = sum(v for oid, v in by_order.items() if not exchange.orders[oid].is_open)
            rows = StateStore(day.log_dir).load_trades()
            recorded = sum(float(r["pnl_usd"]) for r in rows)
            if abs(recorded - ended) > 0.005 * len(rows) + 1e-6:
                problems.append(f"trades.csv adds up to {recorded:.2f}, the broker's realised "
                                f"P&L of ended orders is {ended:.4f}")
        return problems


def test_250_days_with_partial_fills_and_faults(tmp_path):
    run_logging.setup_logging("WARNING")
    args = trading_bot.parse_args(["--sim", "--days", str(DAYS), "--sim-start", "2021-01-04",
                                   "--sim-dir", str(tmp_path / "sim")])
    soak = Soak()
    code = run_simulation(load_config(ENV), args, ENV, after_day=soak.after_day)
    exchange_orders = list(soak.exchange.orders.values())
    partial = sum(1 for o in exchange_orders if o.fill_count > 1
                  or 0 < o.filled_qty < (o.qty or 0) - 1e-9)
    trades = len(StateStore(tmp_path / "sim" / "logs").load_trades())
    record_figure("soak", days=soak.days, failed_days=len(soak.failed),
                  faults=sum(soak.faults.values()), faults_by_kind=dict(soak.faults),
                  orders=len(exchange_orders), partially_filled_orders=partial,
                  round_trips=trades, problems=len(soak.problems))
    assert soak.days == DAYS
    assert soak.problems == [], "\n".join(soak.problems)
    assert code == (1 if soak.failed else 0)
    assert sum(soak.faults.values()) > 0.03 * DAYS * 10  # ~10+ requests a day, 5% faulted
    assert partial > 0 and trades > 0
    # Every failed day is followed by one that ended well.
    assert soak.failed_twice_in_a_row == 0 and not soak.previous_failed


def test_a_stormy_month_fails_days_and_the_calm_after_it_recovers_everything(tmp_path):
    """A fault on 20% of the requests and a single retry for 30 days: days fail at the
    broker, the simulation goes on; then 5 calm days, continuing the same account, all end
    well with every invariant."""
    run_logging.setup_logging("CRITICAL")
    storm = {**ENV, "SIM_FAULT_RATE": "0.2", "REQUEST_RETRIES": "1", "SIM_SEED": "3"}
    sim_dir = str(tmp_path / "sim")
    soak = Soak()
    args = trading_bot.parse_args(["--sim", "--days", "30", "--sim-start", "2021-03-01",
                                   "--sim-dir", sim_dir])
    assert run_simulation(load_config(storm), args, storm, after_day=soak.after_day) == 1
    stormy = len(soak.failed)
    calm = {**storm, "SIM_FAULT_RATE": "0"}
    args = trading_bot.parse_args(["--sim", "--days", "5", "--sim-dir", sim_dir])
    assert run_simulation(load_config(calm), args, calm, after_day=soak.after_day) == 0
    record_figure("storm", days=soak.days, failed_days=stormy,
                  faults=sum(soak.faults.values()), problems=len(soak.problems))
    assert soak.problems == [], "\n".join(soak.problems)
    assert stormy >= 3 and len(soak.failed) == stormy  # the calm days all ended well


def test_sim_cli_goes_on_after_failed_days_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = trading_bot.main(["--sim", "--days", "3", "--sim-start", "2021-03-01"],
                            environ={**ENV, "SIM_FAULT_RATE": "1", "LOG_LEVEL": "INFO"})
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("the next day goes on") == 3
    assert "3 of 3 simulated days failed at the broker" in err
    assert trading_bot.main(["--sim"], environ={"SIM_FAULT_RATE": "5%"}) == 2
