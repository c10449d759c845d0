"""Risk limits on new entries: pure functions of the settings and the account.

All limits are off (0) by default, since the design sets none, except the kill switch: a file
named STOP in the log directory makes every run manage exits only until it is removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config import Config


@dataclass(frozen=True)
class RiskView:
    """What the limits look at, as of the run's start."""

    open_positions: int
    gross_exposure_usd: float  # sum of |market value| of all positions
    equity_usd: float
    last_equity_usd: float  # equity at the previous close
    kill_switch: bool


@dataclass(frozen=True)
class EntryAllowance:
    max_entries: int  # 0 means no limit; see `blocked`
    blocked: str = ""  # why no entry at all is allowed, or empty


def entry_allowance(c: Config, r: RiskView) -> EntryAllowance:
    """How many new entries this run may make under the configured limits."""
    if r.kill_switch:
        return EntryAllowance(0, "kill switch: the STOP file exists; managing exits only")
    loss = r.last_equity_usd - r.equity_usd
    if c.daily_loss_limit_usd and r.last_equity_usd > 0 and loss >= c.daily_loss_limit_usd:
        return EntryAllowance(0, f"daily loss limit: down ${loss:,.2f} since the last close "
                                 f"(limit ${c.daily_loss_limit_usd:,.2f})")
    caps = []
    if c.max_entries_per_run:
        caps.append(c.max_entries_per_run)
    if c.max_open_positions:
        caps.append(c.max_open_positions - r.open_positions)
    if c.max_gross_exposure_usd:
        # Each entry adds at most position_size_usd of exposure.
        room = c.max_gross_exposure_usd - r.gross_exposure_usd
        caps.append(math.floor(room / c.position_size_usd + 1e-9))
    if not caps:
        return EntryAllowance(0)
    allowed = min(caps)
    if allowed <= 0:
        return EntryAllowance(0, "risk limits reached (max open positions or gross exposure)")
    return EntryAllowance(allowed)
