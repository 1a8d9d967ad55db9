"""JSON responses rendered with orjson, and the one error body every HTTP error uses."""

from __future__ import annotations

import math
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from ibkr_mcp.errors import IbkrMcpError, http_status


class OrjsonResponse(Response):
    """``application/json`` rendered by orjson (FastAPI's ORJSONResponse is deprecated)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialize ``content``; anything orjson cannot encode natively becomes a string."""
        return orjson.dumps(content, default=str)


class ErrorInfo(BaseModel):
    """The error object (``IbkrMcpError.to_dict()``), documented for OpenAPI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    message: str
    remedy: str | None = None
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message", "remedy", "details"}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error: ErrorInfo


def error_response(exc: IbkrMcpError, headers: dict[str, str] | None = None) -> OrjsonResponse:
    """The HTTP response for ``exc``: status from ``errors.http_status``, body from ``to_dict``.

    An error that says when to retry (``details['retry_after_seconds']``: OVERLOADED,
    PACING_LIMIT) also gets a ``Retry-After`` header (whole seconds, at least 1).
    """
    retry_after = exc.details.get("retry_after_seconds")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        headers = {**(headers or {}), "Retry-After": str(max(1, math.ceil(retry_after)))}
    return OrjsonResponse({"error": exc.to_dict()}, status_code=http_status(exc), headers=headers)


def error_payload(code: str, message: str, remedy: str | None = None) -> bytes:
    """An error body as bytes, for the raw ASGI middleware (no exception object there)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if remedy:
        error["remedy"] = remedy
    return orjson.dumps({"error": error})
