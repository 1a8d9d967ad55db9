"""Order tools: preview (what-if + confirmation token), place (gated, idempotent), cancel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from loguru import logger

from ibkr_mcp import metrics
from ibkr_mcp.errors import (
    AuditUnavailableError,
    GateRefusedError,
    GatewayError,
    GatewayUnavailableError,
    IbkrMcpError,
    IdempotencyConflictError,
    InvalidInputError,
    OrderRejectedError,
)
from ibkr_mcp.models import (
    Contract,
    OrderRequest,
    Quote,
    WhatIf,
)
from ibkr_mcp.safety.chain import ChainResult, evaluate, refusal_error
from ibkr_mcp.safety.context import OrderIntent, ReferenceQuote, TokenCheck
from ibkr_mcp.safety.facts import collect_facts, gather_flow
from ibkr_mcp.safety.pricing import Notional, order_notional
from ibkr_mcp.tools.approvals import after_rejection, approval_replay, queue_for_approval
from ibkr_mcp.tools.common import (
    contract_ref,
)
from ibkr_mcp.tools.common import resolve_account as _resolve_account
from ibkr_mcp.tools.order_models import (
    CancelInput,
    CancelResult,
    GateVerdict,
    OrderInput,
    OrderSummary,
    PlaceInput,
    PlaceResult,
    PreviewInput,
    PreviewResult,
)
from ibkr_mcp.tools.order_replay import KeyLock, best_effort, broker_replay, replay_key
from ibkr_mcp.tools.registry import CallContext, ToolSpec, schedule_audit

# --- helpers -------------------------------------------------------------------------------

#: The token verdict of an order a human approved (its token was spent when it was queued).
APPROVED_TOKEN = TokenCheck(present=True, valid=True, reason=None)


def _verdicts(result: ChainResult) -> list[GateVerdict]:
    return [
        GateVerdict(gate=v.gate, outcome=v.outcome, reason=v.reason, remedy=v.remedy)
        for v in result.verdicts
    ]


async def _run_chain(
    ctx: CallContext,
    intent: OrderIntent,
    quote: Quote | None,
    *,
    mode: Literal["preview", "place"],
    token: str | None,
    idempotency_key: str | None = None,
    approved: bool = False,
) -> ChainResult:
    """Collect the facts (the chain's only I/O) and evaluate every gate in order.

    ``approved``: a human approved this queued order; its confirmation token was spent when it
    was queued, so the token check passes, and the approval gate allows.
    """
    services = ctx.services
    now = services.now()
    flow = await gather_flow(
        services, intent, idempotency_key=idempotency_key, now=now, approval_granted=approved
    )
    facts = collect_facts(
        services.settings,
        intent,
        mode=mode,
        managed_accounts=services.gateway.managed_accounts(),
        quote=None if quote is None else ReferenceQuote.from_quote(quote),
        tokens=services.tokens,
        token=token,
        now=now,
        flow=flow,
        token_check=APPROVED_TOKEN if approved else None,
    )
    return evaluate(facts)


def _estimated_notional(intent: OrderIntent, quote: Quote | None) -> Decimal | None:
    """Quantity × limit, or × the price a market order would pay (the gates' own reference)."""
    reference = None if quote is None else ReferenceQuote.from_quote(quote)
    notional = order_notional(intent, reference, band_pct=Decimal(0))
    return notional.value if isinstance(notional, Notional) else None


async def _prepare(
    params: OrderInput, ctx: CallContext
) -> tuple[str, Contract, OrderIntent, Quote | None]:
    gateway = ctx.services.gateway
    account = await _resolve_account(ctx, params.account)
    ref = contract_ref(params.symbol, params.sec_type, params.exchange, params.currency)
    contract = await gateway.resolve_contract(ref)
    if params.limit_price is not None and contract.min_tick > 0:
        steps = params.limit_price / contract.min_tick
        if steps != steps.to_integral_value():
            lower = (steps.to_integral_value(rounding="ROUND_FLOOR")) * contract.min_tick
            raise InvalidInputError(
                f"limit_price {params.limit_price} is not on the tick grid of {contract.symbol} "
                f"(min tick {contract.min_tick}).",
                remedy=f"Use a multiple of {contract.min_tick}, e.g. {lower} or "
                f"{lower + contract.min_tick}.",
                details={"errors": [{"field": "limit_price", "message": "off the tick grid"}]},
            )
    try:
        quote: Quote | None = await gateway.quote(ref)
    except GatewayUnavailableError:
        raise  # hung / disconnected / upstream lost: name that cause, not "no usable quote"
    except IbkrMcpError as exc:
        logger.warning("no reference quote for {}: {}", contract.symbol, exc)
        quote = None
    intent = OrderIntent(
        account=account,
        symbol=contract.symbol,
        con_id=contract.con_id,
        sec_type=contract.sec_type,
        currency=contract.currency,
        exchange=contract.exchange,
        side=params.side,
        quantity=params.quantity,
        order_type=params.order_type,
        limit_price=params.limit_price,
        tif=params.tif,
        min_tick=contract.min_tick,
        outside_rth=params.outside_rth,
    )
    return account, contract, intent, quote


def _summary(intent: OrderIntent, quote: Quote | None) -> OrderSummary:
    return OrderSummary(
        account=intent.account,
        symbol=intent.symbol,
        con_id=intent.con_id,
        sec_type=intent.sec_type,
        currency=intent.currency,
        side=intent.side,
        quantity=intent.quantity,
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        tif=intent.tif,
        estimated_notional=_estimated_notional(intent, quote),
    )


def _request(intent: OrderIntent, contract: Contract, order_ref: str | None) -> OrderRequest:
    return OrderRequest(
        account=intent.account,
        contract=contract,
        side=intent.side,
        quantity=intent.quantity,
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        tif=intent.tif,
        order_ref=order_ref,
        outside_rth=intent.outside_rth,
    )


async def _what_if(ctx: CallContext, request: OrderRequest) -> tuple[WhatIf | None, str | None]:
    try:
        return await ctx.services.gateway.what_if(request), None
    except IbkrMcpError as exc:
        return None, str(exc)


async def _record_chain(ctx: CallContext, intent: OrderIntent, result: ChainResult) -> None:
    outcome = "refused" if result.refused else ("dry_run" if result.dry_run else "allowed")
    if result.refused is not None:
        metrics.GATE_REFUSALS.labels(result.refused.gate).inc()
    await ctx.services.audit.record_event(
        correlation_id=ctx.correlation_id,
        kind="gate",
        tool=ctx.tool,
        surface=ctx.surface,
        arguments={"fingerprint": intent.fingerprint()},
        outcome=outcome,
        safety=ctx.services.settings.safety_snapshot(),
        detail={
            "verdicts": [
                {"gate": v.gate, "outcome": v.outcome, "reason": v.reason} for v in result.verdicts
            ]
        },
    )


def _order_fields(intent: OrderIntent) -> dict[str, Any]:
    return {
        "account": intent.account,
        "symbol": intent.symbol,
        "con_id": intent.con_id,
        "side": intent.side,
        "quantity": intent.quantity,
        "order_type": intent.order_type,
        "limit_price": intent.limit_price,
        "tif": intent.tif,
    }


# --- handlers ------------------------------------------------------------------------------


async def preview_order(params: PreviewInput, ctx: CallContext) -> PreviewResult:
    """Handler of preview_order: gates in preview mode, what-if, and a confirmation token."""
    services = ctx.services
    _, contract, intent, quote = await _prepare(params, ctx)
    result = await _run_chain(ctx, intent, quote, mode="preview", token=None)
    await _record_chain(ctx, intent, result)
    what_if, what_if_error = await _what_if(ctx, _request(intent, contract, None))
    refusals = [v for v in _verdicts(result) if v.outcome == "refuse"]
    would_send = not refusals and not result.dry_run
    # A refused order gets no token: there is nothing it could be used for.
    issued = None if refusals else services.tokens.issue(intent)
    await services.audit.record_order_event(
        correlation_id=ctx.correlation_id,
        event="preview",
        idempotency_key=None,
        fingerprint=intent.fingerprint(),
        token_id=issued.token_id if issued else None,
        detail={"would_send": would_send, "refusals": [r.gate for r in refusals]},
        **_order_fields(intent),
    )
    if issued is None:
        next_step = (
            f"Refused by gate '{refusals[0].gate}': {refusals[0].reason} "
            "No confirmation token was issued; change the order and preview again."
        )
    elif result.dry_run:
        next_step = (
            "Orders are disabled (ORDERS_ENABLED=false): place_order with this token will run "
            "every check and return SIMULATED; nothing will be sent."
        )
    else:
        next_step = (
            "To send it, call place_order with the same order fields, this confirmation_token "
            f"(valid until {issued.expires_at.isoformat()}) and a new idempotency_key."
        )
    return PreviewResult(
        order=_summary(intent, quote),
        quote=quote,
        what_if=what_if,
        what_if_error=what_if_error,
        verdicts=_verdicts(result),
        would_send=would_send,
        refusals=refusals,
        confirmation_token=issued.token if issued else None,
        token_expires_at=issued.expires_at if issued else None,
        next_step=next_step,
    )


async def place_order(params: PlaceInput, ctx: CallContext) -> PlaceResult:
    """Handler of place_order: idempotency first, then every gate, audit intent, then send."""
    async with KeyLock(params.idempotency_key):
        replay = await replay_key(params, ctx) or await approval_replay(params, ctx)
        if replay is not None:
            return replay
        try:
            return await _place(params, ctx)
        except IdempotencyConflictError as exc:
            if not exc.details.get("already_bound"):
                raise
            # Another process bound this key between our check and our intent row.
            replay = await replay_key(params, ctx)
            if replay is None:
                raise
            return replay


async def _place(params: PlaceInput, ctx: CallContext, *, approved: bool = False) -> PlaceResult:
    services = ctx.services
    key = params.idempotency_key
    _, contract, intent, quote = await _prepare(params, ctx)
    # A key this audit does not know may still be at the broker (another process or audit file).
    adopted = await broker_replay(params, ctx, intent)
    if adopted is not None:
        return adopted
    result = await _run_chain(
        ctx,
        intent,
        quote,
        mode="place",
        token=params.confirmation_token,
        idempotency_key=key,
        approved=approved,
    )
    if result.allowed:
        # Queued ahead of the intent on the single writer thread, and flushed by the intent's
        # durable commit; the intent row also carries the verdicts itself.
        schedule_audit(_record_chain(ctx, intent, result))
    else:
        await _record_chain(ctx, intent, result)
    verdicts = _verdicts(result)
    summary = _summary(intent, quote)
    fields = _order_fields(intent)
    fingerprint = intent.fingerprint()
    if result.refused is not None:
        error: GateRefusedError = refusal_error(result)
        await services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="refused",
            idempotency_key=key,
            fingerprint=fingerprint,
            detail={"gate": result.refused.gate, "reason": result.refused.reason},
            **fields,
        )
        metrics.ORDERS.labels("REFUSED").inc()
        raise error
    if result.dry_run:
        what_if, what_if_error = await _what_if(ctx, _request(intent, contract, key))
        dry = next(v for v in result.verdicts if v.outcome == "dry_run")
        await services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="dry_run",
            idempotency_key=key,
            fingerprint=fingerprint,
            status="SIMULATED",
            detail={"reason": dry.reason, "what_if_error": what_if_error},
            **fields,
        )
        metrics.ORDERS.labels("SIMULATED").inc()
        return PlaceResult(
            sent=False,
            status="SIMULATED",
            message=dry.reason,
            idempotency_key=key,
            correlation_id=ctx.correlation_id,
            order=summary,
            verdicts=verdicts,
            what_if=what_if,
        )
    if result.held is not None:
        services.tokens.consume(params.confirmation_token, fingerprint)
        return await queue_for_approval(ctx, params, intent, summary, result)
    # Connected right now, so that a failure below means "in flight", not "never left".
    await services.gateway.ensure_connected()
    if not approved:
        services.tokens.consume(params.confirmation_token, fingerprint)
    # The intent must be durable before anything is sent: if this raises, nothing is sent.
    try:
        await services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="intent",
            idempotency_key=key,
            fingerprint=fingerprint,
            status="PendingSubmit",
            detail={
                "request_fingerprint": params.request_fingerprint(),
                "verdicts": [f"{v.gate}:{v.outcome}" for v in result.verdicts],
                # What daily_notional counts (working or filled, every process).
                "notional": _estimated_notional(intent, quote),
                "currency": intent.currency,
                "approved": approved or None,
            },
            **fields,
        )
    except AuditUnavailableError as exc:
        raise AuditUnavailableError(
            f"The order was NOT sent: the audit trail could not record it ({exc.message}).",
            remedy=exc.remedy or "Fix the audit database (see AUDIT_DB_PATH), then retry.",
        ) from None
    try:
        info = await services.gateway.place_order(_request(intent, contract, key))
    except OrderRejectedError as exc:
        await best_effort(
            ctx,
            "rejected",
            event="rejected",
            idempotency_key=key,
            fingerprint=fingerprint,
            status="Rejected",
            detail=exc.to_dict(),
            **fields,
        )
        metrics.ORDERS.labels("Rejected").inc()
        await after_rejection(services)
        raise
    except GatewayError as exc:
        await best_effort(
            ctx,
            "uncertain",
            event="uncertain",
            idempotency_key=key,
            fingerprint=fingerprint,
            detail=exc.to_dict(),
            **fields,
        )
        exc.remedy = (
            "Retry place_order with the SAME idempotency_key: it reconciles with the broker "
            "and never sends a second order."
        )
        raise
    # The broker has acknowledged: the 'sent' row is written behind the answer (a retry with
    # the same key that overtakes it reconciles through the order ref, never re-sends).
    schedule_audit(
        best_effort(
            ctx,
            "sent",
            event="sent",
            idempotency_key=key,
            fingerprint=fingerprint,
            order_id=info.order_id,
            perm_id=info.perm_id,
            status=info.status,
            **fields,
        )
    )
    metrics.ORDERS.labels(info.status).inc()
    return PlaceResult(
        sent=True,
        status=info.status,
        message=f"Order {info.order_id} sent to the broker; status {info.status}.",
        order_id=info.order_id,
        perm_id=info.perm_id,
        filled=info.filled,
        avg_fill_price=info.avg_fill_price,
        idempotency_key=key,
        correlation_id=ctx.correlation_id,
        order=summary,
        verdicts=verdicts,
    )


async def cancel_order(params: CancelInput, ctx: CallContext) -> CancelResult:
    """Handler of cancel_order: never blocked by limits or disabled orders (it reduces risk)."""
    services = ctx.services
    await services.gateway.ensure_connected()
    # Cancelling reduces risk: an unwritable audit trail must not stop it (rows best-effort).
    warning = await best_effort(
        ctx, "cancel_requested", event="cancel_requested", idempotency_key=None,
        order_id=params.order_id,
    )  # fmt: skip
    info = await services.gateway.cancel_order(params.order_id)
    warning = warning or await best_effort(
        ctx,
        "cancel status",
        event="status",
        idempotency_key=info.order_ref,
        order_id=info.order_id,
        perm_id=info.perm_id,
        status=info.status,
        symbol=info.symbol,
        account=info.account,
    )
    message = f"Cancel requested; order {info.order_id} is now {info.status}."
    return CancelResult(
        order_id=info.order_id,
        status=info.status,
        message=message if warning is None else f"{message} {warning}",
        correlation_id=ctx.correlation_id,
    )


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="preview_order",
        description="Check an order against every safety gate and IB's what-if (margin, "
        "commission); returns a single-use confirmation token. Sends nothing.",
        input_model=PreviewInput,
        output_model=PreviewResult,
        handler=preview_order,
        http_method="POST",
        http_path="/api/orders/preview",
        cli_name="preview",
        cli_arguments=("symbol", "side", "quantity"),
        read_only=True,
        idempotent=False,
        toolset="trade",  # it issues the token that trades: absent from a read-only server
    ),
    ToolSpec(
        name="place_order",
        description="Place a previewed order (needs its confirmation_token and your "
        "idempotency_key). With ORDERS_ENABLED=false it is a dry run and sends nothing.",
        input_model=PlaceInput,
        output_model=PlaceResult,
        handler=place_order,
        http_method="POST",
        http_path="/api/orders",
        cli_name="place",
        cli_arguments=("symbol", "side", "quantity"),
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="cancel_order",
        description="Cancel a working order by id (always allowed: cancelling reduces risk).",
        input_model=CancelInput,
        output_model=CancelResult,
        handler=cancel_order,
        http_method="POST",
        http_path="/api/orders/{order_id}/cancel",
        cli_name="cancel",
        cli_arguments=("order_id",),
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
)
