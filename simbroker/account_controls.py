"""Control endpoints for the account's life outside trading (under `/_sim/`, like controls.py:
same key headers, never faulted, not in the request log).

`GET /_sim/account`, `POST /_sim/account`
    The account's restrictions; set any of ``{"status": "ACCOUNT_UPDATED",
    "trading_blocked": true, "account_blocked": true, "trade_suspended_by_user": true,
    "shorting_enabled": false}`` (`shorting_enabled` null: as the equity allows). A restricted
    account refuses every new order with 403 (see restrictions.py); the answer is the new
    restrictions::

        curl $H -X POST localhost:8000/_sim/account -d '{"trading_blocked": true}'

`POST /_sim/corporate_actions`
    ``{"type": "name_change", "symbol": "FB", "new_symbol": "META"}``: a symbol change, applied
    at once between sessions (422 while the market is open): the position and the asset id
    move to the new symbol, open orders in the old one are canceled, two NC activities are
    posted (see corporate.py). Splits come from the market data's split events.

`POST /_sim/activities`
    Post a non-trade activity, e.g. ``{"activity_type": "DIV", "net_amount": 24.0, "symbol":
    "AAPL", "qty": 100, "per_share_amount": 0.24, "sub_type": "CDIV"}``; its `net_amount` is
    booked into cash (see activities.record_activity).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from simbroker import corporate, errors, restrictions
from simbroker.activities import activity_json, record_activity
from simbroker.routing import Request, Response, Routes, ok

routes = Routes()
_ACTIVITY_FIELDS = ("symbol", "qty", "per_share_amount", "sub_type", "description", "group_id")


@routes.add("GET", "/_sim/account")
def get_restrictions(request: Request) -> Response:
    return ok(asdict(request.exchange.restrictions))


@routes.add("POST", "/_sim/account")
def set_restrictions(request: Request) -> Response:
    exchange = request.exchange
    exchange.restrictions = restrictions.updated(exchange.restrictions, request.body)
    return ok(asdict(exchange.restrictions))


@routes.add("POST", "/_sim/corporate_actions")
def corporate_action(request: Request) -> Response:
    posted = corporate.rename_from_json(request.exchange, request.body)
    return ok({"activities": [activity_json(a) for a in posted]})


@routes.add("POST", "/_sim/activities")
def post_activity(request: Request) -> Response:
    body = request.body
    if not isinstance(body, dict) or "activity_type" not in body or "net_amount" not in body:
        raise errors.malformed('give {"activity_type": "FEE", "net_amount": -1.25, ...}')
    unknown = sorted(set(body) - {"activity_type", "net_amount", *_ACTIVITY_FIELDS})
    if unknown:
        raise errors.unprocessable(f"unknown activity field(s) {', '.join(unknown)}")
    amount = _number(body, "net_amount")
    assert amount is not None
    extra: dict[str, Any] = {k: body[k] for k in _ACTIVITY_FIELDS if k in body}
    for name in ("qty", "per_share_amount"):
        if name in extra:
            extra[name] = _number(body, name)
    try:
        activity = record_activity(request.exchange, str(body["activity_type"]),
                                   net_amount=amount, **extra)
    except ValueError as exc:
        raise errors.unprocessable(str(exc)) from None
    return ok(activity_json(activity))


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.malformed(f"{name} must be a number; got {value!r}") from None
