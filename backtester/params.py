"""Strategy parameters from the command line, applied the way the bot reads its settings.

Every override becomes the environment variable the bot would read (`--long-entry-z -2` is
LONG_ENTRY_Z=-2) on top of `.env` and the process environment, and `config.load_config`
validates the result: one source of defaults and one set of checks for the bot and the
backtest. Shorthands set both sides at once: `--entry-z 2` is long entry -2 and short entry +2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from config import Config, load_config

# Settings a backtest can vary: the strategy and its risk limits.
STRATEGY_FIELDS = (
    "z_score_window", "long_entry_z", "short_entry_z", "long_exit_z", "short_exit_z",
    "long_stop_z", "short_stop_z", "position_size_usd", "max_holding_days", "allow_shorts",
    "same_day_stop_loss", "max_entries_per_run", "max_open_positions",
    "max_gross_exposure_usd", "daily_loss_limit_usd",
    # How orders are sent (order_types.py).
    "entry_order_type", "exit_order_type", "stop_order_type", "limit_offset_bps",
    "exit_escalate_after_days", "entry_partial_fill", "exit_partial_fill",
)
# Shorthand -> (long field, short field) set to -|v| and +|v|, or one field set to v.
SYMMETRIC = {"entry_z": ("long_entry_z", "short_entry_z"),
             "exit_z": ("long_exit_z", "short_exit_z"),
             "stop_z": ("long_stop_z", "short_stop_z")}
ALIASES = {"window": "z_score_window", "size_usd": "position_size_usd",
           "max_hold_days": "max_holding_days"}
NAMES = (*SYMMETRIC, *ALIASES, *STRATEGY_FIELDS)


def as_env(name: str, value: str) -> dict[str, str]:
    """The environment variables one override stands for. Raises ValueError for an unknown
    name or a shorthand whose value is not a number."""
    if name in SYMMETRIC:
        try:
            size = abs(float(value))
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a number; give the threshold in "
                             f"standard deviations, e.g. {name}=1.5") from None
        low, high = SYMMETRIC[name]
        return {low.upper(): repr(-size), high.upper(): repr(size)}
    field = ALIASES.get(name, name)
    if field not in STRATEGY_FIELDS:
        raise ValueError(f"{name!r} is not a strategy parameter; use one of "
                         f"{', '.join(NAMES)}")
    return {field.upper(): str(value)}


def build_config(env: Mapping[str, str], overrides: Sequence[tuple[str, str]]) -> Config:
    """load_config(env + overrides), overrides applied in order (shorthands first in the
    command line, exact names after, so `--entry-z 2 --long-entry-z -2.5` means what it
    says). Raises config.ConfigError naming the setting."""
    merged = dict(env)
    for name, value in overrides:
        merged.update(as_env(name, value))
    return load_config(merged)


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """`entry_z=1.0,1.5 window=20,30` -> [("entry_z", ["1.0", "1.5"]), ("window", [...])]."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not choices:
            raise ValueError(f"--grid {item!r}: write NAME=V1,V2,... e.g. entry_z=1.0,1.5,2.0")
        as_env(name, choices[0])  # an unknown name fails here, before any run
        if name in (n for n, _ in grid):
            raise ValueError(f"--grid names {name} twice; give each parameter once")
        grid.append((name, choices))
    return grid
