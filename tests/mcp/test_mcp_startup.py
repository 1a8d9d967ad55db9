"""Cold start: MCP answers the handshake before the runtime is open; the first call waits for it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from fastmcp import Client

from ibkr_mcp.config import load_settings
from ibkr_mcp.errors import GatewayUnavailableError
from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.services import Services, ServicesHandle


async def test_tools_listed_before_runtime_and_first_call_waits(services: Services) -> None:
    handle = ServicesHandle(services.settings, timeout=5.0)
    async with Client(build_mcp(handle)) as client:
        tools = await client.list_tools()  # nothing of the runtime is needed for this
        assert "get_quote" in {t.name for t in tools}
        call = asyncio.create_task(client.call_tool("get_quote", {"symbol": "AAPL"}))
        await asyncio.sleep(0.05)
        assert not call.done(), "the call must wait for the runtime, not fail"
        handle.set(services)
        result = await asyncio.wait_for(call, 5)
        assert result.structured_content is not None
        assert result.structured_content["symbol"] == "AAPL"


async def test_first_call_times_out_with_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, DATA_DIR=tmp_path)
    handle = ServicesHandle(settings, timeout=0.05)
    async with Client(build_mcp(handle)) as client:
        result = await client.call_tool("get_quote", {"symbol": "AAPL"}, raise_on_error=False)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("GATEWAY_UNAVAILABLE: the server is still starting")


async def test_runtime_failure_is_named_on_every_call(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, DATA_DIR=tmp_path)
    handle = ServicesHandle(settings, timeout=5.0)
    handle.fail(OSError("audit directory is read-only"))
    with pytest.raises(GatewayUnavailableError, match="audit directory is read-only"):
        await handle.get()
    async with Client(build_mcp(handle)) as client:
        result = await client.call_tool("get_health", {}, raise_on_error=False)
    assert result.is_error
    assert "audit directory is read-only" in result.content[0].text  # type: ignore[union-attr]


def test_stdio_path_imports_neither_typer_nor_the_broker_stack() -> None:
    # What `ibkr-mcp serve` imports before it can answer `initialize`/`tools/list`.
    code = (
        "import sys\n"
        "import ibkr_mcp.cli, ibkr_mcp.cli.serve, ibkr_mcp.config, ibkr_mcp.logs\n"
        "from ibkr_mcp.mcp_server import build_mcp\n"
        "from ibkr_mcp.tools import build_registry\n"
        "build_registry()\n"
        "heavy = ['typer', 'ib_async', 'numpy', 'sqlite_utils', 'fastapi', 'ibkr_mcp.simulator']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
