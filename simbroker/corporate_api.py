"""Alpaca Market Data's corporate actions, GET /v1/corporate-actions, from the market data's
events: its cash dividends (`cash_dividends`) and splits (`forward_splits`, `reverse_splits`).

Parameters as in the market-data spec (June 2026, operation `CorporateActions`): `symbols`,
`types` (comma-separated; the other documented types answer empty lists, as the data has none
of them), `start` and `end` (inclusive, of the `process_date`, each defaulting to the
exchange's day), `limit` (default 100, at most 1000, over all types) with `next_page_token`,
and `sort` (asc by default). Every parameter error is 400, as on the other Market Data
endpoints.

What the data has, it serves: `ex_date`, `rate` (dollars per share as of the ex-date, as
traded), `payable_date` where known, and `process_date` (the payable date, else the ex-date,
as in the spec's example where they are equal); splits have `new_rate` and `old_rate`. The
CUSIP is not in the data and is served empty; `id` is a stable UUID of the event. Only
actions with an ex-date on or before the exchange's day are known: no announcement of the
future.
"""

from __future__ import annotations

import uuid
from datetime import date
from fractions import Fraction
from typing import Any

from simbroker import errors
from simbroker.data_api import parameter_errors_as_400
from simbroker.routing import Request, Response, Routes, int_param, ok

# The spec's `types` (parameter `cas_types`).
TYPES = ("reverse_split", "forward_split", "unit_split", "cash_dividend", "stock_dividend",
         "spin_off", "cash_merger", "stock_merger", "stock_and_cash_merger", "redemption",
         "name_change", "worthless_removal", "rights_distribution", "partial_call",
         "reorganization")
_NAMESPACE = uuid.UUID("0e4b3f1c-5c55-4c8e-8f2b-7a1d2c9e6b41")

routes = Routes()


@routes.add("GET", "/v1/corporate-actions")
@parameter_errors_as_400
def corporate_actions(request: Request) -> Response:
    exchange = request.exchange
    today = exchange.moment().day
    params = request.params
    symbols = {s.strip().upper() for s in params.get("symbols", "").split(",") if s.strip()}
    types = {t.strip() for t in params.get("types", "").split(",") if t.strip()} or set(TYPES)
    unknown = sorted(types - set(TYPES))
    if unknown:
        raise errors.bad_request(f"types {', '.join(unknown)} unknown; use some of "
                                 f"{', '.join(TYPES)}")
    start, end = _date(params, "start", today), _date(params, "end", today)
    if end < start:
        raise errors.bad_request(f"end {end} is before start {start}")
    limit = int_param(request, "limit", 100, 1, 1000)
    sort = params.get("sort") or "asc"
    if sort not in ("asc", "desc"):
        raise errors.bad_request(f"sort {sort!r} is invalid; use asc or desc")
    data = exchange.market_data
    items = []
    if "cash_dividend" in types:
        items += [("cash_dividends", _dividend(d)) for d in data.dividends()
                  if (not symbols or d.symbol in symbols) and d.ex_date <= today]
    for split in data.splits():
        key = "forward_splits" if split.ratio >= 1 else "reverse_splits"
        if key[:-1] in types and (not symbols or split.symbol in symbols) \
                and split.ex_date <= today:
            items.append((key, _split(split)))
    items = [i for i in items if start.isoformat() <= i[1]["process_date"] <= end.isoformat()]
    items.sort(key=lambda i: (i[1]["process_date"], i[1]["symbol"], i[0]),
               reverse=sort == "desc")
    offset = _offset(params.get("page_token"))
    page = items[offset:offset + limit]
    body: dict[str, list[dict[str, Any]]] = {}
    for key, item in page:
        body.setdefault(key, []).append(item)
    token = str(offset + limit) if offset + limit < len(items) else None
    return ok({"corporate_actions": body, "next_page_token": token})


def _dividend(d) -> dict[str, Any]:
    paid = d.pay_date.isoformat() if d.pay_date else None
    item = {"id": str(uuid.uuid5(_NAMESPACE, f"cash_dividend/{d.symbol}/{d.ex_date}")),
            "symbol": d.symbol, "cusip": "", "rate": d.amount, "special": False,
            "foreign": False, "ex_date": d.ex_date.isoformat(),
            "process_date": paid or d.ex_date.isoformat()}
    if paid:
        item["payable_date"] = paid
    return item


def _split(split) -> dict[str, Any]:
    ratio = Fraction(split.ratio).limit_denominator(1000)
    return {"id": str(uuid.uuid5(_NAMESPACE, f"split/{split.symbol}/{split.ex_date}")),
            "symbol": split.symbol, "cusip": "", "new_rate": float(ratio.numerator),
            "old_rate": float(ratio.denominator), "ex_date": split.ex_date.isoformat(),
            "process_date": split.ex_date.isoformat()}


def _date(params: dict[str, str], name: str, default: date) -> date:
    text = params.get(name)
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.bad_request(f"{name} {text!r} is not a date; use YYYY-MM-DD") from None


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise errors.bad_request(f"page_token {token!r} is not one this endpoint gave")
    return int(token)
