"""Helpers the benches share: percentiles, a free loopback port, a simulator in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pct(values: list[float], p: float) -> float:
    """The ``p`` quantile of ``values`` (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def free_port() -> int:
    """An ephemeral loopback port (free at the time of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator_process(home: str, *extra: str) -> Iterator[int]:
    """Run ``ibkr-mcp sim`` in its own process, as IB Gateway would be; yields its port.

    A simulator in the benchmark's own event loop would bill its work (answering every
    request) to whatever is measured; in its own process it runs beside it, like the real one.
    """
    port = free_port()
    exe = str(Path(sys.executable).with_name("ibkr-mcp"))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "LOG_LEVEL": "ERROR"}
    sim = subprocess.Popen(
        [exe, "sim", "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if sim.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the simulator process did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        sim.terminate()
        sim.wait(10)
