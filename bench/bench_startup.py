"""Stdio cold start: spawn → tools/list served, and → first get_quote answered, vs a bare server.

The baseline is a one-tool FastMCP server spawned the same way in the same run (the framework's
own floor). Medians over several spawns; bytecode is warm for both.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import record

RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "21"))

BARE = """
from fastmcp import FastMCP
mcp = FastMCP("bare")
@mcp.tool
def noop(symbol: str) -> dict:
    return {"symbol": symbol}
mcp.run(show_banner=False)
"""


def _messages(call_quote: bool) -> str:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"}}}  # fmt: skip
    msgs: list[dict[str, object]] = [
        init,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    if call_quote:
        msgs.append({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                     "params": {"name": "get_quote", "arguments": {"symbol": "AAPL"}}})  # fmt: skip
    return "".join(json.dumps(m) + "\n" for m in msgs)


def spawn(cmd: list[str], *, call_quote: bool) -> tuple[float, float]:
    """Seconds from spawn to the tools/list answer, and to the get_quote answer (or nan)."""
    env = {**os.environ, "LOG_LEVEL": "ERROR", "DATA_DIR": tempfile.mkdtemp()}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=env, text=True,
    )  # fmt: skip
    assert proc.stdin and proc.stdout
    proc.stdin.write(_messages(call_quote))
    proc.stdin.flush()
    listed = quoted = float("nan")
    for line in proc.stdout:
        compact = line.replace(" ", "")
        if '"id":2' in compact:
            listed = time.perf_counter() - t0
            if not call_quote:
                break
        elif '"id":3' in compact:
            quoted = time.perf_counter() - t0
            if '"isError":true' in compact or "error" in compact[:60]:
                print("  first get_quote failed:", line[:200].strip())
            break
    proc.kill()
    proc.wait()
    return listed, quoted


def main() -> None:
    """Spawn each server RUNS times (interleaved) and record medians."""
    exe = str(Path(sys.executable).with_name("ibkr-mcp"))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(BARE)
    bare_cmd = [sys.executable, fh.name]
    ours_cmd = [exe, "serve", "--sim"]
    spawn(bare_cmd, call_quote=False)  # warm the page cache for both
    spawn(ours_cmd, call_quote=True)
    bare: list[float] = []
    ours: list[float] = []
    first_quote: list[float] = []
    for _ in range(RUNS):
        bare.append(spawn(bare_cmd, call_quote=False)[0])
        listed, quoted = spawn(ours_cmd, call_quote=True)
        ours.append(listed)
        first_quote.append(quoted)
    b, o, q = (statistics.median(x) * 1000 for x in (bare, ours, first_quote))
    print(f"bare one-tool FastMCP server: spawn -> tools/list {b:7.1f} ms (median of {RUNS})")
    print(f"ibkr-mcp serve --sim:         spawn -> tools/list {o:7.1f} ms ({o / b:.2f}x)")
    print(f"ibkr-mcp serve --sim:         spawn -> get_quote  {q:7.1f} ms ({q / b:.2f}x)")
    base = "bare one-tool FastMCP stdio server, tools/list"
    record("stdio cold start: spawn -> tools/list", o, b, target=1.10, baseline_name=base)
    record("stdio cold start: spawn -> first get_quote", q, b, target=1.40, baseline_name=base)
    os.unlink(fh.name)


if __name__ == "__main__":
    main()
