"""Human approval out of band: queued orders, decisions and their outcomes, all in the audit DB.

An order that needs approval is recorded as a ``pending_approval`` order event (with the request
and the id of the server that queued it); a human's decision is an ``approved``/``denied`` row
(one per approval, enforced under the audit write lock); the queuing server sends an approved
order itself after re-running every gate, and its ``intent`` row (one per key, also enforced
under the write lock) makes the send happen exactly once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ibkr_mcp.audit._codec import utc_iso
from ibkr_mcp.errors import InvalidInputError, OrderNotFoundError
from ibkr_mcp.models import json_number

if TYPE_CHECKING:
    from ibkr_mcp.audit import AuditLog

ApprovalState = Literal["pending", "approved", "denied", "expired", "sent", "refused", "failed"]
#: How long after its expiry an approved approval's server may still record a late refusal (its
#: runner reads approvals this recent); after that it is shown as expired.
LATE_GRACE = timedelta(hours=1)

#: The order terms the audit row keeps as exact decimal text (``dec_text``).
_DECIMAL_TERMS = frozenset({"quantity", "limit_price"})
_ROWS = (
    "SELECT * FROM order_events WHERE idempotency_key IN (SELECT idempotency_key FROM "
    "order_events WHERE event = 'pending_approval' {where}) ORDER BY seq"
)
#: Events after an approval that end it (the order was handled by the queuing server).
_OUTCOMES = {
    "intent": "sent",
    "sent": "sent",
    "rejected": "failed",
    "uncertain": "sent",
    "refused": "refused",
    "dry_run": "refused",
}


def new_approval_id() -> str:
    """A fresh approval id (``apr_`` + 16 hex chars)."""
    return "apr_" + secrets.token_hex(8)


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    if not row.get("detail"):
        return {}
    loaded = orjson.loads(row["detail"])
    return loaded if isinstance(loaded, dict) else {}


@dataclass(frozen=True, slots=True)
class Approval:
    """One queued order and what became of it.

    Attributes:
        approval_id: The id a human approves or denies.
        idempotency_key: The order's idempotency key (its rows in the audit share it).
        state: ``pending``, ``approved`` (not sent yet), ``denied``, ``expired``, ``sent``,
            ``refused`` (a gate refused it on the re-run) or ``failed``.
        created_at: When it was queued.
        expires_at: When an undecided or unsent approval lapses.
        order: The order's terms (account, symbol, side, quantity, type, limit, tif).
        request: The tool's input as queued (without the confirmation token).
        server: The id of the server process that queued it (and will send it).
        origin: Who asked for the order (surface, MCP client, correlation id).
        verdicts: The gates' verdicts when it was queued.
        decided_by: Who approved or denied it.
        decided_at: When.
        reason: The denial's reason, or why it ended.
        order_id: The broker's order id once sent.
        status: The broker's last status once sent.
        tool: The tool that queued it (``place_order``, ``modify_order``, ``close_position``).
        modifies: The working order a queued modify_order changes.
    """

    approval_id: str
    idempotency_key: str
    state: ApprovalState
    created_at: datetime
    expires_at: datetime
    order: dict[str, Any]
    request: dict[str, Any]
    server: str | None
    origin: dict[str, Any] = field(default_factory=dict)
    verdicts: list[str] = field(default_factory=list)
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    order_id: int | None = None
    status: str | None = None
    tool: str = "place_order"
    modifies: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (CLI ``--json``, HTTP, the MCP resource)."""
        return {
            "approval_id": self.approval_id,
            "tool": self.tool,
            "modifies": self.modifies,
            "idempotency_key": self.idempotency_key,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            # The audit row keeps quantity and limit price as exact text; out, they are
            # numbers like in every other output.
            "order": {
                k: json_number(Decimal(v)) if k in _DECIMAL_TERMS and v is not None else v
                for k, v in self.order.items()
            },
            "origin": self.origin,
            "verdicts": self.verdicts,
            "decided_by": self.decided_by,
            "decided_at": None if self.decided_at is None else self.decided_at.isoformat(),
            "reason": self.reason,
            "order_id": self.order_id,
            "status": self.status,
        }


def _fold(rows: list[dict[str, Any]], now: datetime) -> Approval | None:
    pending = next((r for r in rows if r["event"] == "pending_approval"), None)
    if pending is None:
        return None
    info = _detail(pending)
    created = datetime.fromisoformat(pending["ts"])
    expires = datetime.fromisoformat(info["expires_at"])
    state: ApprovalState = "pending"
    decided_by = reason = status = None
    decided_at: datetime | None = None
    order_id: int | None = info.get("modifies")
    for row in rows:
        event, detail = row["event"], _detail(row)
        if event in ("approved", "denied", "expired"):
            state = event
            decided_by = detail.get("by")
            decided_at = datetime.fromisoformat(row["ts"])
            reason = detail.get("reason")
        elif event in _OUTCOMES and row["seq"] > pending["seq"]:
            state = _OUTCOMES[event]  # type: ignore[assignment]
            if event == "refused":
                reason = detail.get("reason") or detail.get("gate")
        if row.get("order_id") is not None:
            order_id = row["order_id"]
        if row.get("status") and row["seq"] > pending["seq"] and event != "pending_approval":
            status = row["status"]
    if state == "pending" and now >= expires:
        state = "expired"
    elif state == "approved" and now >= expires + LATE_GRACE:
        # Approved in time, never acted on by its server (down all along): nothing was sent.
        state = "expired"
        reason = reason or "approved, but not sent before the approval expired"
    return Approval(
        approval_id=info["approval_id"],
        idempotency_key=pending["idempotency_key"],
        state=state,
        created_at=created,
        expires_at=expires,
        order={
            k: pending.get(k)
            for k in ("account", "symbol", "con_id", "side", "quantity", "order_type")
        }
        | {"limit_price": pending.get("limit_price"), "tif": pending.get("tif")},
        request=info.get("request") or {},
        server=info.get("server"),
        origin=info.get("origin") or {},
        verdicts=list(info.get("verdicts") or []),
        decided_by=decided_by,
        decided_at=decided_at,
        reason=reason,
        order_id=order_id,
        status=status,
        tool=info.get("tool") or "place_order",
        modifies=info.get("modifies"),
    )


async def list_approvals(
    audit: AuditLog,
    now: datetime,
    *,
    states: frozenset[str] | None = None,
    queued_since: datetime | None = None,
) -> list[Approval]:
    """Every approval (optionally only those in ``states``), oldest first.

    ``queued_since``: only approvals queued at or after it (the runner's polls: reading every
    approval ever queued four times a second grew with the history).
    """
    if queued_since is None:
        rows = await audit.query(_ROWS.format(where=""))
    else:
        rows = await audit.query(_ROWS.format(where="AND ts >= ?"), (utc_iso(queued_since),))
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(row["idempotency_key"], []).append(row)
    out = [a for a in (_fold(r, now) for r in by_key.values()) if a is not None]
    return [a for a in out if states is None or a.state in states]


async def find_approval(audit: AuditLog, ref: str, now: datetime) -> Approval | None:
    """The approval with id or idempotency key ``ref``, or ``None``."""
    for approval in await list_approvals(audit, now):
        if ref in (approval.approval_id, approval.idempotency_key):
            return approval
    return None


async def get_approval(audit: AuditLog, approval_id: str, now: datetime) -> Approval:
    """One approval by id.

    Raises:
        OrderNotFoundError: If there is no such approval.
    """
    for approval in await list_approvals(audit, now):
        if approval.approval_id == approval_id:
            return approval
    raise OrderNotFoundError(
        f"No approval {approval_id!r}.",
        remedy="List them with `ibkr-mcp approvals list` (or GET /api/approvals).",
        details={"approval_id": approval_id},
    )


async def decide(
    audit: AuditLog,
    approval_id: str,
    *,
    approve: bool,
    by: str,
    reason: str | None,
    now: datetime,
    correlation_id: str | None = None,
) -> Approval:
    """Record a human's decision (the queuing server picks an approval up and sends it).

    Raises:
        OrderNotFoundError: Unknown approval.
        InvalidInputError: Already decided, or expired.
        IdempotencyConflictError: Another decider won the race (under the audit write lock).
    """
    approval = await get_approval(audit, approval_id, now)
    if approval.state != "pending":
        raise InvalidInputError(
            f"Approval {approval_id} is {approval.state}; only a pending approval can be decided.",
            remedy="Ask the agent to place the order again if it is still wanted.",
            details={"approval_id": approval_id, "state": approval.state},
        )
    order = approval.order
    await audit.record_order_event(
        correlation_id=correlation_id,
        event="approved" if approve else "denied",
        idempotency_key=approval.idempotency_key,
        account=order.get("account"),
        symbol=order.get("symbol"),
        con_id=order.get("con_id"),
        detail={"approval_id": approval_id, "by": by, "reason": reason},
    )
    return await get_approval(audit, approval_id, now)


async def expire(audit: AuditLog, approval: Approval, now: datetime) -> None:
    """Record that an approval lapsed unsent (called by the queuing server)."""
    await audit.record_order_event(
        correlation_id=None,
        event="expired",
        idempotency_key=approval.idempotency_key,
        account=approval.order.get("account"),
        symbol=approval.order.get("symbol"),
        detail={
            "approval_id": approval.approval_id,
            "by": "system",
            "reason": f"not sent before it expired at {approval.expires_at.isoformat()}",
            "expired_at": now.isoformat(),
        },
    )


def expires_at(now: datetime, ttl_seconds: int) -> datetime:
    """When an approval queued ``now`` lapses."""
    return now + timedelta(seconds=ttl_seconds)
