"""The API handshake: ``connectAsync`` that fails at once when the gateway drops the socket."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from ib_async import IB
from ib_async.ib import StartupFetch

#: What ib_async fetches while connecting: everything but per-sub-account updates.
STARTUP_FETCH: Final = (
    StartupFetch.POSITIONS
    | StartupFetch.ORDERS_OPEN
    | StartupFetch.ORDERS_COMPLETE
    | StartupFetch.ACCOUNT_UPDATES
    | StartupFetch.EXECUTIONS
)


async def handshake(ib: IB, host: str, port: int, client_id: int, timeout: float) -> None:
    """``connectAsync``, but fail at once if the peer drops the socket mid-handshake.

    IB answers a clashing client id with error 326 and a closed socket, and a gateway that is
    refusing closes it at once; ib_async would only notice at its timeout.

    Raises:
        ConnectionError: The gateway closed the socket (IB's message when it sent one).
        TimeoutError, OSError: As ``connectAsync``.
    """
    dropped: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_api_error(message: str) -> None:
        if not dropped.done():
            dropped.set_result(message or "the gateway closed the connection")

    client: Any = ib.client
    client.apiError += on_api_error
    # A socket closed while still connecting raises no apiError in ib_async.
    client.conn.disconnected += on_api_error
    connect = asyncio.ensure_future(
        ib.connectAsync(host, port, clientId=client_id, timeout=timeout, fetchFields=STARTUP_FETCH)
    )
    try:
        await asyncio.wait({connect, dropped}, return_when=asyncio.FIRST_COMPLETED)
        if not connect.done():
            raise ConnectionError(dropped.result())
        connect.result()
    except BaseException:
        # A half-done handshake leaves ib_async "connected" to a useless socket.
        if client.isConnected() and not ib.isConnected():
            client.disconnect()
        raise
    finally:
        client.apiError -= on_api_error
        client.conn.disconnected -= on_api_error
        dropped.cancel()
        if not connect.done():
            connect.cancel()
            await asyncio.gather(connect, return_exceptions=True)
