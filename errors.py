"""The bot's own exceptions. Each docstring says what the handler must do.

They are caught in two places only: per symbol (log, skip, go on) and once in `main`, which
turns them into the documented exit codes.
"""

from __future__ import annotations


class BotError(Exception):
    """Root of every error the bot raises on purpose. `main` exits 1."""

    exit_code = 1


class ConfigError(BotError, ValueError):
    """A setting or a key is missing or invalid. Stop: the user must fix `.env` (exit 2)."""

    exit_code = 2


class LockHeldError(BotError):
    """Another run holds the lock. Stop at once without touching anything (exit 3)."""

    exit_code = 3


class AccountRestrictedError(BotError):
    """The broker's account may not trade (blocked, suspended or not ACTIVE). Stop before any
    order, say why, and exit 4 so that cron and the alerts see it: only the account's owner
    or Alpaca can lift it."""

    exit_code = 4


class StateFileError(BotError):
    """A state file cannot be read or written. Stop: never replace it with an empty state."""


class DeadlineError(BotError):
    """The run's deadline passed. Stop; the next run reconciles with the broker."""


class BrokerError(BotError):
    """The broker refused or failed a request. `status`/`code` are Alpaca's when known."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class TemporaryBrokerError(BrokerError):
    """Timeout, connection failure, 429 or 5xx: usually resolves itself. Reads are retried;
    an order is re-sent only after its client_order_id was looked up and not found."""


class AuthError(BrokerError):
    """The broker rejected the keys (401/403 on auth). Stop: the user must fix the keys."""


class NotFoundError(BrokerError):
    """The broker has no such object (404)."""


class SubscriptionError(BrokerError):
    """The market-data plan does not cover this feed (403 "subscription does not permit ...").
    Use a feed the plan covers (the broker falls back from SIP to IEX prices once)."""


class OrderRejectedError(BrokerError):
    """The broker refused this order (403/422): skip the symbol, log why, go on."""


class Terminated(BaseException):
    """SIGTERM arrived (cron's `timeout`, `make demo`'s, a shutdown). Not an `Exception`, so
    that no handler of one swallows it: the run stops where it is, records what it did (every
    state file is written atomically, so none is half-written) and exits 143 (128 + SIGTERM,
    what a shell reports for a process ended by it). The next run reconciles."""

    exit_code = 143
