"""A verified disk cache for arrays that are slow to compute and always the same.

The intraday path library (price_model) is drawn from a fixed seed: the same numbers in every
process, ~0.04 s to draw, ~0.01 s to read back. Each process that needs it (a daily
`trading_bot.py --sim` run, a backtest, each test's exchange) reads it from here instead.

Safe by construction: an entry is found only under the key its caller computes from
everything its numbers depend on (price_model: its own source file, numpy's version, the
machine), and is used only when its header names that same key, shape and dtype and the
sha256 of its bytes matches the one written with them. Anything else (no file, a torn or
altered one, another key, a directory that cannot be read or written) means "not cached":
the caller computes the array as it would without a cache. Nothing here raises.

Where: $SIMBROKER_CACHE_DIR, else $XDG_CACHE_HOME/simbroker, else ~/.cache/simbroker.
SIMBROKER_CACHE_DIR set to an empty value turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

CACHE_ENV = "SIMBROKER_CACHE_DIR"
_MAGIC = b"simbroker array cache 1\n"
log = logging.getLogger("simbroker.cache")


def cache_dir() -> Path | None:
    """The cache's directory, or None when the cache is off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return Path(chosen) if chosen.strip() else None
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    try:
        return (Path(base) if base else Path.home() / ".cache") / "simbroker"
    except RuntimeError:  # no home directory to be found
        return None


def entry_path(name: str, key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{name}-{key[:16]}.bin"


def load(name: str, key: str) -> np.ndarray | None:
    """The array stored under `name` and `key`, read-only; None unless it is there, whole and
    verified."""
    path = entry_path(name, key)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if f.readline() != _MAGIC:
                return None
            header = json.loads(f.readline())
            if header["key"] != key:
                return None
            array = np.empty(tuple(int(n) for n in header["shape"]), np.dtype(header["dtype"]))
            got = f.readinto(memoryview(array).cast("B"))  # straight into the array: no copy
            whole = got == array.nbytes and not f.read(1)
        if not whole or hashlib.sha256(array).hexdigest() != header["sha256"]:
            log.debug("cache entry %s does not verify; computing it again", path)
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    array.flags.writeable = False
    return array


def store(name: str, key: str, array: np.ndarray) -> None:
    """Keep `array` under `name` and `key` (written whole or not at all), and drop the entries
    of `name` under other keys. Failing to write only means it is not cached."""
    path = entry_path(name, key)
    if path is None:
        return
    payload = np.ascontiguousarray(array).tobytes()
    header = {"key": key, "dtype": array.dtype.str, "shape": list(array.shape),
              "sha256": hashlib.sha256(payload).hexdigest()}
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{name}-",
                                         delete=False) as f:
            temporary = f.name
            f.write(_MAGIC + json.dumps(header).encode() + b"\n" + payload)
        os.replace(temporary, path)
        temporary = None
        for old in path.parent.glob(f"{name}-*.bin"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("could not cache %s in %s: %s", name, path.parent, exc)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
