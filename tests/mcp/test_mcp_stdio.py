"""The real stdio entry point (`ibkr-mcp serve --sim`) driven by the official mcp SDK client."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


@pytest.mark.slow
async def test_stdio_initialize_list_and_quote(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ibkr-mcp")
    params = StdioServerParameters(
        command=str(exe),
        args=["serve", "--sim"],
        env={"DATA_DIR": str(tmp_path), "PATH": os.environ.get("PATH", ""), "LOG_LEVEL": "INFO"},
        cwd=str(tmp_path),
    )
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            assert init.server_info.name == "ibkr-mcp"
            tools = await session.list_tools()
            names = {t.name for t in tools.tools}
            assert {"get_quote", "place_order", "get_health"} <= names
            result = await session.call_tool("get_quote", {"symbol": "AAPL"})
            assert not result.is_error, result.content
            quote = json.loads(result.content[0].text)
            assert quote["symbol"] == "AAPL"
            assert quote["source"] == "simulator"
    # Logs went to stderr (our file), and stdout carried only protocol messages.
    assert "simulator" in (tmp_path / "stderr.log").read_text().lower()
    assert (tmp_path / "data" / "audit.db").exists()
