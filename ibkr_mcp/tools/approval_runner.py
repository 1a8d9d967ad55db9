"""The queuing server's approval runner: send approved orders once, after every gate again.

Runs in every runtime with ``REQUIRE_APPROVAL`` other than ``never``. It only handles approvals
this process queued (so the order belongs to this server's client id and stays cancellable by
it). An approved order goes through the ordinary place path with a fresh quote and fresh facts;
the audit database's one-intent-per-key rule makes the send happen at most once, across
processes and restarts. An approval nobody acts on in time is recorded as expired; an approval
decided too late is refused. Either way nothing is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

from loguru import logger

from ibkr_mcp.errors import IbkrMcpError, IdempotencyConflictError
from ibkr_mcp.logs import correlation_id, new_correlation_id
from ibkr_mcp.origin import call_origin
from ibkr_mcp.safety.approvals import LATE_GRACE, Approval, expire, list_approvals
from ibkr_mcp.tools.registry import CallContext

if TYPE_CHECKING:
    from ibkr_mcp.services import Services
    from ibkr_mcp.tools.order_models import PlaceResult

#: How often the runner looks for decisions (a human's approve waits a few seconds anyway).
POLL_SECONDS = 0.25
#: A placeholder token: an approved order's real token was spent when it was queued.
_SPENT_TOKEN = "approved-by-human"


async def _replay(approval: Approval, ctx: CallContext) -> PlaceResult | None:
    """Run the queued tool's acting half again with ``approved`` (every gate, fresh facts)."""
    # The order tools are imported when an approval is acted on, not when the runtime opens:
    # every runtime starts this runner, and the first tool call waits for the runtime.
    from ibkr_mcp.tools.order_action_models import ClosePositionInput, ModifyInput
    from ibkr_mcp.tools.order_actions import close_position, modify_order
    from ibkr_mcp.tools.order_models import PlaceInput
    from ibkr_mcp.tools.trading import _place

    request = {**approval.request, "confirmation_token": _SPENT_TOKEN}
    if approval.tool == "modify_order":
        return (await modify_order(ModifyInput.model_validate(request), ctx, approved=True)).result
    if approval.tool == "close_position":
        params = ClosePositionInput.model_validate(request)
        return (await close_position(params, ctx, approved=True)).result
    return await _place(PlaceInput.model_validate(request), ctx, approved=True)


async def _send(services: Services, approval: Approval) -> None:
    from ibkr_mcp.tools.order_replay import KeyLock

    cid = new_correlation_id()
    origin = {
        "surface": "internal",
        "correlation_id": cid,
        "approval_id": approval.approval_id,
        "approved_by": approval.decided_by,
        "queued_by": approval.origin,
    }
    ctx = CallContext(
        services=services, correlation_id=cid, surface="internal", tool=approval.tool,
        origin=origin,
    )  # fmt: skip
    token, origin_token = correlation_id.set(cid), call_origin.set(origin)
    try:
        async with KeyLock(approval.idempotency_key):
            result = await _replay(approval, ctx)
        if result is not None:
            logger.info(
                "approved {} {} sent: {} {}",
                approval.tool, approval.approval_id, result.status, result.order_id,
            )  # fmt: skip
    finally:
        call_origin.reset(origin_token)
        correlation_id.reset(token)


async def _refuse_late(services: Services, approval: Approval) -> None:
    await services.audit.record_order_event(
        correlation_id=None,
        event="refused",
        idempotency_key=approval.idempotency_key,
        account=approval.order.get("account"),
        symbol=approval.order.get("symbol"),
        detail={
            "gate": "approval",
            "reason": f"approved after the approval expired at {approval.expires_at.isoformat()}",
            "approval_id": approval.approval_id,
        },
    )


async def process_approvals(services: Services) -> int:
    """Act on this server's decided or lapsed approvals once; returns how many were handled."""
    now = services.now()
    handled = 0
    # Only approvals that can still need this server: decided or lapsed within their TTL, plus
    # LATE_GRACE for a runner that was paused (an older one is shown as expired all the same).
    window = timedelta(seconds=services.settings.APPROVAL_TTL_SECONDS) + LATE_GRACE
    for approval in await list_approvals(
        services.audit, now, states=frozenset({"approved", "expired"}), queued_since=now - window
    ):
        if approval.server != services.instance_id:
            continue
        try:
            if approval.state == "expired":
                if approval.decided_at is None:  # lapsed, not yet recorded
                    await expire(services.audit, approval, now)
                    handled += 1
                continue
            if now >= approval.expires_at:
                await _refuse_late(services, approval)
            else:
                await _send(services, approval)
            handled += 1
        except IdempotencyConflictError:
            handled += 1  # another process recorded the outcome first: nothing to do
        except IbkrMcpError as exc:
            # A refusal or rejection is already recorded by the place path; anything else
            # (gateway down) is retried on the next pass until the approval expires.
            logger.warning("approved order {}: {}", approval.approval_id, exc)
    return handled


async def run_approvals(services: Services) -> None:
    """Poll forever (cancelled at shutdown); one pass never stops the loop."""
    last_failure: str | None = None
    while True:
        await asyncio.sleep(POLL_SECONDS)
        try:
            await process_approvals(services)
        except IbkrMcpError as exc:
            # An unavailable audit trail fails every pass: say so once per distinct cause,
            # not four times a second (the runbook covers AUDIT_UNAVAILABLE).
            if exc.message != last_failure:
                logger.error("approval runner paused: {}: {}", exc.code, exc.message)
            last_failure = exc.message
        except Exception as exc:  # noqa: BLE001 - the runner must outlive one bad pass
            logger.opt(exception=exc).error("approval runner pass failed")
        else:
            if last_failure is not None:
                logger.info("approval runner resumed")
                last_failure = None


@contextlib.asynccontextmanager
async def approval_runner(services: Services) -> AsyncIterator[asyncio.Task[None]]:
    """Run the approval runner for the lifetime of the runtime."""
    task = asyncio.get_running_loop().create_task(run_approvals(services))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
