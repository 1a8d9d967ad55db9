"""Flow counters read from the audit trail: orders sent, value sent, duplicates, rejections.

Every process sharing the audit database sees the same rows, so these counters survive restarts
and are shared between processes. An order counts as sent from its ``intent`` row, which is
durable before anything reaches the broker. The day's value is a running tally of those rows
(``_DayTally``) that each call brings up to date from the database, so an order costs what was
recorded since the last one, not the whole day.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ibkr_mcp.audit._codec import utc_iso

if TYPE_CHECKING:
    from ibkr_mcp.audit.log import AuditLog

# The notional and currency an intent recorded are read by SQLite (on the reader thread), not by
# parsing every intent's detail JSON on the event loop.
_NOTIONAL = (
    "CASE WHEN json_valid(detail) THEN json_extract(detail, '$.notional') END AS notional,"
    " CASE WHEN json_valid(detail) THEN json_extract(detail, '$.currency') END AS currency"
)
_INTENT_COLUMNS = "SELECT id, ts, idempotency_key, account, quantity, limit_price, " + _NOTIONAL
#: The day's intents, for a tally that holds none yet: through the (event, ts) index.
_DAY_INTENTS = _INTENT_COLUMNS + " FROM order_events WHERE event = 'intent' AND ts >= ? ORDER BY id"
#: Intents after the tally's watermark: a rowid range over what was recorded since.
_NEW_INTENTS = (
    _INTENT_COLUMNS
    + " FROM order_events WHERE id > ? AND +event = 'intent' AND +ts >= ? ORDER BY id"
)
#: Intents of the last minute and of the day (counted by SQLite, not fetched); the hash of the
#: row at the tally's watermark (a replaced database has another row there) and the newest row
#: (the next watermark: every row up to it is in this snapshot).
_COUNTS = (
    "SELECT COALESCE(SUM(ts >= ?), 0) AS minute, COALESCE(SUM(ts >= ?), 0) AS today,"
    " (SELECT row_hash FROM order_events WHERE id = ?) AS anchor,"
    " (SELECT MAX(id) FROM order_events) AS top,"
    " (SELECT row_hash FROM order_events WHERE id = (SELECT MAX(id) FROM order_events))"
    " AS top_hash"
    " FROM order_events WHERE event = 'intent' AND ts >= ?"
)
#: The intents a duplicate could be (the duplicate window only).
_RECENT_INTENTS = (
    "SELECT ts, idempotency_key, account, con_id, side, quantity, order_type"
    " FROM order_events WHERE event = 'intent' AND ts >= ? ORDER BY seq"
)
#: The keys of orders the broker rejected since a time (given twice): two index ranges, one by
#: event and one by status (one ``OR`` scanned the whole table, every day ever, per order).
_REJECTED_SINCE = (
    "SELECT DISTINCT COALESCE(NULLIF(idempotency_key, ''), 'order:' || order_id, 'row:' || id)"
    " AS k FROM order_events WHERE id IN ("
    "SELECT id FROM order_events WHERE event = 'rejected' AND ts >= ?"
    " UNION SELECT id FROM order_events WHERE status = 'Rejected' AND ts >= ?)"
)


#: Keys of orders stopped after their intent (a halt engaged while they were judged): never
#: sent, so neither a duplicate of a later order nor part of the day's value.
_STOPPED_SINCE = (
    "SELECT DISTINCT idempotency_key AS k FROM order_events"
    " WHERE event = 'refused' AND ts >= ? AND status = 'Cancelled' AND idempotency_key != ''"
)
#: Today's new SELL orders of one account and contract (not modifications): what may still be
#: on its way to the broker when the short-sale gate judges another sell.
_SELL_INTENTS = (
    "SELECT idempotency_key, quantity FROM order_events WHERE event = 'intent' AND ts >= ?"
    " AND +account = ? AND +con_id = ? AND +side = 'SELL' AND order_id IS NULL"
)


def _rejected_since(since: datetime) -> tuple[str, tuple[str, str]]:
    at = utc_iso(since)
    return _REJECTED_SINCE, (at, at)


@dataclass(frozen=True, slots=True)
class FlowCounts:
    """The audit's counters for one order (see ``flow_counts``)."""

    orders_last_minute: int
    orders_today: int
    notional_today: Decimal
    duplicate_of: str | None
    duplicate_age_seconds: float | None
    rejections_in_window: int
    keys_today: frozenset[str] = frozenset()
    #: The newest ``order_events`` row of the snapshot these counts were read from: an intent
    #: recorded after it is not in them (the intent row that acts on them is refused then).
    through_id: int = 0
    #: A SELL's facts: today's new SELL orders of its account and contract, (key, quantity),
    #: rejected or stopped ones left out (``working_sells`` counts those the broker lacks).
    sell_intents: tuple[tuple[str, Decimal], ...] = ()


def _dec(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


def intent_notional(row: dict[str, Any]) -> tuple[Decimal | None, str | None]:
    """The value and currency an intent row recorded (``qty × limit`` for older rows).

    ``row``: a row of ``_INTENTS_SINCE`` (``notional`` and ``currency`` from its detail).
    """
    value = _dec(row.get("notional"))
    if value is None:
        qty, limit = _dec(row.get("quantity")), _dec(row.get("limit_price"))
        value = None if qty is None or limit is None else qty * limit
    currency = row.get("currency")
    return value, currency if isinstance(currency, str) else None


def _same_quantity(a: object, b: Decimal) -> bool:
    value = _dec(a)
    return value is not None and value == b


#: The values recorded today for one order: its own intent (by key) and its modifications'
#: (by order id: ids are per API client, so only rows of the same account and contract).
_ORDER_INTENTS = (
    "SELECT idempotency_key, quantity, limit_price, " + _NOTIONAL + " FROM order_events"
    " WHERE event = 'intent' AND ts >= ? AND account = ? AND con_id = ?"
    " AND (idempotency_key = ? OR order_id = ?)"
)


async def recorded_notional(
    audit: AuditLog,
    *,
    order_ref: str | None,
    order_id: int,
    account: str,
    con_id: int,
    since: datetime,
) -> Decimal | None:
    """What the day's sum holds for one working order since ``since``, or ``None``.

    Its own intent (``order_ref`` is its idempotency key) and the modifications of
    ``order_id`` (rows of ``account`` and ``con_id`` only: another client's order can have
    the same id), valued and filtered as the day's sum does (rows of rejected keys out).
    ``None`` when its own intent is not among them (placed on an earlier day, by another
    server, or a bracket child: the day's sum does not hold it as such) or a row cannot be
    valued.
    """
    if not order_ref:
        return None
    rows, rejected = await audit.query_many(
        (_ORDER_INTENTS, (utc_iso(since), account, con_id, order_ref, order_id)),
        _rejected_since(since),
    )
    out = {r["k"] for r in rejected}
    counted = [row for row in rows if (row.get("idempotency_key") or None) not in out]
    if not any(row.get("idempotency_key") == order_ref for row in counted):
        return None
    values = [intent_notional(row)[0] for row in counted]
    if any(value is None for value in values):
        return None
    return sum((v for v in values if v is not None), Decimal(0))


async def rejection_count(audit: AuditLog, since: datetime) -> int:
    """Broker rejections (distinct orders) recorded since ``since``."""
    return len(await audit.query(*_rejected_since(since)))


async def flow_counts(
    audit: AuditLog,
    *,
    now: datetime,
    day_start: datetime,
    account: str,
    currency: str,
    con_id: int,
    side: str,
    quantity: Decimal,
    order_type: str,
    idempotency_key: str | None,
    duplicate_window_seconds: int,
    rejection_window_minutes: int,
    rejections_since: datetime | None,
) -> FlowCounts:
    """Read the counters the flow-limit gates need, for one order, from the audit trail.

    Args:
        audit: The open audit log.
        now: The decision time.
        day_start: Start of the trading day (New York midnight), aware.
        account: The order's account (daily notional is per account and currency).
        currency: The order's currency.
        con_id: The contract (duplicate detection).
        side: ``BUY``/``SELL`` (duplicate detection).
        quantity: The order size (duplicate detection).
        order_type: ``MKT``/``LMT`` (duplicate detection).
        idempotency_key: The caller's key (the same key is a retry, never a duplicate).
        duplicate_window_seconds: The duplicate window (0: off).
        rejection_window_minutes: The breaker's window.
        rejections_since: The last human reset of a halt (rejections before it do not count).

    Raises:
        AuditUnavailableError: If the audit database cannot be read.
    """
    minute_ago = now - timedelta(seconds=60)
    dup_since = now - timedelta(seconds=duplicate_window_seconds)
    rejected_window = now - timedelta(minutes=rejection_window_minutes)
    if rejections_since is not None and rejections_since > rejected_window:
        rejected_window = rejections_since
    tally = _tally(audit, day_start)
    first = min(day_start, minute_ago)
    # The row this call checks (a concurrent call may tally further meanwhile).
    anchor_id, anchor_hash = tally.last_id, tally.last_hash
    day = utc_iso(day_start)
    statements: list[tuple[str, Any]] = [
        (_NEW_INTENTS, (anchor_id, day)) if anchor_id else (_DAY_INTENTS, (day,)),
        (_COUNTS, (utc_iso(minute_ago), day, anchor_id, utc_iso(first))),
        _rejected_since(rejected_window),
        _rejected_since(day_start),
        (_STOPPED_SINCE, (utc_iso(min(day_start, dup_since)),)),
    ]
    duplicates, selling = duplicate_window_seconds > 0, side == "SELL"
    if duplicates:
        statements.append((_RECENT_INTENTS, (utc_iso(dup_since),)))
    if selling:  # only a SELL's short-sale check needs them
        statements.append((_SELL_INTENTS, (day, account, con_id)))
    # One reader job, one snapshot: the day's new intents, the counts, rejections, duplicates.
    new, counted, in_window, rejected, stopped, *rest = await audit.query_many(*statements)
    recent = rest.pop(0) if duplicates else []
    sells = rest.pop(0) if selling else []
    if anchor_id and counted[0]["anchor"] != anchor_hash:
        # Not the database the tally was read from (replaced under this process): read again.
        _TALLIES.pop(audit, None)
        return await flow_counts(
            audit, now=now, day_start=day_start, account=account, currency=currency,
            con_id=con_id, side=side, quantity=quantity, order_type=order_type,
            idempotency_key=idempotency_key, duplicate_window_seconds=duplicate_window_seconds,
            rejection_window_minutes=rejection_window_minutes, rejections_since=rejections_since,
        )  # fmt: skip
    try:
        tally.add(new, counted[0]["top"], counted[0]["top_hash"])
    except BaseException:
        # Never a tally that skipped a row it could not sum: the next call reads the day again
        # (and fails again, so the gates that need the counters keep refusing).
        _TALLIES.pop(audit, None)
        raise
    stopped_keys = {r["k"] for r in stopped}
    rejected_keys = {r["k"] for r in rejected} | stopped_keys
    dup_key: str | None = None
    dup_age: float | None = None
    for row in recent:
        if (
            row.get("idempotency_key") != idempotency_key
            and row.get("idempotency_key") not in stopped_keys
            and row.get("account") == account
            and row.get("con_id") == con_id
            and row.get("side") == side
            and row.get("order_type") == order_type
            and _same_quantity(row.get("quantity"), quantity)
        ):
            dup_key = row.get("idempotency_key")
            dup_age = (now - datetime.fromisoformat(row["ts"])).total_seconds()
    return FlowCounts(
        orders_last_minute=int(counted[0]["minute"]),
        orders_today=int(counted[0]["today"]),
        notional_today=tally.notional(account, currency, rejected_keys),
        duplicate_of=dup_key,
        duplicate_age_seconds=dup_age,
        rejections_in_window=len(in_window),
        keys_today=tally.keys(),
        through_id=int(counted[0]["top"] or 0),
        sell_intents=tuple(
            (str(row["idempotency_key"]), quantity)
            for row in sells
            if row.get("idempotency_key") and row["idempotency_key"] not in rejected_keys
            for quantity in [_dec(row.get("quantity"))]
            if quantity is not None
        ),
    )


class _DayTally:
    """This process's running sum of the day's intents, read from the audit incrementally.

    Why: summing every intent of the day on every order made each order cost O(orders of the
    day) (~22 ms at 2,000 orders). The rows still come from the database, every process's
    included: each call reads only the intents with an id above its watermark (the newest row
    of the last snapshot), in the same snapshot as its counts (ids grow in commit order: one
    writer at a time). Exact
    ``Decimal`` sums; a rejected order's value is taken out at each call (rejections are few).
    """

    def __init__(self, day_start: datetime) -> None:
        self.day_start = day_start
        self.last_id = 0
        self.last_hash: str | None = None
        #: account -> currency (None: not recorded) -> value of the day's intents.
        self._sums: dict[str | None, dict[str | None, Decimal]] = {}
        #: idempotency key -> (account, currency, value) of its intents (rejections subtract).
        self._by_key: dict[str, list[tuple[str | None, str | None, Decimal]]] = {}
        self._keys: set[str] = set()
        self._frozen: frozenset[str] = frozenset()

    def add(self, rows: list[dict[str, Any]], top: int | None, top_hash: str | None) -> None:
        """Tally the intents a snapshot read, then move the watermark to its newest row.

        Args:
            rows: ``_DAY_INTENTS`` / ``_NEW_INTENTS`` rows (ids at or below the watermark are
                skipped: a concurrent call's snapshot already tallied them).
            top: The snapshot's newest row id (every row up to it was in the snapshot).
            top_hash: That row's hash (``flow_counts`` checks it is still there next time).
        """
        for row in rows:
            if row["id"] <= self.last_id:
                continue
            key = row.get("idempotency_key") or None
            if key is not None:
                self._keys.add(key)
            value, currency = intent_notional(row)
            if value is None:
                continue
            account = row.get("account")
            by_currency = self._sums.setdefault(account, {})
            by_currency[currency] = by_currency.get(currency, Decimal(0)) + value
            if key is not None:
                self._by_key.setdefault(key, []).append((account, currency, value))
        if top is not None and top > self.last_id:
            self.last_id, self.last_hash = top, top_hash

    def notional(self, account: str, currency: str, rejected: set[str]) -> Decimal:
        """The day's value for ``account`` in ``currency`` (or unrecorded), rejections out."""
        by_currency = self._sums.get(account, {})
        total = by_currency.get(currency, Decimal(0)) + by_currency.get(None, Decimal(0))
        for key in rejected:
            for row_account, row_currency, value in self._by_key.get(key, ()):
                if row_account == account and row_currency in (None, currency):
                    total -= value
        return total

    def keys(self) -> frozenset[str]:
        """The idempotency keys of the day's intents."""
        if len(self._frozen) != len(self._keys):
            self._frozen = frozenset(self._keys)
        return self._frozen


#: One tally per open audit log (per process), for its current trading day.
_TALLIES: weakref.WeakKeyDictionary[AuditLog, _DayTally] = weakref.WeakKeyDictionary()


def _tally(audit: AuditLog, day_start: datetime) -> _DayTally:
    tally = _TALLIES.get(audit)
    if tally is None or tally.day_start != day_start:
        tally = _TALLIES[audit] = _DayTally(day_start)
    return tally
