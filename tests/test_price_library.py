"""The intraday path library is one fixed set of numbers: the exchange and the backtester
draw every session's path from it, so however it is built it must stay the same, bit for bit."""

import hashlib
import threading

import numpy as np
import pytest

from simbroker import array_cache, price_model

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
    fresh = price_model._load_library()
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


def test_the_library_read_from_the_cache_is_the_drawn_one(cache):
    drawn = price_model._load_library()  # nothing cached yet: drawn, then stored
    [entry] = cache.glob("intraday-paths-*.bin")
    stored = entry.stat().st_mtime_ns
    again = price_model._load_library()
    assert entry.stat().st_mtime_ns == stored  # read, not drawn and written again
    assert _digest(drawn) == _digest(again) == LIBRARY_SHA256
    assert not again.x.flags.writeable


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "append", "other key",
                                    "not an entry"])
def test_a_damaged_or_foreign_entry_is_drawn_again_and_replaced(cache, damage):
    price_model._load_library()
    [entry] = cache.glob("intraday-paths-*.bin")
    data = bytearray(entry.read_bytes())
    if damage == "flip a byte":
        data[-1000] ^= 0x01
    elif damage == "truncate":
        del data[-8:]
    elif damage == "append":
        data += b"\0" * 8
    elif damage == "other key":
        data = data.replace(price_model._library_key().encode(), b"0" * 64, 1)
    else:
        data = bytearray(b"hello\n")
    entry.write_bytes(bytes(data))
    assert array_cache.load("intraday-paths", price_model._library_key()) is None
    assert _digest(price_model._load_library()) == LIBRARY_SHA256
    assert array_cache.load("intraday-paths", price_model._library_key()) is not None


def test_the_key_follows_the_code_that_draws_the_library(cache):
    key = price_model._library_key()
    assert array_cache.load("intraday-paths", key) is None
    array_cache.store("intraday-paths", "f" * 64, np.ones((2, 3)))
    assert array_cache.load("intraday-paths", key) is None  # another key's entry
    assert np.array_equal(array_cache.load("intraday-paths", "f" * 64), np.ones((2, 3)))
    price_model._load_library()
    assert [p.name for p in cache.glob("intraday-paths-*.bin")] == [
        f"intraday-paths-{key[:16]}.bin"]  # the stale entry is gone


def test_no_cache_when_it_is_off_or_cannot_be_written(tmp_path, monkeypatch):
    monkeypatch.setenv(array_cache.CACHE_ENV, "")
    assert array_cache.cache_dir() is None
    assert _digest(price_model._load_library()) == LIBRARY_SHA256
    blocked = tmp_path / "a file, not a directory"
    blocked.write_text("")
    monkeypatch.setenv(array_cache.CACHE_ENV, str(blocked / "cache"))
    array_cache.store("intraday-paths", "0" * 64, np.ones(3))  # does not raise
    assert array_cache.load("intraday-paths", "0" * 64) is None
    assert _digest(price_model._load_library()) == LIBRARY_SHA256
    assert blocked.read_text() == ""


def test_without_its_source_to_key_it_the_library_is_drawn_and_not_cached(cache, monkeypatch):
    monkeypatch.setattr(price_model, "__file__", str(cache / "no such file.py"))
    assert price_model._library_key() is None
    assert _digest(price_model._load_library()) == LIBRARY_SHA256
    assert list(cache.iterdir()) == []


def test_a_read_ahead_and_a_use_meanwhile_read_the_library_once(monkeypatch):
    monkeypatch.setattr(price_model, "_loaded", None)
    read, reads = price_model._load_library, []
    reading = threading.Event()

    def read_counted():
        reading.set()  # the read ahead has the lock from here on
        reads.append(read())
        return reads[-1]

    monkeypatch.setattr(price_model, "_load_library", read_counted)
    price_model.read_library_ahead()
    assert reading.wait(10)
    library = price_model._library()  # comes while the read ahead reads: waits for it
    assert len(reads) == 1 and library is reads[0]
    assert _digest(library) == LIBRARY_SHA256
