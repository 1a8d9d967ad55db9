"""Approval and halt call sites of the order path, and the admin toolset (MCP only).

``place_order`` queues an order that needs a human (``queue_for_approval``) and answers retries
of a queued key (``approval_replay``); after a broker rejection it lets the breaker trip
(``after_rejection``). The admin tools (``emergency_stop``, ``list_approvals``,
``approve_order``, ``deny_order``) exist over MCP only with ``TOOLSETS`` including ``admin``;
the HTTP control routes and CLI commands are separate and human-only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, Field

from ibkr_mcp.audit.flow import rejection_count
from ibkr_mcp.errors import IbkrMcpError, IdempotencyConflictError, SafetyError
from ibkr_mcp.safety.approvals import (
    decide,
    expires_at,
    get_approval,
    list_approvals,
    new_approval_id,
)
from ibkr_mcp.safety.chain import ChainResult
from ibkr_mcp.safety.context import OrderIntent
from ibkr_mcp.safety.emergency import emergency_stop as engage_stop
from ibkr_mcp.safety.flow_facts import trip_breaker_if_needed
from ibkr_mcp.safety.halt import read_halt
from ibkr_mcp.tools.common import ToolInput, ToolOutput
from ibkr_mcp.tools.order_models import OrderSummary, PlaceResult
from ibkr_mcp.tools.registry import CallContext, ToolSpec

APPROVAL_STATUS = {
    "pending": "PENDING_APPROVAL",
    "approved": "APPROVED",
    "denied": "DENIED",
    "expired": "EXPIRED",
    "refused": "REFUSED",
    "failed": "FAILED",
}


async def queue_for_approval(
    ctx: CallContext,
    params: Any,
    intent: OrderIntent,
    summary: OrderSummary,
    result: ChainResult,
) -> PlaceResult:
    """Record the order as PENDING_APPROVAL (durably); nothing is sent.

    ``params``: the acting tool's input (place_order, modify_order, close_position); the
    approval runner replays ``ctx.tool`` with it once a human approves.
    """
    services = ctx.services
    now = services.now()
    approval_id = new_approval_id()
    until = expires_at(now, services.settings.APPROVAL_TTL_SECONDS)
    request = params.model_dump(mode="json", exclude={"confirmation_token"})
    await services.audit.record_order_event(
        correlation_id=ctx.correlation_id,
        event="pending_approval",
        idempotency_key=params.idempotency_key,
        fingerprint=intent.fingerprint(),
        status="PENDING_APPROVAL",
        account=intent.account,
        symbol=intent.symbol,
        con_id=intent.con_id,
        side=intent.side,
        quantity=intent.quantity,
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        tif=intent.tif,
        detail={
            "approval_id": approval_id,
            "expires_at": until.isoformat(),
            "server": services.instance_id,
            "tool": ctx.tool,
            "modifies": intent.modifies,
            "request": request,
            "request_fingerprint": params.request_fingerprint(),
            "verdicts": [f"{v.gate}:{v.outcome}" for v in result.verdicts],
            "origin": dict(ctx.origin),
        },
    )
    return PlaceResult(
        sent=False,
        status="PENDING_APPROVAL",
        message=(
            f"Queued for a human's approval as {approval_id} (until {until.isoformat()}); "
            "nothing was sent. A human approves it with `ibkr-mcp approvals approve "
            f"{approval_id}`; then this server sends it after re-running every gate. See its "
            f"state with get_order_status / wait_for_order (order_id={approval_id}) or "
            "ibkr://approvals/pending."
        ),
        idempotency_key=params.idempotency_key,
        correlation_id=ctx.correlation_id,
        order=summary,
        passed=", ".join(f"{v.gate}:{v.outcome}" for v in result.verdicts),
        approval_id=approval_id,
        approval_expires_at=until,
    )


async def approval_replay(params: Any, ctx: CallContext) -> PlaceResult | None:
    """The state of a key queued for approval (a retry never queues or sends twice).

    Called after ``replay_key`` found no intent for the key (a sent order replays there).

    Raises:
        IdempotencyConflictError: The key was queued for a different order.
    """
    services = ctx.services
    rows = await services.audit.order_events_for_key(params.idempotency_key)
    queued = next((r for r in rows if r.get("event") == "pending_approval"), None)
    if queued is None:
        return None
    approvals = await list_approvals(services.audit, services.now())
    approval = next(a for a in approvals if a.idempotency_key == params.idempotency_key)
    stored = orjson.loads(queued["detail"]).get("request_fingerprint")
    if approval.tool != ctx.tool or stored != params.request_fingerprint():
        raise IdempotencyConflictError(
            f"idempotency_key {params.idempotency_key!r} is queued for approval with a "
            "different order.",
            remedy="Use a new idempotency_key for a new order.",
            details={"idempotency_key": params.idempotency_key},
        )
    status = APPROVAL_STATUS.get(approval.state, approval.state.upper())
    return PlaceResult(
        sent=False,
        status=status,
        message=f"Approval {approval.approval_id} is {approval.state}"
        + (f" ({approval.reason})" if approval.reason else "")
        + "; nothing was sent by this call.",
        idempotency_key=params.idempotency_key,
        replayed=True,
        correlation_id=ctx.correlation_id,
        approval_id=approval.approval_id,
        approval_expires_at=approval.expires_at,
    )


async def after_rejection(services: Any) -> None:
    """Count broker rejections; trip the breaker (persisted halt) at MAX_REJECTIONS."""
    settings, now = services.settings, services.now()
    halt = read_halt(settings.halt_state_path)
    since = now - timedelta(minutes=settings.REJECTION_WINDOW_MINUTES)
    if halt.cleared_at is not None and halt.cleared_at > since:
        since = halt.cleared_at
    try:
        count = await rejection_count(services.audit, since)
    except IbkrMcpError:
        return  # the next order's facts recount (and fail closed if the audit is unreadable)
    await trip_breaker_if_needed(services, count, now)


# --- admin toolset (MCP only) ----------------------------------------------------------------


class EmergencyStopInput(ToolInput):
    """Input of emergency_stop."""

    reason: str = Field(min_length=3, max_length=500, description="Why trading must stop.")


class EmergencyStopResult(ToolOutput):
    """What the emergency stop did."""

    halted: bool
    reason: str
    since: AwareDatetime | None
    by: str
    orders_working_before: int
    orders_still_open: int
    cancel_error: str | None
    message: str


async def emergency_stop(params: EmergencyStopInput, ctx: CallContext) -> EmergencyStopResult:
    """Handler of emergency_stop: halt, IB global cancel, audit. Only a human clears it."""
    origin = ctx.origin
    by = f"{ctx.surface}:{origin.get('client_name') or 'agent'}"
    result = await engage_stop(ctx.services, reason=params.reason, by=by)
    halt = result.halt
    return EmergencyStopResult(
        halted=halt.halted,
        reason=halt.reason or params.reason,
        since=halt.since,
        by=halt.by or by,
        orders_working_before=result.cancelled,
        orders_still_open=result.still_open,
        cancel_error=result.cancel_error,
        message="Trading is HALTED and every open order was sent IB's global cancel. Only a "
        "human can clear it (`ibkr-mcp emergency-stop --clear`).",
    )


class ListApprovalsInput(ToolInput):
    """Input of list_approvals."""

    state: Literal["pending", "all"] = "pending"


class ApprovalsResult(ToolOutput):
    """Approvals, oldest first."""

    approvals: list[dict[str, Any]]


async def list_approvals_tool(params: ListApprovalsInput, ctx: CallContext) -> ApprovalsResult:
    """Handler of list_approvals."""
    states = frozenset({"pending"}) if params.state == "pending" else None
    found = await list_approvals(ctx.services.audit, ctx.services.now(), states=states)
    return ApprovalsResult(approvals=[a.to_dict() for a in found])


class DecideInput(ToolInput):
    """Input of approve_order / deny_order."""

    approval_id: str = Field(min_length=4, max_length=64, pattern=r"^apr_[0-9a-f]+$")
    reason: str | None = Field(None, max_length=500)


async def _decide(params: DecideInput, ctx: CallContext, approve: bool) -> ApprovalsResult:
    who = f"{ctx.surface}:{ctx.origin.get('client_name') or 'client'}"
    services = ctx.services
    if approve:
        queued = await get_approval(services.audit, params.approval_id, services.now())
        if queued.server == services.instance_id:
            # The agent that asked for the order is this server's client: its approval would
            # be the agent confirming itself, which approval exists to prevent (denying,
            # which sends nothing, stays open to it).
            raise SafetyError(
                f"{params.approval_id} was queued by this server's own client: an agent cannot "
                "approve its own order.",
                remedy=f"A human approves it: `ibkr-mcp approvals approve {params.approval_id}` "
                "or POST /api/approvals/{id}/approve with the API token (or an admin MCP "
                "client of another server on the same audit database).",
                details={"approval_id": params.approval_id, "self_approval": True},
            )
    approval = await decide(
        ctx.services.audit,
        params.approval_id,
        approve=approve,
        by=who,
        reason=params.reason,
        now=ctx.services.now(),
        correlation_id=ctx.correlation_id,
    )
    return ApprovalsResult(approvals=[approval.to_dict()])


async def approve_order(params: DecideInput, ctx: CallContext) -> ApprovalsResult:
    """Handler of approve_order."""
    return await _decide(params, ctx, True)


async def deny_order(params: DecideInput, ctx: CallContext) -> ApprovalsResult:
    """Handler of deny_order."""
    return await _decide(params, ctx, False)


_MCP_ONLY = frozenset({"mcp"})

SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="emergency_stop",
        description="KILL FUNCTION: halt all trading and cancel every open order at the broker "
        "(IB global cancel). Only a human can clear the halt.",
        input_model=EmergencyStopInput,
        output_model=EmergencyStopResult,
        handler=emergency_stop,
        http_method="POST",
        http_path="/api/admin/emergency-stop",
        cli_name="admin-emergency-stop",
        read_only=False,
        destructive=True,
        idempotent=True,
        toolset="admin",
        surfaces=_MCP_ONLY,
    ),
    ToolSpec(
        name="list_approvals",
        description="Orders waiting for (or decided by) a human's approval.",
        input_model=ListApprovalsInput,
        output_model=ApprovalsResult,
        handler=list_approvals_tool,
        http_method="GET",
        http_path="/api/admin/approvals",
        cli_name="admin-approvals",
        toolset="admin",
        surfaces=_MCP_ONLY,
    ),
    ToolSpec(
        name="approve_order",
        description="Approve an order queued by ANOTHER server (a supervisor's client; an "
        "agent cannot approve its own server's orders); its server re-runs every gate and "
        "sends it once.",
        input_model=DecideInput,
        output_model=ApprovalsResult,
        handler=approve_order,
        http_method="POST",
        http_path="/api/admin/approvals/{approval_id}/approve",
        cli_name="admin-approve",
        read_only=False,
        destructive=True,
        idempotent=False,
        toolset="admin",
        surfaces=_MCP_ONLY,
    ),
    ToolSpec(
        name="deny_order",
        description="Deny a queued order; nothing is sent.",
        input_model=DecideInput,
        output_model=ApprovalsResult,
        handler=deny_order,
        http_method="POST",
        http_path="/api/admin/approvals/{approval_id}/deny",
        cli_name="admin-deny",
        read_only=False,
        idempotent=False,
        toolset="admin",
        surfaces=_MCP_ONLY,
    ),
)

__all__ = ["APPROVAL_STATUS", "SPECS", "after_rejection", "approval_replay", "queue_for_approval"]
