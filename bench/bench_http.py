"""HTTP benchmark: cached quotes under 50 concurrent clients vs a bare FastAPI route.

The server is the real ``ibkr-mcp start-api --sim`` (uvicorn, one event loop, embedded
simulator) in a subprocess on an ephemeral loopback port, with ``QUOTE_CACHE_SECONDS=1``; the
load is GET /api/market/quote over 4 symbols from 50 keep-alive connections, closed loop, sent
by ``_loadgen.py`` in a process of its own (a lean raw-socket client: a Python HTTP client in
the benchmark's process spent more CPU per request than the route it measured and made the
tail itself). The baseline, measured in the same run with the same generator, is a bare FastAPI
app under uvicorn whose one route returns a constant JSON object: the framework's own floor.

Targets: throughput >= 0.5x the bare route, and p99 <= 3x p50 (each cache expiry must not turn
into 50 simultaneous broker requests, nor make anyone wait for the refresh).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import free_port, pct
from _results import record

HOST = "127.0.0.1"
WORKERS = 50
SYMBOLS = ("AAPL", "MSFT", "SPY", "QQQ")
MAX_REQUESTS = int(os.environ.get("BENCH_HTTP_REQUESTS", "200000"))
MAX_SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
WARMUP_SECONDS = 1.0
EXE = str(Path(sys.executable).with_name("ibkr-mcp"))
LOADGEN = Path(__file__).with_name("_loadgen.py")

BARE = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/api/market/quote")
async def quote(symbol: str) -> dict:
    return {"symbol": symbol, "bid": 1.0, "ask": 1.01}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""


def load(port: int) -> tuple[float, list[float]]:
    """Run the load generator (its own process) against ``port``; (req/s, latencies in s)."""
    paths = [f"/api/market/quote?symbol={symbol}" for symbol in SYMBOLS]
    args = [str(a) for a in (HOST, port, WORKERS, WARMUP_SECONDS, MAX_SECONDS, MAX_REQUESTS)]
    out = subprocess.run(
        [sys.executable, str(LOADGEN), *args, *paths], capture_output=True, check=True, text=True
    )
    result = json.loads(out.stdout)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests to port {port} were not 200")
    return float(result["rps"]), list(result["latencies"])


def wait_ready(server: subprocess.Popen[bytes], port: int) -> None:
    """Until every symbol's quote answers 200 (contract resolution, first quotes)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            for symbol in SYMBOLS:
                with socket.create_connection((HOST, port), timeout=10) as sock:
                    sock.sendall(
                        f"GET /api/market/quote?symbol={symbol} HTTP/1.1\r\nHost: {HOST}\r\n"
                        "Connection: close\r\n\r\n".encode()
                    )
                    if not sock.makefile("rb").read().startswith(b"HTTP/1.1 200"):
                        raise OSError("not ready")
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server on port {port} did not become ready") from None
            time.sleep(0.1)


def run(cmd: list[str], port: int, env: dict[str, str]) -> tuple[float, list[float]]:
    """Start the server ``cmd``, wait until it answers, load it, stop it."""
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=env["DATA_DIR"]
    )
    try:
        wait_ready(server, port)
        return load(port)
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    """Bare FastAPI route, then our cached quote route; record the ratios."""
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    env.update(DATA_DIR=tmp, QUOTE_CACHE_SECONDS="1", LOG_LEVEL="ERROR")
    bare_file = Path(tmp) / "bare_app.py"
    bare_file.write_text(BARE, encoding="utf-8")
    port = free_port()
    bare_rps, bare_lat = run([sys.executable, str(bare_file), str(port)], port, env)
    port = free_port()
    ours_rps, ours_lat = run([EXE, "start-api", "--sim", "--port", str(port)], port, env)
    print(
        f"GET /api/market/quote over {len(SYMBOLS)} symbols, {WORKERS} connections "
        "(closed loop, separate process), cache 1 s"
    )
    print(f"{'variant':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} {'n':>7}")
    for name, rps, lat in (
        ("bare FastAPI route", bare_rps, bare_lat),
        ("ibkr-mcp", ours_rps, ours_lat),
    ):
        p50, p99 = pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000
        print(f"{name:<24} {rps:9.1f} {p50:8.2f} {p99:8.2f} {p99 / p50:8.2f} {len(lat):7d}")
    record(
        "HTTP cached quotes throughput (req/s)",
        ours_rps,
        bare_rps,
        unit="/s",
        target=0.5,
        higher_is_better=True,
        baseline_name="bare FastAPI route, same generator and concurrency",
    )
    record(
        "HTTP cached quotes p99 vs own p50",
        pct(ours_lat, 0.99) * 1000,
        pct(ours_lat, 0.5) * 1000,
        target=3.0,
        baseline_name="the same run's p50",
    )


if __name__ == "__main__":
    main()
