"""The bot's own records, and their reconciliation with the broker.

Alpaca is the source of truth for positions and orders. What only the bot knows (when and at
what price and z a position was entered, which order opened it, why it is being closed) lives
in three files under the log directory:

* `positions.json`   - the positions the bot opened and still holds (`Holding`);
* `pending_orders.json` - orders the bot has sent, or is about to send (`PendingOrder`),
  written *before* the POST so a crash can never leave an order the bot does not know of;
* `trades.csv`       - one row per completed round trip, keyed by the exit order, never twice.

`reconcile` is a pure function: records + what the broker reports -> new records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from errors import StateFileError
from market_calendar import NEW_YORK
from order_ids import parse_client_order_id
from state_files import (
    StateWriter,
    file_stamp,
    read_csv_rows,
    read_json,
    write_csv_rows,
    write_json,
)

if TYPE_CHECKING:  # annotations only: the SDK behind broker loads when a broker is used
    from broker import Order, Position

STATE_VERSION = 1

TRADE_COLUMNS = [
    "symbol", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price",
    "pnl_usd", "exit_reason", "holding_days", "entry_z", "exit_z", "entry_order_id",
    "exit_order_id", "entry_client_order_id", "exit_client_order_id",
]
# After the round trip's own columns, its account costs (trade_costs.py): `fees_usd` what the
# account's activities took for it (borrow, SEC and FINRA fees, dividends with their sign),
# `gross_pnl_usd` the P&L before them (= `pnl_usd`, kept for files and tools that read it)
# and `net_pnl_usd` after them. Blank where not known: rows of files from before these
# columns, and rows older than COST_BOOKING_DAYS when the bot first read their costs.
COST_COLUMNS = ["fees_usd", "gross_pnl_usd", "net_pnl_usd"]
TRADE_FILE_COLUMNS = [*TRADE_COLUMNS, *COST_COLUMNS]
COST_BOOKING_DAYS = 7  # calendar days after its exit a row's costs are booked again each run
CLOSED_OUTSIDE = "closed_outside_bot"
SPLIT_PRICE_TOLERANCE = 0.005  # average prices are rounded on the wire and by the bot
# What to do about a damaged positions.json or pending_orders.json. Deleting one is no fix:
# the bot would then take its own positions for ones it did not open.
REBUILD_HINT = ("restore it from logs/runs/<last run>/, or rebuild the records from the broker "
                "with `python trading_bot.py --rebuild-state` (add --sim for the simulated "
                "account); the damaged file is kept beside the rebuilt one")


@dataclass(frozen=True)
class Holding:
    symbol: str
    side: str  # "long" | "short"
    qty: float
    entry_time: str  # ISO 8601 UTC of the entry fill
    entry_price: float
    entry_z: float | None  # None: not known (a holding re-adopted from the broker's history)
    entry_order_id: str
    entry_client_order_id: str
    asset_id: str = ""  # the broker's asset id: follows the holding through a symbol change

    @property
    def is_long(self) -> bool:
        return self.side == "long"

    @property
    def entry_day(self) -> date:
        return datetime.fromisoformat(self.entry_time).astimezone(NEW_YORK).date()


@dataclass(frozen=True)
class PendingOrder:
    client_order_id: str
    symbol: str
    intent: str  # "entry" | "exit"
    position_side: str  # the side of the position it opens or closes: "long" | "short"
    order_side: str  # "buy" | "sell"
    qty: float
    limit_price: float  # 0 for a market order
    z: float | None  # None: not known (a record rebuilt from the broker)
    trading_day: str  # YYYY-MM-DD (New York)
    created_at: str  # ISO 8601 UTC
    exit_reason: str = ""
    order_id: str = ""  # empty until the broker acknowledged it
    # Why the order is known to exist although the broker has not shown it (e.g. a 422
    # "client_order_id must be unique" answer): such a record is never dropped as "never
    # reached the broker".
    broker_evidence: str = ""
    order_type: str = "limit"  # Alpaca's type and time in force (order_types.py)
    time_in_force: str = "day"
    decision_price: float = 0.0  # the price the decision saw (0 in records from before)


@dataclass(frozen=True)
class Reconciliation:
    holdings: dict[str, Holding]
    pending: dict[str, PendingOrder]
    trades: list[dict[str, Any]]
    notes: list[str]
    fills: list[dict[str, Any]]  # fills of the bot's orders seen for the first time
    # Holdings kept although the broker shows no such position and no fill closed it: never
    # traded (an exit would open the other side) until the broker shows the position or its
    # close. Symbol -> why.
    missing: dict[str, str] = field(default_factory=dict)


class StateStore:
    """Reads and atomically writes the bot's state files in `log_dir`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.positions_path = log_dir / "positions.json"
        self.pending_path = log_dir / "pending_orders.json"
        self.trades_path = log_dir / "trades.csv"
        # A run saves its records at several steps, often unchanged: written once.
        self._writer = StateWriter()
        self._trades: tuple[tuple[Any, Any], list[dict[str, str]]] | None = None

    def load_holdings(self) -> dict[str, Holding]:
        return _load_records(self.positions_path, "positions", Holding)

    def load_pending(self) -> dict[str, PendingOrder]:
        return _load_records(self.pending_path, "orders", PendingOrder)

    def save_holdings(self, holdings: dict[str, Holding], *also: Path) -> None:
        data = {"version": STATE_VERSION,
                "positions": {k: asdict(v) for k, v in sorted(holdings.items())}}
        for path in (self.positions_path, *also):
            self._writer.write_json(path, data)

    def save_pending(self, pending: dict[str, PendingOrder], *also: Path) -> None:
        data = {"version": STATE_VERSION,
                "orders": {k: asdict(v) for k, v in sorted(pending.items())}}
        for path in (self.pending_path, *also):
            self._writer.write_json(path, data)

    def save_records(self, holdings: dict[str, Holding], pending: dict[str, PendingOrder],
                     snapshot_dir: Path) -> None:
        """Save the result of a reconciliation (after its trades were appended), with copies
        in `snapshot_dir`. positions.json goes first: a crash between the two files then
        leaves an ended order still pending, which the next reconcile applies again without
        effect (see `_close`). The other order would drop a filled entry from pending before
        its position is recorded, and the next run would take the position for one the bot
        did not open and never manage it again."""
        self.save_holdings(holdings, snapshot_dir / "positions.json")
        self.save_pending(pending, snapshot_dir / "pending_orders.json")

    def load_trades(self) -> list[dict[str, str]]:
        """trades.csv, checked against the exits recorded in trades_index.json: a row that
        appears twice, or an exit whose row is gone, stops the run naming it (a doubled row
        would double the P&L the report shows; a lost one would hide a trade).

        A run asks for the rows at several steps: they are read again only when one of the
        two files is no longer the one read last (file_stamp), and each caller gets its own
        copies."""
        stamps = (file_stamp(self.trades_path), file_stamp(self.trades_index_path))
        if self._trades is None or self._trades[0] != stamps:
            rows = read_trade_rows(self.trades_path)
            check_trade_rows(self.trades_path, rows,
                             read_json(self.trades_index_path, default=None))
            self._trades = (stamps, rows)
        return [dict(row) for row in self._trades[1]]

    @property
    def trades_index_path(self) -> Path:
        return self.trades_path.with_name("trades_index.json")

    def append_trades(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the rows whose exit order is not recorded yet; returns those added."""
        existing = self.load_trades()
        seen = {(r["exit_client_order_id"], r["exit_order_id"]) for r in existing}
        new = [r for r in rows
               if (str(r["exit_client_order_id"]), str(r["exit_order_id"])) not in seen]
        new = [with_costs(r, None) for r in new]
        if new:
            self._write_trades([*existing, *new])
        return new

    def book_costs(self, fees_cents: Mapping[str, int]) -> list[dict[str, str]]:
        """Set the costs of the rows whose key is in `fees_cents` (cents paid) and rewrite the
        file when one changed; returns every row."""
        rows = self.load_trades()
        booked = [with_costs(r, fees_cents[trade_key(r)]) if trade_key(r) in fees_cents else r
                  for r in rows]
        if booked != rows:
            self._write_trades(booked)
        return booked

    def _write_trades(self, rows: list[dict[str, Any]]) -> None:
        write_csv_rows(self.trades_path, TRADE_FILE_COLUMNS, rows)
        # After trades.csv: a crash between the two leaves rows the index lacks, which the
        # check accepts; never an index naming a row the file does not have.
        write_json(self.trades_index_path, {"version": STATE_VERSION,
                                            "exits": [trade_key(r) for r in rows]})


def read_trade_rows(path: Path) -> list[dict[str, str]]:
    """trades.csv; a file from before the cost columns loads with them added, its costs blank
    (not known) and its gross P&L its `pnl_usd` (the next write adds them to the file)."""
    try:
        return read_csv_rows(path, TRADE_FILE_COLUMNS)
    except StateFileError as first:
        try:
            old = read_csv_rows(path, TRADE_COLUMNS)
        except StateFileError:
            raise first from None
    return [with_costs(r, None) for r in old]


def with_costs(row: Mapping[str, Any], fees_cents: int | None) -> dict[str, Any]:
    """`row` with its cost columns: `fees_cents` paid (None: not known, the row's own kept if
    it has them)."""
    out = dict(row)
    gross = str(row.get("pnl_usd") or "")
    out["gross_pnl_usd"] = gross
    if fees_cents is None:
        out.setdefault("fees_usd", "")
        out.setdefault("net_pnl_usd", "")
        return out
    out["fees_usd"] = f"{fees_cents / 100:.2f}"
    # In cents, so that net = gross - fees holds exactly as printed.
    net_cents = None if gross == "" else round(float(gross) * 100) - fees_cents
    out["net_pnl_usd"] = "" if net_cents is None else f"{net_cents / 100:.2f}"
    return out


def trade_key(row: Mapping[str, Any]) -> str:
    """What identifies a trade row: its exit order (client id and id) and its entry's id."""
    return "/".join(str(row[k]) for k in ("exit_client_order_id", "exit_order_id",
                                          "entry_order_id"))


def check_trade_rows(path: Path, rows: list[dict[str, str]], index: Any) -> None:
    """Refuse duplicated rows, and rows the index records that the file no longer has."""
    lines: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        key = trade_key(row)
        if key in lines:
            raise StateFileError(
                f"{path}: line {line} repeats line {lines[key]} (the exit "
                f"{row['exit_client_order_id'] or row['symbol']}); delete one of them. The "
                "run stopped without changing the file")
        lines[key] = line
    if not isinstance(index, dict) or not isinstance(index.get("exits"), list):
        return  # no index yet (or damaged): nothing to compare with
    missing = [k for k in index["exits"] if isinstance(k, str) and k not in lines]
    if missing:
        exit_id = missing[0].split("/")[0] or missing[0]
        raise StateFileError(
            f"{path}: the row of the exit {exit_id} is missing ({len(missing)} recorded rows "
            f"are); restore the file from a backup, or if the rows were removed on purpose, "
            f"delete {path.with_name('trades_index.json')}. The run stopped without changing "
            "either file")


def _load_records(path: Path, key: str, record: type) -> dict[str, Any]:
    data = read_json(path, default=None, fix=REBUILD_HINT)
    if data is None:
        return {}
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION \
            or not isinstance(data.get(key), dict):
        raise StateFileError(f"{path}: not a version-{STATE_VERSION} state file with a "
                             f"'{key}' object; {REBUILD_HINT}")
    out = {}
    names = set(record.__dataclass_fields__)
    for name, raw in data[key].items():
        if not isinstance(raw, dict) or set(raw) - names:
            raise StateFileError(f"{path}: entry {name!r} has unknown fields "
                                 f"{sorted(set(raw) - names) if isinstance(raw, dict) else raw}"
                                 f"; {REBUILD_HINT}")
        try:
            out[name] = record(**raw)
        except TypeError as exc:
            raise StateFileError(f"{path}: entry {name!r} is incomplete ({exc}); "
                                 f"{REBUILD_HINT}") from None
        _check_types(path, name, out[name])
    return out


def _check_types(path: Path, name: str, record: Any) -> None:
    for field_name, spec in record.__dataclass_fields__.items():
        value = getattr(record, field_name)
        expected = {"str": str, "float": (int, float),
                    "float | None": (int, float, type(None))}.get(str(spec.type))
        if expected and (not isinstance(value, expected) or isinstance(value, bool)):
            raise StateFileError(f"{path}: entry {name!r} field {field_name!r} should be "
                                 f"{spec.type}, found {value!r}")
        problem = _value_problem(field_name, value)
        if problem:
            raise StateFileError(f"{path}: entry {name!r} field {field_name!r} {problem}, "
                                 f"found {value!r}; {REBUILD_HINT}")
    if isinstance(record, PendingOrder):
        # A limit order has a positive limit; a market order none (0).
        limit, market = record.limit_price, record.order_type == "market"
        if not (math.isfinite(limit) and (limit == 0 if market else limit > 0)):
            raise StateFileError(f"{path}: entry {name!r} field 'limit_price' must be "
                                 f"{'0 for a market order' if market else 'a positive number'}"
                                 f", found {limit!r}; {REBUILD_HINT}")
    key = record.symbol if isinstance(record, Holding) else record.client_order_id
    if key != name:
        raise StateFileError(f"{path}: entry {name!r} holds the record of {key!r}; the two "
                             "must be the same")


# What the values of a record must be: a wrong one would otherwise pass for a real record
# (a side 'sideways' traded as a short) or crash the run far from the file (a bad time).
_CHOICES = {"side": ("long", "short"), "position_side": ("long", "short"),
            "intent": ("entry", "exit"), "order_side": ("buy", "sell"),
            "order_type": ("limit", "market"), "time_in_force": ("day", "cls")}
_POSITIVE = ("qty", "entry_price")
_FINITE = ("entry_z", "z", "decision_price")
_TIMES = ("entry_time", "created_at")


def _value_problem(field_name: str, value: Any) -> str:
    if field_name in _CHOICES and value not in _CHOICES[field_name]:
        return f"must be {' or '.join(_CHOICES[field_name])}"
    if field_name in _POSITIVE and not (math.isfinite(value) and value > 0):
        return "must be a positive number"
    if field_name in _FINITE and value is not None and not math.isfinite(value):
        return "must be a finite number"
    if field_name in _TIMES and not _is_zoned_time(value):
        return "must be an ISO 8601 time with its zone, e.g. 2024-03-01T17:00:00+00:00"
    if field_name == "trading_day" and not _is_day(value):
        return "must be a date, e.g. 2024-03-01"
    if field_name == "symbol" and not value:
        return "must not be empty"
    return ""


def _is_zoned_time(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def reconcile(holdings: dict[str, Holding], pending: dict[str, PendingOrder],
              orders: list[Order], positions: dict[str, Position] | None) -> Reconciliation:
    """Bring the records in line with the broker, on evidence only.

    `orders` must hold every account order submitted since the oldest record, plus what a
    look-up by client_order_id found of the pending records the history left out (the
    second read); to re-adopt a position whose record was lost it must reach back to that
    position's entry. `positions` is the broker's list (when a held position was absent from
    the first read, what a second read showed as well), or None to skip the position
    comparison (after placing orders).

    Entries with fills become holdings; exit orders that ended with fills become trade rows;
    orders that ended are dropped from pending, and so is a record that the history and the
    look-up both lack, if the broker never acknowledged it. A holding the broker no longer
    shows becomes a closed_outside_bot trade row only when a fill in the history closed it
    (priced from that fill); without one it is kept, untraded, in `missing`. A broker position
    without a record that the bot's own filled entry order explains is re-adopted.
    """
    holdings = dict(holdings)
    pending = dict(pending)
    trades: list[dict[str, Any]] = []
    notes: list[str] = []
    fills: list[dict[str, Any]] = []
    by_cid = {o.client_order_id: o for o in orders}
    by_id = {o.id: o for o in orders}
    for cid, p in sorted(pending.items(), key=lambda kv: kv[1].created_at):
        order = by_cid.get(cid)
        if order is None:
            _absent_order(pending, p, notes)
            continue
        order = follow_replacements(order, by_id)
        if p.intent == "entry":
            known = holdings.get(p.symbol)
            before = known.qty if known and known.entry_client_order_id == cid else 0.0
            _apply_entry(holdings, p, order)
            if order.filled_qty > before + 1e-12:
                fills.append(fill_record(order))
        elif order.filled_qty > 0 and not order.is_open:
            trade = _close(holdings, p, order, notes)
            if trade:
                trades.append(trade)
                fills.append(fill_record(order))
        if order.is_open:
            pending[cid] = replace(p, order_id=order.id)
        else:
            notes.append(f"{p.symbol}: {p.intent} order {cid} {order.status} "
                         f"({order.filled_qty:g} of {order.qty:g} filled)")
            del pending[cid]
    missing: dict[str, str] = {}
    if positions is not None:
        _compare_positions(holdings, pending, positions, orders, trades, notes, missing)
    return Reconciliation(holdings, pending, trades, notes, fills, missing)


def follow_replacements(order: Order, by_id: dict[str, Order]) -> Order:
    """The state of what an order became: a `replaced` order carries on as its replacement
    (`replaced_by`; Alpaca replaces orders on a cancel-replace and on some corporate actions),
    with the fills of both. While the replacement is not in `by_id`, the order counts as
    still working (`pending_replace`): its record is kept."""
    seen = {order.id}
    while order.status == "replaced":
        nxt = by_id.get(order.replaced_by or "")
        if nxt is None or nxt.id in seen:
            return replace(order, status="pending_replace")
        seen.add(nxt.id)
        filled = order.filled_qty + nxt.filled_qty
        paid = (order.filled_avg_price or 0.0) * order.filled_qty \
            + (nxt.filled_avg_price or 0.0) * nxt.filled_qty
        order = replace(nxt, client_order_id=order.client_order_id,
                        qty=order.filled_qty + nxt.qty, filled_qty=round(filled, 9),
                        filled_avg_price=paid / filled if filled > 0 else None)
    return order


def _absent_order(pending: dict[str, PendingOrder], p: PendingOrder, notes: list[str]) -> None:
    """A record the broker's history and its look-up both lack. Only one the broker never
    acknowledged can have never reached it; any other is kept until the broker shows it."""
    known = p.broker_evidence or (f"acknowledged as order {p.order_id}" if p.order_id else "")
    if known:
        notes.append(f"{p.symbol}: {p.intent} order {p.client_order_id} exists at the broker "
                     f"({known}) but is missing from its answers; record kept")
        return
    notes.append(f"{p.symbol}: order {p.client_order_id} never reached the broker (not in its "
                 "order history, not found by client_order_id); dropped")
    del pending[p.client_order_id]


def fill_record(order: Order) -> dict[str, Any]:
    """An order's fill as the run summary (and its alerts) report it."""
    return {"symbol": order.symbol, "side": order.side, "filled_qty": order.filled_qty,
            "filled_avg_price": order.filled_avg_price, "status": order.status}


def _apply_entry(holdings: dict[str, Holding], p: PendingOrder, order: Order) -> None:
    if order.filled_qty <= 0 or order.filled_avg_price is None:
        return
    when = order.filled_at or order.updated_at or order.submitted_at
    entry_time = when.isoformat() if when else p.created_at
    known = holdings.get(p.symbol)
    if known is not None and known.entry_client_order_id == p.client_order_id:
        entry_time = known.entry_time  # the entry began with its first fill
    holdings[p.symbol] = Holding(
        symbol=p.symbol, side=p.position_side, qty=order.filled_qty,
        entry_time=entry_time,
        entry_price=order.filled_avg_price, entry_z=p.z, entry_order_id=order.id,
        entry_client_order_id=p.client_order_id, asset_id=order.asset_id)


def _close(holdings: dict[str, Holding], p: PendingOrder, order: Order,
           notes: list[str]) -> dict[str, Any] | None:
    held = holdings.get(p.symbol)
    if held is None:
        notes.append(f"{p.symbol}: exit {p.client_order_id} filled but no entry record; "
                     "no trade row")
        return None
    if held.qty < p.qty - 1e-9:
        # An exit is sized at the whole holding, and only an exit reduces a holding: this one
        # was applied already, and a crash before pending_orders.json was saved left it
        # pending (its trade row is in trades.csv: that file is written first).
        notes.append(f"{p.symbol}: exit {p.client_order_id} already applied to the record")
        return None
    qty = min(order.filled_qty, held.qty)
    row = trade_row(held, qty=qty, exit_time=order.filled_at or order.updated_at,
                    exit_price=order.filled_avg_price, reason=p.exit_reason, exit_z=p.z,
                    exit_order_id=order.id, exit_client_order_id=p.client_order_id)
    remaining = round(held.qty - qty, 9)
    if remaining > 0:
        holdings[p.symbol] = replace(held, qty=remaining)
    else:
        del holdings[p.symbol]
    return row


def _compare_positions(holdings: dict[str, Holding], pending: dict[str, PendingOrder],
                       positions: dict[str, Position], orders: list[Order],
                       trades: list[dict[str, Any]], notes: list[str],
                       missing: dict[str, str]) -> None:
    working = {p.symbol for p in pending.values()}
    for symbol, held in sorted(holdings.items()):
        if symbol in working:
            continue  # an order of ours is still working on it: its end settles the record
        broker_pos = positions.get(symbol)
        if broker_pos is not None and broker_pos.is_long == held.is_long:
            if abs(broker_pos.qty - held.qty) > 1e-9:
                holdings[symbol] = _adopt_quantity(held, broker_pos, notes)
            continue
        outside = _outside_fill(held, orders)
        if outside is None:
            missing[symbol] = (f"the broker shows no {held.side} position, but no fill in its "
                               "order history closed it; record kept, no order sent until "
                               "the broker shows the position or its close")
            notes.append(f"{symbol}: {missing[symbol]}")
            continue
        trades.append(trade_row(
            held, qty=held.qty, exit_time=outside.filled_at,
            exit_price=outside.filled_avg_price, reason=CLOSED_OUTSIDE, exit_z=None,
            exit_order_id=outside.id, exit_client_order_id=outside.client_order_id))
        notes.append(f"{symbol}: position closed outside the bot by order "
                     f"{outside.client_order_id}; recorded")
        del holdings[symbol]
    for symbol in sorted(set(positions) - set(holdings) - working):
        adopted = adopt_position(positions[symbol], orders)
        if adopted is None:
            notes.append(f"{symbol}: position not opened by the bot (no filled entry of its "
                         "own in the order history explains it); left alone")
            continue
        holdings[symbol] = adopted
        notes.append(f"{symbol}: {adopted.side} position re-adopted from the bot's filled "
                     f"entry {adopted.entry_client_order_id} ({adopted.qty:g} shares @ "
                     f"{adopted.entry_price:g})")


def adopt_position(position: Position, orders: list[Order]) -> Holding | None:
    """The holding that the bot's own filled entry order explains, for a broker position that
    has no record (lost, damaged, or removed on a wrong answer). The latest filled entry of
    the bot (its client_order_id `mr-YYYYMMDD-SYMBOL-long|short`) for the symbol and side,
    with no closing fill after it, explains it; the broker's quantity wins (see
    `_adopt_quantity`). None when no such order is in `orders`. The entry's z is not on the
    broker: it stays unknown (None).

    The asset's orders count under any symbol it had: a symbol change keeps the asset id
    (Alpaca's `asset_id`), and the entry's client_order_id names the old symbol. An entry
    that was `replaced` counts with the fills of its replacement (`follow_replacements`)."""
    opening = "buy" if position.is_long else "sell"
    side = "long" if position.is_long else "short"
    asset = [o for o in orders if o.symbol == position.symbol
             or (position.asset_id and o.asset_id == position.asset_id)]
    by_id = {o.id: o for o in orders}
    entries = [follow_replacements(o, by_id) for o in asset
               if o.side == opening and _is_own_entry(o.client_order_id, o.symbol, side)]
    entries = [o for o in entries if o.filled_qty > 0 and o.filled_avg_price is not None]
    if not entries:
        return None
    entry = max(entries, key=lambda o: _fill_time(o))
    held = Holding(symbol=position.symbol, side=side, qty=entry.filled_qty,
                   entry_time=_fill_time(entry).isoformat(), entry_price=entry.filled_avg_price,
                   entry_z=None, entry_order_id=entry.id,
                   entry_client_order_id=entry.client_order_id,
                   asset_id=entry.asset_id or position.asset_id)
    if _outside_fill(held, [replace(o, symbol=position.symbol) for o in asset]) is not None:
        return None  # that entry was closed since; this position is another one
    if abs(position.qty - held.qty) > 1e-9:
        held = _adopt_quantity(held, position, [])
    return held


def _is_own_entry(cid: str, symbol: str, side: str) -> bool:
    own = parse_client_order_id(cid)
    return own is not None and own.symbol == symbol and own.intent == side


def _fill_time(order: Order) -> datetime:
    when = order.filled_at or order.updated_at or order.submitted_at
    assert when is not None, order.id
    return when


def _adopt_quantity(held: Holding, broker_pos: Position, notes: list[str]) -> Holding:
    """The broker's quantity wins. A stock split (`split_ratio`: the broker's
    average price is the entry price over the ratio and its quantity the holding's times the
    ratio, rounded down to whole shares where a reverse split paid cash in lieu), or a cost
    basis unchanged within 0.5%, scales the entry price with it, so the trade's P&L stays
    right; otherwise shares were added or removed outside the bot."""
    ratio = split_ratio(held.qty, held.entry_price, broker_pos.qty, broker_pos.avg_entry_price)
    basis = held.qty * held.entry_price
    broker_basis = broker_pos.qty * broker_pos.avg_entry_price
    if ratio is None and basis > 0 and abs(broker_basis - basis) <= 0.005 * basis:
        ratio = broker_pos.qty / held.qty
    if ratio is not None:
        notes.append(f"{held.symbol}: split {ratio:g}-for-1: {held.qty:g} shares are now "
                     f"{broker_pos.qty:g}; entry price scaled to match")
        lieu = round(held.qty * ratio - broker_pos.qty, 9)
        if lieu > 1e-9:
            notes.append(f"{held.symbol}: {lieu:g} share(s) paid in cash in lieu by the "
                         "broker (see its SPLIT activities)")
        return replace(held, qty=broker_pos.qty, entry_price=held.entry_price / ratio)
    notes.append(f"{held.symbol}: broker holds {broker_pos.qty:g}, records said "
                 f"{held.qty:g}; adopted the broker's quantity")
    return replace(held, qty=broker_pos.qty)


def split_ratio(held_qty: float, held_price: float, broker_qty: float,
                broker_price: float) -> float | None:
    """The split ratio (new shares per old) that turns the bot's quantity and entry price into
    the broker's, or None when the change is not a split. Cash in lieu: the broker's quantity
    may be the split quantity rounded down to whole shares."""
    if min(held_qty, held_price, broker_qty, broker_price) <= 0:
        return None
    ratio = held_price / broker_price
    if abs(ratio - 1) <= SPLIT_PRICE_TOLERANCE:
        return None
    expected = held_qty * ratio
    tolerance = SPLIT_PRICE_TOLERANCE * expected
    if abs(broker_qty - expected) <= tolerance:
        return broker_qty / held_qty  # exact shares: the quantities give the finest ratio
    if broker_qty == math.floor(expected + tolerance) and broker_qty < expected:
        return ratio
    return None


def _outside_fill(held: Holding, orders: list[Order]) -> Order | None:
    closing_side = "sell" if held.is_long else "buy"
    entered = datetime.fromisoformat(held.entry_time)
    fills = [o for o in orders if o.symbol == held.symbol and o.side == closing_side
             and o.filled_qty > 0 and o.filled_at is not None and o.filled_at >= entered
             and o.filled_avg_price is not None]
    return fills[-1] if fills else None


def trade_row(held: Holding, *, qty: float, exit_time: datetime | None,
              exit_price: float | None, reason: str, exit_z: float | None, exit_order_id: str,
              exit_client_order_id: str) -> dict[str, Any]:
    """One round trip. P&L in dollars, rounded to cents; blank where the exit is unknown."""
    pnl = ""
    if exit_price is not None:
        per_share = exit_price - held.entry_price if held.is_long else held.entry_price - exit_price
        pnl = f"{per_share * qty:.2f}"
    days = ""
    if exit_time is not None:
        days = str((exit_time.astimezone(NEW_YORK).date() - held.entry_day).days)
    return {
        "symbol": held.symbol, "side": held.side, "qty": f"{qty:g}",
        "entry_time": held.entry_time, "entry_price": f"{held.entry_price:g}",
        "exit_time": exit_time.isoformat() if exit_time else "",
        "exit_price": "" if exit_price is None else f"{exit_price:g}", "pnl_usd": pnl,
        "exit_reason": reason, "holding_days": days,
        "entry_z": _fmt_z(held.entry_z), "exit_z": _fmt_z(exit_z),
        "entry_order_id": held.entry_order_id, "exit_order_id": exit_order_id,
        "entry_client_order_id": held.entry_client_order_id,
        "exit_client_order_id": exit_client_order_id,
    }


def _fmt_z(z: float | None) -> str:
    return "" if z is None or z != z else f"{z:.4f}"


def oldest_record_time(holdings: dict[str, Holding],
                       pending: dict[str, PendingOrder]) -> datetime | None:
    """Where the broker's order history must start for `reconcile` to see everything."""
    times = [datetime.fromisoformat(h.entry_time) for h in holdings.values()]
    times += [datetime.fromisoformat(p.created_at) for p in pending.values()]
    return min(times) if times else None
