"""Command line surface: one Typer app (``app``) and its two entry points, one module per group."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main_gateway", "main_mcp"]

#: Argument lists that mean "serve MCP on stdio" and take the fast path (no Typer, no Rich).
_SERVE_ARGV: dict[tuple[str, ...], bool] = {(): False, ("serve",): False, ("serve", "--sim"): True}


def main_mcp() -> None:
    """Entry point of ``ibkr-mcp``: with no command, serve MCP over stdio.

    What MCP clients launch (``ibkr-mcp``, ``ibkr-mcp serve [--sim]``) skips building the whole
    Typer app: the stdio handshake is the user-visible start-up latency. Everything else, help
    included, goes through Typer.
    """
    sim = _SERVE_ARGV.get(tuple(sys.argv[1:]))
    if sim is not None:
        from ibkr_mcp.cli.serve import serve_stdio_fast

        serve_stdio_fast(sim=sim)
        return
    from ibkr_mcp.cli.main import main_mcp as run

    run()


def main_gateway() -> None:
    """Entry point of ``ibkr-gateway`` (the seed's name): with no command, print help."""
    from ibkr_mcp.cli.main import main_gateway as run

    run()


def __getattr__(name: str) -> Any:
    # ``from ibkr_mcp.cli import app`` still works, without importing Typer for ``serve``.
    if name == "app":
        from ibkr_mcp.cli.main import app

        return app
    raise AttributeError(name)
