"""Once-a-day mean-reversion trading bot for Alpaca.

    python trading_bot.py [--dry-run] [--sim [--days N] [--sim-start YYYY-MM-DD]]
                          [--log-dir DIR] [--live] [--rebuild-state]

Exit codes: 0 done (or the market is closed), 2 configuration error, 3 another run holds the
lock, 4 the account may not trade (blocked, suspended or not ACTIVE: no order was placed),
143 stopped by SIGTERM (the run records what it did and stops; a second SIGTERM while it
stops is ignored), 1 any other failure. The run, step by step, is `run_once` below.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

import broker_calendar
import logger as run_logging
from account_events import (
    attach_asset_ids,
    cash_in_lieu,
    cash_in_lieu_rows,
    closed_outside,
    follow_renames,
    price_outside_closes,
)
from alert_messages import run_line
from alerts import Alerter
from broker import Account, Broker, Clock, Order
from broker_sync import Rebuilt, read_broker, rebuild_records
from config import DATA_URL, Config, Credentials, load_config, load_credentials, read_env
from console import ONCE
from cost_booking import book_run_costs
from data_fetcher import MarketView, fetch_market_view
from errors import (
    AccountRestrictedError,
    BotError,
    BrokerError,
    ConfigError,
    OrderRejectedError,
    StateFileError,
    Terminated,
)
from market_calendar import NEW_YORK, UTC, MarketCalendar, nyse_around
from order_manager import OrderManager, PastExits, client_order_id, past_exits
from order_types import (
    OrderKind,
    PartialFill,
    allows_fractional,
    build_order,
    entry_prices,
    escalated,
)
from position_manager import (
    Holding,
    PendingOrder,
    Reconciliation,
    StateStore,
    fill_record,
    reconcile,
)
from risk import RiskView, entry_allowance
from run_digest import positions_now, previous_equity, trade_digest
from session_guard import SessionGuard
from signal_generator import (
    EXIT_CODES,
    NO_EXIT,
    EntryCandidate,
    ExitReason,
    Thresholds,
    exit_codes,
    held_min_closes,
    held_zscores,
    is_day_trade_blocked,
    limit_price,
    limit_prices,
    plan_entries,
)
from state_files import RunLock, readable_by_others, write_json
from universe import LOOKBACK_SESSIONS, select_universe
from version import VERSION

log = logging.getLogger("bot")


@dataclass
class RunSummary:
    """What one run saw, decided, placed and filled; written to runs/<ts>/summary.json."""

    started_at: str
    outcome: str = "running"
    market_open: bool | None = None
    now: str = ""
    equity_usd: float | None = None
    symbols_evaluated: int = 0
    z_scores: dict[str, float | None] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    exits: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    trades_recorded: int = 0
    notes: list[str] = field(default_factory=list)
    # Held symbols no order could be decided or sent for today, and why (named every day).
    unmanaged: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # Orders decided on and found at the broker already (an earlier run of the day placed
    # them): not sent by this run, so never in `exits` or `entries`.
    found_placed: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    # For the people reading it (alerts, terminal, report): see run_digest.py.
    account: str = ""  # paper, live or simulated
    dry_run: bool = False
    log_path: str = ""
    kill_switch: bool = False
    failure: str = ""  # why the run failed, in words first
    equity_before_usd: float | None = None  # the previous run's
    trades: list[dict[str, Any]] = field(default_factory=list)  # recorded by this run
    positions: list[dict[str, Any]] = field(default_factory=list)  # held after this run
    max_holding_days: int | None = None  # the limit the positions' ages are held against
    # The account's costs (cost_booking.py), in dollars paid (negative: received), by kind:
    # posted since `costs_since` (the previous run), of those not tied to a trade or holding,
    # and booked so far to each position still held.
    costs_since: str = ""
    costs_usd: dict[str, float] = field(default_factory=dict)
    costs_not_booked_usd: dict[str, float] = field(default_factory=dict)
    open_costs_usd: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    trading_url: str
    data_url: str
    creds: Credentials


# -- the daily run ------------------------------------------------------------------------

def run_once(config: Config, endpoint: Endpoint, log_dir: Path, *, started: datetime,
             dry_run: bool = False, calendar: MarketCalendar | None = None,
             alerter: Alerter | None = None) -> RunSummary:
    """One complete daily run, under the lock. Raises BotError subclasses on failure."""
    alerter = alerter or Alerter.from_env({})
    try:
        # A dry run writes no file at all (no run directory, no lock, no state): it only reads.
        with contextlib.nullcontext() if dry_run else RunLock(log_dir / "bot.lock"):
            return _locked_run(config, endpoint, log_dir, started, dry_run, calendar, alerter)
    except StateFileError as exc:
        if not getattr(exc, "logged", False):
            # The lock, the run directory or bot.log could not be made: no summary exists,
            # but the failure is still alerted.
            log.error("run failed before it started: %s", exc)
            exc.logged = True  # type: ignore[attr-defined]
            alerter.run_failed(failure_text(exc))
        raise


def _locked_run(config: Config, endpoint: Endpoint, log_dir: Path, started: datetime,
                dry_run: bool, calendar: MarketCalendar | None,
                alerter: Alerter) -> RunSummary:
    run_dir = log_dir / "runs" / "dry-run" if dry_run else \
        run_logging.run_dir_for(log_dir, started)
    handler = None if dry_run else run_logging.add_run_file(
        run_dir, [endpoint.creds.key_id, endpoint.creds.secret_key])
    summary = RunSummary(started_at=started.isoformat(), dry_run=dry_run,
                         account=account_label(config, endpoint),
                         log_path="" if dry_run else str(run_dir / "bot.log"),
                         kill_switch=(log_dir / "STOP").exists(),
                         equity_before_usd=previous_equity(log_dir, run_dir),
                         max_holding_days=config.max_holding_days)
    note_previous_run(log_dir, run_dir, summary)
    broker = connect(config, endpoint)
    try:
        _daily_run(config, broker, StateStore(log_dir), run_dir, calendar, summary, dry_run)
    except (Exception, Terminated) as exc:
        summary.outcome = "failed"
        summary.errors.append(f"{type(exc).__name__}: {exc}")
        summary.failure = failure_text(exc)
        if not isinstance(exc, (BotError, Terminated)):
            log.exception("unexpected error")
        # Here, while the run's bot.log is still attached: the reason belongs in it.
        log.error("run failed: %s", exc)
        exc.logged = True  # type: ignore[attr-defined]  # main does not repeat it
        raise
    finally:
        summary.requests = broker.requests_made
        add_positions(summary, StateStore(log_dir), config)
        if getattr(handler, "failed", None):
            summary.errors.append(handler.failed)  # type: ignore[union-attr]
        unsaved = None if dry_run else save_summary(run_dir, summary)
        log.log(logging.ERROR if summary.outcome == "failed" else logging.INFO, "%s",
                run_line(summary.__dict__), extra={"headline": True})
        if handler is not None:
            run_logging.remove_handler(handler)
        alerter.run_finished(summary.__dict__)  # a failed run's alerts say what it did
    if unsaved is not None:
        raise unsaved
    return summary


def save_summary(run_dir: Path, summary: RunSummary) -> StateFileError | None:
    """Write summary.json. When it cannot be written (the disk is full), the run is failed -
    its alerts still go out - and the next run reports that this one left no summary."""
    try:
        write_json(run_dir / "summary.json", summary.__dict__)
        return None
    except StateFileError as exc:
        log.error("run failed: %s; the next run reports what this one did", exc)
        summary.errors.append(str(exc))
        if summary.outcome != "failed":
            summary.outcome, summary.failure = "failed", failure_text(exc)
        exc.logged = True  # type: ignore[attr-defined]
        return exc


def note_previous_run(log_dir: Path, run_dir: Path, summary: RunSummary) -> None:
    """Say what the run before this one did when it ended badly: failed, or left no
    summary.json (killed, or its disk was full). Its orders are reconciled below."""
    earlier = run_logging.run_dirs(log_dir, run_dir)
    if not earlier:
        return
    last = earlier[-1]
    try:
        previous = json.loads((last / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict):
        note = (f"the previous run ({last.name}) left no readable summary.json: it was "
                "killed or could not write; what it did at the broker is reconciled now")
    elif previous.get("outcome") in ("failed", "running"):
        placed = [e.get("symbol") for e in previous.get("exits", []) +
                  previous.get("entries", []) if isinstance(e, dict)]
        reason = previous.get("failure") or f"see {last / 'bot.log'}"
        note = (f"the previous run ({last.name}) failed: {reason}; orders it placed: "
                f"{', '.join(map(str, placed)) or 'none'}; reconciled now")
    else:
        return
    log.warning(note)
    summary.notes.append(note)


def account_label(config: Config, endpoint: Endpoint) -> str:
    """paper, live, or simulated when the broker is the local exchange on this machine."""
    host = urllib.parse.urlsplit(endpoint.trading_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "simulated"
    return "paper" if config.alpaca_paper else "live"


def failure_text(exc: BaseException) -> str:
    """Why a run failed, for a person: the message first, the exception's class after."""
    text = str(exc).strip()
    return f"{text} ({type(exc).__name__})" if text else type(exc).__name__


def add_positions(summary: RunSummary, store: StateStore, config: Config) -> None:
    """The positions the run leaves, as its summary and alerts report them."""
    if not summary.now or summary.outcome == "market_closed":
        return
    try:
        holdings = store.load_holdings()
    except Exception as exc:  # a summary must never hide why the run failed
        summary.notes.append(f"positions not listed: {exc}")
        return
    today = datetime.fromisoformat(summary.now).astimezone(NEW_YORK).date()
    summary.positions = positions_now(holdings, summary.prices, today, config.max_holding_days)


def _daily_run(config: Config, broker: Broker, store: StateStore, run_dir: Path,
               calendar: MarketCalendar | None, summary: RunSummary, dry_run: bool) -> None:
    # 1. Connect and decide whether to trade: "now" is the broker's clock.
    clock = broker.clock()
    guard = SessionGuard(broker, clock)  # counts the run's time from this answer on
    now = clock.timestamp
    # Enough years for the z-score window (about 250 sessions a year) and the universe's look-back.
    calendar = calendar or nyse_around(now.astimezone(NEW_YORK).date(),
                                       years_back=2 + config.z_score_window // 250)
    summary.now, summary.market_open = now.isoformat(), clock.is_open
    if not clock.is_open:
        log.info("market closed: %s; nothing to do", closed_reason(clock, calendar))
        summary.outcome = "market_closed"
        return
    today = now.astimezone(NEW_YORK).date()
    calendar = broker_sessions(broker, calendar, today,
                               max(config.z_score_window, LOOKBACK_SESSIONS) + 1)

    # 2. Sync state with the broker, the source of truth.
    account = broker.account()
    summary.equity_usd = account.equity_usd
    holdings, pending, positions, open_orders, history = sync_state(broker, store, run_dir,
                                                                    summary, dry_run, now)
    check_account(account, summary)

    # 3. Market data for the universe and for everything held.
    assets = broker.assets()
    tickers = list(config.tickers)
    if config.universe == "dynamic":
        tickers = select_universe(broker, assets, today=today, calendar=calendar,
                                  n=config.universe_size, cache_dir=store.log_dir / "universe")
    universe = tradable_universe(tickers, assets, holdings, summary)
    view = fetch_market_view(broker, universe, now=now, today=today,
                             window=config.z_score_window, calendar=calendar,
                             max_price_age_seconds=config.max_price_age_seconds,
                             held=set(holdings))
    summary.skipped.update(view.skipped)
    summary.symbols_evaluated = len(view.symbols)

    # 4. Signals: one z-score per symbol, the same definition for exits and entries; a held
    # symbol with a gap in its window gets its z from the closes it has (held_zscores).
    z = dict(zip(view.symbols, held_zscores(view.past_closes, view.prices,
                                            held_min_closes(config.z_score_window)),
                 strict=True))
    summary.z_scores = {s: (None if v != v else round(float(v), 4)) for s, v in z.items()}
    summary.prices = {s: float(p) for s, p in zip(view.symbols, view.prices, strict=True)}
    thresholds = Thresholds.from_config(config)
    trades = store.load_trades()  # read once: the day-trade count and the same-day guard
    pdt_blocked = pdt_check(account, trades, calendar, today)
    orders = OrderManager(broker, store, pending, snapshot_dir=run_dir,
                          retries=config.request_retries, dry_run=dry_run,
                          backoff_seconds=config.retry_backoff_seconds,
                          too_late=guard.too_late)

    # 5. Exits first, then entries.
    session_close = calendar.session(today).close
    place_exits(orders, config, holdings, view, z, thresholds, now, pdt_blocked,
                past_exits(holdings, history), session_close, summary)
    busy = set(holdings) | set(positions) | {o.symbol for o in open_orders} \
        | {p.symbol for p in pending.values()} | exited_today(trades, today)
    allowance = entry_allowance(config, risk_view(account, positions, store.log_dir))
    blocked = allowance.blocked
    if pdt_blocked:
        blocked = ("the account could make a 4th day trade in 5 business days under $25,000 "
                   "equity (FINRA pattern-day-trader rule)")
    if blocked:
        log.warning("no new entries: %s", blocked)
        summary.notes.append(f"no new entries: {blocked}")
    else:
        place_entries(orders, config, account, assets, view, z, busy, thresholds, now,
                      allowance.max_entries, session_close, summary)

    # 6. Fills, then the records; 7. the account's costs, booked to the trades that paid them.
    track_fills(orders, config, store, holdings, run_dir, now, summary, dry_run)
    book_run_costs(broker, store, run_dir, summary, now, dry_run)
    unconfirmed = [e["symbol"] for e in summary.exits + summary.entries
                   if str(e.get("status", "")).startswith("unconfirmed")]
    if unconfirmed:
        # The run went on with the other symbols and saved its records; these orders stay
        # pending and the next run asks the broker for them. Still a failure (exit 1), so
        # that cron and the alerts see it.
        raise BrokerError(f"the broker did not confirm the orders for {', '.join(unconfirmed)}"
                          "; they stay pending and the next run asks the broker for them")
    summary.outcome = "done"


def rebuild_once(config: Config, endpoint: Endpoint, log_dir: Path, *, started: datetime,
                 dry_run: bool = False) -> Rebuilt:
    """`--rebuild-state`: positions.json and pending_orders.json rebuilt from the broker alone
    (broker_sync.rebuild_records), under the run lock. Existing files, damaged or not, are
    kept beside the new ones as `<name>.before-rebuild-<time>`; trades.csv is left as it is.
    Logs what was recovered and what could not be, and writes it to runs/<ts>/rebuild.json."""
    with RunLock(log_dir / "bot.lock"):
        run_dir = run_logging.run_dir_for(log_dir, started)
        handler = run_logging.add_run_file(run_dir, [endpoint.creds.key_id,
                                                     endpoint.creds.secret_key])
        try:
            broker = connect(config, endpoint)
            now = broker.clock().timestamp
            rebuilt = rebuild_records(broker, now)
            for line in rebuilt.recovered:
                log.info("rebuilt: %s", line)
            for line in rebuilt.unexplained:
                log.warning("not rebuilt: %s", line)
            log.info("rebuilt %d holdings and %d pending orders from the broker; %d positions "
                     "or orders could not be explained", len(rebuilt.holdings),
                     len(rebuilt.pending), len(rebuilt.unexplained))
            write_json(run_dir / "rebuild.json", {
                "now": now.isoformat(), "recovered": rebuilt.recovered,
                "not_recovered": rebuilt.unexplained})
            if dry_run:
                log.info("dry run: state files left untouched")
                return rebuilt
            store = StateStore(log_dir)
            stamp = started.astimezone(NEW_YORK).strftime("%Y%m%d-%H%M%S")
            for path in (store.positions_path, store.pending_path):
                if path.exists():
                    kept = path.with_name(f"{path.name}.before-rebuild-{stamp}")
                    path.replace(kept)
                    log.info("%s kept as %s", path.name, kept.name)
            store.save_records(rebuilt.holdings, rebuilt.pending, run_dir)
            return rebuilt
        finally:
            run_logging.remove_handler(handler)


def connect(config: Config, endpoint: Endpoint) -> Broker:
    deadline = time.monotonic() + config.run_deadline_seconds
    return Broker(endpoint.creds, base_url=endpoint.trading_url, data_url=endpoint.data_url,
                  timeout_seconds=config.request_timeout_seconds,
                  retries=config.request_retries, bars_feed=config.bars_feed,
                  price_feed=config.price_feed, deadline=deadline,
                  backoff_seconds=config.retry_backoff_seconds)


def broker_sessions(broker: Broker, calendar: MarketCalendar, today: date,
                    sessions: int) -> MarketCalendar:
    """The local calendar, with the broker's sessions over the last `sessions` sessions to
    today where the two disagree (broker_calendar.py). If the broker's calendar cannot be
    read, the local one is used, with a warning."""
    first = calendar.sessions_before(today, sessions)[0].day
    try:
        served = broker.calendar(first, today)
    except BrokerError as exc:
        log.warning("the broker's calendar could not be read (%s); using the local NYSE "
                    "calendar", exc)
        return calendar
    return broker_calendar.merged(calendar, served, first, today)


def closed_reason(clock: Clock, calendar: MarketCalendar) -> str:
    local = clock.timestamp.astimezone(NEW_YORK)
    session = calendar.session(local.date())
    opens = clock.next_open.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")
    if session is None:
        return f"{local:%A %Y-%m-%d} is not a trading day; next open {opens}"
    if clock.timestamp < session.open:
        return f"before the open; opens {opens}"
    return f"after the close; next open {opens}"


def sync_state(broker: Broker, store: StateStore, run_dir: Path, summary: RunSummary,
               dry_run: bool, now: datetime
               ) -> tuple[dict[str, Holding], dict[str, PendingOrder], dict, list, list]:
    holdings, pending = store.load_holdings(), store.load_pending()
    view = read_broker(broker, holdings, pending, now)
    holdings, pending, renamed = follow_renames(holdings, pending, view.positions, view.history)
    result = reconcile(holdings, pending, view.history, view.positions)
    result = priced_from_activities(broker, result, holdings)
    result = with_cash_in_lieu(broker, result, holdings)
    result = replace(result, holdings=attach_asset_ids(result.holdings, view.positions),
                     notes=renamed + result.notes)
    new_trades = [] if dry_run else store.append_trades(result.trades)
    summary.trades_recorded += len(new_trades)
    summary.trades.extend(trade_digest(new_trades))
    for note in [*view.notes, *result.notes]:
        log.info("reconcile: %s", note)
    summary.notes.extend([*view.notes, *result.notes])
    unmanaged = dict(result.missing)
    for p in result.pending.values():
        if p.symbol in result.holdings and p.symbol not in unmanaged:
            # Its end settles the record; a second order meanwhile could open the other side.
            unmanaged[p.symbol] = (f"{p.intent} order {p.client_order_id} is still working or "
                                   "not yet seen at the broker; no other order until it ends")
    for symbol, why in unmanaged.items():
        log.warning("%s: held, but not managed today: %s", symbol, why)
    summary.unmanaged.update(unmanaged)
    summary.fills.extend(result.fills)  # filled since the last run, after it stopped waiting
    if not dry_run:
        store.save_records(result.holdings, result.pending, run_dir)
    return result.holdings, result.pending, view.positions, view.open_orders, view.history


def check_account(account: Account, summary: RunSummary) -> None:
    """Stop before placing anything when the account may not trade (the records are already
    in line with the broker). Shorting turned off only stops short entries."""
    reason = account.restriction()
    if reason is not None:
        log.error("the account may not trade, no order placed: %s", reason)
        summary.notes.append(f"account restricted: {reason}")
        raise AccountRestrictedError(f"the account may not trade: {reason}")
    if not account.shorting_enabled:
        log.info("shorting is not enabled on the account: no short entries")
        summary.notes.append("shorting not enabled on the account: no short entries")


def priced_from_activities(broker: Broker, result: Reconciliation,
                           before: dict[str, Holding]) -> Reconciliation:
    """Positions closed outside the bot, priced from the account's FILL activities (one
    request, only when there is such a position)."""
    outside = closed_outside(result.trades)
    if not outside:
        return result
    since = min(datetime.fromisoformat(r["entry_time"]) for r in outside)
    fills = broker.activities(["FILL"], since - timedelta(minutes=1))
    trades, notes = price_outside_closes(result.trades, before, fills)
    return replace(result, trades=trades, notes=result.notes + notes)


def with_cash_in_lieu(broker: Broker, result: Reconciliation,
                      before: dict[str, Holding]) -> Reconciliation:
    """A reverse split's fraction paid in cash is a round trip of its own, priced from the
    account's SPLIT activities (one request, only when a split cut a holding)."""
    cuts = cash_in_lieu(before, result.holdings)
    if not cuts:
        return result
    since = min(datetime.fromisoformat(held.entry_time) for held, _ in cuts)
    splits = broker.activities(["SPLIT"], since - timedelta(minutes=1))
    return replace(result, trades=result.trades + cash_in_lieu_rows(cuts, splits))


def tradable_universe(tickers: list[str], assets: Mapping[str, Any],
                      holdings: Mapping[str, Holding], summary: RunSummary) -> list[str]:
    """The universe's tickers the broker trades, plus every symbol the bot holds (a symbol
    that left the universe is still managed until it is closed)."""
    offered = [t for t in tickers if t in assets and assets[t].tradable]
    missing = [t for t in tickers if t not in offered]
    if missing:
        log.info("%d of %d tickers are not tradable at this broker, skipped: %s",
                 len(missing), len(tickers), ", ".join(missing), extra=ONCE)
        summary.skipped.update({t: "not tradable at the broker" for t in missing})
    return sorted(set(offered) | set(holdings))


def exited_today(trades: list[dict[str, str]], today: date) -> set[str]:
    """Symbols the bot closed today. A run never enters a symbol it holds, so a rerun on the
    same day (after a crash, or by hand) must not enter one it has just closed either: it
    would place an order that a single run never places. Closed today: by today's exit
    order, or by any exit that filled today (New York), e.g. an earlier day's order that
    filled at today's open."""
    return {r["symbol"] for r in trades
            if r["exit_client_order_id"] == client_order_id(today, r["symbol"], "exit")
            or _new_york_day(r["exit_time"]) == today}


def _new_york_day(iso_time: str) -> date | None:
    try:
        return datetime.fromisoformat(iso_time).astimezone(NEW_YORK).date()
    except ValueError:
        return None  # blank: an exit whose time is not known


def risk_view(account: Account, positions: Mapping[str, Any], log_dir: Path) -> RiskView:
    gross = sum(p.qty * (p.current_price or p.avg_entry_price) for p in positions.values())
    return RiskView(open_positions=len(positions), gross_exposure_usd=gross,
                    equity_usd=account.equity_usd, last_equity_usd=account.last_equity_usd,
                    kill_switch=(log_dir / "STOP").exists())


def pdt_check(account: Account, trades: list[dict[str, str]], calendar: MarketCalendar,
              today: date) -> bool:
    """True when new day trades could be refused under the pattern-day-trader rule."""
    if account.reports_pdt:
        return is_day_trade_blocked(reports_pdt=True, daytrade_count=account.daytrade_count or 0,
                                    pattern_day_trader=bool(account.pattern_day_trader),
                                    equity_usd=account.equity_usd)
    since = calendar.business_days_back(today, 5)
    # A day trade: entered and exited on the same New York day (holding_days 0).
    own = sum(1 for r in trades
              if r["holding_days"] == "0" and r["exit_time"][:10] >= since.isoformat())
    log.info("account reports no pattern-day-trader fields (Alpaca dropped them on 2026-07-06 "
             "after FINRA retired the rule); local guard on: no same-day exits except "
             "stop-losses; own day trades in the last 5 business days: %d", own, extra=ONCE)
    return False


def place_exits(orders: OrderManager, config: Config, holdings: dict[str, Holding],
                view: MarketView, z: dict[str, float], t: Thresholds, now: datetime,
                pdt_blocked: bool, before: dict[str, PastExits], session_close: datetime,
                summary: RunSummary) -> None:
    today = now.astimezone(NEW_YORK).date()
    held = [h for s, h in sorted(holdings.items()) if s in z and s not in summary.unmanaged]
    for symbol in sorted(set(holdings) - set(z) - set(summary.unmanaged)):
        log.warning("%s: held, but no usable price today; exit decision postponed", symbol)
        summary.unmanaged[symbol] = "no usable price today; exit decision postponed"
    if not held:
        return
    codes = exit_codes(np.array([h.is_long for h in held]), np.array([z[h.symbol] for h in held]),
                       np.array([(today - h.entry_day).days for h in held]),
                       np.array([h.entry_day == today for h in held]), t)
    for h, code in zip(held, codes, strict=True):
        reason = exit_reason(config, int(code), before.get(h.symbol))
        if reason is None:
            continue
        if pdt_blocked and h.entry_day == today:
            log.warning("%s: %s exit today would be a day trade the broker may refuse; held",
                        h.symbol, reason)
            continue
        i = view.index(h.symbol)
        price = float(view.prices[i])
        past = before.get(h.symbol)
        chosen = OrderKind(config.stop_order_type if reason == ExitReason.STOP_LOSS
                           else config.exit_order_type)
        kind = escalated(chosen, past.unfilled_days if past else 0,
                         config.exit_escalate_after_days)
        if kind is not chosen:
            log.info("%s: %s exit escalated to %s after %d unfilled exit day(s)", h.symbol,
                     chosen, kind, past.unfilled_days if past else 0)
        spec = build_order(kind, is_buy=not h.is_long, qty=h.qty, limit=limit_price(price),
                           bid=_quote(view.bids, i, price), ask=float(view.asks[i]),
                           offset_bps=config.limit_offset_bps, now=now,
                           session_close=session_close)
        if spec.note:
            log.info("%s: %s", h.symbol, spec.note)
        intent = PendingOrder(
            client_order_id=client_order_id(today, h.symbol, "exit"), symbol=h.symbol,
            intent="exit", position_side=h.side, order_side="sell" if h.is_long else "buy",
            qty=h.qty, limit_price=spec.limit_price or 0.0, z=z[h.symbol],
            trading_day=str(today), created_at=now.isoformat(), exit_reason=str(reason),
            order_type=spec.type, time_in_force=spec.time_in_force, decision_price=price)
        log.info("%s: exit %s position, z=%.2f, reason %s, %s order", h.symbol, h.side,
                 z[h.symbol], reason, spec.kind)
        if reason == ExitReason.STOP_LOSS:
            log.warning("%s: stop-loss at z=%.2f", h.symbol, z[h.symbol])
        _send(orders, intent, summary.exits, summary)


REST_OF_PARTIAL_EXIT = "rest_of_partial_exit"


def exit_reason(config: Config, code: int, past: PastExits | None) -> str | None:
    """Why a holding is exited today, or None: the exit rules' reason; or, when they give none
    and EXIT_PARTIAL_FILL is finish_next_day, the rest of an exit that filled in part."""
    if code != NO_EXIT:
        return str(EXIT_CODES[code])
    if past is not None and past.partly_filled \
            and config.exit_partial_fill == PartialFill.FINISH_NEXT_DAY:
        return REST_OF_PARTIAL_EXIT
    return None


def _quote(values: np.ndarray, i: int, price: float) -> float:
    return float(values[i]) if len(values) > i else price


def place_entries(orders: OrderManager, config: Config, account: Account, assets: Mapping,
                  view: MarketView, z: dict[str, float], busy: set[str], t: Thresholds,
                  now: datetime, max_entries: int, session_close: datetime,
                  summary: RunSummary) -> None:
    today = now.astimezone(NEW_YORK).date()
    kind = OrderKind(config.entry_order_type)
    chosen = [(i, s) for i, s in enumerate(view.symbols) if s not in busy and s in assets]
    candidates = [
        EntryCandidate(symbol=s, z=z[s], price=float(view.prices[i]), ask=float(view.asks[i]),
                       fractionable=assets[s].fractionable and allows_fractional(kind),
                       shortable=account.shorting_enabled and assets[s].shortable
                       and assets[s].easy_to_borrow)
        for i, s in chosen]
    quotes = {s: (_quote(view.bids, i, float(view.prices[i])), float(view.asks[i]))
              for i, s in chosen}
    limits = entry_prices(kind, np.array([c.z for c in candidates], dtype=float),
                          limit_prices(np.array([c.price for c in candidates], dtype=float)),
                          np.array([quotes[c.symbol][0] for c in candidates], dtype=float),
                          np.array([c.ask for c in candidates], dtype=float),
                          config.limit_offset_bps)
    plans, skipped = plan_entries(
        candidates, t, size_usd=config.position_size_usd,
        cash_usd=account.non_marginable_buying_power_usd,
        buying_power_usd=account.buying_power_usd, max_entries=max_entries, limits=limits)
    for symbol, reason in skipped.items():
        log.info("skip entry %s: %s", symbol, reason)
    summary.skipped.update({s: f"entry: {r}" for s, r in skipped.items()})
    prices = {c.symbol: c.price for c in candidates}
    for plan in plans:
        side = "long" if plan.is_long else "short"
        price = prices[plan.symbol]
        bid, ask = quotes[plan.symbol]
        spec = build_order(kind, is_buy=plan.is_long, qty=plan.qty, limit=limit_price(price),
                           bid=bid, ask=ask, offset_bps=config.limit_offset_bps, now=now,
                           session_close=session_close)
        if spec.note:
            log.info("%s: %s", plan.symbol, spec.note)
        log.info("%s: enter %s, z=%.2f, %g shares, %s order", plan.symbol, side, plan.z,
                 plan.qty, spec.kind)
        intent = PendingOrder(
            client_order_id=client_order_id(today, plan.symbol, side), symbol=plan.symbol,
            intent="entry", position_side=side, order_side="buy" if plan.is_long else "sell",
            qty=plan.qty, limit_price=spec.limit_price or 0.0, z=plan.z,
            trading_day=str(today), created_at=now.isoformat(), order_type=spec.type,
            time_in_force=spec.time_in_force, decision_price=price)
        _send(orders, intent, summary.entries, summary)


def _send(orders: OrderManager, intent: PendingOrder, record: list, summary: RunSummary) -> None:
    """Place one order; a refusal or failure is logged against its symbol and the run goes on."""
    entry = {"symbol": intent.symbol, "side": intent.order_side, "qty": intent.qty,
             "order_type": intent.order_type, "time_in_force": intent.time_in_force,
             "limit_price": intent.limit_price, "decision_price": intent.decision_price,
             "z": round(intent.z, 4), "client_order_id": intent.client_order_id}
    if intent.exit_reason:
        entry["exit_reason"] = intent.exit_reason
    try:
        order = orders.place(intent)
        if order is not None and intent.client_order_id in orders.found_placed:
            _found_placed(intent, order, entry, summary)
            return
        entry["status"] = order.status if order else "dry_run"
    except OrderRejectedError as exc:
        log.warning("%s: order refused: %s", intent.symbol, exc)
        entry["status"] = f"refused: {exc}"
    except BrokerError as exc:
        log.error("%s: order not confirmed (%s); the next run will ask the broker",
                  intent.symbol, exc)
        entry["status"] = f"unconfirmed: {exc}"
        summary.errors.append(f"{intent.symbol}: {exc}")
    record.append(entry)


def _found_placed(intent: PendingOrder, order: Order, entry: dict[str, Any],
                  summary: RunSummary) -> None:
    """An order the run decided on is at the broker already: listed as found, not as sent.
    An exit that ended there leaves the rest of the holding to the next day's run (the
    day's client_order_id is used up; a second order could never be told apart)."""
    entry.update(intent=intent.intent, qty=order.qty, status=order.status,
                 filled_qty=order.filled_qty)
    summary.found_placed.append(entry)
    if intent.intent == "exit" and not order.is_open and order.status != "replaced":
        summary.unmanaged[intent.symbol] = (
            f"today's exit {intent.client_order_id} was placed by an earlier run and ended "
            f"{order.status} ({order.filled_qty:g} of {order.qty:g} filled); not sent again, "
            "the next trading day's run decides")


def track_fills(orders: OrderManager, config: Config, store: StateStore,
                holdings: dict[str, Holding], run_dir: Path, now: datetime,
                summary: RunSummary, dry_run: bool) -> None:
    if dry_run:
        return
    placed = orders.wait_for_fills(now, wait_seconds=config.fill_wait_seconds,
                                   poll_seconds=config.fill_poll_seconds)
    cancel = {intent for intent, policy in (("entry", config.entry_partial_fill),
                                            ("exit", config.exit_partial_fill))
              if policy == PartialFill.CANCEL_REMAINDER}
    if cancel and orders.cancel_remainders(placed, cancel):
        # Read once more: a canceled remainder ends its order, and its fills so far are then
        # a holding or a trade row now, not at the next run.
        placed = orders.broker.orders_since(now - timedelta(minutes=1))
    mine = {o.id for o in orders.placed}
    summary.fills.extend(fill_record(o) for o in placed if o.id in mine and o.filled_qty > 0)
    # `placed` is the state of this run's orders only. A pending record of any other order
    # (still working from an earlier run today, or unconfirmed) is not judged here: reconcile
    # would take its absence for "never reached the broker" and drop it. The next run's sync
    # sees its whole history.
    seen = {o.client_order_id for o in placed}
    judged = {cid: p for cid, p in orders.pending.items() if cid in seen}
    pending = {cid: p for cid, p in orders.pending.items() if cid not in seen}
    if placed:
        result = reconcile(holdings, judged, placed, None)
        recorded = store.append_trades(result.trades)
        summary.trades_recorded += len(recorded)
        summary.trades.extend(trade_digest(recorded))
        holdings = result.holdings
        pending.update(result.pending)
    store.save_records(holdings, pending, run_dir)


# -- entry point --------------------------------------------------------------------------

HELP_EPILOG = """exit codes:
  0  done, or the market is closed (nothing to do)
  1  the run failed (the reason is in the run's bot.log and the failed alert)
  2  configuration error (the message names the setting and the fix)
  3  another run holds logs/bot.lock
  4  the account may not trade (blocked, suspended or not ACTIVE): no order was placed
  143  stopped by SIGTERM (what the run did is recorded; the next run reconciles)

settings come from .env and the environment (README "Configuration"); ALPACA_PAPER=true
(the default) trades the paper account.

examples:
  python trading_bot.py                        # one daily run, paper account
  python trading_bot.py --dry-run              # what it would do; no order, no state written
  python trading_bot.py --sim --days 20 --sim-start 2022-03-01 --sim-dir sim/demo
  python trading_bot.py --live                 # with ALPACA_PAPER=false: real money
  python trading_bot.py --rebuild-state        # positions.json lost: rebuild from the broker"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=HELP_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="compute and log the orders; place none; write no state file "
                             "(with --sim the simulated clock does not move either)")
    parser.add_argument("--sim", action="store_true",
                        help="run against the embedded local exchange (state under --sim-dir)")
    parser.add_argument("--days", type=int, default=1, metavar="N",
                        help="with --sim: number of consecutive daily runs (default 1)")
    parser.add_argument("--sim-start", metavar="YYYY-MM-DD",
                        help="with --sim: first simulated day; a day without a session starts "
                             "at the next session, and says so (default 2022-06-01 for a new "
                             "exchange, else the day after its clock)")
    parser.add_argument("--sim-dir", default="sim", metavar="DIR",
                        help="with --sim: where the exchange state lives (default sim)")
    parser.add_argument("--log-dir", default=None, metavar="DIR",
                        help="state and logs (default logs, or <sim-dir>/logs with --sim)")
    parser.add_argument("--live", action="store_true",
                        help="required to trade a live account (ALPACA_PAPER=false)")
    parser.add_argument("--rebuild-state", action="store_true",
                        help="rebuild positions.json and pending_orders.json from the broker "
                             "alone (when one is lost or damaged), then stop; with --sim, "
                             "from the simulated account")
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error(f"--days {args.days}: give at least 1")
    if not args.sim and (args.days != 1 or args.sim_start):
        given = [o for o, v in (("--days", args.days != 1), ("--sim-start", args.sim_start))
                 if v]
        verb = "applies" if len(given) == 1 else "apply"
        parser.error(f"{' and '.join(given)} only {verb} with --sim; add --sim, or drop it")
    if args.rebuild_state and (args.days != 1 or args.sim_start):
        parser.error("--rebuild-state reads the account as it is: drop --days and --sim-start")
    return args


def endpoint_from_env(config: Config, env: Mapping[str, str], live_flag: bool) -> Endpoint:
    creds = load_credentials(env)
    if not config.alpaca_paper and not live_flag:
        raise ConfigError("ALPACA_PAPER=false selects the live account; add --live to trade "
                          "real money, or set ALPACA_PAPER=true")
    trading_url = env.get("APCA_API_BASE_URL") or config.trading_url
    data_url = env.get("APCA_API_DATA_URL") or DATA_URL
    return Endpoint(trading_url=trading_url, data_url=data_url, creds=creds)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    run_logging.setup_logging()
    previous = _on_sigterm(_terminate)
    try:
        env = read_env(".env", environ)
        # Redaction first: a setting's error may quote its value, and a key may sit in the
        # wrong setting.
        run_logging.setup_logging(secrets=_secrets(env))
        warning = readable_by_others(Path(".env"))
        if warning:
            log.warning(warning)
        config = load_config(env)
        run_logging.setup_logging(config.log_level, _secrets(env))
        if args.sim:
            from sim_runner import rebuild_simulated, run_simulation

            if args.rebuild_state:
                return rebuild_simulated(config, args, env)
            return run_simulation(config, args, env)
        endpoint = endpoint_from_env(config, env, args.live)
        log.info("trading %s account at %s", "paper" if config.alpaca_paper else "LIVE",
                 endpoint.trading_url)
        if args.rebuild_state:
            rebuild_once(config, endpoint, Path(args.log_dir or "logs"),
                         started=datetime.now(UTC), dry_run=args.dry_run)
            return 0
        # The machine's clock only names the run's log directory; every decision uses the
        # broker's clock (GET /v2/clock), read at the start of the run.
        run_once(config, endpoint, Path(args.log_dir or "logs"), started=datetime.now(UTC),
                 dry_run=args.dry_run, alerter=Alerter.from_env(env, _secrets(env)))
        return 0
    except BotError as exc:
        if not getattr(exc, "logged", False):
            log.error("run failed: %s", exc)
        return exc.exit_code
    except Terminated as exc:
        log.error("stopped by SIGTERM: %s; the next run reconciles with the broker", exc)
        return exc.exit_code
    finally:
        _on_sigterm(previous)


def _on_sigterm(handler: Any) -> Any:
    """Install a SIGTERM handler (possible in the main thread only); the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: raise Terminated where the run is (see errors.Terminated), once."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("the run stopped where it was; its records are complete up to there")


def _secrets(env: Mapping[str, str]) -> list[str]:
    names = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY",
             "ALERT_SMTP_PASSWORD", "ALERT_WEBHOOK_URL")
    return [env[n] for n in names if env.get(n)]


if __name__ == "__main__":
    sys.exit(main())
