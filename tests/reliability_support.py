"""Shared by the reliability tests: hand-made scenarios, the bot's environment, a served
exchange per run, and the invariants that say nothing was lost and nothing doubled.

The invariants compare the bot's files with the exchange's own records (the broker is the
source of truth), never with what the bot believes:

* no two orders share a client_order_id, and no two share (trading day, symbol, position
  intent) - the second one holds even if the exchange did not enforce the first;
* every closing order of the bot that ended with fills is in trades.csv exactly once, with
  the broker's quantity and average price, and trades.csv has no other rows;
* positions.json holds exactly the broker's positions, side and quantity. A position whose
  exit order is still working at the broker is recorded until that order ends (its end
  settles the record), so the comparison takes the working exit's fills off the record;
* pending_orders.json holds exactly the broker's open orders (and their ids, once known).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import trading_bot
from market_calendar import NEW_YORK, new_york_noon
from position_manager import StateStore
from simbroker import Exchange, ExchangeConfig, SimServer, serve
from simbroker.market_data import MarketData
from tests.sim_harness import (
    TEST_RATE_LIMIT,
    flat_bars,
    market,
    price_for_z,
    sessions,
    zigzag,
)

START = date(2022, 1, 3)
DAYS = sessions(START, 60)
E = 41  # the first day a signal can fire: 41 sessions of history before it
LEVELS = {"AAA": 100.0, "BBB": 20.0, "CCC": 50.0, "DDD": 80.0}
CLOSING = ("sell_to_close", "buy_to_close")


@dataclass(frozen=True)
class Scenario:
    """Prices per symbol for the days E, E+1, ...: 'z=<value>' is the price with that z
    against the 29 closes before it, None the zigzag's next value (no signal); the runs
    before the one under test; the exchange's settings."""

    name: str
    specs: Mapping[str, tuple[str | None, ...]]
    setup_days: tuple[int, ...]  # indices into DAYS of the runs made beforehand
    day: int  # index into DAYS of the run under test
    exchange: Mapping[str, object] = field(default_factory=dict)

    def market(self) -> MarketData:
        frames = []
        for symbol, level in LEVELS.items():
            closes = zigzag(DAYS[:E], level, level * 1.01)
            for i, spec in enumerate(self.specs.get(symbol, ()), start=E):
                if spec is not None:
                    closes[DAYS[i]] = price_for_z(list(closes.values())[-29:], float(spec[2:]))
                else:
                    closes[DAYS[i]] = level * (1.01 if i % 2 else 1.0)
            for i in range(E, E + 4):  # neutral days after the scripted ones
                closes.setdefault(DAYS[i], level * (1.01 if i % 2 else 1.0))
            frames.append(flat_bars(symbol, closes))
        return market(*frames)

    def exchange_config(self) -> ExchangeConfig:
        # The request budget sends its headers but never binds: the matrices send hundreds of
        # runs to one key (the budget is tested in test_rate_limits.py).
        return ExchangeConfig(**{"spread_bps": 0.0, "rate_limit": TEST_RATE_LIMIT,
                                 **self.exchange})

    @property
    def tickers(self) -> str:
        return ",".join(LEVELS)


# AAA long, BBB short ($20: whole shares), CCC long, DDD never signals.
SCENARIOS = {
    "entries": Scenario("entries", {"AAA": ("z=-2",), "BBB": ("z=2",), "CCC": ("z=-2.5",)},
                        setup_days=(), day=E),
    "exits": Scenario("exits", {"AAA": ("z=-2", "z=0.5"), "BBB": ("z=2", "z=3.5")},
                      setup_days=(E,), day=E + 1),
    "both": Scenario("both", {"AAA": ("z=-2", "z=0.5"), "BBB": (None, "z=2"),
                              "CCC": (None, "z=-2.5")}, setup_days=(E,), day=E + 1),
    "partial": Scenario("partial", {"AAA": ("z=-2", "z=0.5"), "BBB": (None, "z=2"),
                                    "CCC": (None, "z=-2.5")}, setup_days=(E,), day=E + 1,
                        exchange={"partial_fill_probability": 1.0, "seed": 7}),
    # The day after "partial": the sync applies the exit and entries that ended partially
    # filled at yesterday's close, then exits again.
    "partial-next-day": Scenario(
        "partial-next-day", {"AAA": ("z=-2", "z=0.5", "z=0.5"), "BBB": (None, "z=2", "z=0"),
                             "CCC": (None, "z=-2.5", "z=-1")}, setup_days=(E, E + 1),
        day=E + 2, exchange={"partial_fill_probability": 1.0, "seed": 7}),
}


def bot_env(server: SimServer, exchange: Exchange, tickers: str, **extra: str) -> dict[str, str]:
    """The whole environment of a bot run against `server` (nothing from the developer's)."""
    import os

    return {"PATH": os.environ.get("PATH", ""),
            "APCA_API_BASE_URL": server.trading_url, "APCA_API_DATA_URL": server.data_url,
            "ALPACA_API_KEY": exchange.config.key_id,
            "ALPACA_SECRET_KEY": exchange.config.secret_key, "TICKERS": tickers,
            "FILL_WAIT_SECONDS": "0", "REQUEST_RETRIES": "1", "REQUEST_TIMEOUT_SECONDS": "10",
            **extra}


@dataclass
class Prepared:
    """A scenario brought to the moment before the run under test: the exchange's saved
    state and the bot's log directory, to start every kill point from."""

    scenario: Scenario
    market: MarketData
    state: str  # the exchange, as JSON
    logs: Path

    def exchange(self) -> Exchange:
        return Exchange.from_state(json.loads(self.state), self.market)

    @contextlib.contextmanager
    def fresh(self, workdir: Path) -> Iterator[tuple[Exchange, SimServer, Path]]:
        """A new exchange from the saved state, served, and a copy of the log directory."""
        exchange = self.exchange()
        logs = workdir / "logs"
        shutil.copytree(self.logs, logs)
        with serve(exchange, port=0) as server:
            yield exchange, server, logs


def prepare(scenario: Scenario, workdir: Path) -> Prepared:
    """Run the scenario's setup days in this process (unkilled), then stop at noon of the day
    under test."""
    data = scenario.market()
    first = DAYS[scenario.setup_days[0] if scenario.setup_days else scenario.day]
    exchange = Exchange(data, scenario.exchange_config(), now=new_york_noon(first))
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    with serve(exchange, port=0) as server:
        env = bot_env(server, exchange, scenario.tickers)
        for i in scenario.setup_days:
            exchange.advance_to(max(exchange.now, new_york_noon(DAYS[i])))
            code = trading_bot.main(["--log-dir", str(logs)], environ=env)
            assert code == 0, f"setup run of {scenario.name} on {DAYS[i]} exited {code}"
    exchange.advance_to(max(exchange.now, new_york_noon(DAYS[scenario.day])))
    return Prepared(scenario, data, json.dumps(exchange.to_state()), logs)


# -- invariants ---------------------------------------------------------------------------------

def bot_orders(exchange: Exchange) -> list:
    return [o for o in exchange.orders.values() if o.client_order_id.startswith("mr-")]


def check_invariants(exchange: Exchange, log_dir: Path) -> list[str]:
    """Every way the bot's records disagree with the exchange; empty when none."""
    store = StateStore(log_dir)
    orders = bot_orders(exchange)
    problems = _duplicates(list(exchange.orders.values()), orders)
    problems += _trades(orders, store.load_trades())
    problems += _holdings(exchange, orders, store)
    problems += _pending(orders, store)
    return problems


def _duplicates(orders: list, mine: list) -> list[str]:
    problems = []
    cids = Counter(o.client_order_id for o in orders)
    problems += [f"client_order_id {c} used {n} times" for c, n in cids.items() if n > 1]
    keys = Counter((o.submitted_at.astimezone(NEW_YORK).date(), o.symbol, o.intent.value)
                   for o in mine)
    problems += [f"{n} orders for {k}" for k, n in keys.items() if n > 1]
    return problems


def _trades(orders: list, rows: list[dict[str, str]]) -> list[str]:
    problems = []
    by_exit = Counter(r["exit_order_id"] for r in rows)
    closed = [o for o in orders if o.intent.value in CLOSING and o.filled_qty > 0
              and not o.is_open]
    for order in closed:
        count = by_exit.get(order.id, 0)
        if count != 1:
            problems.append(f"exit {order.client_order_id} is in trades.csv {count} times")
            continue
        row = next(r for r in rows if r["exit_order_id"] == order.id)
        if abs(float(row["qty"]) - order.filled_qty) > 1e-5 * max(1.0, order.filled_qty) or \
                abs(float(row["exit_price"]) - order.filled_avg_price) > 1e-3:
            problems.append(f"trade row of {order.client_order_id} says {row['qty']} @ "
                            f"{row['exit_price']}, the broker {order.filled_qty} @ "
                            f"{order.filled_avg_price}")
    known = {o.id for o in closed}
    problems += [f"trades.csv row for unknown exit {r['exit_client_order_id']}" for r in rows
                 if r["exit_order_id"] not in known]
    return problems


def _holdings(exchange: Exchange, orders: list, store: StateStore) -> list[str]:
    problems = []
    holdings = store.load_holdings()
    working_exit = Counter()
    for o in orders:
        if o.is_open and o.intent.value in CLOSING:
            working_exit[o.symbol] += o.filled_qty
    positions = exchange.book.positions
    for symbol in sorted(set(holdings) | set(positions)):
        held, pos = holdings.get(symbol), positions.get(symbol)
        if held is None or pos is None:
            problems.append(f"{symbol}: positions.json has {held and held.qty}, the broker "
                            f"{pos and pos.qty}")
            continue
        expected = held.qty - working_exit[symbol]
        signed = expected if held.is_long else -expected
        if abs(signed - pos.qty) > 1e-7:
            problems.append(f"{symbol}: positions.json {held.side} {held.qty} (working exit "
                            f"filled {working_exit[symbol]}), the broker {pos.qty}")
    return problems


def _pending(orders: list, store: StateStore) -> list[str]:
    problems = []
    pending = store.load_pending()
    open_orders = {o.client_order_id: o for o in orders if o.is_open}
    if set(pending) != set(open_orders):
        problems.append(f"pending_orders.json {sorted(pending)} but open at the broker "
                        f"{sorted(open_orders)}")
    for cid, p in pending.items():
        if cid in open_orders and p.order_id and p.order_id != open_orders[cid].id:
            problems.append(f"{cid}: pending order id {p.order_id}, broker's "
                            f"{open_orders[cid].id}")
    return problems


def post_count(exchange: Exchange) -> int:
    return exchange.requests.count("POST", "/v2/orders")


def record_figure(test: str, **values: object) -> None:
    """A figure for docs/reliability.md: printed (visible with pytest -s) and, when the
    environment names a file in RELIABILITY_FIGURES, appended to it as a JSON line
    (bench/reliability_figures.py collects them)."""
    import os

    line = json.dumps({"test": test, **values}, sort_keys=True)
    print(f"\nFIGURE {line}")
    path = os.environ.get("RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
