"""The intraday path library is one fixed set of numbers: the exchange and the backtester
draw every session's path from it, so however it is built it must stay the same, bit for bit."""

import hashlib

import numpy as np
import pytest

from simbroker import price_model

# sha256 of the library's arrays (name, dtype, shape, bytes; see _digest), as it was built
# before its construction was made faster; any change to the library changes it.
LIBRARY_SHA256 = "9ca420b91297fb32f86c5344f15d94ce9f806cfff8896072963c813aaac7899e"
FIELDS = ("x", "low", "high", "suffix_low", "suffix_high", "start", "count")


def _digest(library) -> str:
    h = hashlib.sha256()
    for name in FIELDS:
        a = getattr(library, name)
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_the_library_is_the_same_bit_for_bit():
    assert _digest(price_model._library()) == LIBRARY_SHA256


def test_a_fresh_build_equals_the_cached_one():
    fresh = price_model._library.__wrapped__()
    assert fresh is not price_model._library()
    assert _digest(fresh) == LIBRARY_SHA256


def test_suffix_extremes_are_the_extremes_of_the_rest_of_each_path():
    lib = price_model._library()
    rows = np.random.default_rng(7).integers(0, len(lib.x), 40)
    for i in rows:
        for j in (0, 1, 150, price_model.GRID - 1, price_model.GRID):
            assert lib.suffix_low[i, j] == lib.x[i, j:].min()
            assert lib.suffix_high[i, j] == lib.x[i, j:].max()
    assert np.array_equal(lib.suffix_low[:, 0], lib.low)
    assert np.array_equal(lib.suffix_high[:, 0], lib.high)


def test_the_library_cannot_be_written_to():
    lib = price_model._library()
    for name in ("x", "low", "high", "suffix_low", "suffix_high"):
        with pytest.raises(ValueError):
            getattr(lib, name)[0, ...] = 1.0
