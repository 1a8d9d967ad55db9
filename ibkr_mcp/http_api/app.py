"""The FastAPI app: generated /api routes, /health, /ready, /metrics and MCP at /mcp."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ibkr_mcp import __version__, metrics
from ibkr_mcp.config import Settings
from ibkr_mcp.errors import IbkrMcpError, InvalidInputError
from ibkr_mcp.http_api.control import add_control_routes
from ibkr_mcp.http_api.responses import OrjsonResponse, error_payload, error_response
from ibkr_mcp.http_api.routes import SECURED, add_tool_routes, install_openapi
from ibkr_mcp.http_api.security import RequestGuard
from ibkr_mcp.safety.emergency import current_halt
from ibkr_mcp.services import Services
from ibkr_mcp.tools.registry import Registry


class McpEndpoint:
    """ASGI app at ``/mcp`` that forwards to the FastMCP app built in the lifespan.

    The MCP server needs the running services, which only exist once the lifespan has
    opened the runtime; the route is registered up front and filled in then.
    """

    def __init__(self) -> None:
        """Start empty (503 until the lifespan sets ``app``)."""
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward to the MCP app, or answer 503 while it is not running."""
        if self.app is None:
            body = error_payload("GATEWAY_UNAVAILABLE", "The MCP endpoint is not running.")
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    sim: bool = False,
    services: Services | None = None,
    registry: Registry | None = None,
) -> FastAPI:
    """Build the HTTP app; its lifespan opens the runtime unless ``services`` are given.

    Args:
        settings: Effective settings (token, body limit, host).
        sim: Start the embedded simulator in the lifespan (ignored when ``services`` given).
        services: Already running services (tests); the lifespan then does not own them.
        registry: The tool registry (default: every tool).
    """
    from ibkr_mcp.tools import build_registry

    full = registry or build_registry()
    # A tool outside the enabled toolsets has no route (TOOLSETS, READ_ONLY); MCP filters its own.
    registry = full.enabled(settings.enabled_toolsets, "http")
    mcp_endpoint = McpEndpoint()
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ibkr_mcp.mcp_server import build_mcp
        from ibkr_mcp.runtime import freeze_heap, open_runtime

        async with AsyncExitStack() as stack:
            running = services
            if running is None:
                running = await stack.enter_async_context(open_runtime(settings, sim=sim))
            app.state.services = running
            mcp_app = build_mcp(running, full).http_app(path="/mcp", host_origin_protection=False)
            # FastMCP's session manager lives in its app's lifespan: run it inside ours.
            await stack.enter_async_context(mcp_app.router.lifespan_context(mcp_app))
            mcp_endpoint.app = mcp_app
            if services is None:
                freeze_heap()  # this process's own runtime is open: its heap is long-lived
            try:
                yield
            finally:
                mcp_endpoint.app = None

    # Swagger UI and ReDoc with their assets served from the app: the docs work offline.
    app = FastAPIOffline(
        title="mm-ibkr-gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        swagger_ui_parameters={"persistAuthorization": True},
        # FastAPI's native OpenTelemetry is not ours to use (no exporter, no docs); left on,
        # it asks the global OTel providers whether they are configured on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.registry = registry
    add_tool_routes(app, registry)
    add_control_routes(app, settings)
    install_openapi(app, registry, token_required=settings.API_TOKEN is not None)
    app.router.routes.append(Route("/mcp", endpoint=mcp_endpoint, include_in_schema=False))
    _add_handlers(app)
    _add_probes(app, settings, started)
    app.add_middleware(RequestGuard, settings=settings)
    return app


def _add_handlers(app: FastAPI) -> None:
    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IbkrMcpError)
        return error_response(exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        body = {"error": {"code": code, "message": str(exc.detail)}}
        return OrjsonResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        # Only reachable for routes that declare typed parameters (none of the generated
        # ones do); kept so any such error still has the common body shape.
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return error_response(
            InvalidInputError("Invalid request.", details={"errors": errors}),
        )

    app.add_exception_handler(IbkrMcpError, on_error)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


class HealthBody(BaseModel):
    """``GET /health``: the process answers (liveness)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["ok"]
    version: str
    trading_mode: Literal["paper", "live"]
    orders_enabled: bool
    uptime_seconds: float


class ReadyBody(BaseModel):
    """``GET /ready``: whether the broker connection is up (200) or not (503)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ready: bool
    #: connected, hung, reconnecting, upstream-lost, farm-down or halted (see the runbook).
    state: str
    summary: str
    #: Trading halted (emergency stop, kill switch, rejection breaker); see ``halt``.
    halted: bool
    #: The halt's reason, time and who engaged it, when halted.
    halt: dict[str, Any] | None
    connected: bool
    broker: str | None
    host: str
    port: int
    accounts: list[str]
    last_error: str | None
    #: The last session notice from IB: code, message, remedy, at, age_seconds.
    last_notice: dict[str, Any] | None
    #: Requests waiting / open per queue (market data, historical).
    queues: dict[str, int]


#: What the request guard answers on the token-protected probes before they run.
_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_GUARD_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong API token", "content": _ERROR_JSON},
    403: {"description": "Host not allowed without API_TOKEN", "content": _ERROR_JSON},
}
_METRICS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    **_GUARD_DOC,
}


def _add_probes(app: FastAPI, settings: Settings, started: float) -> None:
    # No response_class: FastAPI documents response models only for JSONResponse subclasses,
    # and the handlers return their OrjsonResponse themselves.
    @app.get("/health", tags=["probes"], response_model=HealthBody)
    async def health() -> Response:
        """Liveness: the process answers (never touches the broker)."""
        body = HealthBody(
            status="ok",
            version=__version__,
            trading_mode=settings.TRADING_MODE,
            orders_enabled=settings.ORDERS_ENABLED,
            uptime_seconds=round(time.monotonic() - started, 3),
        )
        return OrjsonResponse(body.model_dump(mode="json"))

    @app.get(
        "/ready",
        tags=["probes"],
        response_model=ReadyBody,
        responses={
            503: {"model": ReadyBody, "description": "Not connected to the broker"},
            **_GUARD_DOC,
        },
        openapi_extra=SECURED,
    )
    async def ready(request: Request) -> Response:
        """Readiness: 200 while the broker connection is up, 503 otherwise."""
        from ibkr_mcp.tools.health import health_state, notice_dict, readiness_summary

        services: Services = request.app.state.services
        status = await services.gateway.status()
        halt = current_halt(services.settings)
        state = health_state(status, halt.halted)
        metrics.observe_gateway(status, state)
        body = ReadyBody(
            ready=status.connected,
            state=state,
            summary=readiness_summary(services.settings, status, state),
            # Still 200 while halted (the gateway is usable: reads, cancels); it says so.
            halted=halt.halted,
            halt=halt.to_dict() if halt.halted else None,
            connected=status.connected,
            broker=status.broker,
            host=status.host,
            port=status.port,
            accounts=list(status.accounts),
            last_error=status.last_error,
            last_notice=notice_dict(status),
            queues=dict(status.queues),
        )
        return OrjsonResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)

    @app.get(
        "/metrics",
        tags=["probes"],
        response_class=PlainTextResponse,
        responses=_METRICS_DOC,
        openapi_extra=SECURED,
    )
    async def prometheus(request: Request) -> Response:
        """Prometheus text exposition of the server's own metrics registry."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        services: Services | None = getattr(request.app.state, "services", None)
        if services is not None:
            from ibkr_mcp.tools.health import halted, health_state

            status = await services.gateway.status()
            metrics.observe_gateway(status, health_state(status, halted(services.settings)))
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
