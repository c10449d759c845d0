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
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import console as console_format
from console import FORMAT, ConsoleFormatter, OncePerProcess, ZonedFormatter, wants_colour
from market_calendar import NEW_YORK
from state_files import write_error

__all__ = ["FORMAT", "add_run_file", "remove_handler", "run_dir_for", "run_dirs",
           "run_order", "setup_logging"]


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
    try:
        candidate.mkdir(parents=True)
    except OSError as exc:
        raise write_error(candidate, exc) from None
    return candidate


_RUN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})(?:_(\d+))?")


def run_order(run_dir: Path) -> tuple[str, int]:
    """Where a run directory sorts among the others, oldest first: by the New York time in its
    name (run_dir_for's), then by its number, as a number (`_2` before `_10`, which text
    order puts first). A directory the bot did not name sorts first."""
    named = _RUN_NAME.fullmatch(run_dir.name)
    if named:
        return named[1], int(named[2] or 1)
    return "", 0


def run_dirs(log_dir: Path, leave_out: Path | None = None) -> list[Path]:
    """The run directories under log_dir/runs, oldest first (run_order), without `leave_out`:
    listed with one scandir, no stat per run (a log directory gains a run a day)."""
    try:
        entries = list(os.scandir(log_dir / "runs"))
    except FileNotFoundError:
        return []
    dirs = [Path(e.path) for e in entries if e.is_dir()]
    return sorted((d for d in dirs if d != leave_out), key=run_order)


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


class RunFile(logging.FileHandler):
    """A run's bot.log. When a write fails (the disk filled), it says so once on stderr
    instead of a traceback per record, and `failed` tells the run."""

    failed: str | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed(sys.exc_info()[1])

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # the last buffered lines did not fit either
            self._failed(exc)

    def _failed(self, exc: BaseException | None) -> None:
        if self.failed is None:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            self.failed = (f"{self.baseFilename}: cannot be written ({reason}); the rest of "
                           "this run's log is on the console only")
            sys.stderr.write(f"bot.log: {self.failed}\n")


def add_run_file(run_dir: Path, secrets: Iterable[str] = ()) -> logging.Handler:
    path = run_dir / "bot.log"
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # 0600 at birth
        handler = RunFile(path, encoding="utf-8")
    except OSError as exc:
        raise write_error(path, exc) from None
    handler.setFormatter(ZonedFormatter())
    handler.addFilter(RedactSecrets(secrets))
    logging.getLogger("bot").addHandler(handler)
    return handler


def remove_handler(handler: logging.Handler) -> None:
    logging.getLogger("bot").removeHandler(handler)
    handler.close()
