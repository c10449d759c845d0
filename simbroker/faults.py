"""Injected faults: what the next requests matching a method and a path prefix suffer.

A fault is one of: an HTTP error status (with an Alpaca-style body; 429 adds the
X-RateLimit-* headers), a malformed body with 200, a connection reset with no response, or a
hang that holds the connection until the client gives up (at most `hang_seconds`, bounded by
60 s). Any of them may come after a delay, and with `after_commit` the request is processed
first - an order IS placed - and only the response is lost or replaced. A fault with only a
delay slows the request down and then answers it normally. A status fault with a `body`
answers that JSON body instead of Alpaca's error body (e.g. status 200 with no bars at all).

`RandomFaults` adds faults at a rate, drawn from a list with a seed: a soak test's weather.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from simbroker import errors

MAX_HANG_SECONDS = 60.0
MAX_DELAY_SECONDS = 60.0
_FIELDS = ("method", "path", "count", "status", "delay_seconds", "hang", "hang_seconds",
           "after_commit", "malformed", "reset", "headers", "body")


@dataclass(frozen=True)
class Fault:
    method: str = "*"  # an HTTP method, or * for any
    path: str = "/"  # a path prefix, e.g. /v2/orders
    count: int = 1  # how many matching requests suffer it
    status: int | None = None
    delay_seconds: float = 0.0
    hang: bool = False
    hang_seconds: float = MAX_HANG_SECONDS
    after_commit: bool = False
    malformed: bool = False
    reset: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # with status: the JSON body answered instead of Alpaca's error body

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if problems:
            raise errors.unprocessable("invalid fault: " + "; ".join(problems))
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", dict(self.headers))
        if not self.path.startswith("/"):
            problems.append(f"path {self.path!r} must start with / (e.g. /v2/orders)")
        if not (isinstance(self.count, int) and self.count >= 1):
            problems.append(f"count {self.count!r} must be a whole number >= 1")
        if self.status is not None and not (isinstance(self.status, int)
                                            and 100 <= self.status <= 599):
            problems.append(f"status {self.status!r} must be an HTTP status 100..599")
        if not (math.isfinite(self.delay_seconds)
                and 0 <= self.delay_seconds <= MAX_DELAY_SECONDS):
            problems.append(f"delay_seconds must be in [0, {MAX_DELAY_SECONDS:g}]")
        if not 0 < self.hang_seconds <= MAX_HANG_SECONDS:
            problems.append(f"hang_seconds must be in (0, {MAX_HANG_SECONDS:g}]")
        if sum((self.hang, self.malformed, self.reset)) > 1:
            problems.append("hang, malformed and reset exclude each other; give one")
        if self.body is not None and self.status is None:
            problems.append("body needs a status to answer it with (e.g. 200)")
        if self.kind == "delay" and self.delay_seconds == 0:
            problems.append("give at least one of status, delay_seconds, hang, malformed, reset")
        if problems:
            raise errors.unprocessable("invalid fault: " + "; ".join(problems))

    @property
    def kind(self) -> str:
        if self.hang:
            return "hang"
        if self.reset:
            return "reset"
        if self.malformed:
            return "malformed"
        if self.status is not None:
            return "status"
        return "delay"

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path.startswith(self.path)

    def error_response(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Status, body (Alpaca-style unless given) and headers of a status fault."""
        assert self.status is not None
        headers = {}
        if self.status == 429:
            message = "rate limit exceeded"
            # A burst spent by some other client: the budget is back on the next whole
            # second, so a client that waits for the reset (the bot does) waits at most 1 s.
            headers = {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": str(int(time.time()) + 1)}
        else:
            message = f"simulated fault: HTTP {self.status}"
        headers.update(self.headers)
        body = self.body if self.body is not None else errors.for_status(self.status,
                                                                         message).body()
        return self.status, body, headers

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["headers"] = dict(self.headers)
        data["kind"] = self.kind
        return data


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_BOOLS = ("hang", "after_commit", "malformed", "reset")


def _type_problems(fault: Fault) -> list[str]:
    """The fields of the wrong type: a fault is refused when armed, never when it strikes."""
    problems = []
    for name in ("method", "path"):
        if not isinstance(getattr(fault, name), str):
            problems.append(f"{name} must be a string")
    if isinstance(fault.method, str) and fault.method != "*" \
            and not _TOKEN.fullmatch(fault.method):
        problems.append(f"method {fault.method[:20]!r} must be an HTTP method or *")
    for name in ("count", "status"):
        if isinstance(getattr(fault, name), bool):
            problems.append(f"{name} must be a whole number")
    for name in ("delay_seconds", "hang_seconds"):
        value = getattr(fault, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{name} must be a number of seconds")
    problems += [f"{name} must be true or false" for name in _BOOLS
                 if not isinstance(getattr(fault, name), bool)]
    headers = fault.headers
    if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and _TOKEN.fullmatch(k) and isinstance(v, str)
            and "\r" not in v and "\n" not in v and len(v) <= 1000
            for k, v in headers.items()):
        problems.append('headers must be an object of header names to one-line strings, e.g. '
                        '{"Retry-After": "1"}')
    return problems


def fault_from_json(body: Any) -> Fault:
    if not isinstance(body, dict):
        raise errors.malformed("a fault must be a JSON object, e.g. "
                               '{"method": "POST", "path": "/v2/orders", "status": 504}')
    unknown = set(body) - set(_FIELDS)
    if unknown:
        raise errors.unprocessable(f"unknown fault field(s) {', '.join(sorted(unknown))}; "
                                   f"use {', '.join(_FIELDS)}")
    try:
        return Fault(**body)
    except (TypeError, AttributeError) as exc:
        raise errors.malformed(f"invalid fault: {exc}") from None


class Faults:
    """The armed faults, in the order they were added. Thread-safe."""

    def __init__(self) -> None:
        self._armed: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault | None = None, /, **fields: Any) -> Fault:
        """Arm a fault: `faults.add(method="POST", path="/v2/orders", status=504)`."""
        fault = fault if fault is not None else fault_from_json(fields)
        with self._lock:
            self._armed.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching the request, with one use consumed."""
        with self._lock:
            for i, fault in enumerate(self._armed):
                if fault.matches(method, path):
                    if fault.count <= 1:
                        del self._armed[i]
                    else:
                        self._armed[i] = replace(fault, count=fault.count - 1)
                    return fault
        return None

    def armed(self) -> list[Fault]:
        with self._lock:
            return list(self._armed)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()


# The faults a soak draws from: every kind a client must survive without its timeout
# (hangs are left out: each would cost the client's whole timeout).
SOAK_FAULTS: tuple[Fault, ...] = (
    Fault(status=429), Fault(status=500), Fault(status=502), Fault(status=503),
    Fault(status=504), Fault(status=504, after_commit=True), Fault(reset=True),
    Fault(reset=True, after_commit=True), Fault(malformed=True),
    Fault(malformed=True, after_commit=True),
)


class RandomFaults(Faults):
    """Armed faults first; then each other request suffers, with probability `rate`, one
    fault drawn from `kinds`. Seeded: the same requests suffer the same faults on a rerun.
    `injected` counts what was drawn: by status ("429", "503"...) or kind ("reset",
    "malformed"), after_commit ones as "<that>+commit"."""

    def __init__(self, rate: float, *, seed: int | str = 0,
                 kinds: Sequence[Fault] = SOAK_FAULTS) -> None:
        super().__init__()
        if not 0.0 <= rate <= 1.0 or not kinds:
            raise ValueError(f"RandomFaults(rate={rate}): give a rate in [0, 1] and at least "
                             "one fault kind")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)

    def take(self, method: str, path: str) -> Fault | None:
        armed = super().take(method, path)
        if armed is not None:
            return armed
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            fault = self._rng.choice(self.kinds)
            name = str(fault.status) if fault.kind == "status" else fault.kind
            self.injected[name + ("+commit" if fault.after_commit else "")] += 1
        return fault
