"""Embedded IB Gateway simulator speaking the real TWS API socket protocol (server version 178).

Unmodified TWS API clients (``ib_async``, ``ib_insync``, IB's own ``ibapi``) connect to it over
a socket: ``sim = Simulator(seed=42); port = await sim.start()`` then
``await IB().connectAsync("127.0.0.1", port, clientId=1)``. It serves contract details, live,
frozen and delayed quotes, historical bars, accounts, positions, PnL, and MKT/LMT orders with
IB's fill message sequence and commissions, all deterministic for a given seed and clock.

How to tell you are talking to it: right after NEXT_VALID_ID, MANAGED_ACCTS and the data-farm
notices (2104, 2106, 2158) the simulator sends an ERR_MSG with reqId -1, code
``SIMULATOR_NOTICE_CODE`` (2199, a warning for ib_async) and a text starting with
``"IBKR-MCP SIMULATOR:"``. The gateway layer uses that code and prefix to label the session as
simulated. No real orders or money are ever involved.
"""

from ibkr_mcp.simulator.engine import SimFill, SimOrder
from ibkr_mcp.simulator.msglog import ReceivedMessage, SentMessage
from ibkr_mcp.simulator.serve import serve_forever
from ibkr_mcp.simulator.server import (
    SERVER_VERSION,
    SIMULATOR_NOTICE,
    SIMULATOR_NOTICE_CODE,
    Simulator,
)

#: Text prefix of the simulator notice (code ``SIMULATOR_NOTICE_CODE``).
SIMULATOR_NOTICE_PREFIX = "IBKR-MCP SIMULATOR:"

__all__ = [
    "SERVER_VERSION",
    "SIMULATOR_NOTICE",
    "SIMULATOR_NOTICE_CODE",
    "SIMULATOR_NOTICE_PREFIX",
    "ReceivedMessage",
    "SentMessage",
    "SimFill",
    "SimOrder",
    "Simulator",
    "serve_forever",
]
