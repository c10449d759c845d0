"""Account restrictions: the account's `status` and its blocking flags, and the orders they
refuse.

Alpaca's account object (Trading API spec, June 2026, schema `Account`) has `status`
(`AccountStatus`: "ACTIVE" is "active for trading"; ACCOUNT_UPDATED "may not be allowed
trading for a short period of time"), `trading_blocked` ("the account is not allowed to place
orders"), `account_blocked` ("the account activity by user is prohibited"),
`trade_suspended_by_user` ("User setting. If true, the account is not allowed to place orders")
and `shorting_enabled`. POST /v2/orders: "An order request may be rejected if the account is
not authorized for trading" - answered here with 403 / 40310000, the spec's status for a
refused order. A fresh account is ACTIVE with no flag set and shorting enabled from $2,000 of
equity; `POST /_sim/account` (controls) sets any of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from simbroker import errors

if TYPE_CHECKING:
    from simbroker.exchange import Exchange

# Alpaca's AccountStatus enum (trading-api spec, June 2026).
ACCOUNT_STATUSES = ("INACTIVE", "PAPER_ONLY", "ONBOARDING", "SUBMISSION_FAILED", "SUBMITTED",
                    "ACCOUNT_UPDATED", "APPROVAL_PENDING", "ACTIVE", "REJECTED",
                    "ACCOUNT_CLOSED", "APPROVED", "ACCOUNT_CLOSED_PENDING", "ACTION_REQUIRED",
                    "LIMITED")
_FLAGS = ("trading_blocked", "account_blocked", "trade_suspended_by_user")


@dataclass(frozen=True)
class Restrictions:
    """`shorting_enabled` None means as the account's equity allows (FINRA Rule 4210(b):
    $2,000); False turns shorting off whatever the equity."""

    status: str = "ACTIVE"
    trading_blocked: bool = False
    account_blocked: bool = False
    trade_suspended_by_user: bool = False
    shorting_enabled: bool | None = None

    def flags_json(self, is_margin: bool) -> dict[str, bool]:
        """The account object's flags (with `transfers_blocked`, never set here)."""
        return {"shorting_enabled": is_margin and self.shorting_enabled is not False,
                "trading_blocked": self.trading_blocked, "transfers_blocked": False,
                "account_blocked": self.account_blocked,
                "trade_suspended_by_user": self.trade_suspended_by_user}

    def refusal(self) -> str | None:
        """Why the account may not place orders, or None."""
        if self.account_blocked:
            return "account is blocked (account_blocked): account activity is prohibited"
        if self.trading_blocked:
            return "account is not authorized to trade (trading_blocked)"
        if self.trade_suspended_by_user:
            return "trading is suspended by the account's owner (trade_suspended_by_user)"
        if self.status != "ACTIVE":
            return f"account is not authorized to trade: its status is {self.status}"
        return None


def check_can_trade(exchange: Exchange) -> None:
    """Raise Alpaca's 403 when the account may not place orders."""
    reason = exchange.restrictions.refusal()
    if reason is not None:
        raise errors.forbidden(reason)


def allows_shorting(exchange: Exchange) -> bool:
    return exchange.restrictions.shorting_enabled is not False


def updated(current: Restrictions, body: Any) -> Restrictions:
    """`current` with the fields of a POST /_sim/account body, each checked."""
    if not isinstance(body, dict) or not body:
        raise errors.malformed('give a JSON object with any of "status", "trading_blocked", '
                               '"account_blocked", "trade_suspended_by_user", '
                               '"shorting_enabled"')
    names = {f.name for f in fields(Restrictions)}
    unknown = sorted(set(body) - names)
    if unknown:
        raise errors.unprocessable(f"unknown account field(s) {', '.join(unknown)}; use "
                                   f"{', '.join(sorted(names))}")
    status = body.get("status", current.status)
    if status not in ACCOUNT_STATUSES:
        raise errors.unprocessable(f"status {status!r} is invalid; use one of "
                                   f"{', '.join(ACCOUNT_STATUSES)}")
    for name in (*_FLAGS, "shorting_enabled"):
        value = body.get(name)
        allowed_null = name == "shorting_enabled"
        if name in body and not (isinstance(value, bool) or (allowed_null and value is None)):
            raise errors.malformed(f"{name} must be true or false"
                                   + (" (or null: as the equity allows)" if allowed_null
                                      else ""))
    return replace(current, **{k: v for k, v in body.items()})


def to_state(restrictions: Restrictions) -> dict[str, Any]:
    return asdict(restrictions)


def from_state(data: dict[str, Any] | None) -> Restrictions:
    return Restrictions(**data) if data else Restrictions()
