"""Facts for the flow-limit gates, gathered up front from durable state: audit, halt file, broker.

Part of the facts collector (``safety/facts.py`` re-exports ``gather_flow``): the gates stay
pure, and every counter comes from the audit database or the broker, never from process memory.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from ibkr_mcp.audit.flow import flow_counts
from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.models import ContractRef
from ibkr_mcp.safety.context import FlowFacts, OrderIntent
from ibkr_mcp.safety.halt import HaltState, engage_halt, read_halt
from ibkr_mcp.safety.sessions import is_open, trading_day_start

if TYPE_CHECKING:
    from ibkr_mcp.services import Services


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


async def _position(services: Services, intent: OrderIntent) -> Decimal:
    positions = await services.gateway.positions(intent.account)
    return sum((p.quantity for p in positions if p.con_id == intent.con_id), Decimal(0))


async def gather_flow(
    services: Services,
    intent: OrderIntent,
    *,
    idempotency_key: str | None,
    now: datetime,
    approval_granted: bool = False,
) -> FlowFacts:
    """Read every fact the flow-limit gates need for ``intent`` (never raises).

    Facts that cannot be read are reported in ``errors``; the gate needing them refuses.
    """
    settings = services.settings
    errors: list[tuple[str, str]] = []
    halt = read_halt(settings.halt_state_path)
    minute = day = rejections = None
    notional: Decimal | None = None
    dup_key: str | None = None
    dup_age: float | None = None
    try:
        counts = await flow_counts(
            services.audit,
            now=now,
            day_start=trading_day_start(now),
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
    except Exception as exc:  # noqa: BLE001 - reported as a fact; the gates fail closed on it
        errors += [("counters", _why(exc)), ("rejections", _why(exc))]
    else:
        minute, day = counts.orders_last_minute, counts.orders_today
        notional = counts.notional_today
        dup_key, dup_age = counts.duplicate_of, counts.duplicate_age_seconds
        rejections = counts.rejections_in_window
        if not halt.halted and rejections >= settings.MAX_REJECTIONS:
            halt = await trip_breaker_if_needed(services, rejections, now)
    position: Decimal | None = None
    needs_position = (
        intent.side == "SELL"
        or settings.MAX_DAILY_LOSS is not None
        or settings.MAX_POSITION_PCT_OF_NET_LIQ is not None
    )
    if needs_position:
        try:
            position = await _position(services, intent)
        except Exception as exc:  # noqa: BLE001 - see above
            errors.append(("position", _why(exc)))
    daily_pnl: Decimal | None = None
    if settings.MAX_DAILY_LOSS is not None:
        try:
            pnl = await services.gateway.pnl(intent.account)
            daily_pnl = pnl.daily_pnl
        except Exception as exc:  # noqa: BLE001 - see above
            errors.append(("pnl", _why(exc)))
    net_liq: Decimal | None = None
    if settings.MAX_POSITION_PCT_OF_NET_LIQ is not None:
        try:
            summary = await services.gateway.account_summary(intent.account)
            net_liq = summary.net_liquidation
        except Exception as exc:  # noqa: BLE001 - see above
            errors.append(("net_liquidation", _why(exc)))
    session_open: bool | None = None
    session_note: str | None = None
    if settings.trading_hours_only:
        session_open, session_note = await _session(services, intent, now, errors)
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
        daily_pnl=daily_pnl,
        net_liquidation=net_liq,
        session_open=session_open,
        session_note=session_note,
        approval_required=settings.approval_required(
            settings.TRADING_MODE == "live" or intent.is_live_account
        ),
        approval_granted=approval_granted,
        errors=tuple(errors),
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
