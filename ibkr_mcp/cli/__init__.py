"""Command line surface: one Typer app (``app``) and its two entry points, one module per group."""

from ibkr_mcp.cli.app import app, main_gateway, main_mcp

__all__ = ["app", "main_gateway", "main_mcp"]
