"""The one door to Alpaca: the only module that imports alpaca_trade_api.

It hands the rest of the bot plain frozen records, with Alpaca's string numbers and timestamps
parsed here, once. Every SDK or transport error is translated into the bot's own exceptions
(errors.py). Three things the SDK (alpaca-trade-api 3.2.0) does that a bot trading real money
must not, and what this module does instead:

* it retries *any* request on 429/504, an order POST included, which can place an order twice:
  its retry is switched off; reads are retried here with backoff, orders never blindly;
* it sets no HTTP timeout, so one hung connection hangs the run: every request gets one;
* it reads the data URL only from the APCA_API_DATA_URL environment variable: the URL is
  passed in instead, so two brokers in one process (tests, --sim) never share a global.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import requests
from alpaca_trade_api.common import URL
from alpaca_trade_api.rest import REST, APIError

from config import Credentials
from errors import (
    AuthError,
    BrokerError,
    DeadlineError,
    NotFoundError,
    OrderRejectedError,
    SubscriptionError,
    TemporaryBrokerError,
)
from market_calendar import NEW_YORK, UTC, Session

log = logging.getLogger("bot.broker")
T = TypeVar("T")

# Alpaca error codes (https://docs.alpaca.markets/docs/orders-at-alpaca, "Order errors").
PDT_REJECTED = 40310100
ACTIVITY_PAGE = 100  # GET /v2/account/activities: page_size "maximum 100" (spec)


@dataclass(frozen=True)
class Clock:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True)
class Account:
    equity_usd: float
    last_equity_usd: float
    cash_usd: float
    buying_power_usd: float
    non_marginable_buying_power_usd: float
    shorting_enabled: bool
    trading_blocked: bool
    # None where the account does not report the field (Alpaca since 2026-07-06).
    daytrade_count: int | None
    pattern_day_trader: bool | None
    status: str = "ACTIVE"
    account_blocked: bool = False
    trade_suspended_by_user: bool = False

    @property
    def reports_pdt(self) -> bool:
        return self.daytrade_count is not None

    def restriction(self) -> str | None:
        """Why the account may not place orders, or None. Alpaca's account object (Trading API
        spec, schema Account): `account_blocked` "the account activity by user is
        prohibited", `trading_blocked` "not allowed to place orders", `trade_suspended_by_user`
        "User setting ... not allowed to place orders", and `status` ACTIVE is "active for
        trading" (any other AccountStatus, e.g. ACCOUNT_UPDATED, may not trade)."""
        if self.account_blocked:
            return ("account_blocked is true: Alpaca prohibits all activity on this account; "
                    "contact Alpaca support")
        if self.trading_blocked:
            return ("trading_blocked is true: Alpaca does not allow this account to place "
                    "orders; see the dashboard or contact Alpaca support")
        if self.trade_suspended_by_user:
            return ("trade_suspended_by_user is true: trading was suspended in the account's "
                    "own settings; turn it back on in the Alpaca dashboard")
        if self.status != "ACTIVE":
            return (f"account status is {self.status}, not ACTIVE: Alpaca does not let it "
                    "trade until the status is ACTIVE again (see the dashboard)")
        return None


@dataclass(frozen=True)
class Asset:
    symbol: str
    tradable: bool
    fractionable: bool
    shortable: bool
    easy_to_borrow: bool  # from borrow_status, or the deprecated field where only it is sent
    # The share of a position's value that must be held as margin, in percent (Alpaca's
    # margin_requirement_long/short strings); None where the broker does not say.
    margin_requirement_long_pct: float | None = None
    margin_requirement_short_pct: float | None = None


@dataclass(frozen=True)
class Position:
    symbol: str
    is_long: bool
    qty: float  # shares, always positive; the side says long or short
    avg_entry_price: float
    current_price: float | None
    asset_id: str = ""  # Alpaca's asset id: the same asset keeps it when its symbol changes


@dataclass(frozen=True)
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    qty: float
    filled_qty: float
    filled_avg_price: float | None
    limit_price: float | None
    status: str
    submitted_at: datetime | None
    filled_at: datetime | None
    updated_at: datetime | None
    type: str = "limit"  # Alpaca's order type and time in force
    time_in_force: str = "day"
    replaced_by: str | None = None  # with status "replaced": the order that carries on
    asset_id: str = ""

    @property
    def is_open(self) -> bool:
        """Whether the order may still fill: any status but the final ones. A status this
        table does not know (one Alpaca adds later) counts as open: its record is kept."""
        return self.status not in FINAL_STATUSES


@dataclass(frozen=True)
class Activity:
    """An account activity (GET /v2/account/activities). A FILL has `side`, `qty` and `price`
    (`time` is its transaction_time); the others have `net_amount` in USD (positive a credit)
    and `time` their created_at (their date at midnight New York time where there is none)."""

    id: str
    activity_type: str  # FILL, DIV, FEE, NC, SPLIT, ...
    time: datetime
    symbol: str | None
    side: str | None
    qty: float | None
    price: float | None
    net_amount: float | None
    order_id: str | None
    sub_type: str | None
    day: date | None = None  # the activity's `date` (New York), where it has one
    description: str | None = None
    # A dividend's "average amount paid per share" (trading-api spec, June 2026, schema
    # `NonTradeActivities`, per_share_amount), where the activity has one.
    per_share_amount: float | None = None


# What each of Alpaca's 17 order statuses (the trading API's OrderStatus enum;
# https://docs.alpaca.markets/docs/orders-at-alpaca#order-lifecycle) means for the bot's
# record of the order. Only a final status ends a record; the README's table says the same.
WORKING, MAY_FILL, FINAL_WITH_FILL, FINAL = ("still working", "may still fill",
                                             "final, with fill", "final")
ORDER_STATUS_MEANING = {
    "pending_new": WORKING, "accepted": WORKING, "new": WORKING,
    "partially_filled": WORKING, "accepted_for_bidding": WORKING, "held": WORKING,
    "pending_replace": WORKING,
    "pending_cancel": MAY_FILL,  # the cancel is not done: fills can still come first
    "stopped": MAY_FILL,  # a trade is guaranteed, but has not happened yet
    "suspended": MAY_FILL,  # not eligible for trading now; may trade when it is again
    "done_for_day": MAY_FILL,  # no more today; a multi-day order goes on tomorrow
    "calculated": MAY_FILL,  # done for the day, settlement calculations still pending
    "filled": FINAL_WITH_FILL,
    "canceled": FINAL, "expired": FINAL,  # with the fills it had, if any
    "rejected": FINAL,  # never filled
    "replaced": FINAL,  # this order ends; its replacement (replaced_by) carries the record
}
FINAL_STATUSES = frozenset(s for s, m in ORDER_STATUS_MEANING.items()
                           if m in (FINAL, FINAL_WITH_FILL))


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: float  # latest trade
    price_time: datetime
    bid: float | None
    ask: float | None


@dataclass(frozen=True)
class Bar:
    day: date  # the session's New York date
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class CorporateAction:
    """A cash dividend (`rate`: dollars per share as of the ex-date) or a split (`rate`: new
    shares per old share), from Alpaca's GET /v1/corporate-actions."""

    kind: str  # "cash_dividend" or "split"
    symbol: str
    ex_date: date
    rate: float
    payable_date: date | None = None


# Requests kept in reserve in each rate-limit window: another client of the same account (a
# dashboard, a second script) may spend one between two of ours.
RATE_RESERVE = 2
RATE_MARGIN_SECONDS = 0.05  # after the advertised reset, so the window has surely turned


class RatePacer:
    """Alpaca's request budget as its answers report it (X-Ratelimit-Remaining and -Reset,
    per API: the Trading API and the Market Data API count apart), and how long to wait
    before the next request so that it is not refused with 429."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._budgets: dict[str, tuple[int, float]] = {}  # api -> (remaining, reset epoch)
        self.waits = 0
        self.waited_seconds = 0.0

    def observe(self, url: str, response: requests.Response) -> None:
        headers = response.headers
        remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
        try:
            budget = (0 if response.status_code == 429 else int(remaining or ""),
                      float(reset or ""))
        except ValueError:
            return  # no headers (or unreadable ones): nothing to pace by
        self._budgets[_api_of(url)] = budget

    def wait_seconds(self, url: str) -> float:
        remaining, reset = self._budgets.get(_api_of(url), (RATE_RESERVE + 1, 0.0))
        if remaining > RATE_RESERVE:
            return 0.0
        return max(0.0, reset - self._clock() + RATE_MARGIN_SECONDS)


def _api_of(url: str) -> str:
    return "data" if "/v2/stocks" in url else "trading"


class _TimeoutSession(requests.Session):
    """A requests session whose every request has a timeout (the SDK sets none) and waits,
    through `pace`, while the request budget is spent."""

    def __init__(self, timeout_seconds: float, pacer: RatePacer,
                 pace: Callable[[float], None]) -> None:
        super().__init__()
        self.timeout_seconds = timeout_seconds
        self.pacer = pacer
        self.pace = pace

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout_seconds)
        wait = self.pacer.wait_seconds(url)
        if wait > 0:
            self.pace(wait)
        response = super().request(method, url, **kwargs)
        self.pacer.observe(url, response)
        return response


class _Rest(REST):
    """The SDK's client with its retry off, a timeout, and an explicit data URL."""

    def __init__(self, creds: Credentials, base_url: str, data_url: str,
                 session: _TimeoutSession):
        super().__init__(key_id=creds.key_id, secret_key=creds.secret_key, base_url=base_url,
                         api_version="v2", raw_data=True)
        self._retry = 0
        self._session = session
        self._data_url = URL(data_url)

    def data_get(self, path, data=None, feed=None, api_version="v1"):
        if feed:
            data = data or {}
            data["feed"] = feed
        return self._request("GET", path, data, base_url=self._data_url, api_version=api_version)


class Broker:
    """Alpaca's trading and market data API as plain records."""

    def __init__(self, creds: Credentials, *, base_url: str, data_url: str,
                 timeout_seconds: float = 30.0, retries: int = 3, bars_feed: str = "sip",
                 price_feed: str = "iex", deadline: float | None = None,
                 backoff_seconds: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.pacer = RatePacer()
        session = _TimeoutSession(timeout_seconds, self.pacer, self._pace)
        self._rest = _Rest(creds, base_url.rstrip("/"), data_url.rstrip("/"), session)
        self._timeout = timeout_seconds
        self._retries = retries
        self._bars_feed = bars_feed
        self.price_feed = price_feed  # may fall back to iex during the run (see quotes)
        self._deadline = deadline  # time.monotonic() value after which nothing is sent
        self._backoff = backoff_seconds
        self._sleep = sleep
        self.requests_made = 0

    # -- transport ------------------------------------------------------------------------

    def _once(self, what: str, call: Callable[[], T]) -> T:
        """One request, its failure translated. Never retried."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise DeadlineError(f"run deadline passed before {what}")
        self.requests_made += 1
        try:
            return call()
        except APIError as exc:
            raise _translate(what, exc.status_code, _int_or_none(exc.code), str(exc)) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise _translate(what, status, None, "no error body") from None
        except requests.Timeout:
            raise TemporaryBrokerError(
                f"{what}: no answer within the timeout of {self._timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise TemporaryBrokerError(f"{what}: connection failed ({type(exc).__name__})") \
                from None
        except ValueError as exc:  # a body that is not JSON
            raise TemporaryBrokerError(f"{what}: malformed response ({exc.__class__.__name__})") \
                from None

    def _read(self, what: str, call: Callable[[], T]) -> T:
        """A read: safe to repeat, so temporary failures are retried with backoff."""
        for attempt in range(self._retries + 1):
            try:
                return self._once(what, call)
            except TemporaryBrokerError as exc:
                if attempt == self._retries:
                    raise
                wait = self.within_deadline(self._backoff * (2 ** attempt))
                log.warning("%s failed (%s); retry %d/%d in %.1f s", what, exc, attempt + 1,
                            self._retries, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")

    def _pace(self, seconds: float) -> None:
        """Wait `seconds` for the request budget to reset; if the run's deadline comes first,
        stop (the next run carries on) rather than spend it waiting."""
        if self._deadline is not None and time.monotonic() + seconds > self._deadline:
            raise DeadlineError(f"the request budget resets in {seconds:.1f} s, after the run "
                                "deadline (RUN_DEADLINE_SECONDS)")
        log.info("request budget nearly spent (X-Ratelimit-Remaining <= %d); waiting %.1f s "
                 "for its reset", RATE_RESERVE, seconds)
        self.pacer.waits += 1
        self.pacer.waited_seconds += seconds
        self._sleep(seconds)

    def within_deadline(self, seconds: float) -> float:
        """`seconds`, cut short so that a wait (a backoff) never runs past the deadline."""
        if self._deadline is None:
            return seconds
        return min(seconds, max(0.0, self._deadline - time.monotonic()))

    # -- trading API ----------------------------------------------------------------------

    def clock(self) -> Clock:
        raw = self._read("GET /v2/clock", self._rest.get_clock)
        return Clock(timestamp=parse_time(raw["timestamp"]), is_open=bool(raw["is_open"]),
                     next_open=parse_time(raw["next_open"]),
                     next_close=parse_time(raw["next_close"]))

    def calendar(self, start: date, end: date) -> list[Session]:
        """The broker's trading sessions from `start` to `end` (GET /v2/calendar)."""
        raw = self._read("GET /v2/calendar", lambda: self._rest.get_calendar(
            start.isoformat(), end.isoformat()))
        return [_session(day) for day in raw]

    def account(self) -> Account:
        raw = self._read("GET /v2/account", self._rest.get_account)
        return _account(raw)

    def assets(self) -> dict[str, Asset]:
        """Active US equities, by symbol: one request for the whole universe."""
        raw = self._read("GET /v2/assets",
                         lambda: self._rest.list_assets(status="active", asset_class="us_equity"))
        assets = {a["symbol"]: _asset(a) for a in raw}
        unknown = sorted(a["symbol"] for a in raw
                         if a.get("shortable") and borrow_status(a) is None)
        if unknown:
            log.warning("%d shortable assets report neither borrow_status nor easy_to_borrow; "
                        "they are not shorted today: %s", len(unknown),
                        ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""))
        return assets

    def positions(self) -> dict[str, Position]:
        """Parsed inside the read: an answer that contradicts itself (a long position with a
        negative qty) is a bad answer, retried like any other, never a position of the other
        side."""
        return self._read("GET /v2/positions", lambda: {
            p["symbol"]: _position(p) for p in self._rest.list_positions()})

    def open_orders(self) -> list[Order]:
        raw = self._read("GET /v2/orders", lambda: self._rest.list_orders(
            status="open", limit=500, direction="asc"))
        return [_order(o) for o in raw]

    def orders_since(self, after: datetime) -> list[Order]:
        """Every order submitted after `after`, all statuses, oldest first (paged by 500)."""
        orders: list[Order] = []
        cursor = after
        while True:
            since = cursor.astimezone(UTC).isoformat().replace("+00:00", "Z")
            raw = self._read("GET /v2/orders", lambda since=since: self._rest.list_orders(
                status="all", after=since, limit=500, direction="asc"))
            page = [_order(o) for o in raw]
            orders.extend(page)
            if len(page) < 500 or page[-1].submitted_at is None:
                break
            if page[-1].submitted_at <= cursor:
                # The broker ignored `after`, or 500 orders share one submitted_at: the next
                # page would be this one again, for ever.
                raise BrokerError(
                    f"order history paging made no progress: a full page of 500 orders ends "
                    f"at {since}, where it started; the broker may ignore the 'after' filter. "
                    "The run stops before it trades or changes any record; report it to the "
                    "broker")
            cursor = page[-1].submitted_at
        unique = {o.id: o for o in orders}
        return sorted(unique.values(), key=lambda o: (o.submitted_at or after, o.id))

    def order_by_client_id(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """The order with this client_order_id, None when the broker has none (404). An answer
        that carries another client_order_id (or another symbol than `symbol`) is not taken
        for the order asked for: it is a bad answer, retried, and the read fails if every
        answer is wrong."""
        def call() -> Order:
            raw = self._rest.get_order_by_client_order_id(client_order_id)
            if not isinstance(raw, dict):
                raise ValueError("an order look-up answered no order object")
            order = _order(raw)
            if order.client_order_id != client_order_id or symbol not in (None, order.symbol):
                raise TemporaryBrokerError(
                    f"GET /v2/orders:by_client_order_id {client_order_id}: the answer is "
                    f"another order ({order.client_order_id} {order.symbol})")
            return order

        try:
            return self._read("GET /v2/orders:by_client_order_id", call)
        except NotFoundError:
            return None

    def submit_order(self, *, symbol: str, side: str, qty: float, order_type: str,
                     time_in_force: str, limit_price: float | None, client_order_id: str,
                     position_intent: str) -> Order:
        """One POST, never retried here: see order_manager for the safe re-send. `limit_price`
        is None for a market order.

        `position_intent` (buy_to_open, sell_to_close, sell_to_open, buy_to_close) makes Alpaca
        refuse an order that would do something else, e.g. a closing sell whose position is
        gone, which without it opens a short. The SDK's submit_order (3.2.0) has no such
        argument, so the body goes through its plain `post`, with the same fields."""
        body = {"symbol": symbol, "qty": format_qty(qty), "side": side, "type": order_type,
                "time_in_force": time_in_force, "client_order_id": client_order_id,
                "position_intent": position_intent}
        if limit_price is not None:
            body["limit_price"] = format_price(limit_price)
        raw = self._once(f"POST /v2/orders {client_order_id}",
                         lambda: self._rest.post("/orders", body))
        return _order(raw)

    def activities(self, types: Iterable[str], after: datetime) -> list[Activity]:
        """Account activities of `types` created after `after`, oldest first, every page
        (Alpaca pages by `page_token`, the id of the last activity of a page, 100 at most)."""
        since = after.astimezone(UTC).isoformat().replace("+00:00", "Z")
        out: list[Activity] = []
        token = None
        while True:
            raw = self._read("GET /v2/account/activities", lambda token=token: (
                self._rest.get_activities(activity_types=list(types), after=since,
                                          direction="asc", page_size=ACTIVITY_PAGE,
                                          page_token=token)))
            page = [_activity(a) for a in raw or []]
            out.extend(page)
            if len(page) < ACTIVITY_PAGE:
                return out
            if page[-1].id == token:
                raise BrokerError("GET /v2/account/activities: the broker answered the same "
                                  f"page again after {token}; stopped paging")
            token = page[-1].id

    def cancel(self, order_id: str) -> None:
        self._once(f"DELETE /v2/orders/{order_id}", lambda: self._rest.cancel_order(order_id))

    # -- market data ----------------------------------------------------------------------

    def daily_bars(self, symbols: Iterable[str], start: date, end: date, *,
                   adjustment: str = "all") -> dict[str, list[Bar]]:
        """Daily bars for every symbol, split- and dividend-adjusted by default (adjustment=all:
        a split must not look like a crash; scripts/download_bars.py may ask for another).
        `limit` is left unset so the SDK follows next_page_token until every symbol's bars
        are in (a small limit would starve the symbols that sort last).

        The range is sent as instants: from the first day's bar time to the last day's (a
        daily bar is stamped at midnight New York time). A bare date would mean the end of
        the last day, which on a free plan must be 15+ minutes in the past for SIP bars; the
        bar's own time is, whenever its session is over."""
        symbols = sorted(symbols)
        if not symbols:
            return {}
        first, last = bar_instant(start), bar_instant(end)

        def fetch() -> list[dict[str, Any]]:
            return list(self._rest.get_bars_iter(
                symbols, "1Day", first, last, adjustment=adjustment, feed=self._bars_feed,
                raw=True))

        out: dict[str, list[Bar]] = {}
        for raw in self._read("GET /v2/stocks/bars", fetch):
            day = _bar_day(raw["t"])
            out.setdefault(raw["S"], []).append(Bar(day=day, open=float(raw["o"]),
                                                    high=float(raw["h"]), low=float(raw["l"]),
                                                    close=float(raw["c"]), volume=float(raw["v"])))
        return out

    def corporate_actions(self, symbols: Iterable[str], start: date,
                          end: date) -> list[CorporateAction]:
        """Cash dividends and forward and reverse splits of `symbols` processed between `start`
        and `end` (Market Data API, GET /v1/corporate-actions; market-data spec, June 2026:
        "The corporate actions are sorted by their `process_date`", start and end inclusive),
        every page, oldest first. A split's rate is new_rate / old_rate."""
        params: dict[str, Any] = {"symbols": ",".join(sorted(symbols)),
                                  "types": "cash_dividend,forward_split,reverse_split",
                                  "start": start.isoformat(), "end": end.isoformat(),
                                  "limit": 1000}
        out: list[CorporateAction] = []
        while True:
            page = self._read("GET /v1/corporate-actions", lambda: self._rest.data_get(
                "/corporate-actions", dict(params), api_version="v1"))
            try:
                out += _corporate_actions(page)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                raise BrokerError(f"GET /v1/corporate-actions: unexpected answer ({exc!r}); "
                                  "expected Alpaca's corporate_actions lists") from None
            token = (page or {}).get("next_page_token")
            if not token:
                return sorted(out, key=lambda a: (a.ex_date, a.symbol, a.kind))
            params["page_token"] = token

    def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Latest trade and quote for the whole universe in one request (snapshots). A
        symbol without a usable latest trade (null, no price or time) is left out; a bid or
        ask of 0 ("no quote") is None. If the plan refuses SIP prices (403), the broker
        falls back to IEX for the rest of the run, with one warning."""
        symbols = sorted(symbols)
        if not symbols:
            return {}
        try:
            raw = self._snapshots(symbols)
        except SubscriptionError as exc:
            if self.price_feed != "sip":
                raise
            log.warning("PRICE_FEED=sip: %s; using IEX prices for this run (set PRICE_FEED=iex "
                        "on a free data plan)", exc)
            self.price_feed = "iex"
            raw = self._snapshots(symbols)
        out: dict[str, Quote] = {}
        for symbol, snap in (raw or {}).items():
            trade = (snap or {}).get("latestTrade") or {}
            quote = (snap or {}).get("latestQuote") or {}
            if trade.get("p") is None or not trade.get("t"):
                continue
            out[symbol] = Quote(symbol=symbol, price=float(trade["p"]),
                                price_time=parse_time(trade["t"]),
                                bid=_positive_or_none(quote.get("bp")),
                                ask=_positive_or_none(quote.get("ap")))
        return out

    def _snapshots(self, symbols: list[str]) -> dict[str, Any]:
        feed = self.price_feed
        return self._read("GET /v2/stocks/snapshots",
                          lambda: self._rest.get_snapshots(symbols, feed=feed))


def _translate(what: str, status: int | None, code: int | None, message: str) -> BrokerError:
    text = f"{what}: HTTP {status} {code or ''} {message}".replace("  ", " ")
    if status == 403 and "subscription does not permit" in message:
        return SubscriptionError(text, status=status, code=code)
    if status in (401,) or (status == 403 and code == 40110000):
        return AuthError(text + " - check ALPACA_API_KEY / ALPACA_SECRET_KEY", status=status,
                         code=code)
    if status == 404:
        return NotFoundError(text, status=status, code=code)
    if status in (403, 422):
        return OrderRejectedError(text, status=status, code=code)
    if status is None or status == 429 or status >= 500 or status == 408:
        return TemporaryBrokerError(text, status=status, code=code)
    return BrokerError(text, status=status, code=code)


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(text: str) -> datetime:
    """Alpaca's RFC 3339 timestamps (nanoseconds allowed) as tz-aware UTC datetimes."""
    cleaned = _FRACTION.sub(r"\1", text.replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without zone from the broker: {text!r}")
    return parsed.astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _bar_day(stamp: str) -> date:
    """A daily bar's session day, from its time (midnight New York time): every symbol's bars
    carry the same few stamps, parsed once."""
    return parse_time(stamp).astimezone(NEW_YORK).date()


def bar_instant(day: date) -> str:
    """A daily bar's time on the wire: midnight New York time of its session day, in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=NEW_YORK)
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_price(price: float) -> str:
    """A limit price on the wire: at most 4 decimals, never in exponent notation."""
    return f"{price:.4f}".rstrip("0").rstrip(".")


def format_qty(qty: float) -> str:
    """A share quantity on the wire: at most 9 decimals (Alpaca's fractional precision)."""
    return f"{qty:.9f}".rstrip("0").rstrip(".")


def _float_or_none(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _positive_or_none(value: Any) -> float | None:
    """A bid or ask: None when absent or not above 0 (Alpaca's 0 means "no quote")."""
    number = _float_or_none(value)
    return number if number is not None and number > 0 else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _account(raw: dict[str, Any]) -> Account:
    # The legacy SDK raises AttributeError for a missing field; with raw dicts we use .get:
    # Alpaca dropped daytrade_count / pattern_day_trader on 2026-07-06.
    dtc = raw.get("daytrade_count")
    pdt = raw.get("pattern_day_trader")
    return Account(
        equity_usd=float(raw["equity"]), last_equity_usd=float(raw.get("last_equity") or 0),
        cash_usd=float(raw["cash"]), buying_power_usd=float(raw["buying_power"]),
        non_marginable_buying_power_usd=float(raw.get("non_marginable_buying_power")
                                              or raw["cash"]),
        shorting_enabled=bool(raw.get("shorting_enabled")),
        trading_blocked=bool(raw.get("trading_blocked")),
        daytrade_count=None if dtc is None else int(dtc),
        pattern_day_trader=None if pdt is None else bool(pdt),
        status=str(raw.get("status") or "missing"),
        account_blocked=bool(raw.get("account_blocked")),
        trade_suspended_by_user=bool(raw.get("trade_suspended_by_user")))


def borrow_status(raw: dict[str, Any]) -> str | None:
    """"easy_to_borrow" or "hard_to_borrow", or None when the asset does not say.

    Alpaca replaced the boolean `easy_to_borrow` by `borrow_status` (the June 2026 spec marks
    the boolean deprecated, sunset 2026-09-22; see docs/alpaca-api.md); an older account may
    still send only the boolean, which is read as the same two values."""
    status = raw.get("borrow_status")
    if status in ("easy_to_borrow", "hard_to_borrow"):
        return status
    legacy = raw.get("easy_to_borrow")
    if isinstance(legacy, bool):
        return "easy_to_borrow" if legacy else "hard_to_borrow"
    return None


def _asset(raw: dict[str, Any]) -> Asset:
    def percent(name: str) -> float | None:
        value = raw.get(name)
        if value in (None, ""):  # an older account: one deprecated number for both sides
            value = raw.get("maintenance_margin_requirement")
        return _float_or_none(value)

    return Asset(symbol=raw["symbol"], tradable=bool(raw.get("tradable")),
                 fractionable=bool(raw.get("fractionable")),
                 shortable=bool(raw.get("shortable")),
                 easy_to_borrow=borrow_status(raw) == "easy_to_borrow",
                 margin_requirement_long_pct=percent("margin_requirement_long"),
                 margin_requirement_short_pct=percent("margin_requirement_short"))


def _session(raw: dict[str, Any]) -> Session:
    """A calendar day: its date, and open and close as HH:MM New York time."""
    day = date.fromisoformat(raw["date"])

    def at(text: str) -> datetime:
        hour, minute = (int(part) for part in text.split(":"))
        return datetime(day.year, day.month, day.day, hour, minute,
                        tzinfo=NEW_YORK).astimezone(UTC)

    return Session(day=day, open=at(raw["open"]), close=at(raw["close"]))


def _position(raw: dict[str, Any]) -> Position:
    qty = float(raw["qty"])
    side = raw.get("side", "long" if qty > 0 else "short")
    # Alpaca: a long position has side "long" and a positive qty, a short one "short" and a
    # negative qty (https://docs.alpaca.markets/reference/getallopenpositions).
    if side not in ("long", "short") or qty == 0 or (qty > 0) != (side == "long"):
        raise ValueError(f"position {raw.get('symbol')}: side {side!r} with qty {qty:g}")
    return Position(symbol=raw["symbol"], is_long=side == "long", qty=abs(qty),
                    avg_entry_price=float(raw["avg_entry_price"]),
                    current_price=_float_or_none(raw.get("current_price")),
                    asset_id=str(raw.get("asset_id") or ""))


def _order(raw: dict[str, Any]) -> Order:
    def when(key: str) -> datetime | None:
        return parse_time(raw[key]) if raw.get(key) else None

    return Order(id=raw["id"], client_order_id=raw["client_order_id"], symbol=raw["symbol"],
                 side=raw["side"], qty=float(raw.get("qty") or 0),
                 filled_qty=float(raw.get("filled_qty") or 0),
                 filled_avg_price=_float_or_none(raw.get("filled_avg_price")),
                 limit_price=_float_or_none(raw.get("limit_price")), status=raw["status"],
                 submitted_at=when("submitted_at"), filled_at=when("filled_at"),
                 updated_at=when("updated_at"), type=raw.get("type") or "limit",
                 time_in_force=raw.get("time_in_force") or "day",
                 replaced_by=raw.get("replaced_by") or None,
                 asset_id=str(raw.get("asset_id") or ""))


def _activity(raw: dict[str, Any]) -> Activity:
    if raw.get("transaction_time"):
        when = parse_time(raw["transaction_time"])
    elif raw.get("created_at"):
        when = parse_time(raw["created_at"])
    else:
        day = date.fromisoformat(str(raw["date"])[:10])
        when = datetime.combine(day, datetime.min.time(), tzinfo=NEW_YORK).astimezone(UTC)
    return Activity(id=str(raw["id"]), activity_type=str(raw["activity_type"]), time=when,
                    symbol=raw.get("symbol"), side=raw.get("side"),
                    qty=_float_or_none(raw.get("qty")), price=_float_or_none(raw.get("price")),
                    net_amount=_float_or_none(raw.get("net_amount")),
                    order_id=raw.get("order_id"), sub_type=raw.get("activity_sub_type"),
                    day=date.fromisoformat(str(raw["date"])[:10]) if raw.get("date") else None,
                    description=raw.get("description"),
                    per_share_amount=_float_or_none(raw.get("per_share_amount")))


def _corporate_actions(page: Any) -> list[CorporateAction]:
    actions = (page or {}).get("corporate_actions") or {}
    out = []
    for raw in actions.get("cash_dividends") or []:
        paid = raw.get("payable_date")
        out.append(CorporateAction("cash_dividend", raw["symbol"],
                                   date.fromisoformat(raw["ex_date"]), float(raw["rate"]),
                                   date.fromisoformat(paid) if paid else None))
    for key in ("forward_splits", "reverse_splits"):
        for raw in actions.get(key) or []:
            out.append(CorporateAction("split", raw["symbol"],
                                       date.fromisoformat(raw["ex_date"]),
                                       float(raw["new_rate"]) / float(raw["old_rate"])))
    return out
