"""The account-dependent checks of a new order, each with the Alpaca rule it enforces.

Order of the checks (the first failure answers): the asset exists and has a price; fractional
rules; position rules (no single order flips a position); short-sale rules; pattern day
trading (legacy mode only); buying power.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simbroker import account, errors, restrictions
from simbroker.orders import OrderRequest
from simbroker.prices import Moment
from simbroker.records import Intent, Side

if TYPE_CHECKING:
    from simbroker.exchange import Exchange

_EPS = 1e-9


@dataclass(frozen=True)
class Decision:
    """What an accepted order is: opening or closing, and what it holds per share."""

    intent: Intent
    reserve_price: float


def check_order(exchange: Exchange, request: OrderRequest, at: Moment) -> Decision:
    """Raise the ApiError Alpaca would answer, or return how the order books."""
    symbol, config = request.symbol, exchange.config
    if not exchange.view.knows(symbol):
        raise errors.unprocessable(f"could not find asset {symbol!r}; GET /v2/assets lists the "
                                   "symbols of this exchange")
    quote = exchange.view.quote(symbol, at)
    if quote is None:
        raise errors.unprocessable(f"asset {symbol} is not tradable yet: it has no bar before "
                                   f"{at.day}")
    # Alpaca: fractional and notional orders only for fractionable assets.
    if request.is_fractional and not config.has_flag("fractionable", symbol):
        raise errors.unprocessable(f"requested asset {symbol} is not fractionable; order a "
                                   "whole number of shares")
    price = quote.ask if request.side is Side.BUY else quote.bid
    qty = request.qty if request.qty is not None else (request.notional or 0.0) / price
    intent = _intent(exchange, request, qty)
    check_intent(request, intent)
    balances = exchange.balances()
    if intent is Intent.SELL_TO_OPEN:
        _check_short(exchange, request, balances)
    if config.legacy_pdt:
        _check_pattern_day_trading(exchange, request)
    reserve = account.reserve_price(request.side, intent, request.limit_price, quote.ask)
    need = (request.notional or 0.0) if request.qty is None and request.side is Side.BUY \
        else qty * reserve
    available = balances.regt_buying_power
    if need > available + _EPS:
        raise errors.forbidden(f"insufficient buying power: the order holds ${need:,.2f}, "
                               f"buying power is ${available:,.2f}")
    return Decision(intent=intent, reserve_price=reserve)


def _intent(exchange: Exchange, request: OrderRequest, qty: float) -> Intent:
    """Opening or closing. Alpaca rejects a single order that would take a position through
    zero (long to short or short to long): it must be split into a closing and an opening
    order. Shares already held for other closing orders are not available."""
    position = exchange.book.positions.get(request.symbol)
    held_qty = position.qty if position is not None else 0.0
    buying = request.side is Side.BUY
    if held_qty == 0 or (held_qty > 0) == buying:
        return Intent.BUY_TO_OPEN if buying else Intent.SELL_TO_OPEN
    held = exchange.held_for_orders(request.symbol, request.side)
    available = max(0.0, round(abs(held_qty) - held, 9))
    if qty > available + _EPS:
        raise errors.forbidden(f"insufficient qty available for order (requested: {qty:g}, "
                               f"available: {available:g}); close the position first, then "
                               "open the other side with a second order")
    return Intent.BUY_TO_CLOSE if buying else Intent.SELL_TO_CLOSE


def check_intent(request: OrderRequest, inferred: Intent) -> None:
    """A given position_intent must be the one the position implies. Alpaca infers the intent
    from the side and the position and refuses a mismatch ("position intent mismatch.
    inferred sell to close": github.com/alpacahq/Alpaca-API/issues/250), so a closing order
    whose position is gone is refused instead of opening the other side. Alpaca does not
    document the HTTP status of that answer; the exchange answers 422 (42210000)."""
    given = request.position_intent
    if given is None:
        return
    if given.value.startswith("buy") != (request.side is Side.BUY):
        raise errors.unprocessable(f"position_intent {given.value} does not match side "
                                   f"{request.side.value}")
    if given is not inferred:
        raise errors.unprocessable(f"position intent mismatch. inferred "
                                   f"{inferred.value.replace('_', ' ')}: the order would "
                                   f"{_describe(inferred)} {request.symbol}")


def _describe(intent: Intent) -> str:
    return {Intent.BUY_TO_OPEN: "open or add to a long position in",
            Intent.SELL_TO_OPEN: "open or add to a short position in",
            Intent.BUY_TO_CLOSE: "close (part of) the short position in",
            Intent.SELL_TO_CLOSE: "close (part of) the long position in"}[intent]


def _check_short(exchange: Exchange, request: OrderRequest, balances: account.Balances) -> None:
    symbol, config = request.symbol, exchange.config
    # Alpaca does not short fractional quantities.
    if request.is_fractional:
        raise errors.forbidden(f"fractional orders cannot be sold short: {symbol} has no long "
                               "position to sell; order whole shares to short")
    # Shorting needs a margin account: equity of at least $2,000 (FINRA Rule 4210(b)).
    if not balances.is_margin:
        raise errors.forbidden("account is not allowed to short: equity is below $2,000")
    if not restrictions.allows_shorting(exchange):
        raise errors.forbidden("account is not allowed to short (shorting_enabled is false)")
    if not config.has_flag("shortable", symbol):
        raise errors.forbidden(f"asset {symbol} cannot be sold short (shortable is false)")
    # Alpaca only shorts easy-to-borrow assets.
    if not config.has_flag("easy_to_borrow", symbol):
        raise errors.forbidden(f"asset {symbol} is not easy to borrow and cannot be sold short")


def _check_pattern_day_trading(exchange: Exchange, request: OrderRequest) -> None:
    """Alpaca's PDT protection before FINRA retired the rule (2026-06-04): an account with
    less than $25,000 of equity at the previous close may not make a 4th day trade within 5
    business days (FINRA Rule 4210(f)(8)(B))."""
    if exchange.last_equity >= account.PDT_MINIMUM_EQUITY:
        return
    if exchange.daytrade_count() >= 3 and exchange.would_day_trade(request):
        raise errors.pdt_denied("trade denied due to pattern day trading protection: this "
                                "would be a 4th day trade within 5 business days with less "
                                "than $25,000 equity")
