"""The costs the account paid for each round trip, read from the broker's account activities.

The broker takes borrow, SEC and FINRA fees (and pays or charges dividends and interest) as
account activities, not per order (simbroker/costs.py has the rules and their sources). This
module books them to the bot's trades. Pure: records and activities in, cents out.

* **Borrow fee** (a FEE with a symbol): to the short trade (or short holding) of that symbol
  that entered on or before the fee's date and had not exited before it (Alpaca charges a
  short for each day it is held at the close; the exchange dates a fee by that close, Alpaca
  may date it by its settlement day, the day after: both fall within the holding).
* **SEC Section 31 and FINRA TAF fees** (FEE `REG` and `TAF`, one a day for the account,
  each the day's total rounded up to the cent): shared among that day's sale orders (a long's
  exit, a short's entry), by each order's own unrounded fee computed with simbroker/costs.py
  (its principal for the SEC fee, its shares capped per trade for the TAF), in whole cents:
  every order gets the cents below its exact share, and the cents left go to the orders with
  the largest remainders (ties by symbol, then order id). The shares of a day add up to what
  the account paid that day, to the cent. Sales of orders that are not the bot's trades keep
  their share, which is reported as not booked to a trade.
* **Dividends** (DIV and its variants, with a symbol), with the activity's own sign (credited
  on a long, debited on a short): to the trade or holding that held the symbol at the close
  before the dividend's ex-date (entered before the ex-date, not exited before it), however
  long after its exit the dividend is paid. Alpaca pays a dividend after its pay date, weeks
  after the ex-date, and its DIV activity carries no ex-date; the ex-date comes from the
  corporate actions (GET /v1/corporate-actions): the cash dividend of that symbol whose pay
  date is the latest on or before the activity's date, at most PAY_GRACE_DAYS before it, and
  whose rate is the activity's `per_share_amount` where it has one (`match_dividends`). A
  dividend without a match (no corporate actions read, or none fits) keeps the rule without
  ex-date: the latest trade of the symbol that entered on or before the activity's date.
* **Interest** (INT) and anything else is not tied to a trade: it is reported per run.

`fees_usd` of a trade is what its activities took from cash (a dividend received counts
against it), so `net_pnl_usd = gross_pnl_usd - fees_usd`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from market_calendar import NEW_YORK
from simbroker.costs import CostRates, sale_fees_unrounded

if TYPE_CHECKING:
    from broker import Activity, CorporateAction

COST_ACTIVITY_TYPES = ("FEE", "INT", "DIV")  # read with the FILLs that place the sales
# The kinds of cost a run reports, in the order it names them.
KINDS = ("borrow", "sec", "taf", "dividend", "interest", "other")
_RATES = CostRates()  # the weights of a day's sales: only their ratios matter
# A dividend's DIV may post this many calendar days after its pay date and still be matched
# to it, and a trade owed a dividend waits for it until then (Alpaca credits "after the pay
# date, as we receive the cash from DTC": Broker API "Daily Processes and Reconciliations",
# Mandatory Corporate Actions, Dividends, alpaca.markets/docs/daily-processes-and-reconcilations).
# After that it is reported as never paid.
PAY_GRACE_DAYS = 7
# How long after its ex-date a dividend's pay date may be, in calendar days: a trade is read
# against the corporate actions this long after its exit (pay dates are usually 2-4 weeks
# after the ex-date).
MAX_PAY_LAG_DAYS = 60


@dataclass(frozen=True)
class Booked:
    """A trade's or holding's costs, in cents paid (negative: received), by kind."""

    cents: dict[str, int] = field(default_factory=dict)

    @property
    def fees_usd(self) -> float:
        return sum(self.cents.values()) / 100


@dataclass(frozen=True)
class Owner:
    """A round trip or a holding the costs may belong to. Days are New York dates."""

    key: str
    symbol: str
    is_long: bool
    entry_day: date
    exit_day: date | None  # None: still held
    sale_order_id: str  # the order that sold: a long's exit, a short's entry


@dataclass(frozen=True)
class Booking:
    """Costs per owner key, and the cents not booked to any (by kind)."""

    owners: dict[str, Booked]
    unbooked: dict[str, int]
    unmatched_dividends: int = 0  # DIVs booked without an ex-date (the rule without one)


def kind_of(activity: Activity) -> str:
    """Which cost an activity is: borrow, sec, taf, dividend, interest, other."""
    kind = activity.activity_type.upper()
    sub = (activity.sub_type or "").upper()
    text = (activity.description or "").lower()
    if kind.startswith("DIV"):
        return "dividend"
    if kind.startswith("INT"):
        return "interest"
    if kind == "FEE":
        if sub == "REG" or "sec section 31" in text:
            return "sec"
        if sub == "TAF" or "trading activity" in text:
            return "taf"
        if activity.symbol and not sub:
            return "borrow"  # the only per-symbol FEE the exchange posts (no sub type)
    return "other"


def activity_day(activity: Activity) -> date:
    return activity.day or activity.time.astimezone(NEW_YORK).date()


def allocate_cents(total_cents: int, weights: Sequence[float]) -> list[int]:
    """`total_cents` shared in proportion to `weights` (in their order of precedence), in
    whole cents that add up to it: the cents below each exact share, then one more to the
    largest remainders (the earlier weight first on a tie). All zero weights share nothing."""
    whole = sum(weights)
    if total_cents == 0 or whole <= 0:
        return [0] * len(weights)
    exact = [total_cents * w / whole for w in weights]
    base = [math.floor(e + 1e-9) for e in exact]
    left = total_cents - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return base


def sale_weights(principal_usd: float, shares: float) -> tuple[float, float]:
    """An order's unrounded SEC and TAF fees (simbroker/costs.py), its weights in the day."""
    sec, taf = sale_fees_unrounded(principal_usd, shares, _RATES)
    return float(sec), float(taf)


def book(owners: Iterable[Owner], activities: Iterable[Activity],
         ex_dates: Mapping[str, date] | None = None) -> Booking:
    """Every cost activity booked to its owner (see the module docstring); FILL activities
    give the day's sales; `ex_dates`: the ex-date of each dividend activity matched to one
    (by activity id, `match_dividends`)."""
    ex_dates = ex_dates or {}
    unmatched = 0
    owners = list(owners)
    result: dict[str, dict[str, int]] = {o.key: defaultdict(int) for o in owners}
    unbooked: dict[str, int] = defaultdict(int)
    activities = sorted(activities, key=lambda a: (a.time, a.id))
    sales = _sales(activities)
    by_sale = {o.sale_order_id: o.key for o in owners if o.sale_order_id}
    day_totals: dict[tuple[date, str], int] = defaultdict(int)
    for a in activities:
        if a.activity_type == "FILL" or a.net_amount is None:
            continue
        kind, cents = kind_of(a), -round(a.net_amount * 100)
        if kind in ("sec", "taf"):
            day_totals[(activity_day(a), kind)] += cents
            continue
        if kind == "dividend" and a.id in ex_dates:
            owner = _holder_at(owners, a, ex_dates[a.id])
        elif kind in ("borrow", "dividend"):
            owner = _owner_of(owners, a, kind)
            unmatched += kind == "dividend"
        else:
            owner = None
        if owner is None:
            unbooked[kind] += cents
        else:
            result[owner.key][kind] += cents
    for (day, kind), cents in sorted(day_totals.items()):
        orders = sales.get(day, [])
        shares = allocate_cents(cents, [w[0 if kind == "sec" else 1] for _, _, w in orders])
        unbooked[kind] += cents - sum(shares)  # no sale seen that day: none to share it
        for (_, order_id, _), part in zip(orders, shares, strict=True):
            key = by_sale.get(order_id)
            if key is None:
                unbooked[kind] += part
            else:
                result[key][kind] += part
    return Booking({k: Booked(dict(v)) for k, v in result.items()},
                   {k: v for k, v in unbooked.items() if v}, unmatched)


def _sales(activities: list[Activity]) -> dict[date, list[tuple[str, str, tuple[float, float]]]]:
    """Each day's sale orders as (symbol, order id, (SEC, TAF) weights), in precedence order
    (symbol, then order id). A weight adds up its order's fills, as the exchange charges
    each fill."""
    weights: dict[tuple[date, str, str], list[float]] = {}
    for a in activities:
        if a.activity_type != "FILL" or a.side != "sell" or a.qty is None or a.price is None:
            continue
        key = (a.time.astimezone(NEW_YORK).date(), a.symbol or "", a.order_id or a.id)
        sec, taf = sale_weights(a.qty * a.price, a.qty)
        total = weights.setdefault(key, [0.0, 0.0])
        total[0] += sec
        total[1] += taf
    out: dict[date, list[tuple[str, str, tuple[float, float]]]] = defaultdict(list)
    for (day, symbol, order_id), (sec, taf) in sorted(weights.items()):
        out[day].append((symbol, order_id, (sec, taf)))
    return out


def _owner_of(owners: list[Owner], activity: Activity, kind: str) -> Owner | None:
    day = activity_day(activity)
    fits = [o for o in owners if o.symbol == activity.symbol and o.entry_day <= day
            and (kind == "dividend" or (not o.is_long and (o.exit_day is None
                                                            or day <= o.exit_day)))]
    return max(fits, key=lambda o: o.entry_day) if fits else None


def _holder_at(owners: list[Owner], activity: Activity, ex_date: date) -> Owner | None:
    """The owner that held the activity's symbol at the close before `ex_date`, on the side
    the activity's shares say (negative: short) where it has them."""
    fits = [o for o in owners if o.symbol == activity.symbol and o.entry_day < ex_date
            and (o.exit_day is None or ex_date <= o.exit_day)
            and (not activity.qty or o.is_long == (activity.qty > 0))]
    return max(fits, key=lambda o: o.entry_day) if fits else None


def pay_day(action: CorporateAction) -> date:
    """When a cash dividend is paid: its payable date, else its ex-date."""
    return action.payable_date or action.ex_date


def match_dividends(activities: Iterable[Activity],
                    actions: Iterable[CorporateAction]) -> dict[str, date]:
    """The ex-date of each dividend activity that matches a cash dividend (module docstring),
    by activity id."""
    dividends = [c for c in actions if c.kind == "cash_dividend"]
    out = {}
    for a in activities:
        if a.activity_type == "FILL" or kind_of(a) != "dividend" or not a.symbol:
            continue
        day = activity_day(a)
        fits = [c for c in dividends if c.symbol == a.symbol
                and 0 <= (day - pay_day(c)).days <= PAY_GRACE_DAYS
                and (a.per_share_amount is None
                     or math.isclose(c.rate, a.per_share_amount, rel_tol=0, abs_tol=1e-6))]
        if fits:
            out[a.id] = max(fits, key=lambda c: (pay_day(c), c.ex_date)).ex_date
    return out


def owed_dividends(owner: Owner, actions: Iterable[CorporateAction]) -> list[CorporateAction]:
    """The cash dividends `owner` is owed (or owes): those whose ex-date it held over."""
    return [c for c in actions if c.kind == "cash_dividend" and c.symbol == owner.symbol
            and owner.entry_day < c.ex_date
            and (owner.exit_day is None or c.ex_date <= owner.exit_day)]


def never_paid(owners: Iterable[Owner], actions: Sequence[CorporateAction],
               ex_dates: Mapping[str, date], activities: Iterable[Activity], after: date,
               today: date) -> list[str]:
    """The dividends owed to `owners` with no DIV matched to them whose wait (to PAY_GRACE_DAYS
    after the pay date) is over by `today` and was not yet at the previous run's day `after`,
    in words: each is named by one run."""
    paid = {(a.symbol, ex_dates[a.id]) for a in activities if a.id in ex_dates}
    out = []
    for owner in owners:
        for c in owed_dividends(owner, actions):
            end = date.fromordinal(pay_day(c).toordinal() + PAY_GRACE_DAYS)
            if after <= end < today and (c.symbol, c.ex_date) not in paid:
                out.append(f"{c.symbol} ${c.rate:g} a share, ex {c.ex_date}, payable "
                           f"{pay_day(c)}: not paid to the account by {end}")
    return out


def new_york_day(iso_time: str) -> date | None:
    try:
        return datetime.fromisoformat(iso_time).astimezone(NEW_YORK).date()
    except (TypeError, ValueError):
        return None


def row_owner(row: Mapping[str, Any], key: str) -> Owner | None:
    """A trades.csv row as an owner of costs (None without a known entry)."""
    entry_day = new_york_day(str(row.get("entry_time") or ""))
    if entry_day is None:
        return None
    is_long = row.get("side") == "long"
    return Owner(key=key, symbol=str(row["symbol"]), is_long=is_long, entry_day=entry_day,
                 exit_day=new_york_day(str(row.get("exit_time") or "")),
                 sale_order_id=str(row["exit_order_id"] if is_long else row["entry_order_id"]))


def cents_text(cents: int) -> str:
    return f"{cents / 100:.2f}"


def usd(cents: Mapping[str, int]) -> dict[str, float]:
    """Cents by kind as dollars, in the order of KINDS."""
    return {k: cents[k] / 100 for k in KINDS if cents.get(k)}


def holding_key(symbol: str, entry_client_order_id: str) -> str:
    return f"held/{symbol}/{entry_client_order_id}"


def owners_to_book(rows: Iterable[Mapping[str, Any]], holdings: Iterable[Any], today: date,
                   days: int, key_of: Any, waiting: Any = None) -> list[Owner]:
    """The rows whose exit is at most `days` calendar days before `today` (their costs may
    still be posted) or that `waiting(owner)` says still wait for a dividend, and the
    holdings (their costs so far)."""
    out = []
    for row in rows:
        exit_day = new_york_day(str(row.get("exit_time") or ""))
        if exit_day is None:
            continue
        age = (today - exit_day).days
        if age > days and (waiting is None or age > MAX_PAY_LAG_DAYS + PAY_GRACE_DAYS):
            continue
        owner = row_owner(row, key_of(row))
        if owner is not None and (age <= days or waiting(owner)):
            out.append(owner)
    for held in holdings:
        out.append(Owner(key=holding_key(held.symbol, held.entry_client_order_id),
                         symbol=held.symbol, is_long=held.is_long, entry_day=held.entry_day,
                         exit_day=None,
                         sale_order_id="" if held.is_long else held.entry_order_id))
    return out
