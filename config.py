"""Every parameter of the strategy and the bot, with the design's defaults.

Each setting can be overridden by an environment variable, or a line in `.env`, with the same
name in upper case (`TICKERS=AAPL,MSFT,KO`, `POSITION_SIZE_USD=250`, `Z_SCORE_WINDOW=20`).
The environment wins over `.env`. Everything is validated once, here, with messages that name
the setting and say how to fix it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from errors import ConfigError
from order_types import KINDS, PartialFill

# 50 liquid US stocks. The first 25 are the symbols of the shipped market data, so the local
# exchange can trade them; the rest are skipped there with one log line (not offered).
DEFAULT_TICKERS: tuple[str, ...] = (
    "AAPL", "AMD", "AMZN", "BAC", "BBY", "CVX", "GE", "GOOG", "HD", "JNJ",
    "JPM", "KO", "LLY", "META", "MRK", "MSFT", "NFLX", "NVDA", "PEP", "PFE",
    "PG", "RRC", "UNH", "WMT", "XOM",
    "ABBV", "ABT", "ADBE", "AVGO", "BRK.B", "C", "CMCSA", "COST", "CRM", "CSCO",
    "DIS", "GOOGL", "INTC", "MA", "MCD", "NKE", "ORCL", "QCOM", "T", "TMO",
    "TSLA", "TXN", "V", "VZ", "WFC",
)

_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}([./][A-Z]{1,2})?$")
MAX_Z_SCORE_WINDOW = 1000
MAX_POSITION_SIZE_USD = 1e9
MAX_TIMEOUT_SECONDS = 3600.0
BARS_FEEDS = ("sip", "iex")
PRICE_FEEDS = ("iex", "sip", "delayed_sip")
# delayed_sip prices are 15 minutes old when they arrive; the bot needs some slack beyond that.
DELAYED_SIP_MIN_AGE_SECONDS = 1200.0
LIVE_URL = "https://api.alpaca.markets"
PAPER_URL = "https://paper-api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"


@dataclass(frozen=True)
class Config:
    """Strategy and bot settings. Units are in the names; z thresholds are in standard
    deviations; days are calendar days unless the name says otherwise."""

    tickers: tuple[str, ...] = DEFAULT_TICKERS
    z_score_window: int = 30
    long_entry_z: float = -1.5
    short_entry_z: float = 1.5
    long_exit_z: float = -0.1
    short_exit_z: float = 0.1
    long_stop_z: float = -3.0
    short_stop_z: float = 3.0
    position_size_usd: float = 100.0
    max_holding_days: int = 5
    allow_shorts: bool = True
    # Local day-trade guard: never close a position on the day it opened, except on a stop-loss
    # when this is true.
    same_day_stop_loss: bool = True
    alpaca_paper: bool = True
    # Market-data feeds (README "Data plans and feeds"): the history the z-scores come from
    # and the live prices. SIP history is free when it ends 15+ minutes ago; a free plan's
    # live prices are IEX only.
    bars_feed: str = "sip"
    price_feed: str = "iex"
    max_price_age_seconds: float = 900.0
    fill_wait_seconds: float = 30.0
    fill_poll_seconds: float = 2.0
    # Orders per purpose (order_types.py; README "Orders"): limit, marketable_limit, market,
    # limit_on_close or market_on_close.
    # Entries keep the design's limit at the current price; exits go through the quote so that
    # they fill the day they are decided; a stop-loss is a market order (README "Orders").
    entry_order_type: str = "limit"
    exit_order_type: str = "marketable_limit"
    stop_order_type: str = "market"
    limit_offset_bps: float = 10.0  # how far a marketable limit goes through the quote
    exit_escalate_after_days: int = 1  # unfilled exit days before one step up; 0 = never
    # The rest of a partially filled order: keep_working, cancel_remainder (or, for exits,
    # finish_next_day).
    entry_partial_fill: str = "keep_working"
    exit_partial_fill: str = "keep_working"
    request_timeout_seconds: float = 30.0
    request_retries: int = 3
    retry_backoff_seconds: float = 0.5  # the first retry's wait; it doubles with each retry
    run_deadline_seconds: float = 600.0
    # Risk limits (0 = no limit, except where the design sets one).
    max_entries_per_run: int = 0
    max_open_positions: int = 0
    max_gross_exposure_usd: float = 0.0
    daily_loss_limit_usd: float = 0.0
    universe: str = "static"
    universe_size: int = 50
    log_level: str = "INFO"

    @property
    def trading_url(self) -> str:
        return PAPER_URL if self.alpaca_paper else LIVE_URL


@dataclass(frozen=True)
class Credentials:
    """API keys. The repr never shows them, so they cannot leak into a log or a traceback."""

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(key_id=<redacted>, secret_key=<redacted>)"


def read_env(env_file: str | os.PathLike | None = ".env",
             environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings' source: `.env` (if present) overlaid by the process environment."""
    from dotenv import dotenv_values

    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        try:
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{env_file}: cannot be read ({exc.__class__.__name__}); fix or "
                              "delete it (see .env.example)") from exc
    values.update(os.environ if environ is None else environ)
    return values


def load_config(env: Mapping[str, str]) -> Config:
    """Build and validate the Config from environment-style strings."""
    if (env.get("DATA_FEED") or "").strip():
        raise ConfigError(
            "DATA_FEED is no longer read: it drove both the history and the live prices. Remove "
            "it and set BARS_FEED (history for the z-scores: sip, the default, works on a free "
            "plan) and PRICE_FEED (live prices: iex, the default, on a free plan; sip with a "
            "subscription)")
    env = _legacy_names(env)
    overrides: dict[str, Any] = {}
    for f in fields(Config):
        raw = env.get(f.name.upper())
        if f.name == "tickers" and raw is not None and not raw.replace(",", "").strip():
            # An empty setting means "the default" elsewhere; here the default is 50 stocks,
            # which is not what someone who cleared the list expects.
            raise ConfigError("TICKERS is set but lists no symbol; list symbols separated by "
                              "commas, e.g. TICKERS=AAPL,MSFT, or remove the line to trade "
                              "the 50 default stocks")
        if raw is None or raw.strip() == "":
            continue
        overrides[f.name] = _parse(f.name, raw.strip(), f.type)
    config = dataclasses.replace(Config(), **overrides)
    validate(config)
    return config


def _legacy_names(env: Mapping[str, str]) -> Mapping[str, str]:
    """CANCEL_PARTIAL_REMAINDER=true, the earlier setting, is what ENTRY_PARTIAL_FILL and
    EXIT_PARTIAL_FILL=cancel_remainder now say; it is read as that, and refused if it
    contradicts them."""
    raw = (env.get("CANCEL_PARTIAL_REMAINDER") or "").strip()
    if not raw:
        return env
    if not _parse("cancel_partial_remainder", raw, "bool"):
        return env
    merged = dict(env)
    for name in ("ENTRY_PARTIAL_FILL", "EXIT_PARTIAL_FILL"):
        given = (env.get(name) or "").strip()
        if given and given != "cancel_remainder":
            raise ConfigError(f"CANCEL_PARTIAL_REMAINDER=true contradicts {name}={given}; "
                              f"drop CANCEL_PARTIAL_REMAINDER (it is the old name of "
                              f"ENTRY_PARTIAL_FILL and EXIT_PARTIAL_FILL=cancel_remainder)")
        merged[name] = "cancel_remainder"
    return merged


def _parse(name: str, raw: str, kind: Any) -> Any:
    env_name = name.upper()
    if kind in ("tuple[str, ...]",):
        items = tuple(t.strip().upper() for t in raw.split(",") if t.strip())
        return items
    if kind == "bool":
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{env_name}={raw!r} is not a boolean; use true or false")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{env_name}={raw!r} is not a whole number") from None
    if kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{env_name}={raw!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{env_name}={raw!r} must be a finite number")
        return value
    return raw


def validate(c: Config) -> None:
    """Raise ConfigError naming the first setting that is wrong and how to fix it."""
    _validate_tickers(c)
    _validate_thresholds(c)
    _validate_amounts(c)
    _validate_orders(c)


def _validate_orders(c: Config) -> None:
    for name in ("entry_order_type", "exit_order_type", "stop_order_type"):
        if getattr(c, name) not in KINDS:
            raise ConfigError(f"{name.upper()}={getattr(c, name)!r} is unknown; use one of "
                              f"{', '.join(KINDS)}")
    if not 0 <= c.limit_offset_bps <= 1000:
        raise ConfigError(f"LIMIT_OFFSET_BPS={c.limit_offset_bps} must be 0 to 1000 basis "
                          "points through the quote, e.g. 10")
    if c.exit_escalate_after_days < 0:
        raise ConfigError(f"EXIT_ESCALATE_AFTER_DAYS={c.exit_escalate_after_days} must be 0 "
                          "(never escalate) or a number of days, e.g. 1")
    entry = (PartialFill.KEEP_WORKING, PartialFill.CANCEL_REMAINDER)
    if c.entry_partial_fill not in entry:
        raise ConfigError(f"ENTRY_PARTIAL_FILL={c.entry_partial_fill!r} is unknown; use "
                          f"{' or '.join(entry)}")
    if c.exit_partial_fill not in tuple(PartialFill):
        raise ConfigError(f"EXIT_PARTIAL_FILL={c.exit_partial_fill!r} is unknown; use "
                          f"{', '.join(PartialFill)}")


def _validate_tickers(c: Config) -> None:
    if not c.tickers:
        raise ConfigError("TICKERS is empty; list symbols separated by commas, e.g. AAPL,MSFT")
    for ticker in c.tickers:
        if not _TICKER.match(ticker):
            raise ConfigError(f"TICKERS: {ticker!r} is not a valid US stock symbol "
                              "(letters and digits, optional class suffix like BRK.B)")
    duplicates = sorted({t for t in c.tickers if c.tickers.count(t) > 1})
    if duplicates:
        raise ConfigError(f"TICKERS lists {', '.join(duplicates)} more than once; list each once")


def _validate_thresholds(c: Config) -> None:
    if c.z_score_window < 3:
        raise ConfigError(f"Z_SCORE_WINDOW={c.z_score_window} is too short; use at least 3 "
                          "days (a standard deviation needs several values)")
    if c.z_score_window > MAX_Z_SCORE_WINDOW:
        # The run builds the NYSE calendar for the window's years and asks for its bars.
        raise ConfigError(f"Z_SCORE_WINDOW={c.z_score_window} is too long; use at most "
                          f"{MAX_Z_SCORE_WINDOW} sessions (about four years)")
    if not c.long_stop_z < c.long_entry_z < c.long_exit_z:
        raise ConfigError(
            "long thresholds out of order: need LONG_STOP_Z < LONG_ENTRY_Z < LONG_EXIT_Z, got "
            f"{c.long_stop_z} < {c.long_entry_z} < {c.long_exit_z}; the stop must lie beyond "
            "the entry and the exit between the entry and the mean")
    if not c.short_exit_z < c.short_entry_z < c.short_stop_z:
        raise ConfigError(
            "short thresholds out of order: need SHORT_EXIT_Z < SHORT_ENTRY_Z < SHORT_STOP_Z, "
            f"got {c.short_exit_z} < {c.short_entry_z} < {c.short_stop_z}")
    if not c.long_entry_z < 0 < c.short_entry_z:
        raise ConfigError(f"LONG_ENTRY_Z ({c.long_entry_z}) must be below 0 and SHORT_ENTRY_Z "
                          f"({c.short_entry_z}) above 0: the strategy buys dips and sells rips")


def _validate_amounts(c: Config) -> None:
    _positive(c.position_size_usd, "POSITION_SIZE_USD", "dollars per position, e.g. 100")
    if c.position_size_usd < 1:
        raise ConfigError("POSITION_SIZE_USD must be at least 1: Alpaca's smallest order is $1")
    if c.position_size_usd > MAX_POSITION_SIZE_USD:
        # Share quantities are computed in 28-digit decimals with 9 places (Alpaca's).
        raise ConfigError(f"POSITION_SIZE_USD must be at most {MAX_POSITION_SIZE_USD:,.0f}")
    _positive(c.max_holding_days, "MAX_HOLDING_DAYS", "calendar days, e.g. 5")
    for name in ("fill_wait_seconds", "max_price_age_seconds", "retry_backoff_seconds"):
        if getattr(c, name) < 0:
            raise ConfigError(f"{name.upper()} must be 0 or more (seconds)")
    for name in ("fill_poll_seconds", "request_timeout_seconds", "run_deadline_seconds"):
        _positive(getattr(c, name), name.upper(), "seconds")
    if c.request_timeout_seconds > MAX_TIMEOUT_SECONDS:
        # A socket timeout must fit the platform's time_t; an hour is already far too long.
        raise ConfigError(f"REQUEST_TIMEOUT_SECONDS must be at most {MAX_TIMEOUT_SECONDS:g} "
                          "(seconds), e.g. 30")
    for name in ("request_retries", "max_entries_per_run", "max_open_positions",
                 "max_gross_exposure_usd", "daily_loss_limit_usd"):
        if getattr(c, name) < 0:
            raise ConfigError(f"{name.upper()} must be 0 (no limit) or a positive number")
    _validate_feeds(c)
    if c.universe not in ("static", "dynamic"):
        raise ConfigError(f"UNIVERSE={c.universe!r} is unknown; use static (TICKERS) or dynamic")
    _positive(c.universe_size, "UNIVERSE_SIZE", "a number of symbols, e.g. 50")
    if c.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL={c.log_level!r} is unknown; use DEBUG, INFO or WARNING")


def _validate_feeds(c: Config) -> None:
    if c.bars_feed not in BARS_FEEDS:
        raise ConfigError(f"BARS_FEED={c.bars_feed!r} is not a feed of daily history; use sip "
                          "(consolidated volume and closes, allowed on a free plan) or iex")
    if c.price_feed not in PRICE_FEEDS:
        raise ConfigError(f"PRICE_FEED={c.price_feed!r} is unknown; use iex (free plans), sip "
                          "(with a market-data subscription) or delayed_sip")
    if c.price_feed == "delayed_sip" and c.max_price_age_seconds < DELAYED_SIP_MIN_AGE_SECONDS:
        raise ConfigError(
            f"PRICE_FEED=delayed_sip gives prices at least 15 minutes old, so "
            f"MAX_PRICE_AGE_SECONDS={c.max_price_age_seconds:g} would skip every symbol; set "
            f"PRICE_FEED=iex, or MAX_PRICE_AGE_SECONDS to {DELAYED_SIP_MIN_AGE_SECONDS:g} or more")


def _positive(value: float, name: str, unit: str) -> None:
    if not value > 0:
        raise ConfigError(f"{name}={value} must be positive ({unit})")


def load_credentials(env: Mapping[str, str]) -> Credentials:
    """Keys as the design names them, or the SDK's names. Missing keys stop the run."""
    key = env.get("ALPACA_API_KEY") or env.get("APCA_API_KEY_ID")
    secret = env.get("ALPACA_SECRET_KEY") or env.get("APCA_API_SECRET_KEY")
    if not key or not secret:
        missing = "ALPACA_API_KEY" if not key else "ALPACA_SECRET_KEY"
        raise ConfigError(
            f"{missing} is not set. Copy .env.example to .env and fill in your Alpaca paper "
            "keys, or run `python trading_bot.py --sim` to use the local exchange without keys")
    return Credentials(key_id=key.strip(), secret_key=secret.strip())
