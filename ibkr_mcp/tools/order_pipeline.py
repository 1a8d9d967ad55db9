"""The one order pipeline: resolve → build → gates → token → idempotent intent → send → record.

Every order-changing tool (place_order, modify_order, close_position, brackets) is a thin
declaration over ``prepare_*`` + ``preview`` / ``execute``; the only calls that send to the
broker (``place_bracket`` / ``modify_order``) are in ``execute``, after the chain allowed and
the intent row was durably written.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from ibkr_mcp import metrics
from ibkr_mcp.audit import AuditLog, StaleCountsError
from ibkr_mcp.errors import (
    AuditUnavailableError,
    GateRefusedError,
    GatewayError,
    GatewayUnavailableError,
    IbkrMcpError,
    IdempotencyConflictError,
    OrderRejectedError,
    OverloadedError,
)
from ibkr_mcp.models import Contract, OrderInfo, OrderRequest, Quote, WhatIf
from ibkr_mcp.safety.chain import ChainResult, refusal_error
from ibkr_mcp.safety.halt import stopped_since_gates
from ibkr_mcp.tools.approvals import after_rejection, queue_for_approval
from ibkr_mcp.tools.order_gates import (
    chain_row,
    passed_line,
    record_chain,
    refusals,
    run_gates,
)
from ibkr_mcp.tools.order_models import (
    LegResult,
    PlaceResult,
    PreviewResult,
)
from ibkr_mcp.tools.order_replay import Keyed, best_effort
from ibkr_mcp.tools.order_shape import (
    LEG_SUFFIX,
    Prepared,
    added_notional,
    all_legs,
    bracket_legs,
    check_good_till,
    check_tick,
    estimated_notional,
    order_fields,
    requests,
    shape_detail,
    summary,
)
from ibkr_mcp.tools.registry import CallContext, schedule_audit

# The order's shape lives in ``order_shape``; the tools reach it through this module too.
__all__ = [
    "LEG_SUFFIX",
    "Prepared",
    "Sender",
    "added_notional",
    "all_legs",
    "bracket_legs",
    "check_good_till",
    "check_tick",
    "estimated_notional",
    "execute",
    "order_fields",
    "preview",
    "reference_quote",
    "requests",
    "shape_detail",
    "summary",
    "what_if",
]
Sender = Callable[[list[OrderRequest]], Awaitable[list[OrderInfo]]]


async def reference_quote(ctx: CallContext, contract: Contract) -> Quote | None:
    """The contract's quote for the gates, or ``None`` (the gates then refuse what needs one)."""
    from ibkr_mcp.models import ContractRef

    ref = ContractRef(
        symbol=contract.symbol,
        sec_type=contract.sec_type,
        exchange=contract.exchange,
        currency=contract.currency,
        con_id=contract.con_id,
    )
    try:
        return await ctx.services.gateway.quote(ref)
    except GatewayUnavailableError:
        raise  # hung / disconnected / upstream lost: name that cause, not "no usable quote"
    except IbkrMcpError as exc:
        logger.warning("no reference quote for {}: {}", contract.symbol, exc)
        return None


async def what_if(ctx: CallContext, prepared: Prepared) -> tuple[WhatIf | None, str | None]:
    """IB's what-if of the (parent) order, or why it is unavailable."""
    try:
        return await ctx.services.gateway.what_if(requests(prepared, None)[0]), None
    except IbkrMcpError as exc:
        return None, str(exc)


async def preview(ctx: CallContext, prepared: Prepared, *, action: str) -> PreviewResult:
    """Gates in preview mode, what-if, and a token bound to the whole order (every leg)."""
    services, intent, quote = ctx.services, prepared.intent, prepared.quote
    result = await run_gates(
        ctx, intent, quote, mode="preview", token=None, standing=prepared.standing
    )
    await record_chain(ctx, intent, result)
    what, what_error = await what_if(ctx, prepared)
    refused = refusals(result)
    would_send = not refused and not result.dry_run
    # A refused order gets no token: there is nothing it could be used for.
    issued = None if refused else services.tokens.issue(intent)
    await services.audit.record_order_event(
        correlation_id=ctx.correlation_id,
        event="preview",
        idempotency_key=None,
        fingerprint=intent.fingerprint(),
        order_id=intent.modifies,
        token_id=issued.token_id if issued else None,
        detail={
            "would_send": would_send,
            "refusals": [r.gate for r in refused],
            **shape_detail(intent),
        },
        **order_fields(intent),
    )
    if issued is None:
        first = refused[0]
        next_step = (
            f"REFUSED by gate '{first.gate}': {first.reason}. No confirmation token was issued; "
            "change the order and preview again."
        )
    elif result.dry_run:
        next_step = (
            f"Orders are disabled (ORDERS_ENABLED=false): {action} with this token will run "
            "every check and return SIMULATED; nothing will be sent."
        )
    else:
        next_step = (
            f"To proceed, call {action} again with the same fields, this confirmation_token "
            f"(valid until {issued.expires_at.isoformat()}) and a new idempotency_key."
        )
    return PreviewResult(
        would_send=would_send,
        refusals=refused,
        passed=passed_line(result),
        next_step=next_step,
        confirmation_token=issued.token if issued else None,
        token_expires_at=issued.expires_at if issued else None,
        order=summary(intent, quote),
        quote=quote,
        what_if=what,
        what_if_error=what_error,
    )


async def execute(
    ctx: CallContext,
    prepared: Prepared,
    *,
    key: str,
    token: str,
    request: Keyed,
    send: Sender,
    approved: bool = False,
) -> PlaceResult:
    """Gates (place mode) → consume token → durable intent → send every leg → record.

    ``request``: the caller's input (its fingerprint binds the key; a place_order input is what
    an approval queue stores). ``approved``: a human approved it (see ``run_gates``).
    """
    services, intent = ctx.services, prepared.intent
    fields = order_fields(intent)
    row = {"idempotency_key": key, "fingerprint": intent.fingerprint(), **fields}
    if intent.modifies is not None:
        row["order_id"] = intent.modifies
    # One order at a time from the gates to its durable intent (in this process): the flow
    # limits count intents, so a call judged while another's intent is being written would
    # count without it (12 concurrent calls all passed a limit of 2). Other processes sharing
    # the audit are caught at the intent row itself (``counted_through``).
    async with _decision_lock(services.audit):
        decided = await _decide(ctx, prepared, key=key, token=token, request=request,
                                approved=approved, row=row)  # fmt: skip
    if isinstance(decided, PlaceResult):
        return decided
    result, outgoing = decided
    if result.dry_run:
        return await _dry_run(ctx, prepared, key, result, row)
    # Halted while this order was judged and recorded (an emergency stop from any surface or
    # process, the breaker, the kill switch): it must not leave. Read just before the send,
    # which follows with no wait of the event loop while connected.
    settings = services.settings
    stopped = stopped_since_gates(settings.halt_state_path, settings.kill_switch_path)
    if stopped is not None:
        gate, reason, remedy = stopped
        await best_effort(ctx, "stopped", event="refused", status="Cancelled",
                          detail={"gate": gate, "reason": reason, "after_intent": True},
                          **row)  # fmt: skip
        metrics.ORDERS.labels("REFUSED").inc()
        raise GateRefusedError(
            f"Order NOT sent: {reason} (engaged while the order was being checked).",
            remedy=remedy,
            details={"gate": gate, "reason": reason, "after_intent": True},
        )
    try:
        infos = await send(outgoing)
    except OrderRejectedError as exc:
        await best_effort(ctx, "rejected", event="rejected", status="Rejected",
                          detail=exc.to_dict(), **row)  # fmt: skip
        metrics.ORDERS.labels("Rejected").inc()
        await after_rejection(services)
        raise
    except GatewayError as exc:
        await best_effort(ctx, "uncertain", event="uncertain", detail=exc.to_dict(), **row)
        exc.remedy = (
            "Retry with the SAME idempotency_key: it reconciles with the broker and never "
            "sends a second order."
        )
        raise
    first = infos[0]
    for leg, info in zip(all_legs(intent), infos, strict=False):
        # Written behind the answer: a retry that overtakes it reconciles via the order ref.
        sent_row = {**row, **order_fields(leg), "order_id": info.order_id}
        schedule_audit(
            best_effort(
                ctx, "sent", event="sent", perm_id=info.perm_id, status=info.status,
                detail={"leg": leg.role, "order_ref": info.order_ref}, **sent_row,
            )
        )  # fmt: skip
        metrics.ORDERS.labels(info.status).inc()
    return PlaceResult(
        sent=True,
        status=first.status,
        message=f"Order {first.order_id} {prepared.verb}; status {first.status}.",
        order_id=first.order_id,
        perm_id=first.perm_id,
        filled=first.filled,
        avg_fill_price=first.avg_fill_price,
        legs=[
            LegResult(role=leg.role, order_id=i.order_id, status=i.status, order_ref=i.order_ref)
            for leg, i in zip(intent.legs, infos[1:], strict=False)
        ],
        **_answer(ctx, key, prepared, result),
    )


def _answer(ctx: CallContext, key: str, prepared: Prepared, result: ChainResult) -> dict[str, Any]:
    """The answer's common fields (a sent order's are built after the send, not before it)."""
    return {
        "idempotency_key": key,
        "correlation_id": ctx.correlation_id,
        "order": summary(prepared.intent, prepared.quote),
        "passed": passed_line(result),
    }


#: How many times an order is judged again when other processes keep recording intents after
#: the counters it was judged on (each time on counters that hold them).
JUDGEMENTS = 8
_DECISION_LOCKS: weakref.WeakKeyDictionary[AuditLog, asyncio.Lock] = weakref.WeakKeyDictionary()


def _decision_lock(audit: AuditLog) -> asyncio.Lock:
    """This process's lock from an order's gates to its durable intent (per audit trail)."""
    lock = _DECISION_LOCKS.get(audit)
    if lock is None:
        lock = _DECISION_LOCKS[audit] = asyncio.Lock()
    return lock


async def _decide(
    ctx: CallContext,
    prepared: Prepared,
    *,
    key: str,
    token: str,
    request: Keyed,
    approved: bool,
    row: dict[str, Any],
) -> PlaceResult | tuple[ChainResult, list[OrderRequest]]:
    """The gates, then the durable intent of an allowed order (under ``_decision_lock``).

    Returns the answer of an order held for approval, or the chain's result and the requests
    to send once the intent is durable (a dry run: no requests; ``_dry_run`` answers it after
    the lock). Raises the refusal.
    An order judged on counters that miss an intent recorded since is judged again on fresh
    ones (this process's intents are known here; another process's refuse the intent row).
    """
    services, intent, quote = ctx.services, prepared.intent, prepared.quote
    fresh = spent = False
    outgoing: list[OrderRequest] = []
    for _ in range(JUDGEMENTS):
        result = await run_gates(
            ctx, intent, quote, mode="place", token=token, idempotency_key=key,
            approved=approved, standing=prepared.standing, fresh=fresh, token_spent=spent,
        )  # fmt: skip
        through = result.counted_through
        if not fresh and through is not None and services.audit.newest_intent_id > through:
            fresh = True  # read before an intent this process recorded since: judge again
            continue
        # An allowed order's decision row is committed with its intent row (one durable
        # commit; a separate one used to compete with the send).
        gate_row = chain_row(ctx, intent, result) if result.allowed else None
        if gate_row is None:
            await record_chain(ctx, intent, result)
        if result.refused is not None:
            if fresh and await _bound_meanwhile(services, key):
                # Another process sent this very key while this call was judged again: its
                # caller replays that order (``idempotent``), never "refused" for a sent key.
                raise IdempotencyConflictError(
                    f"idempotency_key {key!r} is already bound to an order intent.",
                    remedy="Retry with the same key to get the original order.",
                    details={"idempotency_key": key, "already_bound": True},
                )
            error = refusal_error(result)
            error.details["refusals"] = [r.model_dump() for r in refusals(result)]
            if spent:
                error.remedy = (
                    f"{error.remedy or ''} This call used its confirmation token before it was "
                    "judged again: preview the order again for a new one."
                ).strip()
            await services.audit.record_order_event(
                correlation_id=ctx.correlation_id,
                event="refused",
                detail={"gate": result.refused.gate, "reason": result.refused.reason},
                **row,
            )
            metrics.ORDERS.labels("REFUSED").inc()
            raise error
        if result.dry_run:
            return result, []  # answered after the lock (its what-if is a broker round trip)
        if result.held is not None:
            return await _hold(ctx, prepared, request, token, result)
        if not spent:
            try:
                # Connected right now, so that a failure below means "in flight", not "never
                # left".
                await services.gateway.ensure_connected()
                if not approved:
                    services.tokens.consume(token, intent.fingerprint())
                outgoing = requests(prepared, key)  # built before the commit: sent after it
            except BaseException:
                if gate_row is not None:  # the decision is recorded all the same
                    schedule_audit(record_chain(ctx, intent, result))
                raise
            spent = True
        # The intent must be durable before anything is sent: if this raises, nothing is sent.
        try:
            await services.audit.record_order_event(
                correlation_id=ctx.correlation_id,
                event="intent",
                status="PendingSubmit",
                detail={
                    "request_fingerprint": request.request_fingerprint(),
                    "verdicts": [f"{v.gate}:{v.outcome}" for v in result.verdicts],
                    # What daily_notional counts (whatever became of it, every process); for a
                    # modification only what it adds to the order's value.
                    "notional": added_notional(prepared),
                    "currency": intent.currency,
                    "approved": approved or None,
                    **shape_detail(intent),
                },
                preceded_by=gate_row,
                counted_through=through,
                **row,
            )
        except StaleCountsError:
            fresh = True  # another process recorded an intent after the counters were read
            continue
        except AuditUnavailableError as exc:
            raise AuditUnavailableError(
                f"The order was NOT sent: the audit trail could not record it ({exc.message}).",
                remedy=exc.remedy or "Fix the audit database (see AUDIT_DB_PATH), then retry.",
            ) from None
        return result, outgoing
    raise OverloadedError(
        f"The order was NOT sent: other orders kept being recorded while it was judged "
        f"({JUDGEMENTS} times).",
        remedy="Preview it again and place it with the new token once fewer orders are in flight.",
    )


async def _dry_run(
    ctx: CallContext, prepared: Prepared, key: str, result: ChainResult, row: dict[str, Any]
) -> PlaceResult:
    """ORDERS_ENABLED=false: IB's what-if, a ``dry_run`` row, and SIMULATED (nothing sent)."""
    what, what_error = await what_if(ctx, prepared)
    dry = next(v for v in result.verdicts if v.outcome == "dry_run")
    await ctx.services.audit.record_order_event(
        correlation_id=ctx.correlation_id,
        event="dry_run",
        status="SIMULATED",
        detail={"reason": dry.reason, "what_if_error": what_error},
        **row,
    )
    metrics.ORDERS.labels("SIMULATED").inc()
    return PlaceResult(
        sent=False, status="SIMULATED", message=dry.reason, what_if=what,
        **_answer(ctx, key, prepared, result),
    )  # fmt: skip


async def _bound_meanwhile(services: Any, key: str) -> bool:
    """Whether an intent for ``key`` was recorded (by another process) during this call."""
    rows = await services.audit.order_events_for_key(key)
    return any(r.get("event") == "intent" for r in rows)


async def _hold(
    ctx: CallContext, prepared: Prepared, request: Keyed, token: str, result: ChainResult
) -> PlaceResult:
    """Queue the order (a place, bracket, modification or close) for a human's approval."""
    intent = prepared.intent
    ctx.services.tokens.consume(token, intent.fingerprint())
    return await queue_for_approval(ctx, request, intent, summary(intent, prepared.quote), result)
