"""Fixtures for the simulator's instrument tests: a simulator on a fixed or manual clock."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from sim_watch import T0, IbLogWatch, fsim, ib_logs, msim

__all__ = ["T0", "IbLogWatch", "fsim", "ib_logs", "msim"]


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
