"""Idempotency for place_order: per-key locks, replaying a bound key, best-effort audit rows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

import orjson
from loguru import logger

from ibkr_mcp.errors import GatewayError, IbkrMcpError, IdempotencyConflictError, OrderRejectedError
from ibkr_mcp.models import OrderInfo
from ibkr_mcp.tools.order_models import PlaceResult
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

    async def __aexit__(self, *exc: object) -> None:
        lock, users = _KEY_LOCKS[self.key]
        lock.release()
        if users <= 1:
            del _KEY_LOCKS[self.key]
        else:
            _KEY_LOCKS[self.key] = (lock, users - 1)


async def idempotent(
    params: Keyed, ctx: CallContext, act: Callable[[], Awaitable[PlaceResult]]
) -> PlaceResult:
    """Run ``act`` once per idempotency key: a bound key replays its original result."""
    async with KeyLock(params.idempotency_key):
        replay = await replay_key(params, ctx)
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
        raise IdempotencyConflictError(
            f"idempotency_key {key!r} was already used for a different order "
            f"({first.get('side')} {first.get('quantity')} {first.get('symbol')}).",
            remedy="Use a new idempotency_key for a new order; reuse a key only to retry "
            "exactly the same order.",
            details={"idempotency_key": key, "original_order_id": first.get("order_id")},
        )
    rejected = [r for r in rows if r.get("event") == "rejected"]
    if rejected:
        stored = (orjson.loads(rejected[-1]["detail"]) if rejected[-1].get("detail") else {}) or {}
        raise OrderRejectedError(
            f"This idempotency_key's order was rejected by the broker: "
            f"{stored.get('message', 'no reason recorded')}",
            remedy="Nothing was re-sent. Fix the order and use a new idempotency_key.",
            details={"idempotency_key": key, "replayed": True},
        )
    sent = [r for r in rows if r.get("event") == "sent"]
    if sent:
        return _replayed_result(params, ctx, await _current_info(ctx, key), sent[-1])
    # An intent without an outcome: the process died (or the connection dropped) between
    # recording the intent and hearing back (or the 'sent' row is still being written). The
    # order ref tells us whether IB has it; a modification is found by its order id.
    modifies = original.get("modifies")
    if modifies is not None:
        info = await services.gateway.order_status(int(modifies))
        if _matches(info, first):
            return _replayed_result(params, ctx, info, first)
        found = []
    else:
        found = await services.gateway.find_orders_by_ref(key)
    if found:
        info = found[0]
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
        found = await ctx.services.gateway.find_orders_by_ref(key)
    except IbkrMcpError:
        return None
    return found[0] if found else None


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
        order_id=info.order_id if info else row.get("order_id"),
        perm_id=info.perm_id if info else row.get("perm_id"),
        filled=info.filled if info else None,
        avg_fill_price=info.avg_fill_price if info else None,
        idempotency_key=params.idempotency_key,
        replayed=True,
        correlation_id=ctx.correlation_id,
    )
