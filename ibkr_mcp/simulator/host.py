"""The narrow interfaces session handlers see: shared simulator state and a client outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Catalogue, Instrument
    from ibkr_mcp.simulator.clock import Clock
    from ibkr_mcp.simulator.engine import Engine
    from ibkr_mcp.simulator.incoming import ContractSpec
    from ibkr_mcp.simulator.limits import Limits
    from ibkr_mcp.simulator.market import MarketModel
    from ibkr_mcp.simulator.wire import Field


class SimHost(Protocol):
    """What the simulator shares with every session (the server implements it)."""

    @property
    def accounts(self) -> tuple[str, ...]:
        """Managed account ids, the first one being the default."""
        ...

    @property
    def clock(self) -> Clock:
        """Simulated time."""
        ...

    @property
    def catalogue(self) -> Catalogue:
        """The instruments."""
        ...

    @property
    def market(self) -> MarketModel:
        """Quotes and bars."""
        ...

    @property
    def engine(self) -> Engine:
        """Orders, fills and accounts."""
        ...

    def resolve(self, spec: ContractSpec) -> list[Instrument]:
        """Catalogue instruments matching a client contract."""
        ...

    def next_order_id(self, client_id: int) -> int:
        """The next valid order id for a client."""
        ...

    def note_order_id(self, client_id: int, order_id: int) -> None:
        """Remember an order id a client used."""
        ...

    @property
    def limits(self) -> Limits:
        """IB's pacing, market data lines and message rate (shared by every client)."""
        ...

    def streams_in_use(self) -> int:
        """Streaming market data subscriptions of every client."""
        ...

    def flush(self) -> None:
        """Write out every session's queued messages (an answer sent later, off a request)."""
        ...

    def sees_all(self, client_id: int) -> bool:
        """Whether a client sees every client's orders (client 0 and the master client id)."""
        ...


class Outbox(Protocol):
    """One client's outgoing side: who it is, which version it speaks, and how to reach it."""

    @property
    def client_id(self) -> int:
        """The API client id."""
        ...

    @property
    def server_version(self) -> int:
        """The negotiated server version."""
        ...

    def send(self, fields: list[Field], req_id: int | None = None) -> None:
        """Encode and queue one message."""
        ...

    def error(self, req_id: int, code: int, text: str) -> None:
        """Queue an ERR_MSG."""
        ...

    def send_encoded(self, data: bytes, msg_id: int, req_id: int | None = None) -> None:
        """Queue one already encoded message (shared by every client it goes to)."""
        ...


class Handler:
    """Base of the session's request handlers: the host state and this client's outbox."""

    def __init__(self, host: SimHost, out: Outbox) -> None:
        self.host = host
        self.out = out
