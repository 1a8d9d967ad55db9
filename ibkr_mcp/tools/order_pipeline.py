"""The one order pipeline: resolve → build → gates → token → idempotent intent → send → record.

Every order-changing tool (place_order, modify_order, close_position, brackets) is a thin
declaration over ``prepare_*`` + ``preview`` / ``execute``; the only calls that send to the
broker (``place_bracket`` / ``modify_order``) are in ``execute``, after the chain allowed and
the intent row was durably written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from loguru import logger

from ibkr_mcp import metrics
from ibkr_mcp.errors import (
    AuditUnavailableError,
    GatewayError,
    GatewayUnavailableError,
    IbkrMcpError,
    InvalidInputError,
    OrderRejectedError,
)
from ibkr_mcp.models import Contract, OrderInfo, OrderRequest, Quote, WhatIf
from ibkr_mcp.safety.chain import ChainResult, refusal_error
from ibkr_mcp.safety.context import OrderIntent, ReferenceQuote, Standing
from ibkr_mcp.safety.pricing import Notional, added_value, order_notional
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
    OrderSummary,
    PlaceResult,
    PreviewResult,
)
from ibkr_mcp.tools.order_replay import Keyed, best_effort
from ibkr_mcp.tools.registry import CallContext, schedule_audit

#: Order-ref suffixes of bracket children (reconciliation finds every leg by them).
LEG_SUFFIX = {"take_profit": ".tp", "stop_loss": ".sl"}
Sender = Callable[[list[OrderRequest]], Awaitable[list[OrderInfo]]]


@dataclass(frozen=True)
class Prepared:
    """A resolved order ready for the gates: intent (with legs), contract and quote."""

    contract: Contract
    intent: OrderIntent
    quote: Quote | None
    #: What a successful send is called in messages (``sent``, ``modified``).
    verb: str = "sent"
    #: A modification: the order as it stands before the change (its intent row and the
    #: ``daily_notional`` gate count only what the change adds to it).
    standing: Standing | None = None


def check_tick(contract: Contract, field: str, price: Decimal | None) -> None:
    """Refuse a price off the contract's tick grid, naming the field and two valid prices."""
    if price is None or contract.min_tick <= 0:
        return
    steps = price / contract.min_tick
    if steps == steps.to_integral_value():
        return
    lower = steps.to_integral_value(rounding="ROUND_FLOOR") * contract.min_tick
    raise InvalidInputError(
        f"{field} {price} is not on the tick grid of {contract.symbol} "
        f"(min tick {contract.min_tick}).",
        remedy=f"Use a multiple of {contract.min_tick}, e.g. {lower} or "
        f"{lower + contract.min_tick}.",
        details={"errors": [{"field": field, "message": "off the tick grid"}]},
    )


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


def bracket_legs(parent: OrderIntent, tp: Decimal | None, sl: Decimal | None,
                 sl_limit: Decimal | None) -> tuple[OrderIntent, ...]:  # fmt: skip
    """The exit children of a bracket: a LMT take-profit and a STP / STP_LMT stop-loss."""
    exit_side: Literal["BUY", "SELL"] = "SELL" if parent.side == "BUY" else "BUY"
    base = dataclasses.replace(
        parent, side=exit_side, limit_price=None, stop_price=None, trailing_amount=None,
        trailing_percent=None, limit_offset=None, legs=(),
    )  # fmt: skip
    legs = []
    if tp is not None:
        legs.append(dataclasses.replace(base, order_type="LMT", limit_price=tp, role="take_profit"))
    if sl is not None:
        kind = "STP" if sl_limit is None else "STP_LMT"
        legs.append(
            dataclasses.replace(
                base, order_type=kind, stop_price=sl, limit_price=sl_limit, role="stop_loss"
            )
        )
    return tuple(legs)


def all_legs(intent: OrderIntent) -> list[OrderIntent]:
    """The parent (or single order) followed by its children."""
    return [intent, *intent.legs]


def estimated_notional(intent: OrderIntent, quote: Quote | None) -> Decimal | None:
    """The order's bounded notional (the gates' own pricing), or ``None`` if unknown."""
    reference = None if quote is None else ReferenceQuote.from_quote(quote)
    notional = order_notional(intent, reference, band_pct=Decimal(0))
    return notional.value if isinstance(notional, Notional) else None


def added_notional(prepared: Prepared) -> Decimal | None:
    """What sending ``prepared`` adds to the day's sent value (``daily_notional`` sums it).

    A new order adds its bounded value. A modification adds what it raises the order's value
    by (never less than nothing): the order was counted by its own intent when it was placed,
    and raising its quantity or limit must count too, or the daily limit could be walked past
    one modification at a time.
    """
    quote = prepared.quote
    reference = None if quote is None else ReferenceQuote.from_quote(quote)
    notional = order_notional(prepared.intent, reference, band_pct=Decimal(0))
    if not isinstance(notional, Notional):
        return None
    return added_value(notional.value, prepared.standing, reference, Decimal(0))


def summary(intent: OrderIntent, quote: Quote | None) -> OrderSummary:
    """The order as understood, with its bounded notional (the gates' own pricing)."""
    legs = {leg.role: leg for leg in intent.legs}
    tp, sl = legs.get("take_profit"), legs.get("stop_loss")
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
        stop_price=intent.stop_price,
        trailing_amount=intent.trailing_amount,
        trailing_percent=intent.trailing_percent,
        limit_offset=intent.limit_offset,
        tif=intent.tif,
        good_till=intent.good_till,
        outside_rth=intent.outside_rth,
        multiplier=None if intent.multiplier == 1 else intent.multiplier,
        estimated_notional=estimated_notional(intent, quote),
        take_profit_price=tp.limit_price if tp else None,
        stop_loss_price=sl.stop_price if sl else None,
        stop_loss_limit_price=sl.limit_price if sl else None,
        modifies=intent.modifies,
    )


def requests(prepared: Prepared, key: str | None) -> list[OrderRequest]:
    """The broker requests of every leg; children's refs derive from the key."""
    out = []
    intent = prepared.intent
    for leg in all_legs(intent):
        suffix = LEG_SUFFIX.get(leg.role, "")
        out.append(
            OrderRequest(
                account=leg.account,
                contract=prepared.contract,
                side=leg.side,
                quantity=leg.quantity,
                order_type=leg.order_type,
                limit_price=leg.limit_price,
                stop_price=leg.stop_price,
                trailing_amount=leg.trailing_amount,
                trailing_percent=leg.trailing_percent,
                limit_offset=leg.limit_offset,
                tif=leg.tif,
                good_till=leg.good_till,
                outside_rth=leg.outside_rth,
                order_ref=None if key is None else key + suffix,
                oca_group=None if key is None or not intent.legs else f"oca.{key}",
            )
        )
    return out


async def what_if(ctx: CallContext, prepared: Prepared) -> tuple[WhatIf | None, str | None]:
    """IB's what-if of the (parent) order, or why it is unavailable."""
    try:
        return await ctx.services.gateway.what_if(requests(prepared, None)[0]), None
    except IbkrMcpError as exc:
        return None, str(exc)


def order_fields(intent: OrderIntent) -> dict[str, Any]:
    """The order columns of an audit row."""
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


def shape_detail(intent: OrderIntent) -> dict[str, Any]:
    """The parts of the order the audit columns do not hold (stops, trails, legs, target)."""
    fields = intent.fingerprint_fields()
    columns = order_fields(intent)
    return {k: v for k, v in fields.items() if k not in columns or k == "legs"}


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
    services, intent, quote = ctx.services, prepared.intent, prepared.quote
    result = await run_gates(
        ctx, intent, quote, mode="place", token=token, idempotency_key=key, approved=approved,
        standing=prepared.standing,
    )  # fmt: skip
    # An allowed order's decision row is committed with its intent row (one durable commit;
    # a separate one used to compete with the send): nothing to wait for here.
    gate_row = chain_row(ctx, intent, result) if result.allowed else None
    if gate_row is None:
        await record_chain(ctx, intent, result)
    fields = order_fields(intent)
    fingerprint = intent.fingerprint()
    row = {"idempotency_key": key, "fingerprint": fingerprint, **fields}
    if intent.modifies is not None:
        row["order_id"] = intent.modifies
    if result.refused is not None:
        error = refusal_error(result)
        error.details["refusals"] = [r.model_dump() for r in refusals(result)]
        await services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="refused",
            detail={"gate": result.refused.gate, "reason": result.refused.reason},
            **row,
        )
        metrics.ORDERS.labels("REFUSED").inc()
        raise error

    def base() -> dict[str, Any]:
        # The answer's common fields; a sent order builds them after the send (not needed
        # before it: the intent row records the notional itself).
        return {
            "idempotency_key": key,
            "correlation_id": ctx.correlation_id,
            "order": summary(intent, quote),
            "passed": passed_line(result),
        }

    if result.dry_run:
        what, what_error = await what_if(ctx, prepared)
        dry = next(v for v in result.verdicts if v.outcome == "dry_run")
        await services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="dry_run",
            status="SIMULATED",
            detail={"reason": dry.reason, "what_if_error": what_error},
            **row,
        )
        metrics.ORDERS.labels("SIMULATED").inc()
        return PlaceResult(
            sent=False, status="SIMULATED", message=dry.reason, what_if=what, **base()
        )
    if result.held is not None:
        return await _hold(ctx, prepared, request, token, result)
    try:
        # Connected right now, so that a failure below means "in flight", not "never left".
        await services.gateway.ensure_connected()
        if not approved:
            services.tokens.consume(token, fingerprint)
        outgoing = requests(prepared, key)  # built before the commit: sent right after it
    except BaseException:
        if gate_row is not None:  # the decision is recorded all the same
            schedule_audit(record_chain(ctx, intent, result))
        raise
    # The intent must be durable before anything is sent: if this raises, nothing is sent.
    try:
        await services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="intent",
            status="PendingSubmit",
            detail={
                "request_fingerprint": request.request_fingerprint(),
                "verdicts": [f"{v.gate}:{v.outcome}" for v in result.verdicts],
                # What daily_notional counts (working or filled, every process); for a
                # modification only what it adds to the order's value.
                "notional": added_notional(prepared),
                "currency": intent.currency,
                "approved": approved or None,
                **shape_detail(intent),
            },
            preceded_by=gate_row,
            **row,
        )
    except AuditUnavailableError as exc:
        raise AuditUnavailableError(
            f"The order was NOT sent: the audit trail could not record it ({exc.message}).",
            remedy=exc.remedy or "Fix the audit database (see AUDIT_DB_PATH), then retry.",
        ) from None
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
        **base(),
    )


async def _hold(
    ctx: CallContext, prepared: Prepared, request: Keyed, token: str, result: ChainResult
) -> PlaceResult:
    """Queue the order (a place, bracket, modification or close) for a human's approval."""
    intent = prepared.intent
    ctx.services.tokens.consume(token, intent.fingerprint())
    return await queue_for_approval(ctx, request, intent, summary(intent, prepared.quote), result)
