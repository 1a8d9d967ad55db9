"""Flow counters read from the audit trail: orders sent, value sent, duplicates, rejections.

Every process sharing the audit database sees the same rows, so these counters survive restarts
and are shared between processes (never kept in memory). An order counts as sent from its
``intent`` row, which is durable before anything reaches the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ibkr_mcp.audit._codec import utc_iso

if TYPE_CHECKING:
    from ibkr_mcp.audit.log import AuditLog

# The notional and currency an intent recorded are read by SQLite (on the reader thread), not by
# parsing every intent's detail JSON on the event loop (one row per order of the day).
_INTENTS_SINCE = (
    "SELECT ts, idempotency_key, account, con_id, side, quantity, order_type, limit_price,"
    " CASE WHEN json_valid(detail) THEN json_extract(detail, '$.notional') END AS notional,"
    " CASE WHEN json_valid(detail) THEN json_extract(detail, '$.currency') END AS currency"
    " FROM order_events WHERE event = 'intent' AND ts >= ? ORDER BY seq"
)
_REJECTED_SINCE = (
    "SELECT DISTINCT COALESCE(NULLIF(idempotency_key, ''), 'order:' || order_id, 'row:' || id)"
    " AS k FROM order_events WHERE ts >= ? AND (event = 'rejected' OR status = 'Rejected')"
)


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


async def rejection_count(audit: AuditLog, since: datetime) -> int:
    """Broker rejections (distinct orders) recorded since ``since``."""
    return len(await audit.query(_REJECTED_SINCE, (utc_iso(since),)))


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
    since = min(day_start, minute_ago, dup_since)
    rejected_window = now - timedelta(minutes=rejection_window_minutes)
    if rejections_since is not None and rejections_since > rejected_window:
        rejected_window = rejections_since
    # One reader job, one snapshot (was three hops to the reader thread, one after another).
    rows, in_window, rejected = await audit.query_many(
        (_INTENTS_SINCE, (utc_iso(since),)),
        (_REJECTED_SINCE, (utc_iso(rejected_window),)),
        (_REJECTED_SINCE, (utc_iso(since),)),
    )
    rejections = len(in_window)
    rejected_keys = {r["k"] for r in rejected}
    keys: set[str] = set()
    last_minute = today = 0
    notional = Decimal(0)
    dup_key: str | None = None
    dup_age: float | None = None
    for row in rows:
        ts = datetime.fromisoformat(row["ts"])
        if ts >= minute_ago:
            last_minute += 1
        if ts < day_start:
            continue
        today += 1
        if row.get("idempotency_key"):
            keys.add(row["idempotency_key"])
        if row.get("account") == account and row.get("idempotency_key") not in rejected_keys:
            value, row_currency = intent_notional(row)
            if value is not None and row_currency in (None, currency):
                notional += value
        if (
            duplicate_window_seconds > 0
            and ts >= dup_since
            and row.get("idempotency_key") != idempotency_key
            and row.get("account") == account
            and row.get("con_id") == con_id
            and row.get("side") == side
            and row.get("order_type") == order_type
            and _same_quantity(row.get("quantity"), quantity)
        ):
            dup_key = row.get("idempotency_key")
            dup_age = (now - ts).total_seconds()
    return FlowCounts(
        orders_last_minute=last_minute,
        orders_today=today,
        notional_today=notional,
        duplicate_of=dup_key,
        duplicate_age_seconds=dup_age,
        rejections_in_window=rejections,
        keys_today=frozenset(keys),
    )
