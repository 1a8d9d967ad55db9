"""Per-position daily PnL: IB's single-position PnL subscriptions (reqPnLSingle), kept open."""

from __future__ import annotations

import asyncio
import math

from ib_async import PnLSingle

from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.gateway import convert
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.models import PositionPnL


def _arrived(sub: PnLSingle) -> bool:
    value = sub.dailyPnL
    return value is not None and not (isinstance(value, float) and math.isnan(value))


class PositionPnLs:
    """One kept-open ``reqPnLSingle`` per (account, contract) asked about.

    Args:
        conn: The broker connection (a reset forgets the subscriptions).
    """

    def __init__(self, conn: IbConnection) -> None:
        self.conn = conn
        self._subs: dict[tuple[str, int], PnLSingle] = {}
        conn.on_reset(self._subs.clear)

    async def of(self, account: str, held: list[tuple[str, int]]) -> list[PositionPnL]:
        """Daily / unrealized / realized PnL of each ``(symbol, con_id)`` held in ``account``.

        A position whose PnL does not arrive in time is listed with ``null`` values.
        """
        ib = self.conn.ib
        subs = []
        for _, con_id in held:
            key = (account, con_id)
            if key not in self._subs:
                self._subs[key] = ib.reqPnLSingle(account, "", con_id)
            subs.append(self._subs[key])
        pending = [s for s in subs if not _arrived(s)]
        if pending:
            done = asyncio.Event()

            def on_update(_: PnLSingle) -> None:
                if all(_arrived(s) for s in pending):
                    done.set()

            ib.pnlSingleEvent += on_update
            try:
                await self.conn.call(done.wait, what=f"position PnL of {account}")
            except IbkrMcpError:
                pass  # listed with null values; the subscriptions stay for the next call
            finally:
                ib.pnlSingleEvent -= on_update
        return [
            PositionPnL(
                symbol=symbol,
                con_id=con_id,
                position=convert.num(sub.position),
                daily_pnl=convert.num(sub.dailyPnL),
                unrealized_pnl=convert.num(sub.unrealizedPnL),
                realized_pnl=convert.num(sub.realizedPnL),
                value=convert.num(sub.value),
            )
            for (symbol, con_id), sub in zip(held, subs, strict=True)
        ]
