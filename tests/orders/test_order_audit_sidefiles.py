"""An audit database whose -shm/-wal changes under the server: AUDIT_UNAVAILABLE, no SIGBUS."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Run in a child process: before the fix, truncating the mapped -shm killed the interpreter
# with SIGBUS (exit -7), which no in-process test could survive to report.
_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from ibkr_mcp.config import load_settings
    from ibkr_mcp.errors import IbkrMcpError
    from ibkr_mcp.runtime import open_runtime
    from ibkr_mcp.simulator import Simulator
    from ibkr_mcp.tools import build_registry

    MODE, DATA = sys.argv[1], Path(sys.argv[2])
    ORDER = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "MKT"}

    async def main() -> None:
        sim = Simulator(seed=42)
        port = await sim.start("127.0.0.1", 0)
        settings = load_settings(_env_file=None, DATA_DIR=DATA, IBKR_PORT=port,
                                 ORDERS_ENABLED=True, IBKR_CONNECT_TIMEOUT=2.0)
        registry = build_registry()
        async def call(tool, args):
            return (await registry.call(tool, args, services=svc, surface="internal")).output
        async with open_runtime(settings, wait_connected=5) as svc:
            preview = await call("preview_order", ORDER)
            db = Path(settings.audit_db_path)
            shm, wal = Path(f"{db}-shm"), Path(f"{db}-wal")
            if MODE == "shm-truncated":
                os.truncate(shm, 0)
            elif MODE == "wal-replaced":
                spare = wal.with_name("spare")
                spare.write_bytes(b"")
                os.replace(spare, wal)
            elif MODE == "shm-readonly":
                os.chmod(shm, 0o444)
            try:
                await call("place_order", {**ORDER, "confirmation_token":
                           preview.confirmation_token, "idempotency_key": "sidefile-01"})
                print("PLACED")
            except IbkrMcpError as exc:
                print("ERROR", exc.code)
            quote = await call("get_quote", {"symbol": "AAPL"})  # the process still serves
            print("ALIVE", quote.symbol)
            print("SENT", len([o for o in sim.orders() if not o.what_if]))
        await sim.stop()

    asyncio.run(main())
    """
)


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "sidefiles.py"
    script.write_text(_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), mode, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("mode", ["shm-truncated", "wal-replaced"])
def test_changed_side_file_refuses_the_order_and_the_process_lives(
    tmp_path: Path, mode: str
) -> None:
    done = _run(tmp_path, mode)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "ERROR AUDIT_UNAVAILABLE" in lines
    assert "ALIVE AAPL" in lines
    assert "SENT 0" in lines


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_unwritable_shm_refuses_the_order(tmp_path: Path) -> None:
    done = _run(tmp_path, "shm-readonly")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ERROR AUDIT_UNAVAILABLE" in done.stdout.splitlines()
    assert "SENT 0" in done.stdout.splitlines()
