"""Logging for one run: the console plus `runs/<YYYY-MM-DD_HH-MM-SS>/bot.log`.

A filter replaces every known secret with `<redacted>` before any handler sees the record, so
a key can reach neither a log file nor the console, whatever the message or traceback says.
Python's own last word - the traceback of an exception nothing caught, in the main thread or
another - goes through the same redaction (`setup_logging` installs the hooks), so the first
line the process prints and the last are redacted alike. `bot.log` is created 0600, like
every state file.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import console as console_format
from console import FORMAT, ConsoleFormatter, OncePerProcess, ZonedFormatter, wants_colour
from market_calendar import NEW_YORK

__all__ = ["FORMAT", "add_run_file", "remove_handler", "run_dir_for", "setup_logging"]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of 4 characters or more) replaced by `<redacted>`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = redact(message, self._secrets), None
        return True


def install_excepthooks(secrets: Iterable[str]) -> None:
    """Print an uncaught exception's traceback (main thread or any other) redacted."""
    known = [s for s in secrets if s and len(s) >= 4]

    def main_hook(kind: type[BaseException], value: BaseException, tb: object) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))  # type: ignore[arg-type]
        sys.stderr.write(redact(text, known))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value,
                                                  args.exc_traceback))
        sys.stderr.write(redact(f"Exception in {name}:\n{text}", known))

    sys.excepthook = main_hook
    threading.excepthook = thread_hook


def run_dir_for(log_dir: Path, started: datetime) -> Path:
    """A new directory for this run, named by its start in New York time."""
    stamp = started.astimezone(NEW_YORK).strftime("%Y-%m-%d_%H-%M-%S")
    candidate = log_dir / "runs" / stamp
    n = 1
    while candidate.exists():
        n += 1
        candidate = log_dir / "runs" / f"{stamp}_{n}"
    candidate.mkdir(parents=True)
    return candidate


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> logging.Logger:
    """Console logging for the bot's loggers; returns the 'bot' logger."""
    console_format.set_sim_clock(None)  # sim_runner sets it for its own runs
    root = logging.getLogger("bot")
    root.setLevel(level.upper())
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(ConsoleFormatter(colour=wants_colour(sys.stderr)))  # see console.py
    secrets = list(secrets)
    console.addFilter(RedactSecrets(secrets))
    console.addFilter(OncePerProcess())
    root.addHandler(console)
    install_excepthooks(secrets)
    return root


def add_run_file(run_dir: Path, secrets: Iterable[str] = ()) -> logging.Handler:
    path = run_dir / "bot.log"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # 0600 from birth
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(ZonedFormatter())
    handler.addFilter(RedactSecrets(secrets))
    logging.getLogger("bot").addHandler(handler)
    return handler


def remove_handler(handler: logging.Handler) -> None:
    logging.getLogger("bot").removeHandler(handler)
    handler.close()
