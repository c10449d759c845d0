"""Control endpoints of the local exchange, under `/_sim/` (a prefix Alpaca does not use).

They need the same `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers as every other path, are
never faulted and are not written to the request log. Examples use curl with the default
credentials::

    H='-H APCA-API-KEY-ID:SIMKEY -H APCA-API-SECRET-KEY:SIMSECRET'

`GET /_sim/clock`
    The simulated clock: ``{"now", "new_york", "is_open", "next_open", "next_close"}``.

`POST /_sim/clock`
    Move the clock forward, processing every open, fill and close on the way. The body is
    one of ``{"to": "2022-03-02T15:00:00Z"}`` (a bare date means noon New York),
    ``{"advance_seconds": 3600}`` or ``{"next": "open" | "noon" | "close"}`` (the next such
    moment on a trading day, strictly after now). Going back is 422::

        curl $H -X POST localhost:8000/_sim/clock -d '{"next": "open"}'

`POST /_sim/faults`
    Arm a fault for the next `count` requests whose method matches (``*`` for any) and whose
    path starts with `path`. Fields (defaults): ``method "*"``, ``path "/"``, ``count 1``,
    ``status`` (an HTTP error answered with Alpaca's ``{"code", "message"}`` body; 429 also
    sends X-RateLimit-Limit/Remaining/Reset), ``delay_seconds 0`` (wait before handling),
    ``hang false`` (hold the connection until the client gives up, at most ``hang_seconds``,
    60), ``reset false`` (close the socket with no response), ``malformed false`` (200 with
    a body that is not JSON), ``after_commit false`` (process the request first - the order
    IS placed - then lose or replace the response), ``headers {}`` (extra response headers),
    ``body`` (with ``status``: this JSON body instead of Alpaca's error body, e.g. status 200
    and ``{"bars": {}, "next_page_token": null}``)::

        curl $H -X POST localhost:8000/_sim/faults \\
             -d '{"method": "POST", "path": "/v2/orders", "status": 504, "after_commit": true}'

`POST /_sim/orders/{order_id}/status`
    Put an open order into any of Alpaca's order statuses but filled and partially_filled
    (fills come from the market): ``{"status": "stopped"}``; ``replaced`` creates the
    replacement order (``replaced_by`` / ``replaces``). Answers the order.

`GET /_sim/faults`, `DELETE /_sim/faults`
    List the armed faults (with the uses left); disarm them all.

`GET /_sim/requests`, `DELETE /_sim/requests`
    The request log ``{"requests": [{"method", "path", "status", "time"}...], "counts":
    {"POST /v2/orders": 2, ...}}`` (`time` is the simulated clock; a faulted request also has
    ``"fault": kind``); clear it.

`POST /_sim/reset`
    A fresh account (starting cash, no orders or positions) at the current clock.

`POST /_sim/save`, `POST /_sim/load`
    ``{"path": "state.json"}`` - save the whole exchange atomically, or replace it by a saved
    one (same market data). Without a path, the `--state` file of the server is used. Both
    stay inside the directory of the `--state` file: `path` is a file name there (letters,
    digits, ``._-``, ending in ``.json``); anything else, or a server without `--state`, is
    422.

The Python equivalents on the object `serve()` returns: ``server.faults.add(method="POST",
path="/v2/orders", status=504)``, ``server.faults.clear()``, ``server.requests()``,
``server.request_counts()``, ``server.clear_requests()``, ``server.advance_to(when)``.
"""

from __future__ import annotations

import math
import os
import re
from datetime import datetime, timedelta
from typing import Any

from market_calendar import NEW_YORK, new_york_noon, parse_date_or_datetime
from simbroker import errors, wire
from simbroker.exchange import Exchange
from simbroker.faults import fault_from_json
from simbroker.routing import Request, Response, Routes, ok

routes = Routes()
SAVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.json")
MAX_ADVANCE_SECONDS = 50 * 366 * 86400.0


@routes.add("GET", "/_sim/clock")
def get_clock(request: Request) -> Response:
    return ok(clock_state(request.exchange))


@routes.add("POST", "/_sim/clock")
def move_clock(request: Request) -> Response:
    exchange = request.exchange
    target = clock_target(exchange, _object(request.body))
    try:
        exchange.advance_to(target)  # checks the target before it changes anything
    except ValueError as exc:
        raise errors.unprocessable(str(exc)) from None
    return ok(clock_state(exchange))


@routes.add("POST", "/_sim/orders/(?P<order_id>[^/]+)/status")
def set_order_status(request: Request) -> Response:
    body = _object(request.body)
    if set(body) != {"status"}:
        raise errors.unprocessable('give {"status": "<an Alpaca order status>"}, e.g. '
                                   '{"status": "stopped"}')
    order = request.exchange.set_order_status(request.arg("order_id"), body["status"])
    return ok(wire.order_json(order))


@routes.add("GET", "/_sim/faults")
def list_faults(request: Request) -> Response:
    return ok([f.to_json() for f in request.server.faults.armed()])


@routes.add("POST", "/_sim/faults")
def add_fault(request: Request) -> Response:
    fault = request.server.faults.add(fault_from_json(request.body))
    return ok(fault.to_json())


@routes.add("DELETE", "/_sim/faults")
def clear_faults(request: Request) -> Response:
    request.server.faults.clear()
    return Response(204)


@routes.add("GET", "/_sim/requests")
def get_requests(request: Request) -> Response:
    log = request.exchange.requests
    return ok({"requests": list(log.entries), "counts": dict(log.counts)})


@routes.add("DELETE", "/_sim/requests")
def clear_requests(request: Request) -> Response:
    request.exchange.requests.clear()
    return Response(204)


@routes.add("POST", "/_sim/reset")
def reset(request: Request) -> Response:
    request.exchange.reset()
    return ok(wire.account_json(request.exchange))


@routes.add("POST", "/_sim/save")
def save(request: Request) -> Response:
    path = _path(request)
    request.server.save(path)
    return ok({"saved": path, "now": wire.timestamp(request.exchange.now)})


@routes.add("POST", "/_sim/load")
def load(request: Request) -> Response:
    path = _path(request)
    current = request.exchange
    try:
        loaded = Exchange.load(path, current.market_data, calendar=current.calendar)
    except ValueError as exc:
        raise errors.unprocessable(str(exc)) from None
    request.server.exchange = loaded
    return ok({"loaded": path, "now": wire.timestamp(loaded.now)})


def clock_state(exchange: Exchange) -> dict[str, Any]:
    clock = wire.clock_json(exchange)
    return {"now": wire.timestamp(exchange.now),
            "new_york": exchange.now.astimezone(NEW_YORK).isoformat(),
            "is_open": clock["is_open"], "next_open": clock["next_open"],
            "next_close": clock["next_close"]}


def clock_target(exchange: Exchange, body: dict[str, Any]) -> datetime:
    """Where a POST /_sim/clock body asks the clock to go."""
    given = [k for k in ("to", "advance_seconds", "next") if k in body]
    if len(given) != 1:
        raise errors.unprocessable('give exactly one of "to" (ISO time or YYYY-MM-DD), '
                                   '"advance_seconds" or "next" (open, noon, close)')
    key, value = given[0], body[given[0]]
    if key == "to":
        try:
            return parse_date_or_datetime(str(value))
        except ValueError as exc:
            raise errors.unprocessable(f"to: {exc}") from None
    if key == "advance_seconds":
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or not 0 <= value <= MAX_ADVANCE_SECONDS:
            raise errors.unprocessable("advance_seconds must be a number of seconds in "
                                       f"[0, {MAX_ADVANCE_SECONDS:.0f}]")
        return exchange.now + timedelta(seconds=float(value))
    return next_moment(exchange, value)


def next_moment(exchange: Exchange, which: Any) -> datetime:
    """The next open, noon (New York) or close of a trading day, strictly after now."""
    now, calendar = exchange.now, exchange.calendar
    session = calendar.current_or_next_open(now)
    following = calendar.next_session(session.day)
    if which == "open":
        return session.open if session.open > now else following.open
    if which == "close":
        return session.close
    if which == "noon":
        noon = new_york_noon(session.day)
        return noon if noon > now else new_york_noon(following.day)
    raise errors.unprocessable(f"next {which!r} is invalid; use open, noon or close")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.malformed("the body must be a JSON object")
    return body


def _path(request: Request) -> str:
    """The file to save or load, confined to the directory of the server's --state file."""
    body = request.body if isinstance(request.body, dict) else {}
    state_path = request.server.state_path
    if not state_path:
        raise errors.unprocessable("this server has no --state file, so no directory to save "
                                   "in or load from; start it with --state DIR/FILE.json")
    given = body.get("path")
    if given is None:
        return str(state_path)
    folder = os.path.dirname(os.path.abspath(state_path))
    name = str(given)
    if os.path.isabs(name) and os.path.dirname(name) == folder:
        name = os.path.basename(name)
    if not SAVE_NAME.fullmatch(name):
        raise errors.unprocessable(
            f"path {name[:80]!r}: give a file name in the state directory {folder} "
            "(letters, digits and ._-, ending in .json), e.g. backup.json")
    return os.path.join(folder, name)
