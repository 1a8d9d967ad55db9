"""The real stdio entry point (`ibkr-mcp serve --sim`) driven by the official mcp SDK client."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return True


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_serve_sim_runs_the_simulator_in_a_process_that_ends_with_the_server(
    tmp_path: Path,
) -> None:
    """``serve --sim``: the simulator loads beside the server and never outlives it."""
    exe = Path(sys.executable).with_name("ibkr-mcp")
    env = {"DATA_DIR": str(tmp_path), "PATH": os.environ.get("PATH", ""), "LOG_LEVEL": "INFO"}
    log = tmp_path / "stderr.log"
    with (
        log.open("w") as err,
        subprocess.Popen(
            [str(exe), "serve", "--sim"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=err, env=env, cwd=tmp_path,
        ) as server,
    ):  # fmt: skip
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline:
            found = re.search(r"simulator \(process (\d+)\)", log.read_text())
            time.sleep(0.05)
        assert found is not None, log.read_text()
        child = int(found.group(1))
        assert child != server.pid and _alive(child)
        server.kill()  # however the server ends, even SIGKILL, the simulator ends too
        server.wait()
    assert _wait_gone(child, 20)
