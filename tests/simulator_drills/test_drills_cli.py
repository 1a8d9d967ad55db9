"""``ibkr-mcp sim`` and ``ibkr-mcp sim-ctl`` as real processes (the operator's view)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(control_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "IBKR_"))}
    env.update({"SIM_CONTROL_DIR": str(control_dir), "LOG_LEVEL": "WARNING", **extra})
    return env


def ctl(port: int, control_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ibkr_mcp", "sim-ctl", "--port", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(control_dir),
        check=False,
    )


@pytest.fixture
def sim_process(control_dir: Path) -> Iterator[int]:
    """``ibkr-mcp sim --fault latency=1`` in a child process; yields its port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ibkr_mcp", "sim", "--port", str(port), "--fault", "latency=1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(control_dir, SIM_RESET_SECONDS="0.2"),
    )
    try:
        deadline = time.monotonic() + 20
        sock = control_dir / f"ibkr-mcp-sim-{port}.ctl"
        while not sock.exists():
            assert proc.poll() is None, "simulator exited"
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_ctl_drives_a_running_simulator(sim_process: int, control_dir: Path) -> None:
    port = sim_process
    status = ctl(port, control_dir, "status")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert set(data) == {"clients", "orders", "positions", "faults"}
    assert data["faults"] == {"latency": {"ms": 1.0, "jitter_ms": 0.0}}  # from --fault
    done = ctl(port, control_dir, "hang", "0.2")
    assert done.returncode == 0 and "hanging for 0.2 s" in done.stdout
    done = ctl(port, control_dir, "error", "2103")
    assert done.returncode == 0
    assert "Market data farm connection is broken:usfarm" in done.stdout
    refused = ctl(port, control_dir, "error", "9999")
    assert refused.returncode == 2
    assert "no IB default text for code 9999" in refused.stderr
    refused = ctl(port, control_dir, "error", "9999", "--json")
    assert refused.returncode == 2
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "INVALID_INPUT" and "code 9999" in error["message"]
    done = ctl(port, control_dir, "latency", "2", "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["faults"]["latency"] == {"ms": 2.0, "jitter_ms": 0.0}
    unknown = ctl(port, control_dir, "explode")
    assert unknown.returncode == 2
    assert "No such command 'explode'" in unknown.stderr
    done = ctl(port, control_dir, "clear")
    assert done.returncode == 0 and "all faults cleared" in done.stdout
    assert json.loads(ctl(port, control_dir, "status").stdout)["faults"] == {}


def test_sim_ctl_without_a_simulator(control_dir: Path) -> None:
    port = _free_port()
    done = ctl(port, control_dir, "status")
    assert done.returncode == 7
    assert f"no simulator control channel at {control_dir}" in done.stderr.replace("\n", "")
    done = ctl(port, control_dir, "status", "--json")
    assert done.returncode == 7
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "GATEWAY_UNAVAILABLE" and f"--port {port}" in error["remedy"]


def test_sim_on_a_port_in_use_says_so(control_dir: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ibkr_mcp", "sim", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env=_env(control_dir),
            check=False,
        )
    assert done.returncode == 2
    text = done.stderr.replace("\n", " ")
    assert f"port {port} is already in use" in text and "--port (0 picks a free one)" in text
    assert "INTERNAL_ERROR" not in text


def test_sim_refuses_a_bad_start_fault(control_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ibkr_mcp", "sim", "--port", "0", "--fault", "explode=1"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(control_dir),
        check=False,
    )
    assert done.returncode == 2
    assert "unknown fault 'explode=1'" in done.stderr
