"""A verified disk cache for arrays that are slow to compute and always the same.

The intraday path library (price_model) is drawn from a fixed seed: the same numbers in every
process, ~0.04 s to draw, ~0.01 s to read back. A shipped dataset (market_data) is the same
arrays each time its file is parsed and checked: ~0.03 s with pandas (whose import is another
~0.16 s in a process that does not need it otherwise), ~0.003 s to read back. Each process that
needs them (a daily `trading_bot.py --sim` run, a backtest, each test's exchange) reads them
from here instead.

Safe by construction: an entry is found only under the key its caller computes from
everything its numbers depend on (price_model: its own source file, numpy's version, the
machine; market_data: the data file's bytes as well), and is used only when its header names
that same key and the sha256 written with it matches the header's description of the arrays
(names, dtypes, shapes), its JSON value and the arrays' bytes. Anything else (no file, a torn or
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
import platform
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENV = "SIMBROKER_CACHE_DIR"
_MAGIC = b"simbroker array cache 2\n"  # 1: one array per entry
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


def key_of(*parts: bytes) -> str:
    """A key for what an entry's numbers depend on: the sha256 of `parts` (source files, data
    files), numpy's version and the machine's number formats."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    h.update(f"{np.__version__} {sys.byteorder} {platform.machine()}".encode())
    return h.hexdigest()


def entry_path(name: str, key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{name}-{key[:16]}.bin"


def load(name: str, key: str) -> np.ndarray | None:
    """The array stored under `name` and `key` by `store`, read-only; None unless it is there,
    whole and verified."""
    found = load_arrays(name, key)
    return None if found is None or set(found[0]) != {"array"} else found[0]["array"]


def store(name: str, key: str, array: np.ndarray) -> None:
    """Keep `array` under `name` and `key` (see `store_arrays`)."""
    store_arrays(name, key, {"array": array})


def load_arrays(name: str, key: str) -> tuple[dict[str, np.ndarray], Any] | None:
    """The named arrays (read-only) and the JSON value stored together under `name` and `key`
    by `store_arrays`; None unless the entry is there, whole and verified."""
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
            digest, arrays = _digest(header["arrays"], header["meta"]), {}
            for field, dtype, shape in header["arrays"]:
                array = np.empty(tuple(int(n) for n in shape), np.dtype(dtype))
                # Straight into the array: no copy.
                if f.readinto(memoryview(array).cast("B")) != array.nbytes:
                    return None
                digest.update(array)
                arrays[str(field)] = array
            whole = not f.read(1)
        if not whole or digest.hexdigest() != header["sha256"]:
            log.debug("cache entry %s does not verify; computing it again", path)
            return None
        meta = header["meta"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for array in arrays.values():
        array.flags.writeable = False
    return arrays, meta


def store_arrays(name: str, key: str, arrays: Mapping[str, np.ndarray], meta: Any = None,
                 ) -> None:
    """Keep `arrays` and `meta` (any JSON value) under `name` and `key` (written whole or not
    at all), and drop the entries of `name` under other keys. Failing to write only means it
    is not cached."""
    path = entry_path(name, key)
    if path is None:
        return
    payloads = [np.ascontiguousarray(a).tobytes() for a in arrays.values()]
    described = [[field, a.dtype.str, list(a.shape)] for field, a in arrays.items()]
    digest = _digest(described, meta)
    for payload in payloads:
        digest.update(payload)
    header = {"key": key, "arrays": described, "meta": meta, "sha256": digest.hexdigest()}
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{name}-",
                                         delete=False) as f:
            temporary = f.name
            f.write(_MAGIC + json.dumps(header).encode() + b"\n")
            for payload in payloads:
                f.write(payload)
        os.replace(temporary, path)
        temporary = None
        # Only this name's entries: another name may begin with it and a dash.
        for old in path.parent.glob(f"{name}-{'[0-9a-f]' * 16}.bin"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("could not cache %s in %s: %s", name, path.parent, exc)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _digest(described: Any, meta: Any) -> Any:
    """sha256 over what the header says of the arrays and the JSON value, to which each
    array's bytes are added: an entry verifies only if all of it is as written."""
    return hashlib.sha256(json.dumps([described, meta], sort_keys=True).encode())
