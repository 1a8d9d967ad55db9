"""Helpers shared by the HTTP tests (imported by name: test dirs have no __init__)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ibkr_mcp.config import Settings
from ibkr_mcp.http_api import create_app

BASE_URL = "http://127.0.0.1"
TOKEN = "test-token-0123456789abcdef"


@asynccontextmanager
async def lifespan_running(app: Any) -> AsyncIterator[None]:
    """Run ``app``'s lifespan in a task of its own.

    The MCP session manager enters an anyio cancel scope that must be left by the task that
    entered it; pytest-asyncio sets fixtures up and tears them down in different tasks.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def own() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(own())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def http_client(
    settings: Settings, services: Any, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the ASGI app, with the app's lifespan running."""
    app = create_app(settings, services=services)
    async with lifespan_running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers=headers or {}
        ) as client:
            yield client


@asynccontextmanager
async def runtime_client(
    settings: Settings, headers: dict[str, str] | None = None, wait_connected: float = 5.0
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app whose own runtime uses ``settings`` (e.g. orders enabled)."""
    from ibkr_mcp.runtime import open_runtime

    async with (
        open_runtime(settings, wait_connected=wait_connected) as services,
        http_client(settings, services, headers) as client,
    ):
        yield client
