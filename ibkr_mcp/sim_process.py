"""The simulator of ``serve --sim`` in its own process: announces its port, ends with its parent."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

#: The first line the child writes on stdout: its port (nothing else is written there).
PORT_PREFIX = "port "


def spawn(env_file: Path | None) -> subprocess.Popen[bytes]:
    """Start the child now (it reads the same settings); read its port with ``read_port``.

    Started before the server imports its framework, it loads and listens on the other core
    meanwhile, as IB Gateway runs beside the server. Its stdin is a pipe from this process:
    when this process ends, however it ends, the child sees end-of-file and stops.

    Args:
        env_file: The env file the server's settings came from (the child reads the same one).
    """
    from ibkr_mcp.userdirs import ENV_FILE_VAR

    env = dict(os.environ)
    if env_file is not None:
        env[ENV_FILE_VAR] = str(env_file)
    return subprocess.Popen(
        [sys.executable, "-m", "ibkr_mcp.sim_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def read_port(stream: IO[bytes]) -> int:
    """The port the child announced (blocking); ``RuntimeError`` if it ended without one."""
    line = stream.readline().decode("ascii", "replace").strip()
    if not line.startswith(PORT_PREFIX):
        raise RuntimeError("the simulator process did not start (see its log above)")
    return int(line.removeprefix(PORT_PREFIX))


async def _serve() -> None:
    from loguru import logger

    from ibkr_mcp.config import load_settings
    from ibkr_mcp.logs import configure_logging
    from ibkr_mcp.runtime import build_simulator

    settings = load_settings()
    configure_logging(settings)
    simulator = build_simulator(settings)
    port = await simulator.start("127.0.0.1", settings.SIM_PORT)
    try:
        if settings.SIM_FAULTS:
            from ibkr_mcp.simulator.control import apply_faults

            apply_faults(simulator.drills, settings.SIM_FAULTS)
        logger.info("IB Gateway simulator (process {}) on 127.0.0.1:{}", os.getpid(), port)
        sys.stdout.write(f"{PORT_PREFIX}{port}\n")
        sys.stdout.flush()
        # Until the parent closes our stdin (it stopped, or it died).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    finally:
        await simulator.stop()


def main() -> None:
    """Entry point of ``python -m ibkr_mcp.sim_process``: one line on stderr if it fails."""
    try:
        asyncio.run(_serve())
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - the parent reports it; no traceback for the user
        sys.stderr.write(f"✗ simulator: {exc}\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
