"""What the drills, the control channel and the state file may see of the simulator (protocols)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ibkr_mcp.simulator.catalogue import Catalogue
    from ibkr_mcp.simulator.clock import Clock
    from ibkr_mcp.simulator.engine import Engine
    from ibkr_mcp.simulator.limits import Limits
    from ibkr_mcp.simulator.session import Session


class DrillConnection(Protocol):
    """One client socket as a drill sees it."""

    @property
    def since(self) -> datetime:
        """When the client connected (simulated clock)."""
        ...

    @property
    def session(self) -> Session | None:
        """The API session once START_API arrived."""
        ...

    def resume(self) -> None:
        """Read and answer everything buffered."""
        ...

    def close(self) -> None:
        """Close the socket."""
        ...

    def write_now(self, data: bytes) -> None:
        """Write to the socket now."""
        ...


class DrillHost(Protocol):
    """The simulator as seen by ``faults``, ``control`` and ``state`` (the server implements it)."""

    @property
    def seed(self) -> int:
        """The random seed."""
        ...

    @property
    def port(self) -> int:
        """The API port it listens on."""
        ...

    @property
    def clock(self) -> Clock:
        """Simulated time."""
        ...

    @property
    def limits(self) -> Limits:
        """IB's limits and the login's market data subscriptions."""
        ...

    @property
    def catalogue(self) -> Catalogue:
        """The instruments."""
        ...

    @property
    def engine(self) -> Engine:
        """Orders, fills and accounts."""
        ...

    next_ids: dict[int, int]

    def sessions(self) -> Sequence[Session]:
        """The connected API sessions."""
        ...

    def connections(self) -> Sequence[DrillConnection]:
        """Every open client socket (also those still in the handshake)."""
        ...

    def flush(self) -> None:
        """Write out every session's queued messages."""
        ...

    def stop_listening(self) -> None:
        """Refuse new connections (existing ones stay)."""
        ...

    async def listen_again(self) -> None:
        """Accept connections again on the same port."""
        ...

    def on_reset(self) -> None:
        """Forget per-connection state of a gateway restart."""
        ...
