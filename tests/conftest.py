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
    """No test reads the developer's environment, env files or user dirs, or writes into them.

    HOME and the XDG dirs point into ``tmp_path`` (so platformdirs' user config and data dirs,
    ``~`` and Claude's config paths are temporary, also for subprocesses), no env file is named,
    and the working directory is ``tmp_path``.
    """
    from ibkr_mcp import userdirs

    for name in (*Settings.model_fields, userdirs.ENV_FILE_VAR, "UV_CACHE_DIR", "LOG_FORMAT"):
        # setenv first so that the deletion is recorded and undone even when it was unset.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setattr(userdirs, "_cli_env_file", None)
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
