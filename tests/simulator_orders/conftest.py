"""Order-book test fixtures: a manual-clock simulator, both client libraries, a log watchdog."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from types import ModuleType

import pytest
from sim_orders_support import T0

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock

BAD_STRINGS = ("Error handling fields", "No order found", "Unknown reqId", "unknown reqId")


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IbLogWatch:
    """ib_async/ib_insync log records; ``allow(fragment)`` whitelists a provoked error."""

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
    """Fail the test on any decoder or wrapper error a client library logs."""
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
async def msim() -> AsyncIterator[tuple[Simulator, ManualClock]]:
    """Simulator on a manual clock at T0 (markets open), ephemeral port."""
    clock = ManualClock(T0)
    sim = Simulator(seed=42, clock=clock)
    await sim.start()
    try:
        yield sim, clock
    finally:
        await sim.stop()


@pytest.fixture(params=["ib_async", "ib_insync"])
def lib(request: pytest.FixtureRequest) -> ModuleType:
    """Each unmodified client library in turn."""
    return pytest.importorskip(request.param)
