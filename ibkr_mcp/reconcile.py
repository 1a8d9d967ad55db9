"""Reconciliation after every (re)connect: the broker's orders and fills into the audit, once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from loguru import logger

from ibkr_mcp.models import Fill, OrderInfo
from ibkr_mcp.services import Services


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconciliation found and recorded."""

    orders_seen: int
    fills_seen: int
    statuses_recorded: int
    uncertain_resolved: int


async def record_status(
    services: Services, info: OrderInfo, *, reconciled: bool, key_rows: list[dict[str, Any]]
) -> bool:
    """Append a status row unless the audit's latest row for the order already says it.

    IB repeats order states on every connect and open-orders request; one row per change
    keeps "status changes land in the audit exactly once". The order is found by its
    ``orderRef`` rows when it has one (completed orders may come back with order id 0).
    """
    audit = services.audit
    with_status = [r for r in key_rows if r.get("status")]
    if with_status:
        latest: dict[str, Any] | None = with_status[-1]
    else:
        latest = await audit.latest_order_event(info.order_id) if info.order_id else None
    filled = str(info.filled)
    if latest is not None and latest.get("status") == info.status:
        stored = orjson.loads(latest["detail"]) if latest.get("detail") else {}
        if not isinstance(stored, dict) or stored.get("filled") in (None, filled):
            return False
    detail: dict[str, str | bool] = {"filled": filled, "remaining": str(info.remaining)}
    if reconciled:
        detail["reconciled"] = True
    await append_status(services, info, detail)
    return True


async def append_status(services: Services, info: OrderInfo, detail: dict[str, Any]) -> None:
    """Append one ``status`` order event for ``info`` (the broker's view of the order)."""
    await services.audit.record_order_event(
        correlation_id=None,
        event="status",
        idempotency_key=info.order_ref,
        order_id=info.order_id,
        perm_id=info.perm_id,
        account=info.account,
        symbol=info.symbol,
        con_id=info.con_id,
        side=info.side,
        quantity=info.quantity,
        order_type=info.order_type,
        limit_price=info.limit_price,
        tif=info.tif,
        status=info.status,
        detail=detail,
    )


async def record_fill(services: Services, fill: Fill) -> None:
    """Append an execution (and its commission once reported); the audit keeps one of each."""
    kinds = ["execution"] if fill.commission is None else ["execution", "commission"]
    for kind in kinds:
        await append_fill(services, fill, kind)


async def append_fill(services: Services, fill: Fill, kind: str) -> None:
    """Append one ``execution`` or ``commission`` row for ``fill`` (the audit dedupes them)."""
    commission = kind == "commission"
    await services.audit.record_fill(
        correlation_id=None,
        kind=kind,
        exec_id=fill.exec_id,
        order_id=fill.order_id,
        perm_id=fill.perm_id,
        account=fill.account,
        symbol=fill.symbol,
        side=fill.side,
        quantity=fill.quantity,
        price=fill.price,
        commission=fill.commission if commission else None,
        commission_currency=fill.commission_currency if commission else None,
        realized_pnl=fill.realized_pnl if commission else None,
        exec_time=fill.time,
        order_ref=fill.order_ref,
    )


async def reconcile(services: Services) -> ReconcileReport:
    """Bring the audit in line with the broker after a (re)connect.

    Executions and status changes that happened while disconnected are recorded (once each);
    an order whose intent was recorded without an outcome (``uncertain``: the connection
    dropped while sending) is resolved through its ``orderRef``: if the broker has it, a
    reconciled ``sent`` row is written. Only orders the audit already knows are touched.
    """
    gateway = services.gateway
    snapshot = getattr(gateway, "broker_snapshot", None)
    if snapshot is None:
        return ReconcileReport(0, 0, 0, 0)
    orders, fills = snapshot()
    audit = services.audit
    statuses = resolved = 0
    for fill in fills:
        await record_fill(services, fill)
    for info in orders:
        rows = await audit.order_events_for_key(info.order_ref) if info.order_ref else []
        known = bool(rows) or (
            info.order_id is not None and await audit.latest_order_event(info.order_id)
        )
        if not known:
            continue
        if rows and not any(r.get("event") == "sent" for r in rows):
            rows = [*rows, {"event": "sent", "status": info.status, "detail": None}]
            await audit.record_order_event(
                correlation_id=None,
                event="sent",
                idempotency_key=info.order_ref,
                order_id=info.order_id,
                perm_id=info.perm_id,
                status=info.status,
                detail={"reconciled": True, "after": "reconnect"},
            )
            resolved += 1
        if await record_status(services, info, reconciled=True, key_rows=rows):
            statuses += 1
    report = ReconcileReport(len(orders), len(fills), statuses, resolved)
    logger.info(
        "reconciled after connect: {} orders, {} executions at the broker; {} status change(s) "
        "and {} uncertain order(s) recorded",
        report.orders_seen,
        report.fills_seen,
        report.statuses_recorded,
        report.uncertain_resolved,
    )
    return report
