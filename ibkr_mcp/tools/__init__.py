"""Tool declarations, one module per capability; ``build_registry`` registers them all."""

from __future__ import annotations

from ibkr_mcp.tools.registry import CallContext, CallResult, Registry, ToolSpec


def build_registry() -> Registry:
    """The registry with every tool, in a stable order (the tool list order)."""
    from ibkr_mcp.tools import (
        account,
        approvals,
        contracts,
        health,
        market_data,
        options,
        order_actions,
        orders,
        trading,
    )

    registry = Registry()
    modules = (
        health, market_data, options, contracts, account, orders, trading, order_actions,
        approvals,
    )  # fmt: skip
    for module in modules:
        for spec in module.SPECS:
            registry.register(spec)
    return registry


__all__ = ["CallContext", "CallResult", "Registry", "ToolSpec", "build_registry"]
