"""The state file: round trip in process and across a real process restart; bad files stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, LimitOrder, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock
from ibkr_mcp.simulator.state import STATE_FORMAT, StateFileError

T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)  # markets open
AAPL = Stock("AAPL", "SMART", "USD")


async def trade_some(ib: IB, wait: Any) -> dict[str, int]:
    bought = ib.placeOrder(AAPL, LimitOrder("BUY", 5, 1000.00))
    gtc = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 1.00, tif="GTC"))
    day = ib.placeOrder(AAPL, LimitOrder("BUY", 2, 1.00, tif="DAY"))
    await wait(lambda: bought.orderStatus.status == "Filled")
    await wait(lambda: day.orderStatus.status == "Submitted")
    return {"bought": bought.order.orderId, "gtc": gtc.order.orderId, "day": day.order.orderId}


async def test_state_round_trip_in_process(tmp_path: Path, wait: Any) -> None:
    path = tmp_path / "sim-state.json"
    first = Simulator(seed=42, clock=FixedClock(T0), state_file=path)
    await first.start()
    ib = IB()
    await ib.connectAsync("127.0.0.1", first.port, clientId=3, timeout=3)
    ids = await trade_some(ib, wait)
    await wait(lambda: path.exists())
    cash = first.account("DU1234567").cash
    ib.disconnect()
    await first.stop()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    second = Simulator(seed=42, clock=FixedClock(T0), state_file=path)
    await second.start()
    try:
        assert second.account("DU1234567").cash == cash
        again = IB()
        await again.connectAsync("127.0.0.1", second.port, clientId=3, timeout=3)
        assert again.client.getReqId() > ids["day"]  # the id counter survived
        open_ids = sorted(t.order.orderId for t in await again.reqAllOpenOrdersAsync())
        assert open_ids == sorted([ids["gtc"], ids["day"]])
        positions = await again.reqPositionsAsync()
        assert [(p.contract.symbol, p.position) for p in positions] == [("AAPL", 5.0)]
        fills = await again.reqExecutionsAsync()
        assert [(f.execution.orderId, f.execution.shares) for f in fills] == [(ids["bought"], 5)]
        new = again.placeOrder(AAPL, LimitOrder("BUY", 1, 1.00, tif="GTC"))
        await wait(lambda: new.orderStatus.status == "Submitted")
        perms = [o.perm_id for o in second.orders()]
        assert len(set(perms)) == len(perms)  # perm ids continue, never reused
        again.disconnect()
    finally:
        await second.stop()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is corrupt"),
        (json.dumps({"hello": "world"}), "is not an ibkr-mcp simulator state file"),
        (json.dumps({"format": STATE_FORMAT, "version": 99}), "has version 99"),
        (
            json.dumps({"format": STATE_FORMAT, "version": 1, "accounts": {"DU999": {}}}),
            r"holds accounts \['DU999'\]",
        ),
    ],
)
async def test_bad_state_file_stops_start_up(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    sim = Simulator(seed=42, clock=FixedClock(T0), state_file=path)
    with pytest.raises(StateFileError, match=message) as info:
        await sim.start()
    assert str(path) in str(info.value)
    assert sim._server is None  # never listened
    assert path.read_text() == content  # never silently reset


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(port: int, state: Path, control_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "IBKR_"))}
    env.update({"SIM_CONTROL_DIR": str(control_dir), "LOG_LEVEL": "WARNING"})
    return subprocess.Popen(
        [sys.executable, "-m", "ibkr_mcp", "sim", "--port", str(port), "--state-file", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_listening(proc: subprocess.Popen[str], control_dir: Path, port: int) -> None:
    deadline = time.monotonic() + 20
    while not (control_dir / f"ibkr-mcp-sim-{port}.ctl").exists():
        assert proc.poll() is None, "simulator exited early"
        assert time.monotonic() < deadline, "simulator did not start"
        time.sleep(0.05)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=10)


async def test_state_survives_a_real_process_restart(
    tmp_path: Path, control_dir: Path, procs: list[Any], wait: Any
) -> None:
    state = tmp_path / "state.json"
    port = _free_port()
    procs.append(_start(port, state, control_dir))
    _wait_listening(procs[-1], control_dir, port)
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
    gtc = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 1.00, tif="GTC"))
    bought = ib.placeOrder(AAPL, LimitOrder("BUY", 3, 100000.00, tif="GTC"))
    await wait(lambda: bought.orderStatus.status == "Filled", timeout=10)
    await wait(lambda: gtc.orderStatus.status == "Submitted", timeout=10)
    ib.disconnect()
    procs[-1].kill()  # no clean shutdown: the file was written after each change
    procs[-1].communicate(timeout=10)
    (control_dir / f"ibkr-mcp-sim-{port}.ctl").unlink()  # stale: the process was killed

    procs.append(_start(port, state, control_dir))
    _wait_listening(procs[-1], control_dir, port)
    again = IB()
    await again.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
    try:
        positions = await again.reqPositionsAsync()
        assert [(p.contract.symbol, p.position) for p in positions] == [("AAPL", 3.0)]
        assert [t.order.orderId for t in await again.reqAllOpenOrdersAsync()] == [gtc.order.orderId]
    finally:
        again.disconnect()


def test_corrupt_state_file_stops_the_process(tmp_path: Path, control_dir: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("garbage")
    proc = _start(_free_port(), state, control_dir)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2  # the operator's file, not an internal error
    assert str(state) in stderr.replace("\n", "")
    assert "corrupt" in stderr
    assert "INTERNAL_ERROR" not in stderr and "LOG_LEVEL=DEBUG" not in stderr
    assert "--state-file" in stderr  # the remedy names the way out
