"""The one intraday price model, shared by the local exchange and the backtester.

A daily bar says where a session opened and closed and how far it ranged, not the path between.
This module gives every (symbol, session) one seeded random path, the same bit for bit wherever
it is asked for, so that "the price at 12:00", the quote and whether a resting limit order fills
are answered alike by the exchange and the backtester. It is a model, not data.

The path is a random walk of GRID steps per session (one minute in a full 6.5-hour session),
straight between its points:

* A fixed library of N_PATHS standard Brownian paths X on the grid (X_0 = 0, step variance
  1/GRID), drawn once from a fixed seed and oriented so that X ends at or above 0. A session's
  path is picked from it by `path_key(symbol, day)`, a hash: which path a bar gets does not
  depend on any price.
* A bar with a real range (open, high, low, close from data) maps X through the monotone,
  piecewise-linear g that sends X's minimum, 0, X's end and X's maximum to the low, the open,
  the close and the high (the path is mirrored for a bar that closed below its open). So the
  path opens at the open, closes at the close, touches the low and the high exactly once each,
  at the random times where X is extreme, and never leaves the bar. Between those levels it
  moves as X does, rescaled: its volatility comes from the bar's range. A bar that opened at
  its low (or closed at its high, ...) gets a library path whose start is its minimum (or
  whose end is its maximum, ...), so no part of the path sits flat on a bound.
* A bar without a real range (closes-only data: `scale` finite, see `bridge_scales`) is a
  Brownian bridge from the open to the close, `open + scale * (X_t - t X_1) + t (close -
  open)`, whose scale is the symbol's recent close-to-close volatility, known before the
  session opens. No high or low is invented.

What it guarantees, and what it cannot:

* The morning move (open to the path at t) and the afternoon move (t to the close) have the
  same sign on exactly as many library paths as they have opposite signs, whatever the bars:
  the sign pattern of a mapped path is the sign pattern of X (g is increasing), and under the
  library's Brownian law, given that X ends up, "both up" and "down then up"... are balanced
  (tests/test_price_model_statistics.py measures it). On bars drawn from a Brownian motion the
  mapped path has the law of the Brownian path given its bar, so nothing at noon predicts the
  afternoon beyond what the true process allows.
* Conditioned on a real bar, the noon price does carry information about the close that no one
  has at noon in a real market: it lies between the low and the high, and nearer the close
  than a free path would. That is inherent in any path drawn to fit a known bar. The tests
  measure what is left of it over many sessions (continuation, correlation) on synthetic and
  on the shipped real data.

Quotes: ``bid = floor_tick(p * (1 - s/2))``, ``ask = ceil_tick(p * (1 + s/2))`` with ``s =
spread_bps / 10_000`` and Alpaca's ticks ($0.01 at or above $1, $0.0001 below). A buy limit
fills at the first moment its ask is at or below the limit, a sell limit when its bid is at or
above it: marketable on arrival it fills at the quote, otherwise exactly at the limit, at the
time the straight piece of path crosses it.

Every function accepts numpy arrays (the backtester evaluates a day of the universe at once) as
well as plain floats (the exchange evaluates one order); `key` and `scale` broadcast against the
bars. No transcendental function is applied to a price, so scalar and array calls give the same
bits.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simbroker import array_cache

GRID = 390  # path steps per session: one minute of a full session
N_PATHS = 4096  # paths drawn for the library (a few are dropped, see _balanced); a path is
# reused by many sessions, chosen by hash
_LIBRARY_SEED = 20_260_601  # any fixed number: the library must be the same in every process
_EPS = 1e-9  # guards tick rounding against binary floating-point noise
_CHUNK = 4096  # rows of a scanned block of paths (4096 x 391 floats, 13 MB)

# Closes-only bridges: returns used for the scale, and the daily volatility assumed before a
# symbol has that many (a typical large-cap figure: a model value, not data).
SCALE_WINDOW = 20
SCALE_MIN_RETURNS = 5
DEFAULT_DAILY_VOLATILITY = 0.02

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


# --- keys ------------------------------------------------------------------------------------

def symbol_hash(symbol: str) -> int:
    """A stable 64-bit hash of a symbol (never Python's salted hash())."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big")


def path_keys(symbols: Sequence[str], ordinals: np.ndarray) -> np.ndarray:
    """Keys of every (session, symbol): shape (len(ordinals), len(symbols)), uint64.
    `ordinals` are `date.toordinal()` of the sessions."""
    h = np.array([symbol_hash(s) for s in symbols], dtype=np.uint64)[np.newaxis, :]
    day = np.asarray(ordinals, dtype=np.uint64).reshape(-1, 1) * np.uint64(_GOLDEN)
    return _splitmix(h ^ day)


def path_key(symbol: str, day: datetime.date) -> np.uint64:
    """The key of `symbol`'s path on session `day` (the same as `path_keys`)."""
    return path_keys([symbol], np.array([day.toordinal()]))[0, 0]


def _splitmix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# --- the library -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Library:
    x: np.ndarray  # (N_PATHS, GRID + 1), sorted by class
    low: np.ndarray  # min of each path
    high: np.ndarray  # max of each path
    start: np.ndarray  # first path of each class (4,), uint64
    count: np.ndarray  # paths in each class (4,), uint64

    # The suffix extremes are only needed to decide resting limit orders: built on first use
    # (a one-day simulation that only asks for snapshots never needs them). min and max are
    # exact, so when they are built does not change a bit of them.
    @functools.cached_property
    def suffix_low(self) -> np.ndarray:
        """suffix_low[i, j] = min(x[i, j:])"""
        return _suffix(np.minimum, self.x)

    @functools.cached_property
    def suffix_high(self) -> np.ndarray:
        """suffix_high[i, j] = max(x[i, j:])"""
        return _suffix(np.maximum, self.x)


def _library() -> _Library:
    """The library, read or drawn once per process. A thread that asks while another is
    reading it (`read_library_ahead`) waits for that read instead of making its own."""
    global _loaded
    library = _loaded
    if library is None:
        with _loading:
            if _loaded is None:
                _loaded = _load_library()
            library = _loaded
    return library


_loaded: _Library | None = None
_loading = threading.Lock()


def read_library_ahead() -> None:
    """Start reading the library (from the disk cache, ~0.015 s) in a background thread, for a
    process that needs it soon but has other work first: a daily `--sim` run loads its data
    and calendar and answers the bot's first requests meanwhile. The read is file I/O, sha256
    and numpy, which let the other thread run. The same bits as a read in place. Not a daemon:
    a process that ends first waits for it (at most the draw and the cache's write, ~0.05 s),
    so that it leaves no temporary file of the cache behind."""
    if _loaded is None:
        threading.Thread(target=_library, name="price library").start()


def _load_library() -> _Library:
    key = _library_key()
    x = None if key is None else array_cache.load("intraday-paths", key)
    if x is None:
        x = _draw_paths()
        if key is not None:
            array_cache.store("intraday-paths", key, x)
    # min and max are exact: the same bits from the cached paths as from the drawn ones.
    low, high = x.min(axis=1), x.max(axis=1)
    count = np.bincount(_classes(x, low, high), minlength=4)
    for a in (low, high):
        a.flags.writeable = False
    return _Library(x, low, high, np.r_[0, np.cumsum(count)[:-1]].astype(np.uint64),
                    count.astype(np.uint64))


def _library_key() -> str | None:
    """What the library's numbers depend on: this module's code (its constants and how it
    draws), numpy's version (its generator's streams) and the machine's number formats; None
    (no cache) when the code cannot be read."""
    try:
        return array_cache.key_of(Path(__file__).read_bytes())
    except OSError:
        return None


def _draw_paths() -> np.ndarray:
    """The library's paths, drawn from the fixed seed, balanced and sorted by class.

    Built in place, with one copy of the paths where a plainer build made five: the same
    operations in the same order on the same numbers, so the same bits (a test pins their
    digest), in about half the time."""
    rng = np.random.Generator(np.random.PCG64(_LIBRARY_SEED))
    steps = rng.standard_normal((N_PATHS, GRID))
    np.divide(steps, np.sqrt(GRID), out=steps)
    x = np.empty((N_PATHS, GRID + 1))
    x[:, 0] = 0.0
    np.cumsum(steps, axis=1, out=x[:, 1:])
    del steps
    x[x[:, -1] < 0] *= -1.0  # every path ends at or above where it starts
    cls = _classes(x, x.min(axis=1), x.max(axis=1))
    rows = np.flatnonzero(_balanced(x, cls))
    x = x[rows[np.argsort(cls[rows], kind="stable")]]  # the kept paths, sorted by class
    x.flags.writeable = False
    return x


def _classes(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Bit 0: the path starts at its minimum; bit 1: it ends at its maximum."""
    return (low == 0.0).astype(np.int64) + 2 * (high == x[:, -1]).astype(np.int64)


def _suffix(extreme: np.ufunc, x: np.ndarray) -> np.ndarray:
    """extreme.accumulate of each row of `x` from its end, as a C-contiguous read-only array."""
    out = np.empty_like(x)
    extreme.accumulate(x[:, ::-1], axis=1, out=out[:, ::-1])
    out.flags.writeable = False
    return out


def _balanced(x: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Which paths to keep so that, among those that neither start at their minimum nor end at
    their maximum (class 0, the paths for bars that did not open at the low or close at the
    high), the move after noon of a full session (GRID * 5/13, exactly a grid point) has the
    sign of the move before it on exactly as many paths as not.

    On a continuous Brownian path that is so, and starting or ending at an extreme has
    probability 0; on a 390-step grid about 11% of paths do, and leaving them out of class 0
    tilts it towards reversal (48.5% continuation, measured on 32,768 paths). Dropping the
    surplus (the last ones drawn) removes that artefact of the grid at the bot's decision
    time; at other times of day class 0 keeps the small tilt."""
    noon = GRID * 5 // 13
    same = np.sign(x[:, noon]) == np.sign(x[:, -1] - x[:, noon])
    rows = np.flatnonzero(cls == 0)
    ahead = int(same[rows].sum()) - int((~same[rows]).sum())
    surplus = rows[same[rows] == (ahead > 0)][len(rows[same[rows] == (ahead > 0)]) - abs(ahead):]
    keep = np.ones(len(x), dtype=bool)
    keep[surplus] = False
    return keep


_FIELDS = ("open", "high", "low", "close", "scale", "index", "sign", "lo_x", "a", "b", "hi_x",
           "end", "s0", "s1", "s2", "lo_y", "hi_y")


@dataclass(frozen=True)
class _Paths:
    """The mapped paths of a set of bars (all arrays of one broadcast shape), with the knots
    and slopes of each bar's map g computed once."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    scale: np.ndarray  # NaN: a bar with a real range; else the bridge's scale
    index: np.ndarray  # library row
    sign: np.ndarray  # +1, or -1 for a mirrored path
    lo_x: np.ndarray  # the (mirrored) library path's minimum, ...
    a: np.ndarray  # ... min(0, end), ...
    b: np.ndarray  # ... max(0, end), ...
    hi_x: np.ndarray  # ... and maximum: g's knots
    end: np.ndarray  # where the (mirrored) library path ends
    s0: np.ndarray  # g's slope below a, between a and b, above b
    s1: np.ndarray
    s2: np.ndarray
    lo_y: np.ndarray  # min(open, close) and max(open, close): g(a) and g(b)
    hi_y: np.ndarray

    @property
    def ranged(self) -> np.ndarray:
        return np.isnan(self.scale)

    def take(self, where) -> _Paths:
        if _everything(where, self.open.shape):
            return self  # never written to: no copy needed
        return _Paths(*(getattr(self, f)[where] for f in _FIELDS))

    def values(self, j: np.ndarray) -> np.ndarray:
        """Path prices at grid points `j` (broadcast against the bars' shape)."""
        x = self.sign * _library().x[self.index, j]
        ranged = self.ranged
        if np.all(ranged):
            return _through_bar(self, x)
        t = np.asarray(j, dtype=float) / GRID
        with np.errstate(invalid="ignore"):
            bridge = self.open + t * (self.close - self.open) + self.scale * (x - t * self.end)
        bridge = np.where(np.asarray(j) >= GRID, self.close, np.maximum(bridge, 0.0001))
        if not np.any(ranged):  # closes-only bars alone: g is not needed
            return bridge
        return np.where(ranged, _through_bar(self, x), bridge)

    def extreme_x(self, from_j: np.ndarray, is_low: np.ndarray) -> np.ndarray:
        """min (is_low) or max of the mirrored library path over grid points from_j..GRID."""
        lib = _library()
        want_low_of_x = is_low == (self.sign > 0)  # mirroring swaps the two
        j = np.minimum(from_j, GRID)
        return self.sign * np.where(want_low_of_x, lib.suffix_low[self.index, j],
                                    lib.suffix_high[self.index, j])


def _everything(where, shape: tuple[int, ...]) -> bool:
    """Whether indexing a 1-d array of `shape` by `where` gives it back whole, in order."""
    if len(shape) != 1 or not isinstance(where, np.ndarray) or where.ndim != 1:
        return False
    n = shape[0]
    if where.dtype == bool:
        return len(where) == n and bool(where.all())
    return len(where) == n and (n == 0 or (where[0] == 0 and where[-1] == n - 1
                                           and bool(np.all(np.diff(where) == 1))))


def _through_bar(p: _Paths, x: np.ndarray) -> np.ndarray:
    """g: the increasing piecewise-linear map of the path's min, 0, end, max onto the bar's
    low, min(open, close), max(open, close), high (see the module docstring). Exact at the
    knots: the open, the close, the low and the high come out as given."""
    y = np.where(x < p.a, p.low + p.s0 * (x - p.lo_x),
                 np.where(x < p.b, p.lo_y + p.s1 * (x - p.a), p.hi_y + p.s2 * (x - p.b)))
    y = np.where(x >= p.hi_x, p.high, np.where(x <= p.lo_x, p.low, y))
    return np.minimum(np.maximum(y, p.low), p.high)


def _slope(dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(dx > 0, dy / np.where(dx > 0, dx, 1.0), 0.0)


def _paths(open_, high, low, close, key, scale) -> _Paths:
    o, h, lo, c, s = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                           for v in (open_, high, low, close, scale)))
    k = np.broadcast_to(np.asarray(key, dtype=np.uint64), o.shape)
    lib = _library()
    ranged = np.isnan(s)
    down = c < o
    # The class a bar needs, in the orientation of the library (mirrored for a down bar).
    starts_low = np.where(down, o == h, o == lo) & (h > lo)
    ends_high = np.where(down, c == lo, c == h) & (h > lo)
    cls = starts_low.astype(np.int64) + 2 * ends_high.astype(np.int64)
    cls = np.where(lib.count[cls] > 0, cls, 0)  # no such path: the path rests on the bound
    ranged_index = lib.start[cls] + k % lib.count[cls]
    if ranged.all():  # bars with a range alone (the other choice is not needed)
        index, mirrored = ranged_index.astype(np.intp), down
    else:
        any_index = k % np.uint64(len(lib.x))
        index = np.where(ranged, ranged_index, any_index).astype(np.intp)
        mirrored = np.where(ranged, down, (k >> np.uint64(63)) == 1)
    sign = np.where(mirrored, -1.0, 1.0)
    lo_x = np.where(sign > 0, lib.low[index], -lib.high[index])
    hi_x = np.where(sign > 0, lib.high[index], -lib.low[index])
    end = sign * lib.x[index, GRID]
    a, b = np.minimum(0.0, end), np.maximum(0.0, end)
    lo_y, hi_y = np.minimum(o, c), np.maximum(o, c)
    return _Paths(o, h, lo, c, s, index, sign, lo_x, a, b, hi_x, end,
                  _slope(lo_y - lo, a - lo_x), _slope(hi_y - lo_y, b - a),
                  _slope(h - hi_y, hi_x - b), lo_y, hi_y)


# --- prices ----------------------------------------------------------------------------------

def price_at(open_, high, low, close, fraction, *, key, scale=np.nan):
    """Price on the model path at `fraction` of the session (0 = open, 1 = close)."""
    return Bars(open_, high, low, close, key=key, scale=scale).price_at(fraction)


class Bars:
    """The paths of a set of bars (arrays of one broadcast shape, or floats), for asking
    several questions of the same bars without mapping their paths again each time: the
    module's `price_at` and `limit_filled` are these methods on bars made for one question.
    `limit_filled` from the fraction `price_at` was last asked about reuses that price."""

    def __init__(self, open_, high, low, close, *, key, scale=np.nan) -> None:
        self._paths = _paths(open_, high, low, close, key, scale)
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (fraction, price there)

    def price_at(self, fraction) -> np.ndarray:
        f = np.asarray(fraction, dtype=float)
        p = self._paths
        shape = np.broadcast_shapes(p.open.shape, f.shape)
        price = _price_on(_broadcast(p, shape), np.broadcast_to(f, shape))
        self._last = (f, price)
        return price

    def limit_filled(self, *, is_buy, limit, start, end, spread_bps: float,
                     at_start=None) -> np.ndarray:
        """See the module's `limit_filled`; `at_start`, if given, is the path at `start`
        (`price_at(start)` of these bars, computed before)."""
        p = self._paths
        if np.all(p.ranged) and np.all(np.asarray(end) >= 1.0):
            start = np.clip(np.asarray(start, dtype=float), 0.0, 1.0)
            known = self._price_known(start) if at_start is None else at_start
            return _filled_to_close(p, np.asarray(is_buy, dtype=bool),
                                    np.asarray(limit, dtype=float), start,
                                    spread_bps / 20_000.0, known)
        shape, p, is_buy, limit, start, end = _order_arrays(p, is_buy, limit, start, end)
        immediate, later, _, _ = _touches(p, is_buy, limit, start, end, spread_bps / 20_000.0)
        return (immediate | later).reshape(shape)

    def _price_known(self, start: np.ndarray) -> np.ndarray | None:
        """The path at `start` (broadcast over the bars) if `price_at` was asked it last."""
        if self._last is None:
            return None
        fraction, price = self._last
        shape = np.broadcast_shapes(self._paths.open.shape, start.shape)
        same = fraction.shape == start.shape and price.shape == shape \
            and np.array_equal(fraction, start)
        return price if same else None


def _broadcast(p: _Paths, shape) -> _Paths:
    if p.open.shape == shape:
        return p
    return _Paths(*(np.broadcast_to(getattr(p, f), shape) for f in _FIELDS))


def _grid_time(f: np.ndarray) -> np.ndarray:
    """A session fraction in grid steps; within a millionth of a step of a grid point it is
    that point (noon of a full session is point 150, whatever the last bits of its fraction,
    and an order sent a few microseconds after noon starts there too)."""
    i = np.clip(f, 0.0, 1.0) * GRID
    nearest = np.round(i)
    return np.where(np.abs(i - nearest) < 1e-6, nearest, i)


def _price_on(p: _Paths, f: np.ndarray) -> np.ndarray:
    i = _grid_time(f)
    k = np.floor(i).astype(np.intp)
    w = i - k
    at_k = p.values(k)
    between = w > 0
    if not np.any(between):
        return at_k
    if np.ndim(at_k) and between.mean() < 0.5:
        # A few times off the grid (noon of an early close, among full sessions): the next
        # point for those alone.
        at = np.nonzero(between)
        out = np.array(at_k, copy=True)
        q, k_at, w_at = p.take(at), k[at], w[at]
        out[at] = at_k[at] + (q.values(np.minimum(k_at + 1, GRID)) - at_k[at]) * w_at
        return out
    nxt = p.values(np.minimum(k + 1, GRID))
    return np.where(between, at_k + (nxt - at_k) * w, at_k)


def bridge_scales(close: np.ndarray) -> np.ndarray:
    """The closes-only bridge scale of each session of one symbol's consecutive closes: the
    previous close times the root mean square of the last SCALE_WINDOW close-to-close returns
    before the session (DEFAULT_DAILY_VOLATILITY until SCALE_MIN_RETURNS are known). Uses
    nothing of the session itself. The exchange and the backtester both call this on the
    symbol's whole series, so both get the same bits."""
    close = np.asarray(close, dtype=float)
    n = len(close)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    r2 = np.zeros(n)
    r2[1:] = (close[1:] / close[:-1] - 1.0) ** 2
    total = np.r_[0.0, np.cumsum(r2)]  # total[i] = sum of r2[:i]
    i = np.arange(n)
    first = np.maximum(1, i - SCALE_WINDOW)
    known = i - first  # returns strictly before session i
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total[i] - total[first]) / known
    vol = np.where(known >= SCALE_MIN_RETURNS, np.sqrt(np.maximum(mean, 0.0)),
                   DEFAULT_DAILY_VOLATILITY)
    out[1:] = close[:-1] * vol[1:]
    out[0] = close[0] * DEFAULT_DAILY_VOLATILITY
    return out


# --- ticks and quotes ------------------------------------------------------------------------

def tick_size(price):
    """Alpaca's minimum price increment: $0.01 at or above $1.00, $0.0001 below."""
    return np.where(np.asarray(price, dtype=float) >= 1.0, 0.01, 0.0001)


def floor_tick(price):
    tick = tick_size(price)
    return np.round(np.floor(np.asarray(price) / tick + _EPS) * tick, 4)


def ceil_tick(price):
    tick = tick_size(price)
    return np.round(np.ceil(np.asarray(price) / tick - _EPS) * tick, 4)


def quote(price, spread_bps: float):
    """(bid, ask) around a path price."""
    half = spread_bps / 20_000.0
    price = np.asarray(price, dtype=float)
    return floor_tick(price * (1.0 - half)), ceil_tick(price * (1.0 + half))


# --- ranges and fills ------------------------------------------------------------------------

def range_between(open_, high, low, close, start, end, *, key, scale=np.nan):
    """Lowest and highest path price over [start, end] (fractions), element-wise."""
    p = _paths(open_, high, low, close, key, scale)
    shape = np.broadcast_shapes(p.open.shape, np.shape(start), np.shape(end))
    p = _broadcast(p, shape)
    s = np.broadcast_to(np.clip(np.asarray(start, dtype=float), 0.0, 1.0), shape)
    e = np.broadcast_to(np.clip(np.asarray(end, dtype=float), 0.0, 1.0), shape)
    lo = np.minimum(_price_on(p, s), _price_on(p, e))
    hi = np.maximum(_price_on(p, s), _price_on(p, e))
    flat = (lo.ravel(), hi.ravel())
    ps, ss, es = _flat(p), s.ravel(), e.ravel()
    for rows in _blocks(len(ss)):
        v, inside = _scan(ps.take(rows), ss[rows], es[rows])
        flat[0][rows] = np.minimum(flat[0][rows], np.where(inside, v, np.inf).min(axis=1))
        flat[1][rows] = np.maximum(flat[1][rows], np.where(inside, v, -np.inf).max(axis=1))
    return flat[0].reshape(shape), flat[1].reshape(shape)


def _flat(p: _Paths) -> _Paths:
    return _Paths(*(np.ravel(getattr(p, f)) for f in _FIELDS))


def _blocks(n: int):
    for a in range(0, n, _CHUNK):
        yield slice(a, min(n, a + _CHUNK))


def _scan(p: _Paths, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Path prices at every grid point (rows = bars) and which lie strictly inside (start,
    end)."""
    j = np.arange(GRID + 1)[np.newaxis, :]
    col = (slice(None), np.newaxis)
    sub = _Paths(*(getattr(p, f)[col] for f in _FIELDS))
    v = sub.values(j)
    inside = (j > start[:, np.newaxis] * GRID) & (j < end[:, np.newaxis] * GRID)
    return v, inside


def limit_fill(open_, high, low, close, *, is_buy, limit, start, end, spread_bps: float,
               key, scale=np.nan):
    """Whether a limit order live from `start` to `end` (session fractions) fills, and at what.

    Returns ``(filled, price, fraction)``: a bool array, the fill price (NaN where unfilled)
    and the session fraction of the fill (NaN where unfilled). See the module docstring for
    the rule. `is_buy`, `limit`, `start`, `end`, `key` and `scale` broadcast against the bars.
    """
    shape, p, is_buy, limit, start, end = _order_arrays(
        _paths(open_, high, low, close, key, scale), is_buy, limit, start, end)
    half = spread_bps / 20_000.0
    immediate, later, bid0, ask0 = _touches(p, is_buy, limit, start, end, half)
    filled = immediate | later
    price = np.where(immediate, np.where(is_buy, ask0, bid0), np.where(later, limit, np.nan))
    when = np.where(immediate, start, np.nan)
    resting = np.flatnonzero(later & ~immediate)
    if len(resting):
        when[resting] = _first_touch(p.take(resting), is_buy[resting], limit[resting],
                                     start[resting], end[resting], half)
    return filled.reshape(shape), price.reshape(shape), when.reshape(shape)


def limit_filled(open_, high, low, close, *, is_buy, limit, start, end, spread_bps: float,
                 key, scale=np.nan):
    """Whether a limit order live from `start` to `end` fills: `limit_fill`'s first answer
    alone, without the price and time of the fill (a fraction of the cost in bulk)."""
    return Bars(open_, high, low, close, key=key, scale=scale).limit_filled(
        is_buy=is_buy, limit=limit, start=start, end=end, spread_bps=spread_bps)


def _filled_to_close(p: _Paths, is_buy, limit, start, half,
                     at_start: np.ndarray | None = None) -> np.ndarray:
    """`limit_filled` of orders live to the close on bars with a real range, by broadcasting:
    what depends on the bar alone (its path at the start, given as `at_start` when known, the
    extremes after it) is computed once for both sides. The same arithmetic as `_touches`,
    element for element."""
    bars = np.broadcast_shapes(p.open.shape, start.shape)
    q = _broadcast(p, bars)
    start_b = np.broadcast_to(start, bars)
    p0 = _price_on(q, start_b) if at_start is None else at_start
    bid0, ask0 = floor_tick(p0 * (1.0 - half)), ceil_tick(p0 * (1.0 + half))
    first_j = np.minimum(np.floor(start_b * GRID).astype(np.intp) + 1, GRID)
    lib = _library()
    sl, sh = lib.suffix_low[q.index, first_j], lib.suffix_high[q.index, first_j]
    low = _through_bar(q, np.where(q.sign > 0, sl, -sh))
    high = _through_bar(q, np.where(q.sign > 0, sh, -sl))
    immediate = np.where(is_buy, ask0 <= limit + _EPS, bid0 >= limit - _EPS)
    later = (_crossed(p0, is_buy, limit, half) | _crossed(q.close, is_buy, limit, half)
             | np.where(is_buy, _crossed(low, True, limit, half),
                        _crossed(high, False, limit, half)))
    return immediate | (later & (1.0 > start_b))


def _order_arrays(p: _Paths, is_buy, limit, start, end):
    """The bars' paths and the orders' arrays, broadcast together and flattened; and the
    shape to give the answers."""
    arrays = [np.asarray(is_buy, dtype=bool), np.asarray(limit, dtype=float),
              np.clip(np.asarray(start, dtype=float), 0.0, 1.0),
              np.clip(np.asarray(end, dtype=float), 0.0, 1.0)]
    shape = np.broadcast_shapes(p.open.shape, *(a.shape for a in arrays))
    flat = _flat(_broadcast(p, shape))
    return (shape, flat, *(np.broadcast_to(a, shape).ravel() for a in arrays))


def _crossed(price: np.ndarray, is_buy: np.ndarray, limit: np.ndarray, half: float):
    """Whether the quote at path price `price` reaches the limit: ask <= L <=> p (1 + half) <=
    L for L on the tick grid (and likewise for the bid)."""
    if isinstance(is_buy, bool):  # one side: the other need not be computed
        if is_buy:
            return price * (1.0 + half) <= limit + _EPS
        return price * (1.0 - half) >= limit - _EPS
    return np.where(is_buy, price * (1.0 + half) <= limit + _EPS,
                    price * (1.0 - half) >= limit - _EPS)


def _touches(p: _Paths, is_buy, limit, start, end, half):
    """Whether the order is marketable at `start`, whether the path reaches its limit later
    (before or at `end`), and the quote at `start`."""
    p0 = _price_on(p, start)
    bid0, ask0 = floor_tick(p0 * (1.0 - half)), ceil_tick(p0 * (1.0 + half))
    immediate = np.where(is_buy, ask0 <= limit + _EPS, bid0 >= limit - _EPS)
    p_end = p.close if np.all(end >= 1.0) else _price_on(p, end)  # the path ends at the close
    later = _crossed(p0, is_buy, limit, half) | _crossed(p_end, is_buy, limit, half)
    # Ranged bars to the close: the extreme of the suffix of the library path, mapped by the
    # increasing g, is the extreme of the path (closed form, no scan).
    fast = p.ranged & (end >= 1.0)
    first_j = np.floor(start * GRID).astype(np.intp) + 1
    if fast.any():
        where = np.flatnonzero(fast)
        q = p.take(where)
        extreme = _through_bar(q, q.extreme_x(first_j[where], is_buy[where]))
        later = np.array(later, copy=True)
        later[where] |= _crossed(extreme, is_buy[where], limit[where], half)
    slow = np.flatnonzero(~fast & (end > start))
    if len(slow):
        later = np.array(later, copy=True)
        reaches = _scanned if len(slow) <= _SCAN_MAX else _reached
        later[slow] |= reaches(p.take(slow), is_buy[slow], limit[slow], start[slow], end[slow],
                               half)
    return immediate, later & (end > start), bid0, ask0


# Up to this many orders, scanning every grid point costs less than `_reached`'s steps.
_SCAN_MAX = 64


def _scanned(p: _Paths, is_buy, limit, start, end, half) -> np.ndarray:
    """Whether the quote reaches the limit at a grid point strictly inside (start, end): the
    path at every grid point, _CHUNK orders at a time."""
    hit = np.zeros(len(start), dtype=bool)
    for rows in _blocks(len(start)):
        v, inside = _scan(p.take(rows), start[rows], end[rows])
        hit[rows] = (inside & _crossed(v, is_buy[rows, np.newaxis], limit[rows, np.newaxis],
                                       half)).any(axis=1)
    return hit


def _reached(p: _Paths, is_buy, limit, start, end, half) -> np.ndarray:
    """`_scanned`'s answer, bit for bit, reading the grid _BLOCK points at a time from the
    start and only for the orders still undecided: an order is decided as soon as a point
    crosses its limit (the same points and arithmetic as the scan), or when a bound on the
    rest of its path (`_cannot_reach`) shows that no later point can. Most orders at the
    bot's limits are decided in the first block or by the first bound."""
    hit = np.zeros(len(start), dtype=bool)
    first_j = np.floor(start * GRID).astype(np.intp) + 1  # the first point > start * GRID
    todo = np.arange(len(start))
    offset = 0
    steps = np.arange(_BLOCK)[np.newaxis, :]
    while len(todo):
        q = p.take(todo)
        from_j = first_j[todo] + offset
        left = (from_j < end[todo] * GRID) & ~_cannot_reach(q, from_j, is_buy[todo],
                                                            limit[todo], half)
        todo, q, from_j = todo[left], q.take(left), from_j[left]
        if not len(todo):
            break
        j = from_j[:, np.newaxis] + steps
        inside = (j > start[todo, np.newaxis] * GRID) & (j < end[todo, np.newaxis] * GRID)
        col = (slice(None), np.newaxis)
        v = _Paths(*(getattr(q, f)[col] for f in _FIELDS)).values(np.minimum(j, GRID))
        found = (inside & _crossed(v, is_buy[todo, np.newaxis], limit[todo, np.newaxis],
                                   half)).any(axis=1)
        hit[todo[found]] = True
        todo = todo[~found]
        offset += _BLOCK
    return hit


def _cannot_reach(p: _Paths, from_j: np.ndarray, is_buy, limit, half) -> np.ndarray:
    """Whether no grid point from `from_j` on can cross the limit, by a bound on the path's
    extreme there: g of the library path's suffix extreme for a bar with a range (g is
    increasing), and for a bridge `open + scale * x + t * (close - open - scale * end)` with
    x at its suffix extreme and t at whichever end of [from_j / GRID, 1] is worse. The bound
    is widened by a millionth of the prices involved, far more than the few units in the last
    place by which the path's computed points can stray from it; False where undecided."""
    x = p.extreme_x(from_j, is_buy)
    with np.errstate(invalid="ignore"):
        mapped = _through_bar(p, x)
        drift = (p.close - p.open) - p.scale * p.end
        t_drift = np.minimum(from_j, GRID) / GRID * drift
        toward = np.where(is_buy, np.minimum(t_drift, drift), np.maximum(t_drift, drift))
        bridge = p.open + p.scale * x + toward
        size = np.where(p.ranged, np.abs(p.low) + np.abs(p.high),
                        np.abs(p.open) + np.abs(p.close)
                        + p.scale * (np.maximum(p.hi_x, -p.lo_x) + np.abs(p.end) + 1.0))
        bound = np.where(p.ranged, mapped, bridge) + np.where(is_buy, -1e-6, 1e-6) * size
        bound = np.where(is_buy | p.ranged, bound, np.maximum(bound, 0.0001))  # bridge floor
        # A NaN bridge (a missing bar) is NaN at every point: it never crosses.
        known = np.isfinite(bound) | ~p.ranged
        return known & ~_crossed(bound, is_buy, limit, half) & ~(p.scale < 0)


_BLOCK = 16  # grid points scanned at a time for a first touch; most fills come in the first


def _first_touch(p: _Paths, is_buy, limit, start, end, half):
    """Earliest fraction in [start, end] where the quote reaches the limit, on a 1-d set of
    orders that do reach it: along the points start, the grid points inside, end, the first
    that crosses, and on the straight piece before it the crossing itself. On bars with a
    range the candidates are read from the library path (`_first_touch_ranged`); otherwise
    the grid is read a block at a time, only for the orders still looking, _CHUNK orders at a
    time."""
    out = np.full(len(start), np.nan)
    ranged = np.flatnonzero(p.ranged)
    if len(ranged):
        out[ranged] = _first_touch_ranged(p.take(ranged), is_buy[ranged], limit[ranged],
                                          start[ranged], end[ranged], half)
    rest = np.flatnonzero(np.isnan(out))
    for rows in _blocks(len(rest)):
        at = rest[rows]
        out[at] = _first_touch_block(p.take(at), is_buy[at], limit[at], start[at], end[at],
                                     half)
    return out


def _first_touch_ranged(p: _Paths, is_buy, limit, start, end, half):
    """`_first_touch_block`'s answer for bars with a range, bit for bit, mostly without
    mapping the grid: since g is increasing, a point of the library path beyond the level
    where g meets the limit (`_beyond`, checked on g itself) cannot cross it, so the first
    crossing is among the first points that are not beyond, read from the library; the
    crossing point and the one before it are then mapped exactly as there. NaN where that
    level cannot be checked (the caller falls back to `_first_touch_block`)."""
    n = len(start)
    level = np.where(is_buy, limit / (1.0 + half), limit / (1.0 - half))
    s_t, e_t = _grid_time(start), _grid_time(end)
    at_start_v = _price_on(p, start)
    first_j = np.floor(s_t).astype(np.intp) + 1
    last_j = np.minimum(np.ceil(e_t).astype(np.intp) - 1, GRID)  # the last point inside
    theta, checked = _beyond(p, is_buy, limit, half)
    out = np.full(n, np.nan)
    at_start = _crossed(at_start_v, is_buy, limit, half)
    out[at_start] = start[at_start]
    todo = np.flatnonzero(~at_start & checked)
    hit_j = np.full(n, -1, dtype=np.intp)  # the first inside point that crosses; -1: none
    from_j = first_j.copy()
    # A point is a candidate when sign * x <= theta for a buy, >= for a sell: both as
    # toward * x <= toward * theta (multiplying by +1 or -1 is exact).
    x_lib = _library().x.ravel()
    row = p.index * (GRID + 1)
    toward = np.where(is_buy, 1.0, -1.0)
    toward_x, toward_theta = toward * p.sign, toward * theta
    size = _SEARCH_FIRST
    while len(todo):
        j = from_j[todo, np.newaxis] + np.arange(size)[np.newaxis, :]
        inside = j <= last_j[todo, np.newaxis]
        x = x_lib.take(row[todo, np.newaxis] + np.minimum(j, GRID))
        maybe = inside & (toward_x[todo, np.newaxis] * x <= toward_theta[todo, np.newaxis])
        has = maybe.any(axis=1)
        k = maybe.argmax(axis=1)
        # Past the last point without a candidate: no inside point crosses.
        exhausted = ~has & ~inside[:, -1]
        from_j[todo[~has]] += size
        at, cand = todo[has], j[has, k[has]]
        crosses = _crossed(p.take(at).values(cand), is_buy[at], limit[at], half)
        hit_j[at[crosses]] = cand[crosses]
        from_j[at[~crosses]] = cand[~crosses] + 1  # a candidate that does not cross: go on
        done = exhausted
        done[np.flatnonzero(has)[crosses]] = True
        todo = todo[~done]
        size = min(4 * size, _SEARCH_MOST)
    found = hit_j >= 0
    rows = np.flatnonzero(~at_start & checked)
    f = found[rows]
    j1 = np.where(f, hit_j[rows], 0)
    # The piece that crosses: from the point before the crossing one (or the start) to it,
    # or, when no inside point crosses, from the last inside point (or the start) to `end`.
    before = np.where(f, j1 - 1, last_j[rows])
    use_start = np.where(f, j1 == first_j[rows], last_j[rows] < first_j[rows])
    q = p.take(rows)
    v_before = q.values(np.clip(before, 0, GRID))
    t0 = np.where(use_start, s_t[rows], before)
    v0 = np.where(use_start, at_start_v[rows], v_before)
    t1 = np.where(f, j1, e_t[rows])
    v1 = q.values(j1)
    if not f.all():
        v1[~f] = _price_on(q.take(~f), end[rows][~f])
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.clip(np.where(v1 != v0, (v0 - level[rows]) / (v0 - v1), 1.0), 0.0, 1.0)
    out[rows] = np.clip((t0 + (t1 - t0) * w) / GRID, start[rows], end[rows])
    return out


# Library points read per order in a first-touch search: few at first (half the crossings of
# a limit at the current price come within two minutes), more for the orders still looking.
_SEARCH_FIRST, _SEARCH_MOST = 4, 64


def _beyond(p: _Paths, is_buy, limit, half) -> tuple[np.ndarray, np.ndarray]:
    """For each order on a bar with a range, a level theta of the (mirrored) library path
    such that no point beyond it (above for a buy, below for a sell) can cross the limit, and
    whether that was checked: g(theta), moved by a trillionth of the bar's prices towards the
    limit (more than the few units in the last place by which the computed g can fail to be
    increasing at its knots), does not cross. theta is g's inverse at the crossing level
    with a margin."""
    y = np.where(is_buy, (limit + _EPS) / (1.0 + half), (limit - _EPS) / (1.0 - half))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = np.where(y < p.lo_y, p.lo_x + (y - p.low) / p.s0,
                     np.where(y < p.hi_y, p.a + (y - p.lo_y) / p.s1,
                              p.b + (y - p.hi_y) / p.s2))
        x = np.clip(x, p.lo_x - 1.0, p.hi_x + 1.0)
        width = 1e-7 * (1.0 + p.hi_x - p.lo_x)
        theta = np.where(is_buy, x + width, x - width)
        margin = 1e-12 * (np.abs(p.low) + np.abs(p.high))
        at = _through_bar(p, theta) + np.where(is_buy, -margin, margin)
        checked = np.isfinite(theta) & np.isfinite(at) & ~_crossed(at, is_buy, limit, half)
    return theta, checked


def _first_touch_block(p: _Paths, is_buy, limit, start, end, half):
    level = np.where(is_buy, limit / (1.0 + half), limit / (1.0 - half))
    n = len(start)
    out = np.full(n, np.nan)
    s_t, e_t = _grid_time(start), _grid_time(end)
    prev_t, prev_v = s_t.copy(), _price_on(p, start)
    at_start = _crossed(prev_v, is_buy, limit, half)
    out[at_start] = start[at_start]
    todo = np.flatnonzero(~at_start)
    first_j = np.floor(s_t).astype(np.intp) + 1
    offset = 0
    while len(todo):
        j = first_j[todo, np.newaxis] + offset + np.arange(_BLOCK)[np.newaxis, :]
        inside = (j < e_t[todo, np.newaxis]) & (j <= GRID)
        q = p.take(todo)
        col = (slice(None), np.newaxis)
        v = _Paths(*(getattr(q, f)[col] for f in _FIELDS)).values(np.minimum(j, GRID))
        hit = inside & _crossed(v, is_buy[todo, np.newaxis], limit[todo, np.newaxis], half)
        found = hit.any(axis=1)
        # Past the last inside point with no crossing: the crossing is on the piece to `end`.
        last = ~found & ~inside[:, -1]
        k = hit.argmax(axis=1)
        rows = np.arange(len(todo))
        before_t = np.where(k > 0, j[rows, np.maximum(k - 1, 0)], prev_t[todo])
        before_v = np.where(k > 0, v[rows, np.maximum(k - 1, 0)], prev_v[todo])
        t1 = np.where(found, j[rows, k], e_t[todo])
        v1 = np.where(found, v[rows, k], _price_on(q, end[todo]))
        n_inside = inside.sum(axis=1)
        tail_t = np.where(n_inside > 0, j[rows, np.maximum(n_inside - 1, 0)], prev_t[todo])
        tail_v = np.where(n_inside > 0, v[rows, np.maximum(n_inside - 1, 0)], prev_v[todo])
        t0 = np.where(found, before_t, tail_t)
        v0 = np.where(found, before_v, tail_v)
        done = found | last
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.clip(np.where(v1 != v0, (v0 - level[todo]) / (v0 - v1), 1.0), 0.0, 1.0)
        fraction = np.clip((t0 + (t1 - t0) * w) / GRID, start[todo], end[todo])
        out[todo[done]] = fraction[done]
        prev_t[todo], prev_v[todo] = j[:, -1].astype(float), v[:, -1]
        todo = todo[~done]
        offset += _BLOCK
    return out
