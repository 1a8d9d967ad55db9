"""The real ``ibkr-mcp`` executable: healthcheck, demo and sim as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ibkr_mcp.config import Settings

EXE = str(Path(sys.executable).with_name("ibkr-mcp"))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(DATA_DIR=str(tmp_path), COLUMNS="160", **extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=_env(tmp_path, **env),
    )


def test_healthcheck_sim_succeeds(tmp_path: Path) -> None:
    proc = _run(tmp_path, "healthcheck", "--sim")
    assert proc.returncode == 0, proc.stderr
    assert "✓ Connected to 127.0.0.1:" in proc.stdout
    assert "✓ Server time: " in proc.stdout
    assert "✓ System ready (paper mode, orders disabled)" in proc.stdout


def test_healthcheck_refused_fails_fast(tmp_path: Path) -> None:
    port = _free_port()
    started = time.monotonic()
    proc = _run(tmp_path, "healthcheck", "--timeout", "5", IBKR_PORT=str(port))
    elapsed = time.monotonic() - started
    assert proc.returncode == 7, (proc.stdout, proc.stderr)
    assert elapsed < 5 + 2
    assert f"Connection refused → start IB Gateway or TWS on port {port}, or use --sim" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_healthcheck_silent_port_times_out(tmp_path: Path) -> None:
    # A listener that accepts TCP but never speaks the API handshake (like a firewall
    # black hole or a gateway with the API disabled).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        started = time.monotonic()
        proc = _run(
            tmp_path,
            "healthcheck",
            "--timeout",
            "2",
            IBKR_PORT=str(port),
            IBKR_CONNECT_TIMEOUT="30",
        )
        elapsed = time.monotonic() - started
    assert proc.returncode == 7, (proc.stdout, proc.stderr)
    # --timeout (2 s) bounds it, not IBKR_CONNECT_TIMEOUT (30 s); the slack is process start-up
    # on a loaded machine.
    assert elapsed < 2 + 6
    assert "Timeout → check the firewall and that the API is enabled" in proc.stderr


def test_demo_sim_tour(tmp_path: Path) -> None:
    proc = _run(tmp_path, "demo", "--sim")
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    out = proc.stdout
    for title in (
        "Connection status",
        "AAPL quote",
        "SPY daily bars (5 days)",
        "Account summary",
        "Positions",
        "Gate chain (preview)",
        "Audit trail for this order",
        "Positions after the order",
        "Demo complete",
    ):
        assert title in out, title
    assert "Order #" in out and "Filled" in out
    # The whole trail of the order: intent before the send, then what the broker reported.
    trail = out[out.index("Audit trail for this order") : out.index("Positions after the order")]
    for row in ("intent", "sent", "execution", "commission"):
        assert row in trail, (row, trail)
    assert (tmp_path / "data" / "demo-audit.db").exists()
    # The demo's simulated order never lands in the real audit trail.
    assert not (tmp_path / "data" / "audit.db").exists()
    # Run again at once: the demo's trail starts afresh (its order is no duplicate of the last).
    again = _run(tmp_path, "demo", "--sim")
    assert again.returncode == 0, (again.stdout[-3000:], again.stderr[-3000:])
    assert "Demo complete" in again.stdout and "probable duplicate" not in again.stdout


def test_demo_without_sim_never_trades_and_fails_without_gateway(tmp_path: Path) -> None:
    proc = _run(tmp_path, "demo", IBKR_PORT=str(_free_port()), IBKR_CONNECT_TIMEOUT="1", timeout=60)
    assert proc.returncode == 1
    assert "No broker connection" in proc.stdout and "demo --sim" in proc.stdout
    assert "Order #" not in proc.stdout


@pytest.mark.slow
def test_sim_command_serves_until_interrupted(tmp_path: Path) -> None:
    port = _free_port()
    sim = subprocess.Popen(
        [EXE, "sim", "--port", str(port), "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    try:
        assert sim.stdout is not None
        lines = [sim.stdout.readline()]
        assert f"listening on 127.0.0.1:{port}" in lines[0], lines
        while lines[-1] and "Ctrl-C" not in lines[-1]:
            lines.append(sim.stdout.readline())
        banner = "".join(lines)
        assert "DU1234567" in banner and f"IBKR_PORT={port} ibkr-mcp healthcheck" in banner
        check = _run(tmp_path, "healthcheck", "--timeout", "10", IBKR_PORT=str(port))
        assert check.returncode == 0, check.stderr
        assert "DU1234567" in check.stdout
    finally:
        sim.send_signal(signal.SIGINT)
        _, errors = sim.communicate(timeout=10)
    assert sim.returncode == 130, errors
