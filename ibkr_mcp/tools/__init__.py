"""Tool declarations, one module per capability; ``build_registry`` registers them all."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any, Final

from ibkr_mcp.tools.registry import CallContext, CallResult, Registry, ToolSpec

#: The tool modules (``ibkr_mcp.tools.<name>``, each with ``SPECS``), in tool-list order.
MODULES: Final = (
    "health", "market_data", "options", "contracts", "account", "orders", "trading",
    "order_actions", "approvals",
)  # fmt: skip


def module_specs(name: str) -> tuple[ToolSpec[Any, Any], ...]:
    """The tools one module declares (imports it)."""
    specs: tuple[ToolSpec[Any, Any], ...] = importlib.import_module(f"ibkr_mcp.tools.{name}").SPECS
    return specs


def build_registry(modules: Iterable[str] = MODULES) -> Registry:
    """The registry with every tool of ``modules`` (default: all), in a stable order."""
    registry = Registry()
    for name in modules:
        for spec in module_specs(name):
            registry.register(spec)
    return registry


def tool_modules() -> dict[str, str]:
    """Each tool's module name (imports every tool module)."""
    return {spec.name: name for name in MODULES for spec in module_specs(name)}


__all__ = [
    "MODULES",
    "CallContext",
    "CallResult",
    "Registry",
    "ToolSpec",
    "build_registry",
    "module_specs",
    "tool_modules",
]
