"""Facts for the flow-limit gates, gathered up front from durable state: audit, halt file, broker.

Part of the facts collector (``safety/facts.py`` re-exports ``gather_flow``): the gates stay
pure, and every counter comes from the audit database or the broker, never from process memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from loguru import logger

from ibkr_mcp.audit.flow import flow_counts
from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.models import DONE_STATUSES, ContractRef
from ibkr_mcp.safety.context import FlowFacts, OrderIntent
from ibkr_mcp.safety.halt import HaltState, engage_halt, read_halt
from ibkr_mcp.safety.pricing import broker_order_value
from ibkr_mcp.safety.sessions import is_open, trading_day_start

if TYPE_CHECKING:
    from ibkr_mcp.gateway.records import OrderRecord
    from ibkr_mcp.services import Services

T = TypeVar("T")


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def intent_ref(intent: OrderIntent) -> ContractRef:
    """The contract reference of a resolved intent (by con_id, so nothing is re-guessed)."""
    return ContractRef(
        symbol=intent.symbol,
        sec_type=intent.sec_type,
        exchange=intent.exchange,
        currency=intent.currency,
        con_id=intent.con_id,
    )


async def trip_breaker_if_needed(services: Services, count: int, now: datetime) -> HaltState:
    """Persist the rejection breaker's halt once the count reached MAX_REJECTIONS."""
    settings = services.settings
    path = settings.halt_state_path
    halt = read_halt(path)
    if halt.halted or count < settings.MAX_REJECTIONS:
        return halt
    reason = (
        f"{count} broker rejections within {settings.REJECTION_WINDOW_MINUTES} min "
        f"(MAX_REJECTIONS={settings.MAX_REJECTIONS})"
    )
    halt = engage_halt(path, source="rejection_breaker", reason=reason, by="system", now=now)
    logger.critical("rejection breaker tripped: {}; trading halted until a human resets it", reason)
    try:
        await services.audit.record_event(
            correlation_id="breaker",
            kind="system",
            tool="rejection_breaker",
            surface="internal",
            arguments=None,
            outcome="halted",
            detail=halt.to_dict(),
        )
    except IbkrMcpError as exc:
        logger.error("could not audit the breaker trip: {}", exc)
    return halt


async def _broker_orders(services: Services) -> list[OrderRecord] | None:
    """Open and completed orders of every client, or ``None`` when the broker cannot say."""
    try:
        return await services.gateway.order_records()
    except Exception as exc:  # noqa: BLE001 - the audit's counters remain authoritative
        logger.debug("broker orders of the day unavailable: {}", exc)
        return None


def broker_orders_today(
    orders: list[OrderRecord], intent: OrderIntent, day_start: datetime, keys_today: frozenset[str]
) -> tuple[int, Decimal]:
    """(orders of the account today at the broker, value of those the audit does not know)."""
    seen: dict[object, OrderRecord] = {}
    for order in orders:
        if order.account != intent.account:
            continue
        if order.updated_at is not None and order.updated_at < day_start:
            continue
        seen[order.perm_id or (order.client_id, order.order_id)] = order
    unknown = Decimal(0)
    for order in seen.values():
        if order.order_ref and order.order_ref in keys_today:
            continue  # already counted from its intent row
        value = broker_order_value(order)
        if value is not None:
            # Currency is not on the order: counted whatever it is (errs on the safe side).
            unknown += value
    return len(seen), unknown


def working_sells(
    orders: list[OrderRecord],
    intent: OrderIntent,
    pending: Iterable[tuple[str, Decimal]] = (),
) -> Decimal:
    """What working SELL orders of ``intent``'s account and contract may still sell.

    The short-sale gate takes it off the position: two resting sells of a whole position would
    otherwise each pass, and sell it twice. One-cancels-all groups (a bracket's exits) count
    once, by their largest leg; the exits of a parent still working sell at most what it has
    bought so far. A modification replaces its own order (and its one-cancels-all group: moving
    a bracket's stop), and its new quantity includes what that order already sold. ``pending``:
    today's SELL intents (key, quantity); those the broker does not show yet (sent by another
    call or process an instant ago) count whole.
    """
    live = {(o.client_id, o.order_id): o for o in orders if o.status not in DONE_STATUSES}
    mine = [o for o in orders if o.account == intent.account and o.con_id == intent.con_id]
    modified = next(
        (o for o in mine if intent.modifies is not None and o.order_id == intent.modifies), None
    )
    group = modified.oca_group if modified is not None else None
    single = Decimal(0)
    groups: dict[str, Decimal] = {}
    for order in mine:
        if order.side != "SELL" or order.status in DONE_STATUSES or order is modified:
            continue
        if group and order.oca_group == group:
            continue
        remaining = order.remaining
        parent = live.get((order.client_id, order.parent_id)) if order.parent_id else None
        if parent is not None:
            remaining = min(remaining, parent.filled)
        if order.oca_group:
            groups[order.oca_group] = max(groups.get(order.oca_group, Decimal(0)), remaining)
        else:
            single += remaining
    total = single + sum(groups.values(), Decimal(0))
    if modified is not None:
        total -= modified.filled
    at_broker = {o.order_ref for o in orders if o.order_ref}
    return total + sum((q for key, q in pending if key not in at_broker), Decimal(0))


async def _position(services: Services, intent: OrderIntent) -> Decimal:
    positions = await services.gateway.positions(intent.account)
    return sum((p.quantity for p in positions if p.con_id == intent.con_id), Decimal(0))


async def _fact(name: str, coro: Awaitable[T], errors: list[tuple[str, str]]) -> T | None:
    try:
        return await coro
    except Exception as exc:  # noqa: BLE001 - reported as a fact; the gates fail closed on it
        errors.append((name, _why(exc)))
        return None


async def _nothing() -> None:
    return None


async def gather_flow(
    services: Services,
    intent: OrderIntent,
    *,
    idempotency_key: str | None,
    now: datetime,
    approval_granted: bool = False,
) -> FlowFacts:
    """Read every fact the flow-limit gates need for ``intent`` (never raises).

    The reads are independent and run concurrently (audit, broker orders, positions, PnL, net
    liquidation, session hours). Facts that cannot be read are reported in ``errors``; the gate
    needing them refuses.
    """
    settings, gateway = services.settings, services.gateway
    errors: list[tuple[str, str]] = []
    halt = read_halt(settings.halt_state_path)
    day_start = trading_day_start(now)
    needs_position = (
        intent.side == "SELL"
        or settings.MAX_DAILY_LOSS is not None
        or settings.MAX_POSITION_PCT_OF_NET_LIQ is not None
    )
    counts_read = flow_counts(
        services.audit,
        now=now,
        day_start=day_start,
        account=intent.account,
        currency=intent.currency,
        con_id=intent.con_id,
        side=intent.side,
        quantity=intent.quantity,
        order_type=intent.order_type,
        idempotency_key=idempotency_key,
        duplicate_window_seconds=settings.DUPLICATE_ORDER_WINDOW_SECONDS,
        rejection_window_minutes=settings.REJECTION_WINDOW_MINUTES,
        rejections_since=halt.cleared_at,
    )
    counts, orders, position, pnl, summary, session = await asyncio.gather(
        _fact("counters", counts_read, errors),
        _broker_orders(services),
        _fact("position", _position(services, intent), errors) if needs_position else _nothing(),
        _fact("pnl", gateway.pnl(intent.account), errors)
        if settings.MAX_DAILY_LOSS is not None
        else _nothing(),
        _fact("net_liquidation", gateway.account_summary(intent.account), errors)
        if settings.MAX_POSITION_PCT_OF_NET_LIQ is not None
        else _nothing(),
        _session(services, intent, now, errors) if settings.trading_hours_only else _nothing(),
    )
    minute = day = rejections = None
    notional: Decimal | None = None
    dup_key: str | None = None
    dup_age: float | None = None
    if counts is None:
        errors.append(("rejections", dict(errors).get("counters", "unreadable")))
    else:
        minute, day = counts.orders_last_minute, counts.orders_today
        notional = counts.notional_today
        dup_key, dup_age = counts.duplicate_of, counts.duplicate_age_seconds
        rejections = counts.rejections_in_window
        if orders is not None:
            # The broker's own orders of the day count too (other clients, TWS, other audits).
            broker_day, broker_value = broker_orders_today(
                orders, intent, day_start, counts.keys_today
            )
            day = max(day, broker_day)
            notional += broker_value
        if not halt.halted and rejections >= settings.MAX_REJECTIONS:
            halt = await trip_breaker_if_needed(services, rejections, now)
    session_open, session_note = session if session is not None else (None, None)
    return FlowFacts(
        collected=True,
        halt=halt,
        orders_last_minute=minute,
        orders_today=day,
        notional_today=notional,
        duplicate_of=dup_key,
        duplicate_age_seconds=dup_age,
        rejections_in_window=rejections,
        position=position,
        working_sells=(
            None
            if orders is None or counts is None or intent.side != "SELL"
            else working_sells(orders, intent, counts.sell_intents)
        ),
        daily_pnl=None if pnl is None else pnl.daily_pnl,
        net_liquidation=None if summary is None else summary.net_liquidation,
        session_open=session_open,
        session_note=session_note,
        approval_required=settings.approval_required(
            settings.TRADING_MODE == "live" or intent.is_live_account
        ),
        approval_granted=approval_granted,
        errors=tuple(errors),
        counted_through=None if counts is None else counts.through_id,
    )


async def _session(
    services: Services, intent: OrderIntent, now: datetime, errors: list[tuple[str, str]]
) -> tuple[bool | None, str | None]:
    try:
        details = await services.gateway.contract_details(intent_ref(intent))
    except Exception as exc:  # noqa: BLE001 - see gather_flow
        errors.append(("session", _why(exc)))
        return None, None
    if not details:
        errors.append(("session", "no contract details"))
        return None, None
    detail = details[0]
    # outside_rth asks for the extended session (tradingHours), else regular hours only.
    hours = detail.trading_hours if intent.outside_rth else detail.liquid_hours
    which = "the extended session" if intent.outside_rth else "regular trading hours"
    opened = is_open(hours, detail.time_zone, now)
    if opened is None:
        errors.append(("session", f"no {which} published for {intent.symbol}"))
    return opened, f"{which} of {intent.symbol} ({detail.time_zone or 'exchange time'})"
