"""Order tools: preview (what-if + confirmation token), place (gated, idempotent), cancel."""

from __future__ import annotations

import asyncio
import hashlib
from decimal import Decimal
from typing import Any, Literal

import orjson
from loguru import logger
from pydantic import AwareDatetime, Field, model_validator

from ibkr_mcp import metrics
from ibkr_mcp.errors import (
    AuditUnavailableError,
    GateRefusedError,
    GatewayError,
    IbkrMcpError,
    IdempotencyConflictError,
    InvalidInputError,
    OrderRejectedError,
)
from ibkr_mcp.models import (
    Contract,
    OrderInfo,
    OrderRequest,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    WhatIf,
)
from ibkr_mcp.safety.chain import ChainResult, evaluate, refusal_error
from ibkr_mcp.safety.context import OrderIntent, ReferenceQuote
from ibkr_mcp.safety.facts import collect_facts
from ibkr_mcp.tools.common import (
    Account,
    ContractInput,
    ToolInput,
    ToolOutput,
    contract_ref,
)
from ibkr_mcp.tools.common import resolve_account as _resolve_account
from ibkr_mcp.tools.registry import CallContext, ToolSpec

IdempotencyKey = Field(
    min_length=8,
    max_length=64,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$",
    description="Your client order id (8-64 chars); reusing it never sends a second order.",
)


class OrderInput(ContractInput):
    """The order itself (contract fields plus side, size, type); shared by preview and place."""

    side: Side
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=4, description="Shares (> 0).")
    order_type: OrderType = "LMT"
    limit_price: Decimal | None = Field(
        None, gt=0, max_digits=14, decimal_places=6, description="Required for LMT; not for MKT."
    )
    tif: TimeInForce = "DAY"
    account: Account = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> OrderInput:
        if self.order_type == "LMT" and self.limit_price is None:
            raise ValueError("limit_price is required for a LMT order")
        if self.order_type == "MKT" and self.limit_price is not None:
            raise ValueError("limit_price is not used by a MKT order; omit it or use LMT")
        if self.sec_type == "STK" and self.quantity != self.quantity.to_integral_value():
            raise ValueError("quantity must be whole shares for stocks and ETFs")
        return self

    def request_fingerprint(self) -> str:
        """A hash of the order as requested (for idempotency: compared before any I/O)."""
        data = self.model_dump(mode="json", include=set(OrderInput.model_fields))
        for key in ("quantity", "limit_price"):
            if data.get(key) is not None:
                data[key] = str(Decimal(str(data[key])).normalize())
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class PreviewInput(OrderInput):
    """Input of preview_order."""


class PlaceInput(OrderInput):
    """Input of place_order."""

    confirmation_token: str = Field(
        min_length=8, max_length=128, description="The token returned by preview_order."
    )
    idempotency_key: str = IdempotencyKey


class CancelInput(ToolInput):
    """Input of cancel_order."""

    order_id: int = Field(ge=1, description="The order id to cancel.")


class GateVerdict(ToolOutput):
    """One gate's decision."""

    gate: str
    outcome: Literal["allow", "refuse", "dry_run", "skip"]
    reason: str
    remedy: str | None = None


class OrderSummary(ToolOutput):
    """The order as understood after validation and contract resolution."""

    account: str
    symbol: str
    con_id: int
    sec_type: str
    currency: str
    side: Side
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    tif: str
    estimated_notional: Decimal | None


class PreviewResult(ToolOutput):
    """What placing this order would do, and the token that allows placing it."""

    order: OrderSummary
    quote: Quote | None
    what_if: WhatIf | None
    what_if_error: str | None = None
    verdicts: list[GateVerdict]
    would_send: bool
    refusals: list[GateVerdict]
    confirmation_token: str | None
    token_expires_at: AwareDatetime | None
    next_step: str


class PlaceResult(ToolOutput):
    """The outcome of place_order. ``sent`` says whether anything reached the broker."""

    sent: bool
    status: str
    message: str
    order_id: int | None = None
    perm_id: int | None = None
    filled: Decimal | None = None
    avg_fill_price: Decimal | None = None
    idempotency_key: str
    replayed: bool = False
    correlation_id: str
    order: OrderSummary | None = None
    verdicts: list[GateVerdict] = Field(default_factory=list)
    what_if: WhatIf | None = None


class CancelResult(ToolOutput):
    """The order's state after the cancel request."""

    order_id: int
    status: str
    message: str
    correlation_id: str


# --- helpers -------------------------------------------------------------------------------

# One lock per idempotency key (in this process; across processes the audit database refuses a
# second intent for a key): two concurrent calls with the same key must not both send.
_KEY_LOCKS: dict[str, tuple[asyncio.Lock, int]] = {}


class _KeyLock:
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


def _verdicts(result: ChainResult) -> list[GateVerdict]:
    return [
        GateVerdict(gate=v.gate, outcome=v.outcome, reason=v.reason, remedy=v.remedy)
        for v in result.verdicts
    ]


def _run_chain(
    ctx: CallContext,
    intent: OrderIntent,
    quote: Quote | None,
    *,
    mode: Literal["preview", "place"],
    token: str | None,
) -> ChainResult:
    """Collect the facts (the chain's only I/O) and evaluate every gate in order."""
    services = ctx.services
    facts = collect_facts(
        services.settings,
        intent,
        mode=mode,
        managed_accounts=services.gateway.managed_accounts(),
        quote=None if quote is None else ReferenceQuote.from_quote(quote),
        tokens=services.tokens,
        token=token,
        now=services.now(),
    )
    return evaluate(facts)


def _estimated_notional(params: OrderInput, quote: Quote | None) -> Decimal | None:
    if params.limit_price is not None:
        return params.quantity * params.limit_price
    if quote is None:
        return None
    price = (quote.ask if params.side == "BUY" else quote.bid) or quote.last
    return None if price is None else params.quantity * price


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
    )
    return account, contract, intent, quote


def _summary(params: OrderInput, intent: OrderIntent, quote: Quote | None) -> OrderSummary:
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
        estimated_notional=_estimated_notional(params, quote),
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
    result = _run_chain(ctx, intent, quote, mode="preview", token=None)
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
        order=_summary(params, intent, quote),
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
    async with _KeyLock(params.idempotency_key):
        replay = await _replay(params, ctx)
        if replay is not None:
            return replay
        try:
            return await _place(params, ctx)
        except IdempotencyConflictError as exc:
            if not exc.details.get("already_bound"):
                raise
            # Another process bound this key between our check and our intent row.
            replay = await _replay(params, ctx)
            if replay is None:
                raise
            return replay


async def _replay(params: PlaceInput, ctx: CallContext) -> PlaceResult | None:
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
    # recording the intent and hearing back. The order ref tells us whether IB has it.
    found = await services.gateway.find_orders_by_ref(key)
    if found:
        info = found[0]
        await _best_effort(
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


async def _current_info(ctx: CallContext, key: str) -> OrderInfo | None:
    """The order's state now, found by its order ref (ids can repeat across clients)."""
    try:
        found = await ctx.services.gateway.find_orders_by_ref(key)
    except IbkrMcpError:
        return None
    return found[0] if found else None


async def _best_effort(ctx: CallContext, what: str, **row: Any) -> str | None:
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
    params: PlaceInput, ctx: CallContext, info: OrderInfo | None, row: dict[str, Any]
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


async def _place(params: PlaceInput, ctx: CallContext) -> PlaceResult:
    services = ctx.services
    key = params.idempotency_key
    _, contract, intent, quote = await _prepare(params, ctx)
    result = _run_chain(ctx, intent, quote, mode="place", token=params.confirmation_token)
    await _record_chain(ctx, intent, result)
    verdicts = _verdicts(result)
    summary = _summary(params, intent, quote)
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
    # Connected right now, so that a failure below means "in flight", not "never left".
    await services.gateway.ensure_connected()
    services.tokens.consume(params.confirmation_token, fingerprint)
    # The intent must be durable before anything is sent: if this raises, nothing is sent.
    try:
        await services.audit.record_order_event(
            correlation_id=ctx.correlation_id,
            event="intent",
            idempotency_key=key,
            fingerprint=fingerprint,
            status="PendingSubmit",
            detail={"request_fingerprint": params.request_fingerprint()},
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
        await _best_effort(
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
        raise
    except GatewayError as exc:
        await _best_effort(
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
    warning = await _best_effort(
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
    metrics.ORDERS.labels(info.status).inc()
    message = f"Order {info.order_id} sent to the broker; status {info.status}."
    return PlaceResult(
        sent=True,
        status=info.status,
        message=message if warning is None else f"{message} {warning}",
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
    warning = await _best_effort(
        ctx, "cancel_requested", event="cancel_requested", idempotency_key=None,
        order_id=params.order_id,
    )  # fmt: skip
    info = await services.gateway.cancel_order(params.order_id)
    warning = warning or await _best_effort(
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
