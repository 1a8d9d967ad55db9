"""Account handler: account updates and summaries, positions and PnL subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator.accounts import ZERO, summary_values, update_values
from ibkr_mcp.simulator.host import Handler, Outbox, SimHost
from ibkr_mcp.simulator.incoming import parse_pnl_single
from ibkr_mcp.simulator.msgids import Msg
from ibkr_mcp.simulator.wire import FieldReader, encode

LEDGER_TAGS = frozenset(
    {"CashBalance", "TotalCashBalance", "NetLiquidationByCurrency", "UnrealizedPnL",
     "RealizedPnL", "StockMarketValue", "ExchangeRate", "AccruedCash", "Currency"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AccountChange:
    """The messages one fill's position change sends, encoded once for every subscriber."""

    position: bytes
    portfolio: bytes
    update_time: bytes


def account_change(host: SimHost, account: str, con_id: int) -> AccountChange | None:
    """Encode the position, portfolio row and update time of ``con_id`` in ``account``."""
    acct = host.engine.accounts[account]
    pos = acct.positions.get(con_id)
    if pos is None:
        return None
    mark = host.engine.mark(pos.instrument) if pos.quantity else ZERO
    return AccountChange(
        position=encode(out.position(account, pos.instrument, pos.quantity, pos.avg_cost)),
        portfolio=encode(out.portfolio_value(acct.value(pos, mark), account)),
        update_time=encode(out.account_update_time(host.clock.now())),
    )


@dataclass
class Subscriptions:
    """Every account stream a client asked to keep receiving."""

    account_updates: str | None = None
    positions: bool = False
    pnl: dict[int, str] = field(default_factory=dict)
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)
    last_pnl: dict[int, tuple[Decimal, ...]] = field(default_factory=dict)
    account_summary: dict[int, set[str]] = field(default_factory=dict)
    #: reqAccountUpdatesMulti: req id -> (accounts, model code, ledger and NLV only).
    account_multi: dict[int, tuple[tuple[str, ...], str, bool]] = field(default_factory=dict)


class AccountsHandler(Handler):
    """Account requests of one session and the account changes pushed to it."""

    def __init__(self, host: SimHost, out: Outbox) -> None:
        super().__init__(host, out)
        self.subs = Subscriptions()
        #: Accounts changed since the last account update cycle.
        self.stale: set[str] = set()

    def _account(self, code: str) -> str | None:
        if not code:
            return self.host.accounts[0] if len(self.host.accounts) == 1 else None
        return code if code in self.host.accounts else None

    def on_account_updates(self, r: FieldReader) -> None:
        """reqAccountUpdates: values, portfolio, update time, download end; then live updates."""
        r.int()
        subscribe = r.bool()
        account = self._account(r.str())
        if not subscribe:
            self.subs.account_updates = None
            return
        if account is None:
            self.out.error(-1, 321, "Error validating request.-'bB' : cause - Invalid account code")
            return
        self.subs.account_updates = account
        self.push_account(account, None)
        self.out.send(out.account_download_end(account))

    def push_account(self, account: str, con_id: int | None) -> None:
        """Send account values and portfolio rows (all, or one conId) to this subscriber."""
        acct = self.host.engine.accounts[account]
        snap = acct.snapshot(self.host.engine.mark, self.host.engine.fx)
        for key, value, ccy in update_values(snap):
            self.out.send(out.account_value(key, value, ccy, account))
        for cid, pos in acct.positions.items():
            if con_id is not None and cid != con_id:
                continue
            mark = self.host.engine.mark(pos.instrument) if pos.quantity else ZERO
            self.out.send(out.portfolio_value(acct.value(pos, mark), account))
        self.out.send(out.account_update_time(self.host.clock.now()))

    def on_account_multi(self, r: FieldReader) -> None:
        """reqAccountUpdatesMulti: one pass of values then the end marker."""
        r.int()
        req_id = r.int()
        code = r.str()
        model = r.str()
        ledger_only = r.bool()
        accounts = self.host.accounts if code in ("", "All") else [code]
        for account in accounts:
            if account not in self.host.engine.accounts:
                self.out.error(
                    req_id,
                    321,
                    f"Error validating request.-'bM' : cause - Invalid account {account}",
                )
                return
        for account in accounts:
            self._send_multi(req_id, account, model, ledger_only)
        self.subs.account_multi[req_id] = (tuple(accounts), model, ledger_only)
        self.out.send(out.account_update_multi_end(req_id), req_id)

    def _send_multi(self, req_id: int, account: str, model: str, ledger_only: bool) -> None:
        snap = self.host.engine.accounts[account].snapshot(
            self.host.engine.mark, self.host.engine.fx
        )
        for key, value, ccy in update_values(snap):
            if ledger_only and key not in LEDGER_TAGS and key != "NetLiquidation":
                continue
            self.out.send(out.account_update_multi(req_id, account, model, key, value, ccy), req_id)

    def on_account_summary(self, r: FieldReader) -> None:
        """reqAccountSummary: requested tags (or $LEDGER groups) for every account, then end."""
        r.int()
        req_id = r.int()
        r.str()  # group: "All" is the only group a non-FA account has
        tags = {t.strip() for t in r.str().split(",") if t.strip()}
        self._send_summary(req_id, tags, self.host.accounts)
        self.subs.account_summary[req_id] = tags
        self.out.send(out.account_summary_end(req_id), req_id)

    def _send_summary(self, req_id: int, tags: set[str], accounts: Sequence[str]) -> None:
        ledger = any(t.startswith("$LEDGER") for t in tags)
        engine = self.host.engine
        for account in accounts:
            snap = engine.accounts[account].snapshot(engine.mark, engine.fx)
            for tag, value, ccy in summary_values(snap):
                if tag in tags:
                    self.out.send(out.account_summary(req_id, account, tag, value, ccy), req_id)
            if ledger:
                for key, value, ccy in update_values(snap):
                    if key in LEDGER_TAGS:
                        self.out.send(out.account_summary(req_id, account, key, value, ccy), req_id)

    def on_positions(self, r: FieldReader) -> None:
        """reqPositions: every open position of every account, the end marker, then updates."""
        for account in self.host.accounts:
            for pos in self.host.engine.accounts[account].positions.values():
                if pos.quantity:
                    self.out.send(out.position(account, pos.instrument, pos.quantity, pos.avg_cost))
        self.out.send(out.position_end())
        self.subs.positions = True

    def on_cancel_positions(self, r: FieldReader) -> None:
        """CancelPositions."""
        self.subs.positions = False

    def on_account_changed(
        self, account: str, con_id: int, change: AccountChange | None = None
    ) -> None:
        """A fill changed ``account``: the position and its portfolio row go out at once.

        Account values and summaries follow on IB's update cycle (``account_cycle``), not on
        every fill: IB sends them every few minutes, and resending the whole account to every
        client on each fill is what made many clients slow.
        """
        if change is None:
            change = account_change(self.host, account, con_id)
        if change is not None:
            if self.subs.positions:
                self.out.send_encoded(change.position, Msg.POSITION_DATA)
            if self.subs.account_updates == account:
                self.out.send_encoded(change.portfolio, Msg.PORTFOLIO_VALUE)
                self.out.send_encoded(change.update_time, Msg.ACCT_UPDATE_TIME)
        self.stale.add(account)

    def account_cycle(self) -> None:
        """IB's periodic account update: values and summaries of accounts that changed."""
        if not self.stale:
            return
        stale, self.stale = self.stale, set()
        engine = self.host.engine
        for account in sorted(stale):
            if self.subs.account_updates == account:
                snap = engine.accounts[account].snapshot(engine.mark, engine.fx)
                for key, value, ccy in update_values(snap):
                    self.out.send(out.account_value(key, value, ccy, account))
                self.out.send(out.account_update_time(self.host.clock.now()))
            for req_id, tags in self.subs.account_summary.items():
                self._send_summary(req_id, tags, [account])
            # reqAccountUpdatesMulti keeps streaming too, on the same cycle.
            for req_id, (accounts, model, ledger_only) in self.subs.account_multi.items():
                if account in accounts:
                    self._send_multi(req_id, account, model, ledger_only)

    def on_pnl(self, r: FieldReader) -> None:
        """reqPnL: the account's daily/unrealized/realized PnL now and whenever it changes."""
        req_id = r.int()
        account = r.str()
        r.str()  # modelCode
        if account not in self.host.engine.accounts:
            self.out.error(
                req_id, 321, f"Error validating request.-'bR' : cause - Invalid account {account}"
            )
            return
        self.subs.pnl[req_id] = account
        self.refresh_pnl(force_id=req_id)

    def on_pnl_single(self, r: FieldReader) -> None:
        """reqPnLSingle: one position's PnL now and whenever it changes."""
        req = parse_pnl_single(r)
        if req.account not in self.host.engine.accounts:
            self.out.error(
                req.req_id,
                321,
                f"Error validating request.-'bS' : cause - Invalid account {req.account}",
            )
            return
        self.subs.pnl_single[req.req_id] = (req.account, req.con_id)
        self.refresh_pnl(force_id=req.req_id)

    def on_cancel_account_summary(self, r: FieldReader) -> None:
        """Handle cancelAccountSummary."""
        r.int()  # version
        self.subs.account_summary.pop(r.int(), None)

    def on_cancel_account_multi(self, r: FieldReader) -> None:
        """Handle cancelAccountUpdatesMulti."""
        r.int()  # version
        self.subs.account_multi.pop(r.int(), None)

    def on_cancel_pnl(self, r: FieldReader) -> None:
        """Handle cancelPnL and cancelPnLSingle."""
        req_id = r.int()
        self.subs.pnl.pop(req_id, None)
        self.subs.pnl_single.pop(req_id, None)
        self.subs.last_pnl.pop(req_id, None)

    def refresh_pnl(self, force_id: int | None = None) -> None:
        """Send PNL/PNL_SINGLE for subscriptions whose values changed."""
        engine = self.host.engine
        for req_id, account in self.subs.pnl.items():
            snap = engine.accounts[account].snapshot(engine.mark, engine.fx)
            values = (snap.daily_pnl, snap.unrealized_pnl, snap.realized_pnl)
            if force_id == req_id or self.subs.last_pnl.get(req_id) != values:
                self.subs.last_pnl[req_id] = values
                self.out.send(out.pnl(req_id, *values), req_id)
        for req_id, (account, con_id) in self.subs.pnl_single.items():
            acct = engine.accounts[account]
            pos = acct.positions.get(con_id)
            if pos is None:
                if force_id == req_id:
                    self.out.send(out.pnl_single_unknown(req_id), req_id)
                continue
            fx = engine.fx(pos.instrument.currency)
            val = acct.value(pos, engine.mark(pos.instrument) if pos.quantity else ZERO)
            single = (
                pos.quantity,
                val.daily * fx,
                val.unrealized * fx,
                pos.realized * fx,
                val.market_value * fx,
            )
            if force_id == req_id or self.subs.last_pnl.get(req_id) != single:
                self.subs.last_pnl[req_id] = single
                self.out.send(out.pnl_single(req_id, *single), req_id)
