"""The REST surface: routes generated from the tool registry, plus probes and MCP at /mcp."""

from __future__ import annotations

from ibkr_mcp.http_api.app import create_app
from ibkr_mcp.http_api.security import BindRefusedError, check_bind, is_loopback
from ibkr_mcp.http_api.server import build_server, run_api

__all__ = ["BindRefusedError", "build_server", "check_bind", "create_app", "is_loopback", "run_api"]
