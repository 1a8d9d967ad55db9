"""Order actions on the pipeline: modify, close, cancel all; an order with its fills, waiting."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from ibkr_mcp.audit.flow import recorded_notional
from ibkr_mcp.errors import InvalidInputError, NotFoundError, OrderRejectedError
from ibkr_mcp.models import DONE_STATUSES, GOOD_TILL_FORMAT, ContractRef, OrderInfo
from ibkr_mcp.safety.approvals import Approval, find_approval
from ibkr_mcp.safety.context import OrderIntent, Standing
from ibkr_mcp.safety.sessions import trading_day_start
from ibkr_mcp.tools import order_pipeline as pipeline
from ibkr_mcp.tools import order_types
from ibkr_mcp.tools.approvals import APPROVAL_STATUS, approval_replay
from ibkr_mcp.tools.common import resolve_account
from ibkr_mcp.tools.order_action_models import (
    TWO_STEP,
    CancelAllInput,
    CancelAllResult,
    CancelledOrder,
    ClosePositionInput,
    ModifyInput,
    OrderFillsResult,
    TwoStep,
    TwoStepResult,
    WaitInput,
)
from ibkr_mcp.tools.order_models import OrderInput, PlaceResult
from ibkr_mcp.tools.order_replay import Keyed, best_effort, idempotent
from ibkr_mcp.tools.orders import OrderStatusInput
from ibkr_mcp.tools.registry import CallContext, ToolSpec, drain_audit
from ibkr_mcp.tools.trading import prepare

#: Final order states (nothing can change them any more).
DONE = DONE_STATUSES | {"Rejected"}
#: How often wait_for_order looks at the order (seconds).
POLL_SECONDS = 0.1


async def two_step(
    params: TwoStep,
    ctx: CallContext,
    prepared: pipeline.Prepared,
    action: str,
    send: Any,
    *,
    approved: bool = False,
) -> TwoStepResult:
    """Preview (no token given) or act (token + key) on ``prepared``.

    ``approved``: the approval runner sends what a human approved (no replay, token spent).
    """
    if params.confirmation_token is None or params.idempotency_key is None:
        preview = await pipeline.preview(ctx, prepared, action=action)
        return TwoStepResult(stage="preview", preview=preview)
    token, key = params.confirmation_token, params.idempotency_key
    # Both are set here (validated), so the call is a keyed request.
    keyed = cast(Keyed, params)

    async def act() -> PlaceResult:
        return await pipeline.execute(
            ctx,
            prepared,
            key=key,
            token=token,
            request=keyed,
            send=send,
            approved=approved,
        )

    if approved:  # the runner holds the key's lock; the queued key must not replay itself
        return TwoStepResult(stage="done", result=await act())
    # A key queued for approval answers its approval's state; it never queues twice.
    return TwoStepResult(stage="done", result=await idempotent(keyed, ctx, act, approval_replay))


# --- modify_order ------------------------------------------------------------------------------


def _ib_time(text: str | None) -> datetime | None:
    """IB's ``goodTillDate`` text (``YYYYMMDD HH:MM:SS UTC`` as we send it), else ``None``."""
    if not text:
        return None
    try:
        return datetime.strptime(text, GOOD_TILL_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None  # another zone's text: the caller must give good_till again


async def _prepare_modify(params: ModifyInput, ctx: CallContext) -> pipeline.Prepared:
    gateway = ctx.services.gateway
    await gateway.ensure_connected()
    current = await gateway.order_status(params.order_id)
    if current.status in DONE:
        raise OrderRejectedError(
            f"Order {params.order_id} is {current.status}: a filled or cancelled order cannot "
            "be modified.",
            remedy="Place a new order instead (preview_order, then place_order).",
            details={"order_id": params.order_id, "status": current.status},
        )
    order_type = current.order_type
    values: dict[str, Any] = {
        "order_type": order_type,
        "limit_price": current.limit_price if order_type != "MKT" else None,
        "stop_price": current.stop_price,
        "trailing_amount": current.trailing_amount,
        "trailing_percent": current.trailing_percent,
        "limit_offset": current.limit_offset,
        "tif": current.tif,
        # A price-only change keeps the order's GTD time (without it: "good_till required").
        "good_till": _ib_time(current.good_till) if current.tif == "GTD" else None,
        "outside_rth": current.outside_rth,
        **params.changes(),
    }
    if order_type in ("MKT", "STP", "MIT", "MOC", "TRAIL"):
        values["limit_price"] = params.limit_price
    problems = order_types.field_problems(values)
    if problems:
        raise InvalidInputError(
            f"Invalid change for order {params.order_id} ({order_type}): "
            + "; ".join(message for _, message in problems),
            remedy="Change only the fields this order type uses.",
            details={
                "order_id": params.order_id,
                "order_type": order_type,
                # The same shape as an input error's, so a caller reads the field either way.
                "errors": [
                    {"field": name, "message": message, "type": "value_error"}
                    for name, message in problems
                ],
            },
        )
    ref = ContractRef(
        symbol=current.symbol,
        sec_type=current.sec_type or "STK",
        con_id=current.con_id,
    )
    contract = await gateway.resolve_contract(ref)
    for field in ("limit_price", "stop_price"):
        pipeline.check_tick(contract, field, params.changes().get(field))  # type: ignore[arg-type]
    good_till = values.get("good_till")
    if "good_till" in params.changes():  # a new GTD time must be ahead (the old one may lapse)
        pipeline.check_good_till(good_till, ctx.services.now())
    intent = OrderIntent(
        account=current.account,
        symbol=contract.symbol,
        con_id=contract.con_id,
        sec_type=contract.sec_type,
        currency=contract.currency,
        exchange=contract.exchange,
        side=current.side,
        quantity=values.get("quantity") or current.quantity,
        order_type=order_type,
        limit_price=values.get("limit_price"),
        tif=values["tif"],
        min_tick=contract.min_tick,
        stop_price=values.get("stop_price"),
        trailing_amount=values.get("trailing_amount"),
        trailing_percent=values.get("trailing_percent"),
        limit_offset=values.get("limit_offset"),
        good_till=None if good_till is None else good_till.isoformat(),
        outside_rth=bool(values.get("outside_rth")),
        multiplier=contract.multiplier,
        modifies=params.order_id,
    )
    quote = await pipeline.reference_quote(ctx, contract)
    # The order as it stands, valued like the change (a TRAIL_LIMIT's offset is not reported:
    # none, the lower bound), and at most what the audit recorded for it today: its intent row
    # then counts the increase, never less (a market-priced order's quote may have risen).
    before = dataclasses.replace(
        intent,
        quantity=current.quantity,
        limit_price=current.limit_price if order_type != "MKT" else None,
        stop_price=current.stop_price,
        trailing_amount=current.trailing_amount,
        trailing_percent=current.trailing_percent,
        limit_offset=None,
    )
    recorded = await recorded_notional(
        ctx.services.audit,
        order_ref=current.order_ref,
        order_id=params.order_id,
        account=current.account,
        con_id=contract.con_id,
        since=trading_day_start(ctx.services.now()),
    )
    return pipeline.Prepared(
        contract=contract, intent=intent, quote=quote, verb="modified",
        standing=Standing(intent=before, recorded=recorded),
    )  # fmt: skip


async def modify_order(
    params: ModifyInput, ctx: CallContext, *, approved: bool = False
) -> TwoStepResult:
    """Handler of modify_order: every gate on the modified order; same order id at IB."""
    prepared = await _prepare_modify(params, ctx)

    async def send(requests: list[Any]) -> list[OrderInfo]:
        return [await ctx.services.gateway.modify_order(params.order_id, requests[0])]

    return await two_step(params, ctx, prepared, "modify_order", send, approved=approved)


# --- close_position ----------------------------------------------------------------------------


async def close_position(
    params: ClosePositionInput, ctx: CallContext, *, approved: bool = False
) -> TwoStepResult:
    """Handler of close_position: the order that flattens or reduces a position."""
    gateway = ctx.services.gateway
    account = await resolve_account(ctx, params.account)
    held = [
        p
        for p in await gateway.positions(account)
        if p.symbol == params.symbol
        and p.quantity
        and (params.sec_type is None or p.sec_type == params.sec_type)
        and (params.con_id is None or p.con_id == params.con_id)
    ]
    if not held:
        raise NotFoundError(
            f"No open position in {params.symbol} in account {account}.",
            remedy="Check get_positions for the symbol (and sec_type / con_id).",
            details={"symbol": params.symbol, "account": account},
        )
    if len(held) > 1:
        raise InvalidInputError(
            f"{len(held)} positions in {params.symbol}; name one.",
            remedy="Pass con_id (see get_positions).",
            details={"candidates": [{"con_id": p.con_id, "sec_type": p.sec_type} for p in held]},
        )
    position = held[0]
    size = abs(position.quantity)
    quantity = params.quantity or size
    if quantity > size:
        raise InvalidInputError(
            f"quantity {quantity} is more than the position ({size}); close_position never "
            "reverses a position.",
            remedy=f"Pass at most {size}.",
            details={"errors": [{"field": "quantity", "message": "exceeds the position"}]},
        )
    side: Literal["BUY", "SELL"] = "SELL" if position.quantity > 0 else "BUY"
    order = OrderInput(
        symbol=position.symbol,
        sec_type=position.sec_type,
        currency=position.currency,
        side=side,
        quantity=quantity,
        order_type=params.order_type,
        limit_price=params.limit_price,
        account=account,
    )
    ref = ContractRef(
        symbol=position.symbol,
        sec_type=position.sec_type,
        currency=position.currency,
        con_id=position.con_id,
    )
    prepared = await prepare(order, ctx, ref)
    return await two_step(
        params, ctx, prepared, "close_position", gateway.place_bracket, approved=approved
    )


# --- cancel_all_orders -------------------------------------------------------------------------


async def cancel_all_orders(params: CancelAllInput, ctx: CallContext) -> CancelAllResult:
    """Handler of cancel_all_orders: this server's working orders (never gated)."""
    services = ctx.services
    account = await resolve_account(ctx, params.account)
    mine = services.settings.IBKR_CLIENT_ID
    targets = [
        o
        for o in await services.gateway.open_orders()
        if o.client_id == mine
        and o.account == account
        and o.status not in DONE
        and (params.symbol is None or o.symbol == params.symbol)
    ]
    await best_effort(
        ctx, "cancel_all", event="cancel_requested", idempotency_key=None,
        detail={"cancel_all": [o.order_id for o in targets], "symbol": params.symbol},
    )  # fmt: skip
    results = await asyncio.gather(
        *(services.gateway.cancel_order(o.order_id) for o in targets), return_exceptions=True
    )
    out = []
    for order, result in zip(targets, results, strict=True):
        if isinstance(result, BaseException):
            out.append(CancelledOrder(order_id=order.order_id, symbol=order.symbol,
                                      status=order.status, error=str(result)))  # fmt: skip
            continue
        out.append(CancelledOrder(order_id=order.order_id, symbol=order.symbol,
                                  status=result.status))  # fmt: skip
        await best_effort(
            ctx, "cancel status", event="status", idempotency_key=result.order_ref,
            order_id=result.order_id, perm_id=result.perm_id, status=result.status,
            symbol=result.symbol, account=result.account,
        )  # fmt: skip
    done = sum(1 for o in out if o.error is None)
    scope = f" in {params.symbol}" if params.symbol else ""
    return CancelAllResult(
        cancelled=done,
        orders=out,
        message=f"{done} of {len(out)} working orders{scope} cancelled.",
        correlation_id=ctx.correlation_id,
    )


# --- order status with fills, wait_for_order ---------------------------------------------------


async def _with_fills(ctx: CallContext, info: OrderInfo, timed_out: bool) -> OrderFillsResult:
    fills = [
        f
        for f in await ctx.services.gateway.executions(info.account or None)
        if (info.perm_id and f.perm_id == info.perm_id)
        or (not info.perm_id and f.order_id == info.order_id)
    ]
    return OrderFillsResult(
        order_id=info.order_id,
        status=info.status,
        filled=info.filled,
        remaining=info.remaining,
        avg_fill_price=info.avg_fill_price,
        fills=fills,
        timed_out=timed_out,
        order=info,
    )


#: Approval states after which nothing will be sent (a wait ends there).
_APPROVAL_OVER = frozenset({"denied", "expired", "refused", "failed"})


async def _by_ref(ctx: CallContext, key: str) -> OrderInfo | None:
    """The broker's order whose ``orderRef`` is ``key`` (a bracket's parent), if any."""
    found = await ctx.services.gateway.find_orders_by_ref(key)
    return found[0] if found else None


async def _lookup(ctx: CallContext, ref: int | str) -> tuple[OrderInfo | None, Approval | None]:
    """The broker's order for ``ref`` (id, approval id or key) and its approval, if any."""
    services = ctx.services
    if isinstance(ref, int):
        return await services.gateway.order_status(ref), None
    await drain_audit()  # this process's rows written behind an answer (the order id's row)
    approval = await find_approval(services.audit, ref, services.now())
    if approval is not None:
        if approval.state != "sent":
            return None, approval
        info = await _by_ref(ctx, approval.idempotency_key)
        if info is None and approval.order_id is not None:
            info = await services.gateway.order_status(approval.order_id)
        return info, approval
    # By its orderRef first: an order id alone is only unique per API client.
    info = await _by_ref(ctx, ref)
    if info is not None:
        return info, None
    ids = [
        r["order_id"] for r in await services.audit.order_events_for_key(ref) if r.get("order_id")
    ]
    if not ids:
        raise NotFoundError(
            f"No order or approval {ref!r}.",
            remedy="Pass the order id place_order returned, or its approval_id / idempotency_key.",
            details={"order_id": ref},
        )
    return await services.gateway.order_status(ids[0]), None


async def _result(
    ctx: CallContext, info: OrderInfo | None, approval: Approval | None, timed_out: bool
) -> OrderFillsResult:
    extra = {} if approval is None else {
        "approval_id": approval.approval_id, "approval_state": approval.state,
    }  # fmt: skip
    if info is not None:
        return (await _with_fills(ctx, info, timed_out)).model_copy(update=extra)
    assert approval is not None
    quantity = approval.order.get("quantity")
    return OrderFillsResult(
        order_id=approval.order_id,
        status=APPROVAL_STATUS.get(approval.state, approval.state.upper()),
        filled=Decimal(0),
        remaining=Decimal(str(quantity or 0)),
        avg_fill_price=None,
        fills=[],
        timed_out=timed_out,
        order=None,
        **extra,
    )


async def get_order_status(params: OrderStatusInput, ctx: CallContext) -> OrderFillsResult:
    """Handler of get_order_status: the order and its fills, or its approval's state."""
    if isinstance(params.order_id, int):
        await ctx.services.gateway.ensure_connected()
    info, approval = await _lookup(ctx, params.order_id)
    return await _result(ctx, info, approval, timed_out=False)


async def wait_for_order(params: WaitInput, ctx: CallContext) -> OrderFillsResult:
    """Handler of wait_for_order: until filled / done or the timeout, reporting progress.

    A queued order is waited for through its approval: pending → sent → filled / done; a
    denied, expired or refused approval ends the wait.
    """
    gateway = ctx.services.gateway
    await gateway.ensure_connected()
    deadline = time.monotonic() + params.timeout_seconds
    last: tuple[str, Decimal] | None = None
    status: str
    while True:
        info, approval = await _lookup(ctx, params.order_id)
        if info is None:
            assert approval is not None
            if approval.state in _APPROVAL_OVER:
                return await _result(ctx, None, approval, timed_out=False)
            status, filled, total = approval.state, Decimal(0), Decimal(1)
        else:
            finished = info.status == "Filled" if params.until == "filled" else info.status in DONE
            if finished or (params.until == "filled" and info.status in DONE):
                return await _result(ctx, info, approval, timed_out=False)
            status, filled, total = info.status, info.filled, info.quantity
        if (status, filled) != last:
            last = (status, filled)
            await ctx.progress(float(filled), float(total), f"{status}: {filled} filled")
        if time.monotonic() >= deadline:
            return await _result(ctx, info, approval, timed_out=True)
        await asyncio.sleep(POLL_SECONDS)


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="modify_order",
        description="Change quantity, prices or TIF of a working order (same order id; no gap). "
        + TWO_STEP,
        input_model=ModifyInput,
        output_model=TwoStepResult,
        handler=modify_order,
        http_method="POST",
        http_path="/api/orders/{order_id}/modify",
        cli_name="modify",
        cli_arguments=("order_id",),
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="close_position",
        description="Flatten or reduce a position with a MKT or LMT order through every gate. "
        + TWO_STEP,
        input_model=ClosePositionInput,
        output_model=TwoStepResult,
        handler=close_position,
        http_method="POST",
        http_path="/api/positions/close",
        cli_name="close",
        cli_arguments=("symbol",),
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="cancel_all_orders",
        description="Cancel this server's working orders (optionally one symbol); reports each. "
        "Never gated (it reduces risk).",
        input_model=CancelAllInput,
        output_model=CancelAllResult,
        handler=cancel_all_orders,
        http_method="POST",
        http_path="/api/orders/cancel-all",
        cli_name="cancel-all",
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="get_order_status",
        description="Status, filled/remaining, average price and fills (with commissions) of "
        "one order by id (or approval_id).",
        input_model=OrderStatusInput,
        output_model=OrderFillsResult,
        handler=get_order_status,
        http_method="GET",
        http_path="/api/orders/{order_id}/status",
        cli_name="order-status",
        cli_arguments=("order_id",),
    ),
    ToolSpec(
        name="wait_for_order",
        description="Wait (1-60 s) until an order (or approval_id) is filled or done; returns "
        "status, fills and whether it timed out. Sends MCP progress notifications.",
        input_model=WaitInput,
        output_model=OrderFillsResult,
        handler=wait_for_order,
        http_method="POST",
        http_path="/api/orders/{order_id}/wait",
        cli_name="wait",
        cli_arguments=("order_id",),
    ),
)
