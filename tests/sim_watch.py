"""Shared simulator test fixtures: the client-library log watchdog and clocked simulators.

The simulator test folders re-export these from their conftest (``from sim_watch import …``), so
each folder opts in to the autouse watchdog; tests elsewhere may provoke library errors freely.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock, ManualClock

#: Wednesday 2026-11-25 15:00 UTC = 10:00 New York: markets open; ESZ6 is the front month.
T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)
#: Lines a client library logs when it cannot read what the simulator sent.
BAD_STRINGS = ("Error handling fields", "No order found", "Unknown reqId", "unknown reqId")


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IbLogWatch:
    """ib_async/ib_insync log records; ``allow(fragment)`` whitelists an error a test provokes."""

    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder
        self.allowed: list[str] = []

    def allow(self, *fragments: str) -> None:
        """Errors containing any of ``fragments`` are expected by the test."""
        self.allowed.extend(fragments)

    def problems(self) -> list[str]:
        """Every error (or decoder complaint) not allowed."""
        out = []
        for rec in self.recorder.records:
            text = rec.getMessage()
            bad = rec.levelno >= logging.ERROR or any(s in text for s in BAD_STRINGS)
            if bad and not any(a in text for a in self.allowed):
                out.append(f"{rec.levelname} {rec.name}: {text}")
        return out


@pytest.fixture(autouse=True)
def ib_logs() -> Iterator[IbLogWatch]:
    """Fail the test on any decoder or wrapper error a client library logs unprovoked."""
    recorder = _Recorder()
    loggers = [logging.getLogger(n) for n in ("ib_async", "ib_insync")]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(recorder)
        lg.setLevel(logging.DEBUG)
    watch = IbLogWatch(recorder)
    try:
        yield watch
    finally:
        for lg, level in zip(loggers, saved, strict=True):
            lg.removeHandler(recorder)
            lg.setLevel(level)
    problems = watch.problems()
    assert not problems, "client library logged errors:\n" + "\n".join(problems)


@pytest.fixture
async def fsim() -> AsyncIterator[Simulator]:
    """Simulator on a fixed clock at T0 (markets open), ephemeral port."""
    sim = Simulator(seed=42, clock=FixedClock(T0))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def msim() -> AsyncIterator[tuple[Simulator, ManualClock]]:
    """Simulator on a manual clock at T0 (markets open), ephemeral port."""
    clock = ManualClock(T0)
    sim = Simulator(seed=42, clock=clock)
    await sim.start()
    try:
        yield sim, clock
    finally:
        await sim.stop()
