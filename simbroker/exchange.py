"""The local exchange: one Alpaca account, its orders and the simulated clock.

The clock is frozen unless moved. `advance_to(when)` walks session by session and processes
everything in between in time order: at each open, splits take effect (Alpaca cancels the
symbol's open orders) and `accepted` orders become `new`; during a session, open orders fill
through `matching` (first touch first); at each close, DAY orders still open expire and the
day's equity is recorded as `last_equity`. Weekends, holidays and early closes come from
`market_calendar`.

Not thread-safe: the HTTP server holds one lock around every call.
"""

from __future__ import annotations

import bisect
import heapq
import random
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from os import PathLike
from typing import Any

from market_calendar import NEW_YORK, UTC, MarketCalendar, Session, nyse
from simbroker import (
    account,
    corporate,
    errors,
    execution,
    matching,
    persistence,
    restrictions,
    state,
)
from simbroker.activities import Activity, record_activity
from simbroker.bars import BarStore
from simbroker.book import Book
from simbroker.costs import CostRates, borrow_fee, cash_interest, day_sale_fees
from simbroker.journal import Journal
from simbroker.market_data import MarketData
from simbroker.orders import OrderRequest, parse_order_request
from simbroker.prices import MarketView, Moment
from simbroker.records import (
    FILLABLE_STATUSES,
    ExchangeConfig,
    Order,
    Side,
    Status,
    TimeInForce,
    asset_id,
)
from simbroker.requestlog import RequestLog
from simbroker.restrictions import Restrictions
from simbroker.rules import check_order

_COST_NAMES = {"borrow": "stock borrow fee", "sec": "SEC Section 31 fee",
               "taf": "FINRA trading activity fee", "cash_interest": "interest on cash"}
# Alpaca's ActivitySubType (trading-api spec, June 2026): FEE "REG" (regulatory fee), "TAF"
# (trading activity fee), INT "CDT" (credit interest); it has none for borrow fees.
_COST_SUB_TYPES = {"sec": "REG", "taf": "TAF", "cash_interest": "CDT"}
PDT_WINDOW_SESSIONS = 5  # FINRA: 4+ day trades within 5 business days make a pattern
_TICK = timedelta(microseconds=1)  # the step that keeps order timestamps unique


class Exchange:
    """An Alpaca account on simulated market data. See the module docstring."""

    def __init__(self, market_data: MarketData, config: ExchangeConfig | None = None, *,
                 now: datetime, calendar: MarketCalendar | None = None) -> None:
        if now.tzinfo is None:
            raise ValueError(f"now={now!r} has no time zone; pass a tz-aware datetime, e.g. "
                             "market_calendar.new_york_noon(day)")
        self.config = config or ExchangeConfig()
        self.cost_rates = CostRates(enabled=self.config.charge_costs,
                                    borrow_rate=self.config.borrow_rate,
                                    cash_interest_rate=self.config.cash_interest_rate)
        self.market_data = market_data
        self.calendar = calendar or nyse()
        self.view = MarketView(market_data, self.calendar, self.config.spread_bps)
        self.bar_store = BarStore(self.view)
        self.requests = RequestLog()
        self._now = now.astimezone(UTC)
        self._rng = random.Random(self.config.seed)
        self.account_id = self._new_uuid()
        self.created_at = self._now
        self._fresh_account()

    def _fresh_account(self) -> None:
        self.book = Book(cash=self.config.starting_cash)
        self.orders: dict[str, Order] = {}
        self._by_client_id: dict[str, str] = {}
        self.index_orders()
        self._seq = 0
        self._last_stamp = self._now - _TICK
        self.last_equity = self.config.starting_cash
        self.last_maintenance_margin = 0.0
        self.balance_asof = self.calendar.sessions_before(self._trading_day(), 1)[0].day
        self.activities: list[Activity] = []  # non-trade activities (see activities.py)
        self.activity_seq = 0
        self.restrictions = Restrictions()
        self.renamed: dict[str, str] = {}  # new symbol -> asset id it inherited (corporate.py)
        self.retired: dict[str, str] = {}  # old symbol -> its new symbol
        # Cash dividends gone ex, to be paid at the open of their pay date (corporate.py).
        self.dividends_due: list[dict[str, Any]] = []

    # -- clock --------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self._now

    def moment(self) -> Moment:
        return self.view.moment(self._now)

    def advance_to(self, when: datetime) -> None:
        """Move the clock to `when`, processing every open, fill and close on the way."""
        if when.tzinfo is None:
            raise ValueError(f"advance_to({when!r}): pass a tz-aware datetime")
        when = when.astimezone(UTC)
        self._check_target(when)
        while self._now < when:
            session = self.calendar.current_or_next_open(self._now)
            if session.open > when:
                break
            if self._now < session.open:
                self._now = session.open
                self._at_open(session)
            stop = min(when, session.close)
            for order in self._due(stop):
                self._accept(order, session, max(self._now, order.live_from or self._now,
                                                 order.submitted_at))
            self._fill_stopped(session, self._now)
            self._trade(session, self._now, stop)
            self._now = stop
            if stop == session.close:
                self._at_close(session)
        self._now = when

    def _check_target(self, when: datetime) -> None:
        """Refuse a target the clock cannot reach before anything moves: the walk would stop
        partway at the end of the calendar and leave a clock no later call can use."""
        if when < self._now:
            raise ValueError(f"the clock never goes back: it is {self._now.isoformat()}, "
                             f"{when.isoformat()} is earlier")
        try:
            self.calendar.current_or_next_open(when)
        except ValueError as exc:
            raise ValueError(f"cannot move the clock to {when.isoformat()}: {exc}") from None

    def advance_seconds(self, seconds: float) -> None:
        self.advance_to(self._now + timedelta(seconds=seconds))

    def _trading_day(self) -> date:
        """The session day orders placed now would trade on (today's, or the next one)."""
        return self.calendar.current_or_next_open(self._now).day

    def _stamp(self) -> datetime:
        """Now, made unique per order event: Alpaca's timestamps differ by nanoseconds, and a
        client paging with the exclusive `after` filter must not lose orders that a frozen
        clock would otherwise stamp identically."""
        self._last_stamp = max(self._now, self._last_stamp + _TICK)
        return self._last_stamp

    # -- session events -----------------------------------------------------------------------

    def _at_open(self, session: Session) -> None:
        at = self.view.moment(session.open)
        for split in self.market_data.splits():
            if split.ex_date != session.day:
                continue
            # GTC limit orders are adjusted, the others canceled (see corporate.py).
            corporate.adjust_open_orders(self, split, session.open)
            corporate.apply_split(self, split, self.view.previous_close(split.symbol, at))
        previous = self.calendar.sessions_before(session.day, 1)[0].day
        corporate.pay_dividends(self, self.market_data.dividends_going_ex(previous, session.day),
                                session.day)
        for order in self._open_orders():
            if order.status is Status.ACCEPTED:
                self._update(self._accepted_or_rejected(order, session.open))
        self._auction(session, TimeInForce.OPG, session.open)
        for order in self._open_orders():
            if order.time_in_force in execution.IMMEDIATE:  # queued outside the session
                self._execute_immediately(order, session, session.open)

    def _trade(self, session: Session, start: datetime, end: datetime) -> None:
        """Fill open orders in [start, end] of `session`, earliest first."""
        bars = {}
        heap: list[tuple[tuple[datetime, int], matching.Candidate]] = []
        for order in self._open_orders():
            if order.status not in FILLABLE_STATUSES:
                continue
            if order.symbol not in bars:
                bars[order.symbol] = self.market_data.bar(order.symbol, session.day)
            self._push(heap, order, bars[order.symbol], session, start, end)
        while heap:
            _, candidate = heapq.heappop(heap)
            order = self.orders[candidate.order_id]
            if not order.is_open:
                continue
            order = self._execute(order, candidate.price, candidate.when, session.day)
            if order.is_open:
                self._push(heap, order, bars[order.symbol], session, start, end)

    def _push(self, heap, order: Order, bar, session: Session, start: datetime,
              end: datetime) -> None:
        candidate = matching.first_fill(order, bar, session, start, end, self.config.spread_bps)
        if candidate is not None:
            heapq.heappush(heap, (candidate.key(), candidate))

    def _at_close(self, session: Session) -> None:
        self._auction(session, TimeInForce.CLS, session.close)
        for order in self._open_orders():
            if order.time_in_force is TimeInForce.DAY and order.status is not Status.ACCEPTED:
                self._finish(order, Status.EXPIRED, session.close)
        self._charge_costs(session)
        balances = self.balances()
        self.last_equity = balances.equity
        self.last_maintenance_margin = balances.maintenance_margin
        self.balance_asof = session.day

    # -- costs ----------------------------------------------------------------------------------

    def _charge_costs(self, session: Session) -> None:
        """At the close: the day's borrow fees on shorts, SEC and FINRA fees on its sales,
        interest on cash (simbroker/costs.py, where the rules and their sources are)."""
        rates = self.cost_rates
        if not rates.enabled:
            return
        # The day's sales, from the book's fills (so nothing else needs saving).
        sales = [(f.qty * f.price, f.qty) for f in self.book.fills
                 if f.side is Side.SELL and f.time.astimezone(NEW_YORK).date() == session.day]
        days = (self.calendar.next_session(session.day).day - session.day).days
        for symbol, position in sorted(self.book.positions.items()):
            if position.qty < 0:
                bar = self.market_data.bar(symbol, session.day)
                price = bar.close if bar is not None else self.view.previous_close(
                    symbol, self.view.moment(session.close))
                if price is not None:
                    self._post_cost("FEE", "borrow", symbol,
                                    float(borrow_fee(position.qty, price, days, rates)))
        if sales:
            sec, taf = day_sale_fees([p for p, _ in sales], [q for _, q in sales], rates)
            self._post_cost("FEE", "sec", None, sec)
            self._post_cost("FEE", "taf", None, taf)
        interest = float(cash_interest(self.book.cash, days, rates))
        self._post_cost("INT", "cash_interest", None, -interest)

    def _post_cost(self, activity_type: str, kind: str, symbol: str | None,
                   amount_usd: float) -> None:
        """Take a cost (or, negative, a credit) from cash as an account activity (FEE, INT):
        activities.record_activity books it into cash and keeps it."""
        if amount_usd == 0:
            return
        record_activity(self, activity_type, net_amount=round(-amount_usd, 2), symbol=symbol,
                        description=_COST_NAMES[kind], sub_type=_COST_SUB_TYPES.get(kind))

    # -- fills ----------------------------------------------------------------------------------

    def _execute(self, order: Order, price: float, when: datetime, day: date) -> Order:
        qty = matching.fill_qty(order, price, seed=self.config.seed,
                                probability=self.config.partial_fill_probability)
        self.book.apply_fill(order, qty, price, when, day)
        filled = round(order.filled_qty + qty, 9)
        paid = (order.filled_avg_price or 0.0) * order.filled_qty + price * qty
        total = order.qty if order.qty is not None else filled
        done = filled >= total - 1e-9
        delay = timedelta(seconds=self.config.partial_fill_delay_seconds)
        updated = replace(order, filled_qty=filled, filled_avg_price=paid / filled,
                          status=Status.FILLED if done else
                          Status.PARTIALLY_FILLED, filled_at=when if done else None,
                          updated_at=when, fill_count=order.fill_count + 1,
                          live_from=None if done else when + delay)
        self._update(updated)
        return updated

    def _auction(self, session: Session, time_in_force: TimeInForce, when: datetime) -> None:
        """The opening or closing auction: on-open / on-close orders cross at the bar's open
        or close, and what is left of them is canceled (see simbroker.execution)."""
        for order in self._open_orders():
            if order.time_in_force is not time_in_force or order.status not in FILLABLE_STATUSES:
                continue
            bar = self.market_data.bar(order.symbol, session.day)
            price = execution.auction_price(order, bar)
            if price is not None:
                order = self._execute(order, price, when, session.day)
            if order.is_open:
                self._finish(order, Status.CANCELED, when)

    def _execute_immediately(self, order: Order, session: Session, when: datetime) -> Order:
        """An IOC or FOK order: what is marketable now fills, the rest is canceled; a FOK
        order that cannot fill whole does not fill at all."""
        bar = self.market_data.bar(order.symbol, session.day)
        candidate = matching.first_fill(order, bar, session, when, when, self.config.spread_bps)
        if candidate is not None and order.time_in_force is TimeInForce.FOK:
            qty = matching.fill_qty(order, candidate.price, seed=self.config.seed,
                                    probability=self.config.partial_fill_probability)
            if order.qty is not None and qty < order.remaining_qty - 1e-9:
                candidate = None
        if candidate is not None:
            order = self._execute(order, candidate.price, candidate.when, session.day)
        if order.is_open:
            order = self._finish(order, Status.CANCELED, self._stamp())
        return order

    def _fill_if_marketable(self, order: Order, session: Session, when: datetime) -> Order:
        """An order going live during the session fills at once if marketable."""
        bar = self.market_data.bar(order.symbol, session.day)
        candidate = matching.first_fill(order, bar, session, when, when, self.config.spread_bps)
        if candidate is None:
            return order
        return self._execute(order, candidate.price, candidate.when, session.day)

    def _go_live(self, order: Order, session: Session, when: datetime) -> Order:
        """An order that became `new` during the session: an IOC/FOK order ends at once, any
        other fills at once if marketable and otherwise rests."""
        if order.time_in_force in execution.IMMEDIATE:
            return self._execute_immediately(order, session, when)
        if execution.trades_continuously(order):
            return self._fill_if_marketable(order, session, when)
        return order

    # -- the asynchronous lifecycle -------------------------------------------------------------

    def settle(self) -> None:
        """Accept (or reject) the orders whose acceptance is due by now, and fill those that
        are marketable: what happens at Alpaca between an order's POST answer and the next
        request. The server calls it before answering each request."""
        at = self.moment()
        if at.session is None or not at.is_open:
            return
        for order in self._due(self._now):
            when = max(self._now, order.submitted_at)
            order = self._accept(order, at.session, when)
            if order.status is Status.NEW:
                self._go_live(order, at.session, when)

    def _fill_stopped(self, session: Session, when: datetime) -> None:
        """A `stopped` order's trade is guaranteed at its stated price (here its limit, or the
        quote for a market order): it fills at the first moment the clock moves in a session
        (a model: Alpaca does not say when the guaranteed trade happens)."""
        for order in self._open_orders():
            if order.status is not Status.STOPPED:
                continue
            at = max(when, order.updated_at)
            price = order.limit_price
            if price is None:
                quote = self.view.quote(order.symbol, self.view.moment(at))
                if quote is None:
                    continue  # no trade in the symbol yet today
                price = quote.ask if order.side is Side.BUY else quote.bid
            self._execute(replace(order, live_from=None), float(price), at, session.day)

    def _due(self, until: datetime) -> list[Order]:
        # Among the open orders only (an index): settle() asks before every request.
        return sorted((o for o in self._open_orders() if o.status is Status.PENDING_NEW
                       and (o.live_from or o.submitted_at) <= until), key=lambda o: o.seq)

    def _accept(self, order: Order, session: Session, when: datetime) -> Order:
        """A pending_new order accepted (new, live from `when`) or rejected. An IOC/FOK order
        ends at its acceptance; any other fills through matching from then on."""
        order = self._accepted_or_rejected(order, when)
        self._update(order)
        if order.status is Status.NEW and order.time_in_force in execution.IMMEDIATE:
            order = self._execute_immediately(order, session, when)
        return order

    def _accepted_or_rejected(self, order: Order, when: datetime) -> Order:
        probability = self.config.rejection_probability
        draw = random.Random(f"{self.config.seed}:reject:{order.id}").random()
        if probability > 0 and draw < probability:
            return replace(order, status=Status.REJECTED, updated_at=when, failed_at=when)
        return replace(order, status=Status.NEW, updated_at=when, live_from=when)

    def set_order_status(self, order_id: str, status: Any) -> Order:
        """`POST /_sim/orders/{id}/status`: put an open order into any status of Alpaca's
        enum but the filled ones (fills come from the market). `replaced` creates the
        replacement order (the rest of the quantity, same terms, a new id and
        client_order_id), as a cancel-replace or a corporate action does at Alpaca."""
        order = self.get_order(order_id)
        try:
            target = Status(status)
        except ValueError:
            raise errors.unprocessable(f"status {status!r} is invalid; use one of "
                                       f"{', '.join(s.value for s in Status)}") from None
        if target in (Status.FILLED, Status.PARTIALLY_FILLED):
            raise errors.unprocessable("fills come from the market: move the clock instead")
        if not order.is_open:
            raise errors.unprocessable(f'order is already in "{order.status.value}" state')
        when = self._stamp()
        if target in (Status.CANCELED, Status.EXPIRED):
            return self._finish(order, target, when)
        if target is Status.REPLACED:
            return self._replace(order, when)
        changed = replace(order, status=target, updated_at=when,
                          failed_at=when if target is Status.REJECTED else order.failed_at)
        self._update(changed)
        return changed

    def _replace(self, order: Order, when: datetime) -> Order:
        self._seq += 1
        at = self.moment()
        replacement = replace(
            order, id=str(self._new_uuid()), client_order_id=str(self._new_uuid()),
            seq=self._seq, qty=order.remaining_qty if order.qty is not None else None,
            status=Status.NEW if at.is_open else Status.ACCEPTED, created_at=when,
            submitted_at=when, updated_at=when, filled_qty=0.0, filled_avg_price=None,
            filled_at=None, live_from=None, fill_count=0, replaces=order.id,
            replaced_by=None, replaced_at=None)
        self._update(replacement)
        self._by_client_id[replacement.client_order_id] = replacement.id
        old = replace(order, status=Status.REPLACED, updated_at=when, replaced_at=when,
                      replaced_by=replacement.id)
        self._update(old)
        return old

    # -- orders ---------------------------------------------------------------------------------

    def submit_order(self, body: Any) -> Order:
        """POST /v2/orders: validate `body` (a decoded JSON object) and place the order.
        Raises ApiError with Alpaca's status and code when Alpaca would refuse it."""
        request = parse_order_request(body)
        restrictions.check_can_trade(self)
        corporate.check_not_retired(self, request.symbol)
        execution.check_submission(request.time_in_force, self._now, self.calendar)
        at = self.moment()
        client_id = request.client_order_id or str(self._new_uuid())
        # Alpaca: client_order_id must be unique for the account, forever.
        if client_id in self._by_client_id:
            raise errors.unprocessable(f"client_order_id must be unique: {client_id!r} was "
                                       "used by an earlier order; send a new one")
        decision = check_order(self, request, at)
        stamp = self._stamp()
        self._seq += 1
        status = Status.NEW if at.is_open else Status.ACCEPTED
        if at.is_open and self.config.async_acceptance:
            status = Status.PENDING_NEW  # accepted after the answer: see settle()
        delay = timedelta(seconds=self.config.acceptance_delay_seconds)
        order = Order(
            id=str(self._new_uuid()), client_order_id=client_id, seq=self._seq,
            symbol=request.symbol, asset_id=self.asset_id_of(request.symbol), side=request.side,
            type=request.type, time_in_force=request.time_in_force, qty=request.qty,
            notional=request.notional, limit_price=request.limit_price,
            intent=decision.intent, reserve_price=decision.reserve_price, status=status,
            created_at=stamp, submitted_at=stamp, updated_at=stamp,
            # Due once the clock reaches it (the stamp may run microseconds ahead of a
            # frozen clock, see _stamp).
            live_from=self._now + delay if status is Status.PENDING_NEW else None)
        self._update(order)
        self._by_client_id[client_id] = order.id
        if status is Status.NEW:
            assert at.session is not None
            order = self._go_live(order, at.session, order.submitted_at)
        return order

    def cancel_order(self, order_id: str) -> Order:
        order = self.get_order(order_id)
        if not order.is_open:
            raise errors.unprocessable(f'order is already in "{order.status.value}" state')
        return self._finish(order, Status.CANCELED, self._stamp())

    def cancel_all_orders(self) -> list[Order]:
        stamp = self._stamp()
        return [self._finish(o, Status.CANCELED, stamp) for o in self._open_orders()]

    def get_order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise errors.not_found(f"order not found for {order_id}")
        return order

    def get_order_by_client_id(self, client_order_id: str) -> Order:
        order_id = self._by_client_id.get(client_order_id)
        if order_id is None:
            raise errors.not_found(f"order not found for client_order_id {client_order_id}")
        return self.orders[order_id]

    def list_orders(self, *, status: str = "open", limit: int = 50, after: datetime | None = None,
                    until: datetime | None = None, direction: str = "desc",
                    symbols: set[str] | None = None, side: str | None = None) -> list[Order]:
        """GET /v2/orders: filtered on submitted_at (exclusive bounds), newest first by default."""
        if status == "open":
            pool = self._open_orders()
        elif after is not None:
            # submission times only grow (_stamp), so the orders after `after` are a suffix
            first = bisect.bisect_right(self._submitted, (after, "\uffff"))
            pool = [self.orders[i] for _, i in self._submitted[first:]]
        else:
            pool = list(self.orders.values())
        chosen = [o for o in pool
                  if (status == "all" or o.is_open == (status == "open"))
                  and (after is None or o.submitted_at > after)
                  and (until is None or o.submitted_at < until)
                  and (symbols is None or o.symbol in symbols)
                  and (side is None or o.side.value == side)]
        chosen.sort(key=lambda o: (o.submitted_at, o.seq), reverse=direction == "desc")
        return chosen[:limit]

    def close_position(self, symbol: str, *, qty: float | None = None,
                       percentage: float | None = None) -> Order:
        """DELETE /v2/positions/{symbol}: a market order for the whole position (or part)."""
        position = self.book.positions.get(symbol.upper())
        if position is None:
            raise errors.not_found(f"position does not exist: {symbol}")
        if qty is not None and percentage is not None:
            raise errors.unprocessable("qty and percentage are mutually exclusive; give one")
        amount = abs(position.qty)
        if qty is not None:
            amount = qty
        elif percentage is not None:
            if not 0 < percentage <= 100:
                raise errors.unprocessable(f"percentage must be in (0, 100]; got {percentage}")
            amount = round(abs(position.qty) * percentage / 100.0, 9)
        side = Side.SELL if position.is_long else Side.BUY
        return self.submit_order({"symbol": position.symbol, "qty": amount, "side": side.value,
                                  "type": "market", "time_in_force": "day"})

    def asset_id_of(self, symbol: str) -> str:
        """The asset's id: a renamed symbol keeps the id of the asset it was (Alpaca's asset
        ids never change; the symbol does)."""
        return self.renamed.get(symbol) or asset_id(symbol)

    def _open_orders(self, symbol: str | None = None) -> list[Order]:
        orders = self.orders
        return [orders[i] for i in self._open_ids
                if symbol is None or orders[i].symbol == symbol]

    def _finish(self, order: Order, status: Status, when: datetime) -> Order:
        stamp = {Status.CANCELED: "canceled_at", Status.EXPIRED: "expired_at"}[status]
        finished = replace(order, status=status, updated_at=when, **{stamp: when})
        self._update(finished)
        return finished

    def _update(self, order: Order) -> None:
        if order.id not in self.orders:
            self._submitted.append((order.submitted_at, order.id))
        self.orders[order.id] = order
        self.changed_orders.add(order.id)
        if order.is_open:
            self._open_ids.setdefault(order.id)
        else:
            self._open_ids.pop(order.id, None)

    def index_orders(self) -> None:
        """Rebuild the look-ups over `orders` (after a load): by client id, the open ones in
        submission order, and submission times in order, so that placing an order, the day's
        events and history pages cost the same however many orders came before."""
        self._by_client_id = {o.client_order_id: o.id for o in self.orders.values()}
        self._open_ids: dict[str, None] = {o.id: None for o in self.orders.values() if o.is_open}
        self._submitted = sorted((o.submitted_at, o.id) for o in self.orders.values())
        self.changed_orders: set[str] = set()

    def _new_uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    # -- account --------------------------------------------------------------------------------

    def prices(self) -> dict[str, float]:
        """The latest trade price of every position's symbol."""
        at = self.moment()
        out = {}
        for symbol in self.book.positions:
            trade = self.view.last_trade(symbol, at)
            out[symbol] = trade.price if trade is not None else 0.0
        return out

    def balances(self) -> account.Balances:
        return account.balances(self.book.cash, self.book.positions.values(), self.prices(),
                                self._open_orders())

    def daytrade_count(self) -> int:
        """Day trades in the 5 sessions ending with the session orders now would trade in."""
        last = self._trading_day()
        first = self.calendar.business_days_back(last, PDT_WINDOW_SESSIONS)
        return self.book.day_trades_between(first, last)

    def is_pattern_day_trader(self) -> bool:
        return self.daytrade_count() >= 4

    def would_day_trade(self, request: OrderRequest) -> bool:
        """Whether the order closes a position opened on the session it would trade in."""
        position = self.book.positions.get(request.symbol)
        if position is None or (position.qty > 0) == (request.side is Side.BUY):
            return False
        return position.opened_day == self._trading_day() and position.opened_qty > 0

    def held_for_orders(self, symbol: str, side: Side) -> float:
        """Shares of `symbol` that open orders on `side` may still take (Alpaca's
        held_for_orders): all of them, whatever they were meant to do when placed."""
        return sum(o.remaining_qty for o in self._open_orders(symbol) if o.side is side)

    def reset(self) -> None:
        """A fresh account at the current clock (the request log and the id stream go on)."""
        self._fresh_account()

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | PathLike[str]) -> None:
        """Write the whole state atomically (see state.write_atomically)."""
        state.write_atomically(path, self.to_state())

    @classmethod
    def load(cls, path: str | PathLike[str], market_data: MarketData, *,
             calendar: MarketCalendar | None = None) -> Exchange:
        """The state saved at `path`, with the journal beside it replayed (journal.py)."""
        data = state.read_json(path)
        exchange = cls.from_state(data, market_data, calendar=calendar, source=str(path))
        Journal.replay(exchange, data, path)
        return exchange

    def to_state(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (see persistence.py)."""
        return persistence.dump(self)

    @classmethod
    def from_state(cls, data: dict[str, Any], market_data: MarketData, *,
                   calendar: MarketCalendar | None = None, source: str = "state") -> Exchange:
        config = persistence.check(data, market_data, source)
        try:
            exchange = cls(market_data, config, now=datetime.fromisoformat(data["now"]),
                           calendar=calendar)
            persistence.restore(exchange, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: damaged exchange state ({exc!r}); restore it from a "
                             "backup or delete it to start over") from exc
        return exchange


__all__ = ["Exchange", "ExchangeConfig"]
