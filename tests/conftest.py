"""Shared fixtures: a seeded simulator on a fixed clock, settings in a temp DATA_DIR, services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ibkr_mcp.config import Settings, load_settings

#: A Wednesday, 10:00 New York: markets open, deterministic for snapshots.
FIXED_NOW = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's environment or .env, or writes into the checkout."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def sim() -> AsyncIterator[Any]:
    """A started simulator on an ephemeral port, seed 42, clock fixed at FIXED_NOW."""
    from ibkr_mcp.simulator import Simulator
    from ibkr_mcp.simulator.clock import FixedClock

    simulator = Simulator(seed=42, accounts=("DU1234567",), clock=FixedClock(FIXED_NOW))
    await simulator.start("127.0.0.1", 0)
    try:
        yield simulator
    finally:
        await simulator.stop()


def make_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    """Settings pointing at ``port`` with every file under ``tmp_path``."""
    values: dict[str, Any] = {
        "DATA_DIR": tmp_path,
        "IBKR_PORT": port,
        "IBKR_CONNECT_TIMEOUT": 2.0,
        "IBKR_REQUEST_TIMEOUT": 5.0,
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path, sim: Any) -> Settings:
    """Default (safe) settings against the simulator fixture."""
    return make_settings(tmp_path, sim.port)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Any]:
    """The runtime (gateway connected to the simulator, audit in tmp)."""
    from ibkr_mcp.runtime import open_runtime

    async with open_runtime(settings, wait_connected=5.0) as svc:
        assert svc.gateway.connected, "gateway did not connect to the simulator"
        yield svc


@pytest.fixture
def settings_for(tmp_path: Path) -> Any:
    """A factory: ``settings_for(port, **overrides)`` with files under ``tmp_path``."""

    def build(port: int, **overrides: Any) -> Settings:
        return make_settings(tmp_path, port, **overrides)

    return build


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (at the time of the call)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    """A port with nothing listening on it."""
    return free_port()
