"""Account activities: GET /v2/account/activities and /v2/account/activities/{type}.

Two kinds, as in Alpaca's spec (`TradingActivities` and `NonTradeActivities` in the Trading API
OpenAPI document, June 2026):

* FILL: one per execution, derived from the book's fills (so they can never disagree with the
  orders): price, qty, side, order id, `cum_qty`/`leaves_qty` of the order after that
  execution, and `type` fill or partial_fill;
* everything else (DIV, FEE, INT, NC, SPLIT, CSD, ...): posted with `record_activity`, which
  books the activity's `net_amount` into cash (a positive amount is a credit) and keeps it.

Ids are Alpaca's "<time to the millisecond>::<uuid>" (e.g. `20220202135509981::2d7b...`); a
page is in time order (`direction`, newest first by default) and the next page starts after
`page_token`, the id of the last item of the previous page. `page_size` defaults to 100, at
most 100 (spec).

For example, a dividend of $0.24 a share on 100 shares::

    from simbroker.activities import record_activity
    record_activity(exchange, "DIV", net_amount=24.0, symbol="AAPL", qty=100,
                    per_share_amount=0.24, sub_type="CDIV")
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from market_calendar import NEW_YORK, UTC
from simbroker import errors, state, wire
from simbroker.routing import Request, Response, Routes, choice_param, int_param, ok, time_param

if TYPE_CHECKING:
    from simbroker.exchange import Exchange

FILL = "FILL"
# Alpaca's ActivityType enum (trading-api spec, June 2026), FILL excepted.
NON_TRADE_TYPES = frozenset({
    "TRANS", "MISC", "ACATC", "ACATS", "CFEE", "CGD", "CSD", "CSW", "DIV", "DIVCGL", "DIVCGS",
    "DIVFEE", "DIVFT", "DIVNRA", "DIVROC", "DIVTW", "DIVTXEX", "FEE", "INT", "INTNRA", "INTTW",
    "JNL", "JNLC", "JNLS", "MA", "NC", "OPASN", "OPCA", "OPCSH", "OPEXC", "OPEXP", "OPTRD",
    "PTC", "PTR", "REORG", "SPIN", "SPLIT", "FOPT"})
ACTIVITY_TYPES = NON_TRADE_TYPES | {FILL}
MAX_PAGE_SIZE = 100  # spec: page_size "default 100, maximum 100"
_NAMESPACE = uuid.UUID("7b0c9a52-3f0e-4d8e-9a55-2a6d1c4e9f10")

routes = Routes()


@dataclass(frozen=True)
class Activity:
    """A non-trade activity. `net_amount` is in USD, positive for a credit; `qty` is shares
    (negative where shares leave the account, as Alpaca's NC and SPLIT entries do); `day` is
    the New York date the activity is for."""

    id: str
    activity_type: str
    created_at: datetime
    day: date
    net_amount: float
    symbol: str | None = None
    qty: float | None = None
    per_share_amount: float | None = None
    sub_type: str | None = None
    description: str | None = None
    group_id: str | None = None


def record_activity(exchange: Exchange, activity_type: str, *, net_amount: float,
                    symbol: str | None = None, qty: float | None = None,
                    per_share_amount: float | None = None, sub_type: str | None = None,
                    description: str | None = None, group_id: str | None = None,
                    book_cash: bool = True) -> Activity:
    """Post a non-trade activity at the exchange's clock and return it.

    With `book_cash` (the default) `net_amount` is added to the account's cash, rounded to
    whole cents as every cash movement is; pass False where the caller moved the cash itself.
    Raises ValueError for an activity type Alpaca does not have (FILL is made by fills) or an
    amount that is not a finite number.
    """
    if not math.isfinite(net_amount):
        raise ValueError(f"net_amount {net_amount!r} is not a finite number of dollars")
    if activity_type not in NON_TRADE_TYPES:
        raise ValueError(f"activity_type {activity_type!r} is not one of Alpaca's non-trade "
                         f"types ({', '.join(sorted(NON_TRADE_TYPES))}); fills are recorded "
                         "by the exchange itself")
    when = exchange.now
    exchange.activity_seq += 1
    key = uuid.uuid5(_NAMESPACE, f"{exchange.account_id}/{exchange.activity_seq}")
    activity = Activity(id=_activity_id(when, key), activity_type=activity_type,
                        created_at=when, day=when.astimezone(NEW_YORK).date(),
                        net_amount=round(net_amount, 2), symbol=symbol, qty=qty,
                        per_share_amount=per_share_amount, sub_type=sub_type,
                        description=description, group_id=group_id)
    if book_cash:
        exchange.book.cash = round(exchange.book.cash + activity.net_amount, 2)
    exchange.activities.append(activity)
    return activity


def _cumulative_qty(fills: list[Any]) -> list[float]:
    """Each fill's order's quantity filled up to and including it."""
    cum: dict[str, float] = {}
    out = []
    for fill in fills:
        cum[fill.order_id] = done = round(cum.get(fill.order_id, 0.0) + fill.qty, 9)
        out.append(done)
    return out


def _fill_json(exchange: Exchange, index: int, done: float) -> dict[str, Any]:
    fill = exchange.book.fills[index]
    order = exchange.orders.get(fill.order_id)
    total = order.qty if order is not None and order.qty is not None else done
    leaves = max(0.0, round(total - done, 9))
    key = uuid.uuid5(_NAMESPACE, f"{fill.order_id}/{index}")
    return {
        "id": _activity_id(fill.time, key), "activity_type": FILL,
        "transaction_time": wire.timestamp(fill.time),
        "type": "fill" if leaves <= 1e-9 else "partial_fill",
        "price": wire.decimal(fill.price, 6), "qty": wire.decimal(fill.qty, 9),
        "side": fill.side.value, "symbol": fill.symbol,
        "leaves_qty": wire.decimal(leaves, 9), "order_id": fill.order_id,
        "cum_qty": wire.decimal(done, 9),
        "order_status": "filled" if leaves <= 1e-9 else "partially_filled"}


def activity_json(activity: Activity) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": activity.id, "activity_type": activity.activity_type,
        "activity_sub_type": activity.sub_type, "date": activity.day.isoformat(),
        "created_at": wire.timestamp(activity.created_at), "currency": "USD",
        "net_amount": wire.decimal(activity.net_amount, 2), "symbol": activity.symbol,
        "qty": wire.decimal(activity.qty, 9),
        "per_share_amount": wire.decimal(activity.per_share_amount, 6),
        "status": "executed", "description": activity.description,
        "group_id": activity.group_id}
    # Alpaca: symbol, qty, per_share_amount "not present for all activity types".
    return {k: v for k, v in body.items() if v is not None}


def _activity_id(when: datetime, key: uuid.UUID) -> str:
    utc = when.astimezone(UTC)
    return f"{utc:%Y%m%d%H%M%S}{utc.microsecond // 1000:03d}::{key}"


def list_activities(exchange: Exchange, *, types: set[str] | None = None,
                    after: datetime | None = None, until: datetime | None = None,
                    on: date | None = None, direction: str = "desc",
                    page_size: int = MAX_PAGE_SIZE,
                    page_token: str | None = None) -> list[dict[str, Any]]:
    """One page of activities as wire JSON: filtered by type and by time (exclusive `after`
    and `until`; `on` a New York date), in time order (ties in the order they happened),
    starting after the activity whose id is `page_token`.

    Times and types are matched before any item is made: only the chosen ones become JSON,
    so a query of the last days costs the same however long the account's history is (but
    for one pass over the fills, for their orders' cumulative quantities)."""
    def wanted(when: datetime) -> bool:
        return ((after is None or when > after) and (until is None or when < until)
                and (on is None or when.astimezone(NEW_YORK).date() == on))

    timed: list[tuple[datetime, int, Any]] = []
    if types is None or FILL in types:
        timed += [(f.time, i, done) for i, (f, done) in enumerate(
            zip(exchange.book.fills, _cumulative_qty(exchange.book.fills), strict=True))
            if wanted(f.time)]
    offset = len(exchange.book.fills)
    timed += [(a.created_at, offset + i, a) for i, a in enumerate(exchange.activities)
              if (types is None or a.activity_type in types) and wanted(a.created_at)]
    timed.sort(key=lambda t: (t[0], t[1]), reverse=direction == "desc")
    chosen = [_fill_json(exchange, i, item) if i < offset else activity_json(item)
              for _, i, item in timed]
    if page_token:
        ids = [i["id"] for i in chosen]
        if page_token not in ids:
            raise errors.unprocessable(f"page_token {page_token!r} is not the id of an "
                                       "activity of this query; pass the id of the last "
                                       "activity of the previous page")
        chosen = chosen[ids.index(page_token) + 1:]
    return chosen[:page_size]


# -- HTTP ---------------------------------------------------------------------------------------


@routes.add("GET", "/v2/account/activities")
def get_activities(request: Request) -> Response:
    text = request.params.get("activity_types", "")
    types = {t.strip().upper() for t in text.split(",") if t.strip()} or None
    category = request.params.get("category") or None
    if category is not None:
        if types is not None:
            raise errors.unprocessable("category cannot be used with activity_types; give one")
        if category not in ("trade_activity", "non_trade_activity"):
            raise errors.unprocessable(f"category {category!r} is invalid; use "
                                       "trade_activity or non_trade_activity")
        types = {FILL} if category == "trade_activity" else set(NON_TRADE_TYPES)
    return _page(request, types)


@routes.add("GET", "/v2/account/activities/(?P<activity_type>[^/]+)")
def get_activities_of_type(request: Request) -> Response:
    return _page(request, {request.arg("activity_type").upper()})


def _page(request: Request, types: set[str] | None) -> Response:
    unknown = sorted((types or set()) - ACTIVITY_TYPES)
    if unknown:
        raise errors.unprocessable(f"activity type {', '.join(unknown)} is invalid; use one "
                                   "of FILL, DIV, FEE, INT, NC, SPLIT, ... (Alpaca's "
                                   "ActivityType)")
    on = time_param(request, "date")
    if on is not None and (request.params.get("after") or request.params.get("until")):
        raise errors.unprocessable("date cannot be used with after or until; give one")
    page = list_activities(
        request.exchange, types=types, after=time_param(request, "after"),
        until=time_param(request, "until"), on=on.astimezone(NEW_YORK).date() if on else None,
        direction=choice_param(request, "direction", ("asc", "desc"), "desc"),
        page_size=int_param(request, "page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE, clamp=True),
        page_token=request.params.get("page_token") or None)
    return ok(page)


def restore(data: list[dict[str, Any]]) -> list[Activity]:
    """Activities from a saved exchange state (see persistence.py)."""
    return [state.decode(Activity, a) for a in data]


__all__ = ["Activity", "record_activity", "list_activities"]
