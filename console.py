"""How log lines look: timestamps with their zone, the simulated time first in `--sim`, level
colours on a terminal, and notices that do not change from run to run said once per process.

Colours follow the NO_COLOR convention (no-color.org): none when NO_COLOR is set to anything
non-empty, and none when the stream is not a terminal (piped, redirected, under cron).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import IO

from market_calendar import NEW_YORK

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %Z"  # the machine's zone, named
_COLOURS = {logging.DEBUG: "\033[2m", logging.WARNING: "\033[33m", logging.ERROR: "\033[31m",
            logging.CRITICAL: "\033[1;31m"}
_BOLD, _RESET = "\033[1m", "\033[0m"

# A notice logged with extra={"once": True} reaches the console the first time its text is
# seen in this process (a 40-day --sim repeats its universe's notices every day); every run's
# bot.log keeps it.
ONCE = {"once": True}
_said: set[str] = set()

_sim_clock: Callable[[], datetime] | None = None


def set_sim_clock(clock: Callable[[], datetime] | None) -> None:
    """In --sim: where the simulated time comes from (None: not simulating)."""
    global _sim_clock
    _sim_clock = clock


class ZonedFormatter(logging.Formatter):
    """FORMAT with the zone in every timestamp, and the simulated time first in --sim."""

    def __init__(self) -> None:
        super().__init__(FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if _sim_clock is not None:
            line = f"[sim {_sim_clock().astimezone(NEW_YORK):%Y-%m-%d %H:%M %Z}] {line}"
        return line

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # In --sim the machine's date says nothing next to the simulated one: its time only.
        fmt = "%H:%M:%S %Z" if _sim_clock is not None else datefmt or DATE_FORMAT
        return time.strftime(fmt, time.localtime(record.created))


class ConsoleFormatter(ZonedFormatter):
    """ZonedFormatter with the level coloured (warnings yellow, errors red) when `colour`."""

    def __init__(self, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if not self.colour:
            return line
        colour = _COLOURS.get(record.levelno)
        if getattr(record, "headline", False):
            colour = (colour or "") + _BOLD
        return f"{colour}{line}{_RESET}" if colour else line


class OncePerProcess(logging.Filter):
    """Drops a record marked `once` whose text this process has already shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "once", False):
            return True
        text = record.getMessage()
        if text in _said:
            return False
        _said.add(text)
        return True


def wants_colour(stream: IO[str], env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
