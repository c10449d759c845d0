"""Requests, responses and the route table shared by the trading, data and control endpoints."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simbroker import errors
from simbroker.bars import parse_instant

if TYPE_CHECKING:
    from simbroker.exchange import Exchange
    from simbroker.server import SimServer


@dataclass(frozen=True)
class Request:
    server: SimServer
    method: str
    path: str
    params: dict[str, str]
    body: Any
    match: re.Match[str]

    @property
    def exchange(self) -> Exchange:
        return self.server.exchange

    def arg(self, name: str) -> str:
        return self.match.group(name)


@dataclass(frozen=True)
class Response:
    status: int
    body: Any = None  # JSON-ready; None sends no body (204)
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Routes:
    """A route table: `@routes.add("GET", r"/v2/orders/(?P<order_id>[^/]+)")`."""

    def __init__(self) -> None:
        self.table: list[Route] = []

    def add(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.table.append(Route(method, re.compile(pattern + r"\Z"), handler))
            return handler
        return register


def ok(body: Any, status: int = 200) -> Response:
    return Response(status, body)


# -- query parameters -----------------------------------------------------------------------------


def symbols_param(request: Request, name: str = "symbols") -> list[str]:
    text = request.params.get(name, "")
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise errors.unprocessable(f"{name} is required: give a comma-separated list such as "
                                   "AAPL,MSFT")
    return symbols


def choice_param(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.params.get(name) or default
    if value not in choices:
        raise errors.unprocessable(f"{name} {value!r} is invalid; use {' or '.join(choices)}")
    return value


def int_param(request: Request, name: str, default: int, low: int, high: int, *,
              clamp: bool = False) -> int:
    text = request.params.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise errors.unprocessable(f"{name} {text!r} is not an integer") from None
    if clamp and value > high:
        return high
    if not low <= value <= high:
        raise errors.unprocessable(f"{name} {value} is out of range; give {low}..{high}")
    return value


def float_param(request: Request, name: str) -> float | None:
    text = request.params.get(name)
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise errors.unprocessable(f"{name} {text!r} is not a number") from None


def time_param(request: Request, name: str, *, end_of_day: bool = False) -> datetime | None:
    text = request.params.get(name)
    if not text:
        return None
    return parse_instant(text, name, end_of_day=end_of_day)
