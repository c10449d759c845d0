"""The bot's deterministic client_order_ids: `mr-YYYYMMDD-SYMBOL-intent`.

One id per trading day (New York), symbol and intent (`long`, `short` for entries, `exit`).
Alpaca refuses a reused client_order_id for the account, forever, so the id is what makes a
re-send safe, and it is how the bot recognises its own orders in the broker's history when its
records are lost (see position_manager.adopt_position and rebuild.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

ORDER_ID_PREFIX = "mr"
_OWN = re.compile(rf"^{ORDER_ID_PREFIX}-(\d{{8}})-(.+)-(long|short|exit)$")


@dataclass(frozen=True)
class OwnOrderId:
    day: date  # the trading day the order was placed for (New York)
    symbol: str
    intent: str  # "long" | "short" | "exit"

    @property
    def is_entry(self) -> bool:
        return self.intent != "exit"


def client_order_id(day: date, symbol: str, intent: str) -> str:
    """e.g. mr-20240301-AAPL-long: one per trading day, symbol and intent (long, short,
    exit)."""
    return f"{ORDER_ID_PREFIX}-{day:%Y%m%d}-{symbol}-{intent}"


def parse_client_order_id(text: str) -> OwnOrderId | None:
    """The parts of one of the bot's own ids; None for any other id (orders placed by hand,
    by another program, or a close from Alpaca's dashboard)."""
    match = _OWN.match(text)
    if match is None:
        return None
    try:
        day = datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None
    return OwnOrderId(day=day, symbol=match.group(2), intent=match.group(3))
