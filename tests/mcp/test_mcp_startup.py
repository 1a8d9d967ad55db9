"""Cold start: MCP answers the handshake before the runtime is open; the first call waits for it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

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
        # numpy._core: numpy itself may be a stand-in until first use (gateway/__init__.py).
        "heavy = ['typer', 'ib_async', 'numpy._core', 'fastapi',\n"
        "         'ibkr_mcp.simulator']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


def _listing(tools: list[Any]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json", exclude_none=True) for t in tools]


async def test_cached_tool_list_is_the_registrys_and_calls_load_the_tools(
    services: Services, tmp_path: Path
) -> None:
    from ibkr_mcp.tool_catalog import catalog_path, load_entries

    async with Client(build_mcp(services)) as client:
        built = _listing(await client.list_tools())
        resources = _listing(await client.list_resources())
        templates = _listing(await client.list_resource_templates())
        prompts = _listing(await client.list_prompts())
    cache = tmp_path / "cache"
    first = build_mcp(services, cache_dir=cache)  # no cache yet: built and written
    assert load_entries(catalog_path(cache)) is not None
    second = build_mcp(services, cache_dir=cache)  # served from the cache
    for server in (first, second):
        async with Client(server) as client:
            assert _listing(await client.list_tools()) == built
            quote = await client.call_tool("get_quote", {"symbol": "AAPL"})
            assert quote.structured_content is not None
            assert quote.structured_content["symbol"] == "AAPL"
            bad = await client.call_tool("get_quote", {"symbol": ""}, raise_on_error=False)
            assert bad.is_error and "INVALID_INPUT" in bad.content[0].text  # type: ignore[union-attr]
    # Resources and prompts are registered at the first request that needs them: the same.
    for ask in ("resources", "templates", "prompts", "read", "render"):
        async with Client(build_mcp(services, cache_dir=cache)) as client:
            if ask == "resources":
                assert _listing(await client.list_resources()) == resources
            elif ask == "templates":
                assert _listing(await client.list_resource_templates()) == templates
            elif ask == "prompts":
                assert _listing(await client.list_prompts()) == prompts
            elif ask == "read":
                read = await client.read_resource("ibkr://safety/policy")
                assert "ORDERS_ENABLED" in read[0].text  # type: ignore[union-attr]
            else:
                name = prompts[0]["name"]
                args = {a["name"]: "AAPL" for a in prompts[0].get("arguments", [])}
                rendered = await client.get_prompt(name, args)
                assert rendered.messages


def test_a_cache_for_other_code_or_a_damaged_one_is_never_served(tmp_path: Path) -> None:
    import orjson

    from ibkr_mcp.tool_catalog import catalog_path, load_entries, mcp_entries

    cache = tmp_path / "cache"
    cache.mkdir()
    # A cache from another build (another key) carrying a made-up tool is not read...
    stale = cache / "tools-0000000000000000.json"
    stale.write_bytes(orjson.dumps({"format": 1, "tools": [{"name": "made_up"}]}))
    entries, _ = mcp_entries(cache, frozenset({"read", "trade"}))
    assert "made_up" not in {e["name"] for e in entries} and "get_quote" in {
        e["name"] for e in entries
    }
    assert not stale.exists()  # ...and is removed once the current one is written
    # A damaged cache file for this very code is rebuilt, not served.
    path = catalog_path(cache)
    path.write_bytes(b"{not json")
    assert load_entries(path) is None
    entries, _ = mcp_entries(cache, frozenset({"read"}))
    assert {e["toolset"] for e in entries} == {"read"}
    assert load_entries(path) is not None


def test_stdio_path_with_a_cached_tool_list_imports_no_tool_module(tmp_path: Path) -> None:
    # Second start of `serve`: the tool list comes from the cache; the tools load at first call.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ibkr_mcp.config import load_settings\n"
        "from ibkr_mcp.mcp_server import build_mcp\n"
        "from ibkr_mcp.services import ServicesHandle\n"
        "settings = load_settings(_env_file=None, DATA_DIR=sys.argv[1])\n"
        "handle = ServicesHandle(settings, timeout=1)\n"
        "build_mcp(handle, cache_dir=Path(sys.argv[1]) / 'cache')\n"
        "heavy = ['ibkr_mcp.tools', 'ibkr_mcp.tools.registry', 'ib_async', 'prometheus_client']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    run = [sys.executable, "-c", code, str(tmp_path)]
    first = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True)
    assert "ibkr_mcp.tools" in first.stdout  # no cache yet: the registry was built
    again = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout.strip() == ""


def test_a_cached_tool_list_loads_only_the_called_tools_module(tmp_path: Path) -> None:
    # The first get_quote of a session must not wait for the order tools to import (issue 15).
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ibkr_mcp.tool_catalog import mcp_entries\n"
        "cache = Path(sys.argv[1])\n"
        "mcp_entries(cache, frozenset({'read', 'trade'}))\n"  # writes the cache
        "for m in [m for m in sys.modules if m.startswith('ibkr_mcp.tools')]:\n"
        "    del sys.modules[m]\n"
        "entries, lazy = mcp_entries(cache, frozenset({'read', 'trade'}))\n"
        "quote = lazy._for('get_quote')\n"
        "order_mods = ['ibkr_mcp.tools.trading', 'ibkr_mcp.tools.order_models']\n"
        "print(sorted(s.name for s in quote))\n"
        "print(','.join(m for m in order_mods if m in sys.modules))\n"
        "place = lazy._for('place_order')\n"
        "print('place_order' in place, 'ibkr_mcp.tools.trading' in sys.modules)\n"
        "print('get_positions' in lazy._for('no_such_tool'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    tools, loaded, place, whole = done.stdout.strip().splitlines()
    assert "get_quote" in tools and "place_order" not in tools
    assert loaded == ""
    assert place == "True True"
    assert whole == "True"  # an unknown name gets the whole registry (its error lists them)
