"""Order tools: preview (what-if + confirmation token), place (gated, idempotent), cancel."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from ibkr_mcp.gateway.book_scope import order_book_scope
from ibkr_mcp.models import ContractRef
from ibkr_mcp.safety.context import OrderIntent
from ibkr_mcp.tools import order_pipeline as pipeline
from ibkr_mcp.tools.approvals import approval_replay
from ibkr_mcp.tools.common import resolve_account
from ibkr_mcp.tools.order_gates import prefetch_flow
from ibkr_mcp.tools.order_models import (
    CancelInput,
    CancelResult,
    OrderInput,
    PlaceInput,
    PlaceResult,
    PreviewInput,
    PreviewResult,
)
from ibkr_mcp.tools.order_replay import KeyLock, best_effort, broker_replay, idempotent
from ibkr_mcp.tools.registry import CallContext, ToolSpec

TOKEN_NOTE = "Tokens are single-use and expire (CONFIRMATION_TOKEN_TTL_SECONDS, default 120 s)."


async def prepare(
    params: OrderInput,
    ctx: CallContext,
    ref: ContractRef | None = None,
    *,
    before_quote: Callable[[OrderIntent], object] | None = None,
) -> pipeline.Prepared:
    """Resolve the contract (``ref``, else the input's), check ticks, build the intent, quote.

    ``before_quote(intent)`` runs once the intent is known, before the quote round trip (the
    place path starts its flow facts there, so both are read concurrently).
    """
    gateway = ctx.services.gateway
    account = await resolve_account(ctx, params.account)
    contract = await gateway.resolve_contract(ref or params.to_ref())
    for field in ("limit_price", "stop_price", "take_profit_price", "stop_loss_price",
                  "stop_loss_limit_price"):  # fmt: skip
        pipeline.check_tick(contract, field, getattr(params, field))
    pipeline.check_good_till(params.good_till, ctx.services.now())
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
        stop_price=params.stop_price,
        trailing_amount=params.trailing_amount,
        trailing_percent=params.trailing_percent,
        limit_offset=params.limit_offset,
        good_till=None if params.good_till is None else params.good_till.isoformat(),
        outside_rth=params.outside_rth,
        multiplier=contract.multiplier,
    )
    if params.is_bracket:
        legs = pipeline.bracket_legs(
            intent, params.take_profit_price, params.stop_loss_price, params.stop_loss_limit_price
        )
        intent = dataclasses.replace(intent, role="parent", legs=legs)
    if before_quote is not None:
        before_quote(intent)
    quote = await pipeline.reference_quote(ctx, contract)
    return pipeline.Prepared(contract=contract, intent=intent, quote=quote)


async def preview_order(params: PreviewInput, ctx: CallContext) -> PreviewResult:
    """Handler of preview_order: gates in preview mode, what-if, and a confirmation token."""
    with order_book_scope():
        prepared = await prepare(params, ctx, before_quote=lambda i: prefetch_flow(ctx, i))
        return await pipeline.preview(ctx, prepared, action="place_order")


async def place_order(params: PlaceInput, ctx: CallContext) -> PlaceResult:
    """Handler of place_order: idempotency first, then every gate, audit intent, then send.

    The reads the order needs (contract, quote, the broker's day, flow facts) start at once,
    beside the idempotency check; a replayed key simply never uses them. Only when no other
    call of this process holds the key: a call waiting for the key would read stale facts.
    """
    with order_book_scope():
        reads = None
        if KeyLock.free(params.idempotency_key):
            reads = asyncio.ensure_future(_reads(params, ctx, approved=False))
        try:
            return await idempotent(
                params, ctx, lambda: _place(params, ctx, reads=reads), approval_replay
            )
        finally:
            if reads is not None and not reads.done():
                reads.cancel()
            if reads is not None:
                # Retrieved: a replayed key's unused reads may have failed (nothing to report).
                reads.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _reads(params: PlaceInput, ctx: CallContext, *, approved: bool) -> pipeline.Prepared:
    """Contract, quote and intent, with the broker's day and the flow facts read beside them."""

    # The flow facts (audit counters, the broker's day) start as soon as the intent is known,
    # beside the quote: none of them depends on it.
    def flow(intent: OrderIntent) -> None:
        prefetch_flow(ctx, intent, idempotency_key=params.idempotency_key, approved=approved)

    # The order book first: its requests (the executions above all) are the slowest answers.
    _, prepared = await asyncio.gather(
        _read_order_book(ctx, params.idempotency_key), prepare(params, ctx, before_quote=flow)
    )
    return prepared


async def _place(
    params: PlaceInput,
    ctx: CallContext,
    *,
    approved: bool = False,
    reads: asyncio.Future[pipeline.Prepared] | None = None,
) -> PlaceResult:
    """Resolve, adopt a broker order with this key if any, then the pipeline's gates and send.

    ``approved``: a human approved this queued order (the approval runner's call).
    ``reads``: ``_reads`` already started by ``place_order``.
    """
    # The broker's order book is read once, beside the contract and quote: the idempotency
    # lookup by orderRef and the flow gates' orders of the day share it (issue 15).
    with order_book_scope():
        prepared = await (reads if reads is not None else _reads(params, ctx, approved=approved))
        # A key this audit does not know may still be at the broker (another process or audit).
        adopted = await broker_replay(params, ctx, prepared.intent)
        if adopted is not None:
            return adopted
        return await pipeline.execute(
            ctx,
            prepared,
            key=params.idempotency_key,
            token=params.confirmation_token,
            request=params,
            send=ctx.services.gateway.place_bracket,
            approved=approved,
        )


async def _read_order_book(ctx: CallContext, key: str) -> None:
    """Warm the scope's order book (open, completed orders, executions) concurrently."""
    gateway = ctx.services.gateway
    # Failures surface where the book is used (the lookup refuses to send without it).
    await asyncio.gather(gateway.order_records(), gateway.fills_by_ref(key), return_exceptions=True)


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
        description="Check an order against every safety gate and IB's what-if; returns a "
        "confirmation_token. take_profit_price/stop_loss_price make a bracket. Sends nothing.",
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
        description="Place a previewed order with the same fields plus its confirmation_token "
        "and your idempotency_key (a retry with the same key never sends twice). "
        + TOKEN_NOTE
        + " With ORDERS_ENABLED=false it is a dry run and sends nothing.",
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
