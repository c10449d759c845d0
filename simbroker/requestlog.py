"""The exchange's log of API requests: what a test asserts on ("exactly one POST /v2/orders")."""

from __future__ import annotations

from collections import Counter
from typing import Any

MAX_ENTRIES = 10_000  # the oldest entries go first; the counts are never trimmed


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def record(self, method: str, path: str, status: int, time: str, **extra: Any) -> None:
        self.entries.append({"method": method, "path": path, "status": status, "time": time,
                             **extra})
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[: len(self.entries) - MAX_ENTRIES]
        self.counts[f"{method} {path}"] += 1

    def count(self, method: str, path: str) -> int:
        return self.counts[f"{method} {path}"]

    def clear(self) -> None:
        self.entries.clear()
        self.counts.clear()

    def to_state(self) -> dict[str, Any]:
        return {"entries": list(self.entries), "counts": dict(self.counts)}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> RequestLog:
        log = cls()
        log.entries = list(data.get("entries", []))
        log.counts = Counter({str(k): int(v) for k, v in data.get("counts", {}).items()})
        return log
