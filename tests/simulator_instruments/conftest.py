"""Fixtures for the simulator's instrument tests: a simulator on a fixed or manual clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ib_decode import decode_stream
from sim_watch import T0, IbLogWatch, fsim, ib_logs, msim

__all__ = ["T0", "IbLogWatch", "fsim", "ib_logs", "msim"]


def _decode_all(raw: bytes, server_version: int) -> list[tuple[str, tuple[Any, ...]]]:
    """IB's own decoder over a captured stream (no field left over): the callbacks made."""
    return decode_stream(raw, server_version)[0].calls


@pytest.fixture
def decode_all() -> Callable[[bytes, int], list[tuple[str, tuple[Any, ...]]]]:
    """IB's decoder over a captured stream (see ``_decode_all``)."""
    return _decode_all
