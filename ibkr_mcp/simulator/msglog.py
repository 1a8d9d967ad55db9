"""Entries of the simulator's request and sent-message logs."""

from __future__ import annotations

from typing import NamedTuple


class ReceivedMessage(NamedTuple):
    """One request the simulator received."""

    seq: int
    client_id: int
    msg_id: int
    name: str
    req_id: int | None


class SentMessage(NamedTuple):
    """One message the simulator sent."""

    seq: int
    client_id: int
    msg_id: int
    name: str
    req_id: int | None
