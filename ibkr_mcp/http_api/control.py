"""Human control routes (whatever the toolsets): emergency stop and out-of-band approvals.

``POST /api/emergency-stop`` engages the halt (like the kill-switch file, anyone who may call the
API may stop trading). Clearing it (``DELETE``) and deciding approvals need ``API_TOKEN``
configured *and* presented: without a token there is no way to tell a human from an agent.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response

from ibkr_mcp.errors import AuthError, InvalidInputError
from ibkr_mcp.http_api.responses import OrjsonResponse
from ibkr_mcp.safety.approvals import decide, get_approval, list_approvals
from ibkr_mcp.safety.emergency import clear_emergency_stop, current_halt, emergency_stop

if TYPE_CHECKING:
    from ibkr_mcp.config import Settings
    from ibkr_mcp.services import Services


def _token_id(settings: Settings) -> str:
    token = settings.API_TOKEN
    if token is None:
        raise AuthError(
            "This route is for humans and needs API_TOKEN configured and presented.",
            remedy="Set API_TOKEN on the server and send 'Authorization: Bearer <API_TOKEN>' "
            "(or use the CLI: `ibkr-mcp emergency-stop --clear`, `ibkr-mcp approvals`).",
        )
    # The guard already compared the presented token; only an id of it is ever recorded.
    digest = hashlib.sha256(token.get_secret_value().encode()).hexdigest()[:12]
    return f"http:token:{digest}"


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInputError("The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise InvalidInputError("The request body must be a JSON object.")
    return data


def _reason(data: dict[str, Any], default: str) -> str:
    reason = data.get("reason", default)
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidInputError(
            "reason must be a string of at most 500 characters.",
            details={"errors": [{"field": "reason", "message": "string, ≤ 500 characters"}]},
        )
    return reason or default


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
#: What these routes answer, for OpenAPI (bodies are JSON objects; errors the common body).
_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The state as a JSON object",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    **{
        status: {"description": text, "content": _ERROR}
        for status, text in (
            (401, "Needs API_TOKEN configured and presented"),
            (403, "Host not allowed without API_TOKEN"),
            (404, "Unknown approval"),
            (409, "Approval already decided or expired"),
            (422, "Invalid input"),
            (503, "Not connected / audit unavailable"),
        )
    },
}


def add_control_routes(app: FastAPI, settings: Settings) -> None:
    """Add the emergency-stop and approval routes (they exist whatever TOOLSETS says)."""

    def services_of(request: Request) -> Services:
        running: Services = request.app.state.services
        return running

    @app.get("/api/emergency-stop", tags=["control"], responses=_DOC)
    async def halt_state(request: Request) -> Response:
        """The halt in force (emergency stop, rejection breaker or kill-switch file)."""
        return OrjsonResponse(current_halt(settings).to_dict())

    @app.post("/api/emergency-stop", tags=["control"], responses=_DOC)
    async def stop(request: Request) -> Response:
        """Halt trading and cancel every open order at the broker (IB global cancel)."""
        data = await _json(request)
        reason = _reason(data, "emergency stop over HTTP")
        by = _token_id(settings) if settings.API_TOKEN is not None else "http:loopback"
        result = await emergency_stop(services_of(request), reason=reason, by=by)
        return OrjsonResponse(result.to_dict())

    @app.delete("/api/emergency-stop", tags=["control"], responses=_DOC)
    async def clear(request: Request) -> Response:
        """Clear the halt (a human with the API token only)."""
        by = _token_id(settings)
        running = services_of(request)
        before = await clear_emergency_stop(running.audit, settings, by=by, now=running.now())
        return OrjsonResponse({"cleared": True, "was": before.to_dict()})

    @app.get("/api/approvals", tags=["control"], responses=_DOC)
    async def approvals(request: Request) -> Response:
        """Orders waiting for a human (``?all=true``: every approval)."""
        _token_id(settings)
        running = services_of(request)
        every = request.query_params.get("all", "").lower() in ("1", "true", "yes")
        states = None if every else frozenset({"pending"})
        found = await list_approvals(running.audit, running.now(), states=states)
        return OrjsonResponse({"approvals": [a.to_dict() for a in found]})

    async def _decide(request: Request, approval_id: str, approve: bool) -> Response:
        by = _token_id(settings)
        running = services_of(request)
        data = await _json(request)
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInputError("reason must be a string.")
        await get_approval(running.audit, approval_id, running.now())
        approval = await decide(
            running.audit,
            approval_id,
            approve=approve,
            by=by,
            reason=reason,
            now=running.now(),
            correlation_id=getattr(request.state, "correlation_id", None),
        )
        return OrjsonResponse(approval.to_dict())

    @app.post("/api/approvals/{approval_id}/approve", tags=["control"], responses=_DOC)
    async def approve(request: Request, approval_id: str) -> Response:
        """Approve a queued order (the queuing server re-runs every gate and sends it once)."""
        return await _decide(request, approval_id, True)

    @app.post("/api/approvals/{approval_id}/deny", tags=["control"], responses=_DOC)
    async def deny(request: Request, approval_id: str) -> Response:
        """Deny a queued order; nothing is sent."""
        return await _decide(request, approval_id, False)
