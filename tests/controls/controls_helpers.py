"""Helpers for the control tests: runtimes on a shared data dir, orders, simulator reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from ibkr_mcp.tools import build_registry

REGISTRY = build_registry()
#: A LMT order that rests (far below the market) and is cheap: 1 × 100 USD.
RESTING = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT",
           "limit_price": "100.00"}  # fmt: skip


def sent_orders(sim: Any) -> list[Any]:
    """Orders that really reached the simulator (what-if previews excluded)."""
    return [o for o in sim.orders() if not o.what_if]


async def call(services: Any, tool: str, args: dict[str, Any], surface: str = "internal") -> Any:
    """One registry call through the full pipeline; returns the output model."""
    result = await REGISTRY.call(tool, args, services=services, surface=surface)  # type: ignore[arg-type]
    return result.output


async def place(services: Any, order: dict[str, Any], key: str) -> Any:
    """Preview ``order`` then place it under ``key`` (a refused preview still tries to place)."""
    preview = await call(services, "preview_order", order)
    token = preview.confirmation_token or "no-token-was-issued"
    return await call(
        services, "place_order", {**order, "confirmation_token": token, "idempotency_key": key}
    )


async def modify(services: Any, change: dict[str, Any], key: str) -> Any:
    """Preview ``change`` with modify_order, then confirm it under ``key``; the sent result."""
    preview = await call(services, "modify_order", change)
    token = preview.preview.confirmation_token
    done = await call(
        services, "modify_order", {**change, "confirmation_token": token, "idempotency_key": key}
    )
    return done.result


def resting(n: int, **overrides: Any) -> dict[str, Any]:
    """The ``n``-th distinct resting order (quantity n, so no two are duplicates)."""
    return {**RESTING, "quantity": n, **overrides}


@asynccontextmanager
async def runtime(settings: Any) -> AsyncIterator[Any]:
    """One server process's runtime (gateway + audit + approval runner)."""
    from ibkr_mcp.runtime import open_runtime

    async with open_runtime(settings, wait_connected=5.0) as services:
        assert services.gateway.connected
        yield services


def dec(value: Any) -> Decimal:
    """``Decimal(str(value))``."""
    return Decimal(str(value))


@asynccontextmanager
async def http(settings: Any, services: Any, token: str | None = None) -> AsyncIterator[Any]:
    """An httpx client on the ASGI app (lifespan run in a task of its own, like tests/http)."""
    import asyncio

    import httpx

    from ibkr_mcp.http_api import create_app

    app = create_app(settings, services=services)
    started, stop = asyncio.Event(), asyncio.Event()

    async def own() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(own())
    await started.wait()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", headers=headers
        ) as client:
            yield client
    finally:
        stop.set()
        await task
