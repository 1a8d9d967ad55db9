"""Idempotency for place_order: per-key locks, replaying a bound key, best-effort audit rows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

import orjson
from loguru import logger

from ibkr_mcp.errors import (
    AuditUnavailableError,
    GateRefusedError,
    GatewayError,
    IbkrMcpError,
    IdempotencyConflictError,
    OrderRejectedError,
)
from ibkr_mcp.gateway.book_scope import day_book_allowed, exact_reads
from ibkr_mcp.models import Fill, OrderInfo
from ibkr_mcp.safety.context import OrderIntent
from ibkr_mcp.safety.pricing import broker_order_value
from ibkr_mcp.tools.order_models import PlaceResult
from ibkr_mcp.tools.order_shape import order_fields
from ibkr_mcp.tools.registry import CallContext


class Keyed(Protocol):
    """An acting call: its idempotency key and a hash of what it asked for."""

    @property
    def idempotency_key(self) -> str:
        """The caller's key."""
        ...

    def request_fingerprint(self) -> str:
        """A hash of the request."""
        ...


# One lock per idempotency key (in this process; across processes the audit database refuses a
# second intent for a key): two concurrent calls with the same key must not both send.
_KEY_LOCKS: dict[str, tuple[asyncio.Lock, int]] = {}


class KeyLock:
    """Hold the key's lock; forget it when nobody holds or waits for it (no unbounded dict)."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def __aenter__(self) -> None:
        lock, users = _KEY_LOCKS.get(self.key, (asyncio.Lock(), 0))
        _KEY_LOCKS[self.key] = (lock, users + 1)
        await lock.acquire()

    @staticmethod
    def free(key: str) -> bool:
        """Whether nobody in this process holds or waits for ``key`` right now."""
        return key not in _KEY_LOCKS

    async def __aexit__(self, *exc: object) -> None:
        lock, users = _KEY_LOCKS[self.key]
        lock.release()
        if users <= 1:
            del _KEY_LOCKS[self.key]
        else:
            _KEY_LOCKS[self.key] = (lock, users - 1)


async def idempotent(
    params: Keyed,
    ctx: CallContext,
    act: Callable[[], Awaitable[PlaceResult]],
    also: Callable[[Any, CallContext], Awaitable[PlaceResult | None]] | None = None,
) -> PlaceResult:
    """Run ``act`` once per idempotency key: a bound key replays its original result.

    ``also``: a further replay asked after ``replay_key`` (a key queued for approval).
    """
    async with KeyLock(params.idempotency_key):
        if also is None:
            replay = await replay_key(params, ctx)
        else:
            # Both are reads: asked together, and ``also`` counts only if ``replay_key`` found
            # nothing (its answer, or its refusal, comes first).
            first, second = await asyncio.gather(
                replay_key(params, ctx), also(params, ctx), return_exceptions=True
            )
            if isinstance(first, BaseException):
                raise first
            replay = first
            if replay is None:
                if isinstance(second, BaseException):
                    raise second
                replay = second
        if replay is not None:
            return replay
        try:
            return await act()
        except IdempotencyConflictError as exc:
            if not exc.details.get("already_bound"):
                raise
            # Another process bound this key between our check and our intent row.
            replay = await replay_key(params, ctx)
            if replay is None:
                raise
            return replay


async def replay_key(params: Keyed, ctx: CallContext) -> PlaceResult | None:
    """The original result if this key already sent (or may have sent) an order."""
    services = ctx.services
    key = params.idempotency_key
    rows = await services.audit.order_events_for_key(key)
    intents = [r for r in rows if r.get("event") == "intent"]
    if not intents:
        return None
    first = intents[0]
    original = (orjson.loads(first["detail"]) if first.get("detail") else {}) or {}
    if original.get("request_fingerprint") != params.request_fingerprint():
        # The intent row precedes the send, so it has no order id: a later row (sent, status)
        # or the broker knows it.
        order_id = next((r["order_id"] for r in rows if r.get("order_id")), None)
        if order_id is None:
            current = await _current_info(ctx, key)
            order_id = current.order_id if current else None
        original_order = f"{first.get('side')} {first.get('quantity')} {first.get('symbol')}"
        raise _conflict(key, original_order, order_id)
    rejected = [r for r in rows if r.get("event") == "rejected"]
    if rejected:
        stored = (orjson.loads(rejected[-1]["detail"]) if rejected[-1].get("detail") else {}) or {}
        raise OrderRejectedError(
            f"This idempotency_key's order was rejected by the broker: "
            f"{stored.get('message', 'no reason recorded')}",
            remedy="Nothing was re-sent. Fix the order and use a new idempotency_key.",
            details={"idempotency_key": key, "replayed": True},
        )
    # Stopped after its intent (a halt engaged while it was judged): never sent.
    stopped = [
        detail
        for r in rows
        if r.get("event") == "refused" and r["seq"] > first["seq"] and r.get("detail")
        for detail in [orjson.loads(r["detail"]) or {}]
        if detail.get("after_intent") is True
    ]
    if stopped and not any(r.get("event") == "sent" for r in rows):
        detail = stopped[-1]
        raise GateRefusedError(
            f"This idempotency_key's order was NOT sent: {detail.get('reason', 'stopped')}.",
            remedy="Nothing was sent. Once trading may resume, preview the order again and "
            "place it with a new idempotency_key.",
            details={"idempotency_key": key, "gate": detail.get("gate"), "replayed": True},
        )
    sent = [r for r in rows if r.get("event") == "sent"]
    modifies = original.get("modifies")
    if sent and modifies is not None:
        # A modification keeps the order's own reference: it is found by its id.
        current = await services.gateway.order_status(int(modifies))
        return _replayed_result(params, ctx, current, sent[-1])
    if sent:
        return await _replay_sent(params, ctx, rows, sent[-1])
    # An intent without an outcome: the process died (or the connection dropped) between
    # recording the intent and hearing back (or the 'sent' row is still being written). The
    # order ref tells us whether IB has it; a modification is found by its order id.
    info: OrderInfo | None
    if modifies is not None:
        info = await services.gateway.order_status(int(modifies))
        if _matches(info, first):
            return _replayed_result(params, ctx, info, first)
        info = None
    else:
        info = await broker_order(ctx, key)
    if info is not None:
        await best_effort(
            ctx,
            "reconciled sent",
            event="sent",
            idempotency_key=key,
            order_id=info.order_id,
            perm_id=info.perm_id,
            status=info.status,
            detail={"reconciled": True},
        )
        return _replayed_result(params, ctx, info, first)
    raise GatewayError(
        f"The order with idempotency_key {key!r} was recorded but the broker has no order with "
        "that reference; its fate is uncertain, so it is NOT re-sent automatically.",
        remedy="Check get_open_orders / get_executions; to send it anyway use a new "
        "idempotency_key after a new preview.",
        details={"idempotency_key": key, "state": "uncertain"},
    )


def _matches(info: OrderInfo, row: dict[str, Any]) -> bool:
    """Whether the broker's order carries the quantity and limit the intent row asked for."""
    wanted_qty = Decimal(str(row.get("quantity"))) if row.get("quantity") is not None else None
    wanted_lmt = (
        Decimal(str(row.get("limit_price"))) if row.get("limit_price") is not None else None
    )
    return info.quantity == wanted_qty and (wanted_lmt is None or info.limit_price == wanted_lmt)


async def _current_info(ctx: CallContext, key: str) -> OrderInfo | None:
    """The order's state now, found by its order ref (ids can repeat across clients)."""
    try:
        return await broker_order(ctx, key)
    except IbkrMcpError:
        return None


def _conflict(key: str, original: str, order_id: int | None) -> IdempotencyConflictError:
    return IdempotencyConflictError(
        f"idempotency_key {key!r} was already used for a different order ({original}).",
        remedy="Use a new idempotency_key for a new order; reuse a key only to retry "
        "exactly the same order.",
        details={"idempotency_key": key, "original_order_id": order_id},
    )


async def broker_order(ctx: CallContext, key: str, *, warm: bool = False) -> OrderInfo | None:
    """The broker's order whose ``orderRef`` is ``key``, with its fills counted, or ``None``.

    Asks open orders, completed orders and executions (IB reports a completed order without
    its fill price, and after a restart ib_async has no order status: the executions have both).
    ``warm``: the order book scope already holds those reads (asked one after the other then:
    answered at once, without the loop turns of running them as concurrent tasks).

    Raises:
        IbkrMcpError: If the broker cannot be asked.
    """
    found, fills = await _by_ref(ctx, key, warm=warm)
    if (found or fills) and day_book_allowed():
        # The day book proves the order exists; its state now is asked of the broker whole.
        with exact_reads():
            found, fills = await _by_ref(ctx, key)
    if found:
        info = found[0]
        mine = [f for f in fills if info.perm_id is None or f.perm_id in (None, info.perm_id)]
        return _with_fills(info, mine)
    if not fills:
        return None
    # Executions without an order (IB no longer lists it): the fills are what is known.
    first, quantity = fills[0], sum((f.quantity for f in fills), Decimal(0))
    info = OrderInfo(
        order_id=first.order_id,
        perm_id=first.perm_id,
        account=first.account,
        symbol=first.symbol,
        con_id=first.con_id,
        side=first.side,
        quantity=quantity,
        order_type="",
        tif="",
        status="Filled",
        remaining=Decimal(0),
        order_ref=key,
    )
    return _with_fills(info, fills)


async def _by_ref(
    ctx: CallContext, key: str, *, warm: bool = False
) -> tuple[list[OrderInfo], list[Fill]]:
    """The broker's orders and fills whose ``orderRef`` is ``key``."""
    gateway = ctx.services.gateway
    if warm:
        found = await gateway.find_orders_by_ref(key)
        fills = await gateway.fills_by_ref(key)
    else:
        found, fills = await asyncio.gather(
            gateway.find_orders_by_ref(key), gateway.fills_by_ref(key)
        )
    return found, fills


def _with_fills(info: OrderInfo, fills: list[Fill]) -> OrderInfo:
    """``info`` with the filled quantity and average price its executions prove."""
    if not fills:
        return info
    quantity = sum((f.quantity for f in fills), Decimal(0))
    update: dict[str, Any] = {}
    if quantity > info.filled:
        update["filled"] = quantity
        update["remaining"] = max(info.quantity - quantity, Decimal(0))
    if info.avg_fill_price is None and quantity > 0:
        update["avg_fill_price"] = sum((f.quantity * f.price for f in fills), Decimal(0)) / quantity
    return info.model_copy(update=update) if update else info


async def _replay_sent(
    params: Keyed, ctx: CallContext, rows: list[dict[str, Any]], sent: dict[str, Any]
) -> PlaceResult:
    """Replay a key whose order was sent: the broker's state now, or what the audit knows."""
    key = params.idempotency_key
    try:
        info = await broker_order(ctx, key)
    except IbkrMcpError as exc:
        info, asked = None, f"the broker could not be asked ({exc.code})"
    else:
        asked = "the broker no longer has an order with this reference"
    if info is not None:
        return _replayed_result(params, ctx, info, sent)
    statuses = [r for r in rows if r.get("status")]
    last = statuses[-1] if statuses else sent
    order_id = sent.get("order_id")
    # Saying "Submitted" here would be a guess: the order may be gone (a gateway that restarted
    # empty) or may have filled. Report the facts instead, and send nothing.
    return PlaceResult(
        sent=True,
        status="Unknown",
        message=f"This idempotency_key was already used for this exact order: order {order_id} "
        f"was sent (the audit's last status: {last.get('status') or 'none'} at "
        f"{last.get('ts')}), but {asked}. Nothing new was sent. Check get_open_orders and "
        "get_executions; to trade again use a new idempotency_key.",
        order_id=order_id,
        perm_id=sent.get("perm_id"),
        idempotency_key=key,
        replayed=True,
        correlation_id=ctx.correlation_id,
    )


def _mismatch(info: OrderInfo, intent: OrderIntent) -> list[str]:
    """The order terms in which the broker's order differs from ``intent``."""
    diffs = []
    if info.symbol.upper() != intent.symbol.upper():
        diffs.append("symbol")
    if info.con_id is not None and info.con_id != intent.con_id:
        diffs.append("con_id")
    if info.side != intent.side:
        diffs.append("side")
    if info.account and info.account != intent.account:
        diffs.append("account")
    if info.order_type:  # empty when only executions were found
        if info.quantity != intent.quantity:
            diffs.append("quantity")
        if info.order_type != intent.order_type:
            diffs.append("order_type")
        if intent.limit_price is not None and info.limit_price != intent.limit_price:
            diffs.append("limit_price")
    elif info.filled > intent.quantity:
        diffs.append("quantity")
    return diffs


async def broker_replay(params: Keyed, ctx: CallContext, intent: OrderIntent) -> PlaceResult | None:
    """Before a key the local audit does not know is sent: does the broker already have it?

    The local audit only knows the orders of processes sharing its file; another process, a
    fresh DATA_DIR or an audit moved aside must not lead to a second order with this key. If
    the broker has an order with this ``orderRef``, it is adopted: recorded as this key's intent
    and sent rows (``found_at_broker``) and replayed, or refused as a conflict if it differs.

    Returns:
        The replayed result, or ``None`` if the broker knows no order with this key.

    Raises:
        IdempotencyConflictError: If the broker's order differs from this one.
        IbkrMcpError: If the broker cannot be asked (the order is then not sent).
    """
    key = params.idempotency_key
    try:
        # Called once the place path read the order book (``trading._place``): it is warm.
        info = await broker_order(ctx, key, warm=True)
    except IbkrMcpError as exc:
        exc.message = (
            f"The order was NOT sent: the broker could not be asked whether idempotency_key "
            f"{key!r} already has an order ({exc.message})."
        )
        raise
    if info is None:
        return None
    found = {"found_at_broker": True, "order_id": info.order_id, "status": info.status}
    diffs = _mismatch(info, intent)
    if diffs:
        await best_effort(
            ctx,
            "duplicate",
            event="duplicate",
            idempotency_key=key,
            order_id=info.order_id,
            perm_id=info.perm_id,
            detail={**found, "differs_in": diffs},
        )
        at_broker = f"{info.side} {info.quantity} {info.symbol} at the broker"
        raise _conflict(key, at_broker, info.order_id)
    fields = order_fields(intent)
    try:
        # Binds the key in this audit (later retries replay locally); a process sharing this
        # file that bound it first wins (IdempotencyConflictError, replayed by the caller).
        await ctx.services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="intent",
            idempotency_key=key,
            fingerprint=intent.fingerprint(),
            detail={
                "request_fingerprint": params.request_fingerprint(),
                **found,
                # What daily_notional counts for it: its key is now known to this audit, so
                # the broker's copy no longer counts it (an adopted MKT order counted 0).
                "notional": broker_order_value(info),
                "currency": intent.currency,
            },
            **fields,
        )
    except AuditUnavailableError as exc:
        logger.critical("audit could not record the broker's order for key {}: {}", key, exc)
    else:
        await best_effort(
            ctx,
            "found at broker",
            event="sent",
            idempotency_key=key,
            order_id=info.order_id,
            perm_id=info.perm_id,
            status=info.status,
            detail=found,
            **fields,
        )
    logger.warning(
        "idempotency key {} was unknown here but the broker has order {}: replayed",
        key,
        info.order_id,
    )
    return _replayed_result(params, ctx, info, {})


async def best_effort(ctx: CallContext, what: str, **row: Any) -> str | None:
    """Append an order row after the broker acted; a failure is logged, never raised.

    Once an order (or a cancel) has reached the broker, an audit failure must not turn the
    answer into "not sent": the caller would retry and trade twice.
    """
    try:
        await ctx.services.audit.record_order_event(correlation_id=ctx.correlation_id, **row)
    except Exception as exc:  # noqa: BLE001 - the broker already acted; see docstring
        logger.critical("audit row '{}' could not be written: {}", what, exc)
        return f"WARNING: the audit row '{what}' could not be written ({exc})."
    return None


def _replayed_result(
    params: Keyed, ctx: CallContext, info: OrderInfo | None, row: dict[str, Any]
) -> PlaceResult:
    return PlaceResult(
        sent=True,
        status=info.status if info else str(row.get("status") or "Unknown"),
        message="This idempotency_key was already used for this exact order: returning the "
        "original order; nothing new was sent.",
        # IB reports completed (and other clients') orders with order id 0: the audit names it.
        order_id=(info.order_id or row.get("order_id")) if info else row.get("order_id"),
        perm_id=(info.perm_id or row.get("perm_id")) if info else row.get("perm_id"),
        filled=info.filled if info else None,
        avg_fill_price=info.avg_fill_price if info else None,
        idempotency_key=params.idempotency_key,
        replayed=True,
        correlation_id=ctx.correlation_id,
    )
