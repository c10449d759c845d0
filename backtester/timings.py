"""How long each phase of a command took (`backtest.py --timings`), as a user waits for it."""

from __future__ import annotations

import time


class Stopwatch:
    """Laps of one command: each is the wall time since the previous lap (the first since
    `started`, a `time.perf_counter()` reading taken before the command's imports)."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self._last = self.started
        self.laps: list[tuple[str, float]] = []
        # Work done beside the laps (by a helper process), not part of their sum.
        self.notes: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.append((name, now - self._last))
        self._last = now

    def note(self, name: str, seconds: float) -> None:
        """Seconds of work done beside the laps, e.g. by a helper process meanwhile."""
        self.notes.append((name, seconds))

    def text(self) -> str:
        """e.g. ``timings: imports 0.512 s, load 0.603 s, ..., total 2.100 s``"""
        parts = [f"{name} {seconds:.3f} s" for name, seconds in self.laps + self.notes]
        return f"timings: {', '.join(parts)}, total {self._last - self.started:.3f} s"
