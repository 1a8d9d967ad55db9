"""The order pipeline's gate step: every gate on every leg of an order, one verdict per gate."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Literal

from ibkr_mcp import metrics
from ibkr_mcp.audit import Row
from ibkr_mcp.gateway.book_scope import (
    in_order_scope,
    order_book_changed,
    order_book_scope,
    shared_read,
)
from ibkr_mcp.models import Quote
from ibkr_mcp.safety.chain import ChainResult, evaluate
from ibkr_mcp.safety.context import (
    FlowFacts,
    OrderIntent,
    ReferenceQuote,
    Standing,
    TokenCheck,
)
from ibkr_mcp.safety.facts import collect_facts, gather_flow
from ibkr_mcp.safety.gates.base import Verdict
from ibkr_mcp.tools.order_models import GateVerdict
from ibkr_mcp.tools.registry import CallContext, safety_snapshot

#: Gates that judge an order's own shape, so each bracket leg too (a leg's refusal refuses the
#: bracket). The rest judge the position and the flow (notional, short sale, concentration,
#: daily limits, rate, duplicates, approval): a bracket counts once, through its parent, as its
#: exits only close what the parent opens.
LEG_GATES = frozenset({"allowlists", "trading_hours", "quantity", "price_band"})
#: The token verdict of an order a human approved (its token was spent when it was queued), or
#: of an order judged again in the same call that spent its token (see ``run_gates``).
APPROVED_TOKEN = TokenCheck(present=True, valid=True, reason=None)


def _flow(
    ctx: CallContext,
    intent: OrderIntent,
    idempotency_key: str | None,
    approved: bool,
    now: datetime,
    *,
    fresh: bool = False,
) -> Awaitable[FlowFacts]:
    """The flow facts of ``intent``: read once per order call (``prefetch_flow`` may start it).

    ``fresh``: read them again, the broker's orders included (the call's reads may predate
    another order's send), not the call's shared read.
    """

    def read() -> Awaitable[FlowFacts]:
        return gather_flow(
            ctx.services,
            intent,
            idempotency_key=idempotency_key,
            now=now,
            approval_granted=approved,
        )

    if fresh:
        order_book_changed()
        return read()
    return shared_read(f"flow:{intent.fingerprint()}:{idempotency_key}:{approved}", read)


def prefetch_flow(
    ctx: CallContext,
    intent: OrderIntent,
    *,
    idempotency_key: str | None = None,
    approved: bool = False,
) -> None:
    """Start reading the flow facts of ``intent`` now; the gates use them (same order call).

    Only inside an ``order_book_scope`` (elsewhere nothing is started). The facts are read at
    this moment, a quote round trip before the gates run: no later than the old order of steps
    would have read them after a slow quote, and nothing sent in between (sending clears them).
    """
    if not in_order_scope():
        return
    future = asyncio.ensure_future(
        _flow(ctx, intent, idempotency_key, approved, ctx.services.now())
    )
    # Read by the gates; a failure there is theirs (gather_flow never raises).
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


async def run_gates(
    ctx: CallContext,
    intent: OrderIntent,
    quote: Quote | None,
    *,
    mode: Literal["preview", "place"],
    token: str | None,
    idempotency_key: str | None = None,
    approved: bool = False,
    standing: Standing | None = None,
    fresh: bool = False,
    token_spent: bool = False,
) -> ChainResult:
    """Every gate on every leg; one verdict per gate (a leg's refusal names the leg).

    ``approved``: a human approved this queued order; its token was spent when it was queued,
    so the token check passes, and the approval gate allows. ``standing``: a modification's
    order as it stands (``daily_notional`` counts only what the change adds). ``fresh``: read
    the flow facts again (not the ones read at the start of the call: another order was
    recorded since). ``token_spent``: this call already spent its (valid) token.
    """
    services = ctx.services
    reference = None if quote is None else ReferenceQuote.from_quote(quote)
    now = services.now()
    with order_book_scope():  # the broker's orders of the day from the day book
        flow = await _flow(ctx, intent, idempotency_key, approved, now, fresh=fresh)
    facts = collect_facts(
        services.settings,
        intent,
        mode=mode,
        managed_accounts=services.gateway.managed_accounts(),
        quote=reference,
        tokens=services.tokens,
        token=token,
        now=now,
        flow=flow,
        token_check=APPROVED_TOKEN if approved or token_spent else None,
        standing=standing,
    )
    result = evaluate(facts)
    if not intent.legs:
        return result
    verdicts = list(result.verdicts)
    for leg in intent.legs:
        # The token binds the whole bracket: a leg is judged with the parent's token check.
        leg_result = evaluate(dataclasses.replace(facts, intent=leg))
        for verdict in leg_result.verdicts:
            if verdict.outcome != "refuse" or verdict.gate not in LEG_GATES:
                continue
            named = Verdict(
                verdict.gate, "refuse", f"{leg.role} leg: {verdict.reason}", verdict.remedy
            )
            index = next((i for i, v in enumerate(verdicts) if v.gate == verdict.gate), None)
            if index is None:
                verdicts.append(named)
            elif verdicts[index].outcome != "refuse":
                verdicts[index] = named
    refused = next((v for v in verdicts if v.outcome == "refuse"), None)
    held = None if refused is not None or result.dry_run else result.held
    return ChainResult(
        verdicts=tuple(verdicts),
        refused=refused,
        dry_run=result.dry_run,
        allowed=refused is None and not result.dry_run and held is None,
        held=held,
        counted_through=result.counted_through,
    )


def passed_line(result: ChainResult) -> str:
    """The gates that did not refuse, in one line (``dry_run`` and ``skip`` marked)."""
    names = [
        v.gate if v.outcome == "allow" else f"{v.gate} ({v.outcome})"
        for v in result.verdicts
        if v.outcome != "refuse"
    ]
    return f"{len(names)} passed: {', '.join(names)}" if names else "none passed"


def refusals(result: ChainResult) -> list[GateVerdict]:
    """The refusing gates in full (gate, reason, remedy)."""
    return [
        GateVerdict(gate=v.gate, outcome=v.outcome, reason=v.reason, remedy=v.remedy)
        for v in result.verdicts
        if v.outcome == "refuse"
    ]


def _chain_fields(ctx: CallContext, intent: OrderIntent, result: ChainResult) -> dict[str, Any]:
    outcome = "refused" if result.refused else ("dry_run" if result.dry_run else "allowed")
    return {
        "correlation_id": ctx.correlation_id,
        "kind": "gate",
        "tool": ctx.tool,
        "surface": ctx.surface,
        "arguments": {"fingerprint": intent.fingerprint()},
        "outcome": outcome,
        "safety": safety_snapshot(ctx.services.settings),
        "detail": {
            "verdicts": [
                {"gate": v.gate, "outcome": v.outcome, "reason": v.reason} for v in result.verdicts
            ]
        },
    }


def chain_row(ctx: CallContext, intent: OrderIntent, result: ChainResult) -> Row:
    """The gate decision row of an allowed order, to commit together with its intent row."""
    return ctx.services.audit.event_row(**_chain_fields(ctx, intent, result))


async def record_chain(ctx: CallContext, intent: OrderIntent, result: ChainResult) -> None:
    """The gate decision row (and the refusal metric)."""
    if result.refused is not None:
        metrics.GATE_REFUSALS.labels(result.refused.gate).inc()
    await ctx.services.audit.record_event(**_chain_fields(ctx, intent, result))
