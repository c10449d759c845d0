"""The exchange's state file kept current with every change: a snapshot and a journal.

`<state>` holds a whole state (persistence.dump) and a random `generation`; beside it,
`<state>.journal` holds one JSON line per committed change, each tagged with the generation
of the snapshot it follows: the orders that changed, the new fills, day trades and request
log entries and activities, the positions, the account's figures, restrictions and renamed
symbols, the clock and the id generator. A commit appends its line and syncs it (fdatasync)
before the request that made the change is answered, so the exchange on disk is never
behind what a client was told. Writing a change costs what the change is, not what the
whole state is: this keeps `--sim` flat over hundreds of days.

Loading reads the snapshot, then replays the lines of its generation in order. A crash can
only cut the last line short (ignored and cut away at the next commit); lines of another
generation were left by a crash between a compaction's two steps and are ignored.
Compaction writes a new snapshot atomically (new generation) and then empties the journal;
it happens when the journal outgrows the snapshot (so its cost, spread over the commits
that made the journal grow, is constant per commit), when the account is replaced (reset,
load), and when a journal is attached to an exchange loaded from its file.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simbroker import activities, restrictions, state
from simbroker.records import DayTrade, Fill, Order, Position
from state_files import atomic_write_text

if TYPE_CHECKING:
    from simbroker.exchange import Exchange

MIN_COMPACT_BYTES = 1 << 20  # below this the journal is never compacted for its size


def journal_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(path)}.journal")


class Journal:
    """The state file `path` and its journal, written as the exchange changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.journal = journal_path(path)
        self.generation: str | None = None  # the snapshot's; None: no snapshot written yet
        self.snapshot_bytes = 0
        self.journal_bytes = 0
        self._exchange: Exchange | None = None
        self._book: Any = None
        self._cursor: dict[str, Any] = {}

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def replay(exchange: Exchange, data: dict[str, Any], path: str | os.PathLike[str]) -> int:
        """Apply the journal beside `path` that follows the snapshot `data` to `exchange`;
        the number of lines applied."""
        generation = data.get("generation")
        lines = _read_lines(journal_path(path))
        applied = 0
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if number == len(lines):
                    break  # cut short by a crash while it was written: never acknowledged
                raise ValueError(f"{journal_path(path)}: line {number} is damaged; restore the "
                                 "state from a backup or delete both files") from None
            if generation is None or entry.get("generation") != generation:
                continue
            try:
                _apply(exchange, entry)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{journal_path(path)}: line {number} cannot be applied "
                                 f"({exc!r}); restore a backup or delete both files") from exc
            applied += 1
        exchange.changed_orders.clear()
        return applied

    # -- writing ----------------------------------------------------------------------------

    def attach(self, exchange: Exchange) -> Journal:
        """Start journaling `exchange`. When its file exists (the exchange was loaded from it,
        journal replayed), a fresh snapshot is written now; else at the first commit."""
        if self.path.exists():
            self.compact(exchange)
        else:
            self._follow(exchange)
        return self

    def commit(self, exchange: Exchange, *, with_log: bool = True) -> None:
        """Make every change since the last commit durable (appended and fsynced). With
        `with_log` False, new request-log entries alone are not worth a write (a GET's):
        they wait for the next commit."""
        if exchange is not self._exchange or exchange.book is not self._book:
            self.compact(exchange)  # a new account (reset) or another exchange (load)
            return
        entry = self._delta(exchange, with_log)
        if entry is None:
            return
        if self.generation is None:  # the first change: the first snapshot holds it
            self.compact(exchange)
            return
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size != self.journal_bytes:
                os.ftruncate(fd, self.journal_bytes)  # a torn line a failed write left
            os.write(fd, line)
            _sync(fd)
        finally:
            os.close(fd)
        self.journal_bytes += len(line)
        if self.journal_bytes > max(MIN_COMPACT_BYTES, self.snapshot_bytes):
            self.compact(exchange)

    def compact(self, exchange: Exchange) -> None:
        """A new snapshot (atomically), then an empty journal."""
        data = exchange.to_state()
        data["generation"] = secrets.token_hex(8)
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        atomic_write_text(self.path, text)
        self.generation = data["generation"]
        self.snapshot_bytes = len(text)
        fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _sync(fd)
        finally:
            os.close(fd)
        self.journal_bytes = 0
        self._follow(exchange)

    def _follow(self, exchange: Exchange) -> None:
        self._exchange, self._book = exchange, exchange.book
        exchange.changed_orders.clear()
        self._cursor = {"fills": len(exchange.book.fills),
                        "day_trades": len(exchange.book.day_trades),
                        "activities": len(exchange.activities),
                        "requests": exchange.requests.appended,
                        "rng": exchange._rng.getstate(), "scalars": _scalars(exchange),
                        "account": _account(exchange),
                        "positions": dict(exchange.book.positions)}
        exchange.requests.take_counts()

    def _delta(self, exchange: Exchange, with_log: bool) -> dict[str, Any] | None:
        book, cursor, log = exchange.book, self._cursor, exchange.requests
        entry: dict[str, Any] = {"generation": self.generation}
        changed = [exchange.orders[i] for i in sorted(exchange.changed_orders,
                                                      key=lambda i: exchange.orders[i].seq)]
        if changed:
            entry["orders"] = [state.encode(o) for o in changed]
        if len(book.fills) > cursor["fills"]:
            entry["fills"] = [state.encode(f) for f in book.fills[cursor["fills"]:]]
        if len(book.day_trades) > cursor["day_trades"]:
            entry["day_trades"] = [state.encode(t)
                                   for t in book.day_trades[cursor["day_trades"]:]]
        if len(exchange.activities) > cursor["activities"]:
            entry["activities"] = [state.encode(a)
                                   for a in exchange.activities[cursor["activities"]:]]
        account = _account(exchange)
        if account != cursor["account"]:
            entry["account"] = account
        if book.positions != cursor["positions"]:
            entry["positions"] = [state.encode(p) for p in book.positions.values()]
        scalars = _scalars(exchange)
        if scalars != cursor["scalars"]:
            entry["scalars"] = scalars
        rng = exchange._rng.getstate()
        if rng != cursor["rng"]:
            version, internal, gauss = rng
            entry["rng"] = [version, list(internal), gauss]
        if len(entry) == 1 and not with_log:
            return None
        cleared, counts = log.take_counts()
        entries = log.since(cursor["requests"])
        if cleared or counts or entries:
            entry["requests"] = {"cleared": cleared, "entries": entries, "counts": counts}
        if len(entry) == 1:
            return None
        exchange.changed_orders.clear()
        self._cursor = {"fills": len(book.fills), "day_trades": len(book.day_trades),
                        "activities": len(exchange.activities), "requests": log.appended,
                        "rng": rng, "scalars": scalars, "account": account,
                        "positions": dict(book.positions)}
        return entry


def _sync(fd: int) -> None:
    """The file's data on disk, and the metadata needed to read it back (its size): what an
    appended line needs to survive a crash. fdatasync(2) skips the rest (the times), where
    the system has it."""
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _scalars(exchange: Exchange) -> dict[str, Any]:
    return {"now": exchange.now.isoformat(), "cash": exchange.book.cash,
            "last_equity": exchange.last_equity,
            "last_maintenance_margin": exchange.last_maintenance_margin,
            "balance_asof": exchange.balance_asof.isoformat(), "seq": exchange._seq,
            "last_stamp": exchange._last_stamp.isoformat()}


def _account(exchange: Exchange) -> dict[str, Any]:
    """The account's restrictions, renamed symbols and activity counter (small; compared)."""
    return {"restrictions": restrictions.to_state(exchange.restrictions),
            "renamed": dict(exchange.renamed), "retired": dict(exchange.retired),
            "activity_seq": exchange.activity_seq,
            "dividends_due": [dict(d) for d in exchange.dividends_due]}


def _apply(exchange: Exchange, entry: dict[str, Any]) -> None:
    book = exchange.book
    for data in entry.get("orders", []):
        order = state.decode(Order, data)
        exchange._update(order)
        exchange._by_client_id[order.client_order_id] = order.id
    book.fills.extend(state.decode(Fill, f) for f in entry.get("fills", []))
    for trade in entry.get("day_trades", []):
        book.add_day_trade(state.decode(DayTrade, trade))
    exchange.activities.extend(activities.restore(entry.get("activities", [])))
    if "account" in entry:
        account = entry["account"]
        exchange.restrictions = restrictions.from_state(account["restrictions"])
        exchange.renamed, exchange.retired = dict(account["renamed"]), dict(account["retired"])
        exchange.activity_seq = int(account["activity_seq"])
        exchange.dividends_due = [dict(d) for d in account.get("dividends_due", [])]
    if "positions" in entry:
        book.positions = {p["symbol"]: state.decode(Position, p) for p in entry["positions"]}
    if "scalars" in entry:
        scalars = entry["scalars"]
        exchange._now = datetime.fromisoformat(scalars["now"])
        book.cash = float(scalars["cash"])
        exchange.last_equity = float(scalars["last_equity"])
        exchange.last_maintenance_margin = float(scalars["last_maintenance_margin"])
        exchange.balance_asof = date.fromisoformat(scalars["balance_asof"])
        exchange._seq = int(scalars["seq"])
        exchange._last_stamp = datetime.fromisoformat(scalars["last_stamp"])
    if "rng" in entry:
        version, internal, gauss = entry["rng"]
        exchange._rng.setstate((version, tuple(internal), gauss))
    if "requests" in entry:
        requests = entry["requests"]
        if requests.get("cleared"):
            exchange.requests.clear()
        exchange.requests.extend(requests.get("entries", []), requests.get("counts", {}))


def _read_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror}); check its permissions") \
            from None
    return data.splitlines()

