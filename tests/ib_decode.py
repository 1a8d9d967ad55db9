"""IB's own decoder (ibapi) over a captured simulator stream: every field read, none left over."""

from __future__ import annotations

import inspect
import struct
from typing import Any

from ibapi.decoder import Decoder
from ibapi.wrapper import EWrapper

EWRAPPER_METHODS = {n for n, _ in inspect.getmembers(EWrapper, inspect.isfunction)}


class RecordingWrapper(EWrapper):  # type: ignore[misc]
    """Records every EWrapper callback the decoder makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattribute__(self, name: str) -> Any:
        if name in EWRAPPER_METHODS:
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name, args))
        return object.__getattribute__(self, name)


def frames(data: bytes) -> list[list[bytes]]:
    """Split a captured stream into length-prefixed messages (their NUL-separated fields)."""
    out = []
    pos = 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n].split(b"\0")[:-1])
        pos += 4 + n
    assert pos == len(data)
    return out


def decode_stream(raw: bytes, server_version: int) -> tuple[RecordingWrapper, set[int]]:
    """Decode every message after the handshake reply; assert each is read with nothing left.

    Returns:
        The wrapper (its ``calls``) and the message ids seen.
    """
    wrapper = RecordingWrapper()
    decoder = Decoder(wrapper, server_version)
    seen: set[int] = set()
    msgs = frames(raw)
    assert msgs[0][0].decode() == str(server_version)  # handshake reply
    for fields in msgs[1:]:
        msg_id = int(fields[0])
        seen.add(msg_id)
        info = decoder.msgId2handleInfo[msg_id]
        before = len(wrapper.calls)
        if info.processMeth is not None:
            it = iter(fields[1:])
            info.processMeth(decoder, it)
            leftover = list(it)
            assert leftover == [], f"msg {msg_id}: {len(leftover)} fields left: {leftover}"
        else:
            decoder.interpretWithSignature(fields[1:], info)
        assert len(wrapper.calls) > before, f"msg {msg_id} was not decoded: {fields}"
    return wrapper, seen
