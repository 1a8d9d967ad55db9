"""Simulator test fixtures: a started simulator and an ib_async log watchdog."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock, ManualClock

#: Wednesday 2026-11-25 15:00 UTC = 10:00 New York: markets open.
T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)
BAD_STRINGS = ("Error handling fields", "No order found", "Unknown reqId", "unknown reqId")


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IbLogWatch:
    """Collects ib_async log records; ``allow(code)`` whitelists an error a test provokes."""

    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder
        self.allowed: list[str] = []

    def allow(self, *fragments: str) -> None:
        self.allowed.extend(fragments)

    def problems(self) -> list[str]:
        out = []
        for rec in self.recorder.records:
            text = rec.getMessage()
            bad = rec.levelno >= logging.ERROR or any(s in text for s in BAD_STRINGS)
            if bad and not any(a in text for a in self.allowed):
                out.append(f"{rec.levelname} {rec.name}: {text}")
        return out


@pytest.fixture(autouse=True)
def ib_logs() -> Iterator[IbLogWatch]:
    """Fail the test if ib_async/ib_insync logs an error it did not provoke on purpose."""
    recorder = _Recorder()
    loggers = [logging.getLogger(n) for n in ("ib_async", "ib_insync")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(recorder)
        lg.setLevel(logging.DEBUG)
    watch = IbLogWatch(recorder)
    try:
        yield watch
    finally:
        for lg, (level, _prop) in zip(loggers, saved, strict=True):
            lg.removeHandler(recorder)
            lg.setLevel(level)
    problems = watch.problems()
    assert not problems, "ib_async logged errors:\n" + "\n".join(problems)


@pytest.fixture
async def fsim() -> AsyncIterator[Simulator]:
    """Simulator on a fixed clock (markets open), ephemeral port."""
    sim = Simulator(seed=42, clock=FixedClock(T0))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def msim() -> AsyncIterator[tuple[Simulator, ManualClock]]:
    """Simulator on a manual clock."""
    clock = ManualClock(T0)
    sim = Simulator(seed=42, clock=clock)
    await sim.start()
    try:
        yield sim, clock
    finally:
        await sim.stop()


@pytest.fixture
async def ib(fsim: Simulator) -> AsyncIterator[Any]:
    """A connected, unmodified ib_async client (clientId 1)."""
    from ib_async import IB

    client = IB()
    await client.connectAsync("127.0.0.1", fsim.port, clientId=1, timeout=5)
    try:
        yield client
    finally:
        client.disconnect()
