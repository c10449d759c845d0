"""The exchange's log of API requests: what a test asserts on ("exactly one POST /v2/orders").

Bounded in entries and in bytes: the oldest entries go first, a path is kept to its first
`MAX_PATH_CHARS` characters, and at most `MAX_COUNT_KEYS` distinct "METHOD path" counts are
kept (later new ones are counted under "METHOD (other paths)"). Counts are never trimmed.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

MAX_ENTRIES = 10_000
MAX_BYTES = 2 * 1024 * 1024  # of entries, measured as their method, path and time
MAX_PATH_CHARS = 256
MAX_COUNT_KEYS = 10_000
_ENTRY_OVERHEAD = 64  # the status, keys and a fault's kind


class RequestLog:
    def __init__(self) -> None:
        self.entries: deque[dict[str, Any]] = deque()
        self.counts: Counter[str] = Counter()
        self.bytes = 0
        self.appended = 0  # entries ever recorded (a journal's cursor; not trimmed)
        self._new_counts: Counter[str] = Counter()  # since the last take_counts
        self._cleared = False

    def record(self, method: str, path: str, status: int, time: str, **extra: Any) -> None:
        self._append({"method": method[:16], "path": path[:MAX_PATH_CHARS], "status": status,
                      "time": time, **extra})
        key = f"{method[:16]} {path[:MAX_PATH_CHARS]}"
        if key not in self.counts and len(self.counts) >= MAX_COUNT_KEYS:
            key = f"{method[:16]} (other paths)"
        self.counts[key] += 1
        self._new_counts[key] += 1

    def _append(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self.appended += 1
        self.bytes += _size(entry)
        while len(self.entries) > MAX_ENTRIES or self.bytes > MAX_BYTES:
            self.bytes -= _size(self.entries.popleft())

    def count(self, method: str, path: str) -> int:
        return self.counts[f"{method} {path}"]

    def clear(self) -> None:
        self.entries.clear()
        self.counts.clear()
        self.bytes = 0
        self._new_counts.clear()
        self._cleared = True

    def take_counts(self) -> tuple[bool, dict[str, int]]:
        """Whether the log was cleared, and the counts added, since the last call."""
        taken = (self._cleared, dict(self._new_counts))
        self._new_counts.clear()
        self._cleared = False
        return taken

    def since(self, appended: int) -> list[dict[str, Any]]:
        """The entries recorded after the `appended`-th (those still kept)."""
        new = min(self.appended - appended, len(self.entries))
        return list(self.entries)[len(self.entries) - new:] if new > 0 else []

    def extend(self, entries: list[dict[str, Any]], counts: dict[str, int]) -> None:
        """Replay entries and count increments (a journal's)."""
        for entry in entries:
            self._append(dict(entry))
        for key, n in counts.items():
            self.counts[str(key)] += int(n)
        self._new_counts.clear()

    def to_state(self) -> dict[str, Any]:
        return {"entries": list(self.entries), "counts": dict(self.counts)}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> RequestLog:
        log = cls()
        for entry in data.get("entries", []):
            log._append(dict(entry))
        log.counts = Counter({str(k): int(v) for k, v in data.get("counts", {}).items()})
        return log


def _size(entry: dict[str, Any]) -> int:
    return (len(entry.get("path", "")) + len(entry.get("method", ""))
            + len(entry.get("time", "")) + _ENTRY_OVERHEAD)
