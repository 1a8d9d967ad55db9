"""Fixtures for the simulator's instrument tests: a simulator on a fixed or manual clock."""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock, ManualClock

#: Wednesday 2026-11-25 15:00 UTC = 10:00 New York: markets open; ESZ6 is the front month.
T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)
BAD_STRINGS = ("Error handling fields", "No order found", "Unknown reqId", "unknown reqId")


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IbLogWatch:
    """Collects ib_async/ib_insync log records; ``allow`` whitelists a provoked error."""

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
    assert not problems, "client logged errors:\n" + "\n".join(problems)


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


def _frames(data: bytes) -> list[list[bytes]]:
    out = []
    pos = 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n].split(b"\0")[:-1])
        pos += 4 + n
    assert pos == len(data)
    return out


def _decode_all(raw: bytes, server_version: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Decode a captured server stream with IB's own decoder; no field may be left over."""
    from ibapi.decoder import Decoder
    from ibapi.wrapper import EWrapper

    calls: list[tuple[str, tuple[Any, ...]]] = []

    class Recording(EWrapper):  # type: ignore[misc]
        def __getattribute__(self, name: str) -> Any:
            if name in EWrapper.__dict__ and not name.startswith("_"):
                return lambda *args: calls.append((name, args))
            return object.__getattribute__(self, name)

    decoder = Decoder(Recording(), server_version)
    msgs = _frames(raw)
    assert msgs[0][0].decode() == str(server_version)
    for fields in msgs[1:]:
        info = decoder.msgId2handleInfo[int(fields[0])]
        before = len(calls)
        if info.processMeth is not None:
            it = iter(fields[1:])
            info.processMeth(decoder, it)
            leftover = list(it)
            assert leftover == [], f"msg {fields[0]!r}: fields left over: {leftover}"
        else:
            decoder.interpretWithSignature(fields[1:], info)
        assert len(calls) > before, f"not decoded: {fields}"
    return calls


@pytest.fixture
def decode_all() -> Callable[[bytes, int], list[tuple[str, tuple[Any, ...]]]]:
    """IB's decoder over a captured stream (see ``_decode_all``)."""
    return _decode_all
