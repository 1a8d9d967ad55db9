"""Wire-level checks: IB's own decoder consumes every message exactly; placeOrder walks."""

from __future__ import annotations

import asyncio
import struct
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, Forex, LimitOrder, MarketOrder, Order, Stock
from ib_async.client import Client
from ib_async.wrapper import Wrapper
from ib_decode import decode_stream

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.incoming_order import parse_place_order
from ibkr_mcp.simulator.wire import FieldReader, decode_fields

decode_all = decode_stream


async def exercise(ib: IB, logs: Any) -> None:
    logs.allow("Error 200", "Error 202", "Error 110", "Canceled order")
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    [eur] = await ib.qualifyContractsAsync(Forex("EURUSD"))
    await ib.reqContractDetailsAsync(Stock("ZZZZ", "SMART", "USD"))
    await ib.reqMatchingSymbolsAsync("MS")
    [t] = await ib.reqTickersAsync(aapl)
    ib.reqMarketDataType(3)
    await ib.reqTickersAsync(aapl)
    ib.reqMarketDataType(1)
    await ib.reqHistoricalDataAsync(aapl, "", "2 D", "1 hour", "TRADES", True)
    await ib.reqHistoricalDataAsync(eur, "", "1 D", "1 day", "MIDPOINT", False, formatDate=2)
    await ib.reqHeadTimeStampAsync(aapl, "TRADES", True, 1)
    await ib.accountSummaryAsync()
    await ib.reqCurrentTimeAsync()
    mkt = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="x"))
    lmt = ib.placeOrder(aapl, LimitOrder("SELL", 5, round(t.ask + 9, 2), tif="GTC"))
    ib.placeOrder(aapl, LimitOrder("BUY", 1, 1.001))
    await ib.whatIfOrderAsync(aapl, LimitOrder("BUY", 10, round(t.bid, 2)))
    ib.placeOrder(eur, MarketOrder("SELL", 25000))
    await asyncio.sleep(0.05)
    await ib.reqPositionsAsync()
    pnl = ib.reqPnL("DU1234567")
    ib.reqPnLSingle("DU1234567", "", aapl.conId)
    ib.reqPnLSingle("DU1234567", "", 8314)
    await asyncio.sleep(0.05)
    assert pnl.realizedPnL == pnl.realizedPnL
    ib.cancelOrder(lmt.order)
    await asyncio.sleep(0.05)
    await ib.reqOpenOrdersAsync()
    await ib.reqAllOpenOrdersAsync()
    await ib.reqExecutionsAsync()
    await ib.reqCompletedOrdersAsync(False)
    assert mkt.orderStatus.status == "Filled"


async def capture(sim: Simulator, client_id: int) -> tuple[IB, bytearray]:
    ib = IB()
    raw = bytearray()
    ib.client.conn.hasData += raw.extend
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=5)
    return ib, raw


async def test_ibapi_decoder_consumes_every_message_exactly(fsim: Simulator, ib_logs: Any) -> None:
    ib, raw = await capture(fsim, 1)
    try:
        await exercise(ib, ib_logs)
        await asyncio.sleep(0.05)
    finally:
        ib.disconnect()
    wrapper, seen = decode_all(bytes(raw), 178)
    # every message family the simulator speaks showed up and decoded
    assert seen >= {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 17, 46, 49, 52, 53, 54, 55, 57, 58,
                    59, 61, 62, 63, 64, 73, 74, 79, 81, 88, 94, 95, 101, 102}  # fmt: skip
    names = {name for name, _ in wrapper.calls}
    assert {"openOrder", "orderStatus", "execDetails", "completedOrder", "pnlSingle"} <= names
    what_if = [a for n, a in wrapper.calls if n == "openOrder" and a[2].whatIf]
    assert what_if and float(what_if[0][3].initMarginChange) > 0


async def test_ib_insync_connects_and_quotes_at_version_176(fsim: Simulator) -> None:
    from ib_insync import IB as InsyncIB
    from ib_insync import Stock as InsyncStock

    ib = InsyncIB()
    raw = bytearray()
    ib.client.conn.hasData += raw.extend
    await ib.connectAsync("127.0.0.1", fsim.port, clientId=5, timeout=5)
    try:
        assert ib.client.serverVersion() == 176
        [c] = await ib.qualifyContractsAsync(InsyncStock("IBM", "SMART", "USD"))
        [t] = await ib.reqTickersAsync(c)
        assert 0 < t.bid < t.ask
        trade = ib.placeOrder(c, MarketOrder("BUY", 3))  # type: ignore[arg-type]
        for _ in range(100):
            if trade.isDone():
                break
            await asyncio.sleep(0.01)
        assert trade.orderStatus.status == "Filled"
        await ib.reqCompletedOrdersAsync(False)
    finally:
        ib.disconnect()
    decode_all(bytes(raw), 176)


class _CaptureConn:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.numBytesSent = 0
        self.numMsgSent = 0

    def sendMsg(self, msg: bytes) -> None:
        self.sent.append(msg)


def ib_async_bytes(version: int, order_id: int, contract: Any, order: Order) -> list[str]:
    client = Client(Wrapper(IB()))
    client.conn = _CaptureConn()  # type: ignore[assignment]
    client._serverVersion = version
    client.connState = Client.CONNECTED
    client.MaxRequests = 0
    client.placeOrder(order_id, contract, order)
    [msg] = client.conn.sent  # type: ignore[attr-defined]
    fields = decode_fields(msg[4:])
    assert fields[0] == "3"
    return fields[1:]


ORDERS = [
    (Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 100)),
    (Stock("AAPL", "SMART", "USD"), MarketOrder("SELL", 7, tif="IOC", orderRef="my-ref")),
    (Stock("MSFT", "SMART", "USD"), LimitOrder("BUY", 3, 412.35, tif="GTC", account="DU1")),
    (Stock("MSFT", "SMART", "USD"), LimitOrder("SELL", 2.5, 500.0, whatIf=True)),
    (Forex("EURUSD"), MarketOrder("BUY", 25000)),
    (Forex("USDJPY"), LimitOrder("SELL", 10000, 150.125, tif="DAY", outsideRth=True)),
    (Stock("IBM", "SMART", "USD"), Order(action="BUY", totalQuantity=1, orderType="PEG MID")),
    (
        Stock("IBM", "SMART", "USD"),
        Order(
            action="BUY", totalQuantity=1, orderType="LMT", lmtPrice=1.0, algoStrategy="Adaptive"
        ),
    ),
]


@pytest.mark.parametrize("version", [157, 166, 170, 176, 178])
@pytest.mark.parametrize(("contract", "order"), ORDERS)
async def test_place_order_walk_matches_ib_async_bytes(
    version: int, contract: Any, order: Order
) -> None:
    fields = ib_async_bytes(version, 42, contract, order)
    parsed = parse_place_order(FieldReader(fields), version)
    assert parsed.order_id == 42
    assert parsed.contract.symbol == contract.symbol
    assert parsed.contract.sec_type == contract.secType
    assert parsed.action == order.action
    assert parsed.total_quantity == Decimal(str(order.totalQuantity))
    assert parsed.order_type == order.orderType
    assert parsed.tif == (order.tif or "DAY")
    assert parsed.order_ref == order.orderRef
    assert parsed.what_if == order.whatIf
    assert parsed.outside_rth == order.outsideRth
    assert parsed.account == order.account
    if order.orderType == "LMT":
        assert parsed.lmt_price == Decimal(str(order.lmtPrice))
    else:
        assert parsed.lmt_price is None


async def test_malformed_and_unknown_requests_never_kill_the_server(fsim: Simulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fsim.port)

    def msg(*fields: str) -> bytes:
        body = "".join(f + "\0" for f in fields).encode()
        return struct.pack(">I", len(body)) + body

    writer.write(b"API\0" + msg("v157..178"))
    hello = await reader.readexactly(4)
    body = await reader.readexactly(struct.unpack(">I", hello)[0])
    assert body.split(b"\0")[0] == b"178"
    writer.write(msg("71", "2", "9", ""))
    writer.write(msg("9", "8", "notanumber"))  # reqContractDetails with a bad reqId
    writer.write(msg("250", "1", "2"))  # a message id IB never defined
    writer.write(msg("49", "1"))  # reqCurrentTime still answered afterwards
    await writer.drain()
    got: list[list[str]] = []
    while not any(f[0] == "49" for f in got):
        n = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 2))[0]
        got.append(decode_fields(await reader.readexactly(n)))
    codes = [int(f[3]) for f in got if f[0] == "4"]
    assert 320 in codes and 503 in codes
    writer.close()
    await writer.wait_closed()
    names = [m.name for m in fsim.received() if m.client_id == 9]
    assert names == ["START_API", "REQ_CONTRACT_DATA", "UNKNOWN_250", "REQ_CURRENT_TIME"]
