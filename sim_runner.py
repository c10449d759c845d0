"""`trading_bot.py --sim`: daily runs against the embedded local exchange.

The exchange's whole state lives in `<sim-dir>/exchange.json` (and its journal,
`exchange.json.journal`) and the bot's logs in `<sim-dir>/logs`, apart from paper or live
state. Each daily run moves the simulated market to the next trading day at noon New York
time, serves the exchange over real HTTP on a free loopback port, and runs one complete
`run_once` against it, exactly as cron would start the bot; successive invocations continue
one account.

Every change of the exchange (the clock's move, each order, fill and cancel) is appended to
the journal and synced to disk before the bot hears of it (simbroker/journal.py), so the exchange on
disk is never behind the bot's records, whatever signal ends the process: after a SIGKILL or
a SIGTERM the next invocation continues from there, and the bot reconciles as after any
crash. SIGTERM stops the run cleanly (errors.Terminated, exit 143).

Exchange settings come from the environment (or `.env`): SIM_DATA (us-stocks, splits, or a
CSV path), SIM_SPREAD_BPS, SIM_PARTIAL_FILL_PROBABILITY, SIM_SEED, SIM_STARTING_CASH,
SIM_LEGACY_PDT, and SIM_FAULT_RATE: the share of requests that suffer an injected fault (a
429, a 5xx, a reset or a malformed answer, some after the order was placed), seeded by
SIM_SEED and the day.

A day whose run fails at the broker (or at its deadline) does not stop the simulation: cron
would start the next day anyway, and that run reconciles with the broker. The exit code is
then 1. Any other failure (a state file, the lock) stops it at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import console
from alert_messages import trading_day
from alerts import Alerter
from config import Config, Credentials
from cost_booking import simulated_span
from errors import BotError, BrokerError, ConfigError, DeadlineError
from market_calendar import NEW_YORK, MarketCalendar, new_york_noon, nyse
from run_digest import earlier_summaries
from simbroker import Exchange, ExchangeConfig, market_data, price_model, serve
from simbroker.faults import RandomFaults
from simbroker.journal import Journal
from trading_bot import Endpoint, run_once

log = logging.getLogger("bot.sim")
DEFAULT_SIM_START = "2022-06-01"


def exchange_config(env: Mapping[str, str]) -> ExchangeConfig:
    """The local exchange's settings from SIM_* variables, validated like the bot's."""
    values: dict[str, object] = {}
    casts = {"SIM_SPREAD_BPS": ("spread_bps", float),
             "SIM_PARTIAL_FILL_PROBABILITY": ("partial_fill_probability", float),
             "SIM_SEED": ("seed", int), "SIM_STARTING_CASH": ("starting_cash", float),
             "SIM_REJECTION_PROBABILITY": ("rejection_probability", float)}
    for name, (attr, cast) in casts.items():
        raw = env.get(name, "").strip()
        if raw:
            try:
                values[attr] = cast(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a {cast.__name__}") from None
    legacy = env.get("SIM_LEGACY_PDT", "").strip().lower()
    if legacy:
        values["legacy_pdt"] = legacy in ("1", "true", "yes", "on")
    return dataclasses.replace(ExchangeConfig(), **values)


@dataclass(frozen=True)
class SimDay:
    """One simulated day, as the `after_day` hook of `run_simulation` sees it."""

    number: int  # 1 for the first day of this invocation
    exchange: Exchange
    log_dir: Path
    exit_code: int  # the run's: 0, or 1 when it failed at the broker
    faults: Counter[str]  # the faults injected into its requests, by kind


def fault_rate(env: Mapping[str, str]) -> float:
    raw = env.get("SIM_FAULT_RATE", "").strip()
    try:
        rate = float(raw) if raw else 0.0
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"SIM_FAULT_RATE={raw!r} must be a share of requests in [0, 1], "
                          "e.g. 0.05")
    return rate


def run_simulation(config: Config, args: argparse.Namespace, env: Mapping[str, str], *,
                   after_day: Callable[[SimDay], None] | None = None) -> int:
    sim_dir = Path(args.sim_dir)
    state_path = sim_dir / "exchange.json"
    log_dir = Path(args.log_dir) if args.log_dir else sim_dir / "logs"
    price_model.read_library_ahead()  # the exchange's first prices need it
    market = market_data.load(env.get("SIM_DATA", "").strip() or "us-stocks")
    calendar = sim_calendar(market)
    exchange = open_exchange(state_path, market, exchange_config(env), calendar, args.sim_start,
                             create_dir=not args.dry_run)
    # A dry run leaves the simulated clock where it was: nothing of it is saved.
    journal = None if args.dry_run else Journal(state_path).attach(exchange)
    saving = {} if journal is None else {"state_path": str(state_path), "journal": journal}
    # The simulated clock does not move while the bot waits, so waiting for fills is moot.
    config = dataclasses.replace(config, fill_wait_seconds=0.0)
    alerter = Alerter.from_env(env, [exchange.config.key_id, exchange.config.secret_key])
    rate = fault_rate(env)
    failed: list[str] = []
    # Log lines start with the simulated time (setup_logging resets it for the next main).
    console.set_sim_clock(lambda: exchange.now)
    for day in range(args.days):
        if day > 0 or state_path.exists():
            target = next_noon(exchange.now, calendar)
            if target.astimezone(NEW_YORK).date() > market.last_day:
                raise ConfigError(f"the market data {market.name!r} ends on {market.last_day}; "
                                  f"remove {sim_dir} or pick an earlier --sim-start")
            exchange.advance_to(target)
            if journal is not None:
                journal.commit(exchange)  # the day's opens, fills and closes, before the run
        log.info("simulated day %d/%d: %s", day + 1, args.days,
                 exchange.now.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z"))
        today = exchange.now.astimezone(NEW_YORK).date()
        faults = RandomFaults(rate, seed=f"{exchange.config.seed}:{today}")
        code = 0
        # Leaving the block commits what the last requests changed (the log of GETs).
        with serve(exchange, port=0, **saving) as server:
            server.faults = faults
            endpoint = Endpoint(server.trading_url, server.data_url,
                                Credentials(exchange.config.key_id, exchange.config.secret_key))
            try:
                run_once(config, endpoint, log_dir, started=exchange.now,
                         dry_run=args.dry_run, alerter=alerter)
            except (BrokerError, DeadlineError) as exc:
                # The run said why ("run failed: ..."); this line says what happens next.
                log.error("simulated day %s failed at the broker%s; the next day goes on",
                          today, "" if getattr(exc, "logged", False) else f": {exc}")
                failed.append(str(today))
                code = exc.exit_code
            except BotError as exc:
                if not getattr(exc, "logged", False):
                    log.error("simulated run failed: %s", exc)
                exc.logged = True  # type: ignore[attr-defined]  # main does not repeat it
                return exc.exit_code
        if after_day is not None:
            after_day(SimDay(day + 1, exchange, log_dir, code, faults.injected))
    if not args.dry_run:
        log.info("%s", simulation_line(log_dir, args.days, failed, exchange),
                 extra={"headline": True})
    if failed:
        log.error("%d of %d simulated days failed at the broker: %s", len(failed), args.days,
                  ", ".join(failed))
        return 1
    return 0


def sim_calendar(market: market_data.MarketData) -> MarketCalendar:
    """The one calendar of a simulation, shared by the exchange and the bot: the data's years,
    six before them for the bot's look-back (`trading_bot` asks `nyse_around` for at most
    that) and two after: ~2 ms for us-stocks' 19 years."""
    return nyse(date(market.first_day.year - 6, 1, 1), date(market.last_day.year + 2, 12, 31))


def rebuild_simulated(config: Config, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """`--sim --rebuild-state`: the bot's records rebuilt from the saved simulated account, at
    its clock (which does not move)."""
    from trading_bot import rebuild_once

    sim_dir = Path(args.sim_dir)
    state_path = sim_dir / "exchange.json"
    if not state_path.exists():
        raise ConfigError(f"{state_path} does not exist: there is no simulated account to "
                          "rebuild from; run --sim first")
    log_dir = Path(args.log_dir) if args.log_dir else sim_dir / "logs"
    market = market_data.load(env.get("SIM_DATA", "").strip() or "us-stocks")
    exchange = open_exchange(state_path, market, exchange_config(env), sim_calendar(market), None)
    with serve(exchange, port=0) as server:
        endpoint = Endpoint(server.trading_url, server.data_url,
                            Credentials(exchange.config.key_id, exchange.config.secret_key))
        rebuild_once(config, endpoint, log_dir, started=exchange.now, dry_run=args.dry_run)
    return 0


def simulation_line(log_dir: Path, days: int, failed: list[str],
                    exchange: Exchange | None = None) -> str:
    """The simulation in one line: days, failures, equity over them, trades and P&L gross
    and net of the account's costs, reconciled with the equity change when the exchange is
    given (cost_booking.simulated_span), and how to see the report."""
    runs = list(earlier_summaries(log_dir, limit=days))[::-1]  # this invocation's, oldest first
    equities = [r["equity_usd"] for r in runs if isinstance(r.get("equity_usd"), int | float)]
    trades = [t for r in runs for t in r.get("trades") or []]
    pnl = sum(float(t.get("pnl_usd") or 0.0) for t in trades)
    first_day, last_day = (trading_day(runs[0]), trading_day(runs[-1])) if runs else ("", "")
    equity = "equity unknown"
    if equities:
        first_equity = runs[0].get("equity_before_usd") or equities[0]
        change = equities[-1] - first_equity
        equity = (f"equity ${equities[-1]:,.2f} ({'+' if change >= 0 else '-'}"
                  f"${abs(change):,.2f} since ${first_equity:,.2f})")
    span = simulated_span(exchange, log_dir, runs) if exchange is not None else None
    if span is not None:
        equity = f"equity ${exchange.balances().equity:,.2f}"  # type: ignore[union-attr]
        pnl_text = span.text()
    else:
        pnl_text = (f"{len(trades)} trades, realised P&L gross {'+' if pnl >= 0 else '-'}"
                    f"${abs(pnl):,.2f}")
    return (f"simulation done: {days} days {first_day} to {last_day}, {len(failed)} failed; "
            f"{equity}; {pnl_text}; the report: python report.py --log-dir {log_dir} "
            f"(writes {log_dir / 'report.html'})")


def open_exchange(state_path: Path, market: market_data.MarketData, cfg: ExchangeConfig,
                  calendar: MarketCalendar, sim_start: str | None, *,
                  create_dir: bool = True) -> Exchange:
    """Continue the saved exchange, or open a new one at noon of the first simulated day."""
    start = _start_day(sim_start, calendar) if sim_start else None
    if state_path.exists():
        exchange = Exchange.load(state_path, market, calendar=calendar)
        if start is not None:
            if new_york_noon(start) <= exchange.now:
                raise ConfigError(
                    f"--sim-start {start} is not after the saved exchange's clock "
                    f"({exchange.now:%Y-%m-%d}); remove {state_path.parent} to start over")
            day_before = new_york_noon(calendar.sessions_before(start, 1)[0].day)
            if day_before > exchange.now:
                exchange.advance_to(day_before)
        return exchange
    start = start or _start_day(DEFAULT_SIM_START, calendar)
    if not market.first_day < start <= market.last_day:
        raise ConfigError(f"--sim-start {start} is outside the market data {market.name!r} "
                          f"({market.first_day} to {market.last_day})")
    if create_dir:
        state_path.parent.mkdir(parents=True, exist_ok=True)
    return Exchange(market, cfg, now=new_york_noon(start), calendar=calendar)


def _start_day(text: str, calendar: MarketCalendar) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--sim-start {text!r} is not a date; use YYYY-MM-DD") from None
    session = calendar.session_on_or_after(day).day
    if session != day:
        why = "a weekend day" if day.weekday() >= 5 else "a market holiday"
        log.warning("--sim-start %s (%s) is %s, not a trading session; the simulation starts "
                    "at the next session, %s (%s)", day, f"{day:%A}", why, session,
                    f"{session:%A}")
    return session


def next_noon(now: datetime, calendar: MarketCalendar) -> datetime:
    """Noon New York time on the next trading day after `now`'s day."""
    return new_york_noon(calendar.next_session(now.astimezone(NEW_YORK).date()).day)
