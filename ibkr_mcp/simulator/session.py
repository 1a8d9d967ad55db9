"""One API client connection: the outgoing buffer and the dispatch to its request handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator.handlers.accounts import AccountsHandler
from ibkr_mcp.simulator.handlers.contracts import ContractsHandler
from ibkr_mcp.simulator.handlers.market_data import MarketDataHandler
from ibkr_mcp.simulator.handlers.orders import OrdersHandler
from ibkr_mcp.simulator.msgids import Req, msg_name, req_name
from ibkr_mcp.simulator.wire import Field, FieldReader, MalformedMessageError, encode

if TYPE_CHECKING:
    from ibkr_mcp.simulator.engine import OrderEvent
    from ibkr_mcp.simulator.handlers.accounts import AccountChange
    from ibkr_mcp.simulator.host import SimHost

#: IB's code when the server cannot serve a request at all ("TWS is out of date").
UNSUPPORTED_CODE = 503
#: IB's code for a request the server failed to read.
MALFORMED_CODE = 320
#: Writes the log entry of one sent message: (client id, msg id, name, req id).
SentLog = Callable[[int, int, str, "int | None"], None]


class Session:
    """One connected client, composed of per-area handlers (all handlers are synchronous).

    The session owns the client's outbox (``send``/``error``/``flush``); the handlers get the
    host's shared state through the narrow ``SimHost`` interface and write through the session.
    """

    def __init__(
        self,
        host: SimHost,
        client_id: int,
        server_version: int,
        write: Callable[[bytes], None],
        log_sent: SentLog,
    ) -> None:
        self.host = host
        self.client_id = client_id
        self.server_version = server_version
        self._write = write
        self._log_sent = log_sent
        self._pending: list[bytes] = []
        self.closed = False
        self.market_data = MarketDataHandler(host, self)
        self.contracts = ContractsHandler(host, self)
        self.orders = OrdersHandler(host, self)
        self.account = AccountsHandler(host, self)
        self._table = self._handlers()

    # -- output ------------------------------------------------------------------------------
    def send(self, fields: list[Field], req_id: int | None = None) -> None:
        """Encode and queue one message (logged in the simulator's sent log)."""
        if self.closed:
            return
        msg_id = int(fields[0])  # type: ignore[arg-type]
        self._pending.append(encode(fields))
        self._log_sent(self.client_id, msg_id, msg_name(msg_id), req_id)

    def send_encoded(self, data: bytes, msg_id: int, req_id: int | None = None) -> None:
        """Queue one message encoded once for several clients (a fill's position row)."""
        if self.closed:
            return
        self._pending.append(data)
        self._log_sent(self.client_id, msg_id, msg_name(msg_id), req_id)

    def error(self, req_id: int, code: int, text: str) -> None:
        """Queue an ERR_MSG."""
        self.send(out.error(req_id, code, text, self.server_version), req_id)

    def flush(self) -> None:
        """Write every queued message in one go."""
        if self._pending and not self.closed:
            data = b"".join(self._pending)
            self._pending.clear()
            self._write(data)
        else:
            self._pending.clear()

    # -- events from the host ------------------------------------------------------------------
    def stream_updates(self) -> None:
        """Send what changed on streaming market data."""
        self.market_data.stream_updates()

    def refresh_pnl(self) -> None:
        """Send changed PnL subscriptions."""
        self.account.refresh_pnl()

    def on_order_event(self, event: OrderEvent) -> None:
        """An order event this client should hear about."""
        self.orders.on_order_event(event)

    def on_account_changed(
        self, account: str, con_id: int, change: AccountChange | None = None
    ) -> None:
        """A fill changed an account (``change``: its messages, encoded once for all)."""
        self.account.on_account_changed(account, con_id, change)

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, msg_id: int, fields: list[str], req_id: int | None) -> None:
        """Serve one request; unknown ids and malformed fields become IB errors, never crashes."""
        handler = self._table.get(msg_id)
        if handler is None:
            name = req_name(msg_id)
            self.error(
                -1 if req_id is None else req_id,
                UNSUPPORTED_CODE,
                "The TWS is out of date and must be upgraded. "
                f"(IBKR-MCP simulator: {name} is not supported)",
            )
            return
        try:
            handler(FieldReader(fields))
        except MalformedMessageError as exc:
            self.error(-1 if req_id is None else req_id, MALFORMED_CODE,
                       f"Server error when reading an API client request. {exc}")  # fmt: skip

    def _handlers(self) -> dict[int, Callable[[FieldReader], None]]:
        md, cd, od, ac, host = (
            self.market_data,
            self.contracts,
            self.orders,
            self.account,
            self.host,
        )
        return {
            Req.REQ_MKT_DATA: md.on_mkt_data,
            Req.CANCEL_MKT_DATA: md.on_cancel_mkt_data,
            Req.PLACE_ORDER: od.on_place_order,
            Req.CANCEL_ORDER: od.on_cancel_order,
            Req.REQ_OPEN_ORDERS: lambda r: od.on_open_orders(all_clients=False),
            Req.REQ_ALL_OPEN_ORDERS: lambda r: od.on_open_orders(all_clients=True),
            Req.REQ_AUTO_OPEN_ORDERS: lambda r: None,  # a setting: TWS sends nothing back
            Req.REQ_ACCT_DATA: ac.on_account_updates,
            Req.REQ_EXECUTIONS: od.on_executions,
            Req.REQ_IDS: lambda r: self.send(out.next_valid_id(host.next_order_id(self.client_id))),
            Req.REQ_CONTRACT_DATA: cd.on_contract_details,
            Req.REQ_MANAGED_ACCTS: lambda r: self.send(out.managed_accounts(host.accounts)),
            Req.SET_SERVER_LOGLEVEL: lambda r: None,
            Req.REQ_HISTORICAL_DATA: md.on_historical,
            Req.CANCEL_HISTORICAL_DATA: md.on_cancel_historical,
            Req.REQ_CURRENT_TIME: lambda r: self.send(out.current_time(host.clock.now())),
            Req.REQ_GLOBAL_CANCEL: lambda r: host.engine.global_cancel(),
            Req.REQ_MARKET_DATA_TYPE: md.on_market_data_type,
            Req.REQ_POSITIONS: ac.on_positions,
            Req.CANCEL_POSITIONS: ac.on_cancel_positions,
            Req.REQ_ACCOUNT_SUMMARY: ac.on_account_summary,
            Req.CANCEL_ACCOUNT_SUMMARY: ac.on_cancel_account_summary,
            Req.REQ_ACCOUNT_UPDATES_MULTI: ac.on_account_multi,
            Req.CANCEL_ACCOUNT_UPDATES_MULTI: ac.on_cancel_account_multi,
            Req.REQ_MATCHING_SYMBOLS: cd.on_matching_symbols,
            Req.REQ_HEAD_TIMESTAMP: md.on_head_timestamp,
            Req.CANCEL_HEAD_TIMESTAMP: lambda r: None,
            Req.REQ_PNL: ac.on_pnl,
            Req.CANCEL_PNL: ac.on_cancel_pnl,
            Req.REQ_PNL_SINGLE: ac.on_pnl_single,
            Req.CANCEL_PNL_SINGLE: ac.on_cancel_pnl,
            Req.REQ_COMPLETED_ORDERS: od.on_completed_orders,
            Req.REQ_SEC_DEF_OPT_PARAMS: cd.on_sec_def_opt_params,
        }
