"""Helpers shared by the order tests: the registry, a standard order, calls, simulator reads."""

from __future__ import annotations

from typing import Any

from ibkr_mcp.tools import build_registry

REGISTRY = build_registry()
MKT10 = {"symbol": "AAPL", "side": "BUY", "quantity": 10, "order_type": "MKT"}


def sent_orders(sim: Any) -> list[Any]:
    """Orders that really reached the simulator (what-if previews excluded)."""
    return [o for o in sim.orders() if not o.what_if]


async def call(services: Any, tool: str, args: dict[str, Any]) -> Any:
    """One registry call through the full pipeline; returns the output model."""
    return (await REGISTRY.call(tool, args, services=services, surface="internal")).output


async def preview_and_place(services: Any, order: dict[str, Any], key: str) -> Any:
    """Preview ``order``, then place it with the preview's token under ``key``."""
    preview = await call(services, "preview_order", order)
    return await call(
        services,
        "place_order",
        {
            **order,
            # A refused preview issues no token; placing must still be refused by the gate.
            "confirmation_token": preview.confirmation_token or "no-token-was-issued",
            "idempotency_key": key,
        },
    )
