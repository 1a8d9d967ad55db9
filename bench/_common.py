"""Helpers every bench shares: nearest-rank percentiles and an ephemeral loopback port."""

from __future__ import annotations

import socket


def pct(values: list[float], p: float) -> float:
    """The ``p`` quantile of ``values`` (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def free_port() -> int:
    """An ephemeral loopback port (free at the time of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
