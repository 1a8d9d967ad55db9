"""``ibkr-mcp demo``: the newcomer's tour as Rich tables, with a simulated order under --sim.

With ``--sim`` the tour runs against the embedded simulator with ``ORDERS_ENABLED=true`` for
that run only, and writes its audit rows to a separate database (``data/demo-audit.db``
under ``DATA_DIR``) so simulated orders never mix with the real trail. Without ``--sim`` no
order is ever sent: the order part is skipped and says so.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import typer
from rich.rule import Rule
from rich.table import Table

from ibkr_mcp.cli_common import configure_cli_logging, out, print_error, settings_or_exit
from ibkr_mcp.cli_render import fmt
from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.services import Services
from ibkr_mcp.tools.registry import CallResult, Registry

#: The demo's own audit database (relative to DATA_DIR), used only with --sim.
DEMO_AUDIT_DB = "data/demo-audit.db"
DEMO_SYMBOL = "AAPL"
DEMO_QUANTITY = 10


class EmptySectionError(Exception):
    """A section answered but had nothing to show."""


class Tour:
    """Runs the sections in order; a failed or empty section is reported and remembered."""

    def __init__(self, services: Services, registry: Registry) -> None:
        """Tour over running ``services``."""
        self.services = services
        self.registry = registry
        self.failed: list[str] = []

    async def call(self, name: str, args: dict[str, Any]) -> Any:
        """One registry call from the CLI surface; returns the output model."""
        return (await self.call_full(name, args)).output

    async def call_full(self, name: str, args: dict[str, Any]) -> CallResult[Any]:
        """One registry call from the CLI surface; returns the output and correlation id."""
        return await self.registry.call(name, args, services=self.services, surface="cli")

    async def section(self, title: str, body: Callable[[], Awaitable[None]]) -> None:
        """Print the section title, run it, and record a failure without stopping the tour."""
        out.print(Rule(f"[bold]{title}[/bold]", align="left"))
        try:
            await body()
        except IbkrMcpError as exc:
            print_error(exc)
            self.failed.append(title)
        except EmptySectionError as exc:
            out.print(f"[red]✗[/red] {exc}")
            self.failed.append(title)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in ("Symbol", "Date") else "right")
    return table


async def _connection(tour: Tour) -> None:
    health = await tour.call("get_health", {})
    table = _table("Connection status", "Check", "Result")
    table.columns[0].justify = "left"
    table.columns[1].justify = "left"
    mark = "[green]✓[/green]" if health.connected else "[red]✗[/red]"
    table.add_row("Connected", f"{mark} {health.host}:{health.port} ({health.broker or '—'})")
    table.add_row("Server time", fmt(health.server_time))
    table.add_row("Accounts", ", ".join(health.accounts) or "—")
    table.add_row("Mode", health.summary)
    out.print(table)
    if not health.connected:
        raise EmptySectionError(health.summary)


async def _quote(tour: Tour) -> None:
    quote = await tour.call("get_quote", {"symbol": DEMO_SYMBOL})
    table = _table(f"{DEMO_SYMBOL} quote", "Symbol", "Bid", "Ask", "Last", "Data", "Time")
    table.add_row(
        quote.symbol,
        fmt(quote.bid),
        fmt(quote.ask),
        fmt(quote.last),
        "live" if quote.market_data_type == "live" else f"delayed ({quote.market_data_type})",
        fmt(quote.timestamp),
    )
    out.print(table)
    if quote.bid is None and quote.ask is None and quote.last is None:
        raise EmptySectionError(f"{DEMO_SYMBOL} quote has no prices")


async def _bars(tour: Tour) -> None:
    result = await tour.call("get_bars", {"symbol": "SPY", "duration": "5 D", "bar_size": "1 day"})
    table = _table("SPY daily bars (5 days)", "Date", "Open", "High", "Low", "Close", "Volume")
    for bar in result.bars:
        table.add_row(
            bar.time.date().isoformat(),
            fmt(bar.open),
            fmt(bar.high),
            fmt(bar.low),
            fmt(bar.close),
            fmt(bar.volume),
        )
    out.print(table)
    if not result.bars:
        raise EmptySectionError("no SPY bars returned")


async def _summary(tour: Tour) -> None:
    summary = await tour.call("get_account_summary", {})
    table = _table(f"Account summary ({summary.account}, {summary.currency})", "Item", "Value")
    table.columns[0].justify = "left"
    table.add_row("Net liquidation", fmt(summary.net_liquidation))
    table.add_row("Buying power", fmt(summary.buying_power))
    table.add_row("Cash", fmt(summary.total_cash))
    out.print(table)
    if summary.net_liquidation is None:
        raise EmptySectionError("the account summary has no net liquidation value")


async def _positions(tour: Tour, title: str, allow_empty: bool) -> None:
    result = await tour.call("get_positions", {})
    table = _table(
        f"{title} ({result.account})",
        "Symbol",
        "Quantity",
        "Average cost",
        "Current value",
        "Unrealized PnL",
    )
    for pos in result.positions:
        table.add_row(
            pos.symbol,
            fmt(pos.quantity),
            fmt(pos.avg_cost),
            fmt(pos.market_value),
            fmt(pos.unrealized_pnl),
        )
    out.print(table)
    if not result.positions:
        if not allow_empty:
            raise EmptySectionError("no positions")
        out.print("  (no positions yet: the simulated order below opens one)")


def _verdicts_table(title: str, verdicts: list[Any]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("Gate", "Verdict", "Reason"):
        table.add_column(column)
    colours = {"allow": "green", "refuse": "red", "dry_run": "yellow", "skip": "dim"}
    for v in verdicts:
        colour = colours.get(v.outcome, "white")
        table.add_row(v.gate, f"[{colour}]{v.outcome}[/{colour}]", v.reason)
    return table


async def _order(tour: Tour, audit_path: str) -> None:
    previewed = await tour.call_full(
        "preview_order",
        {"symbol": DEMO_SYMBOL, "side": "BUY", "quantity": DEMO_QUANTITY, "order_type": "MKT"},
    )
    preview = previewed.output
    out.print(
        f"Preview: BUY {DEMO_QUANTITY} {DEMO_SYMBOL} MKT, estimated notional "
        f"{fmt(preview.order.estimated_notional)} {preview.order.currency}"
    )
    out.print(_verdicts_table("Gate chain (preview)", preview.verdicts))
    key = f"demo-{uuid.uuid4().hex[:16]}"
    placed = await tour.call(
        "place_order",
        {
            "symbol": DEMO_SYMBOL,
            "side": "BUY",
            "quantity": DEMO_QUANTITY,
            "order_type": "MKT",
            "confirmation_token": preview.confirmation_token,
            "idempotency_key": key,
        },
    )
    if placed.verdicts:
        out.print(_verdicts_table("Gate chain (place)", placed.verdicts))
    status = placed.status
    if placed.order_id is not None:
        # A market order on the simulator fills within moments; show the settled state.
        for _ in range(40):
            if status in ("Filled", "Cancelled", "Inactive", "Rejected"):
                break
            await asyncio.sleep(0.05)
            status = (await tour.call("get_order_status", {"order_id": placed.order_id})).status
    out.print(
        f"Order #{placed.order_id}: {status} (sent={fmt(placed.sent)}, "
        f"idempotency key {placed.idempotency_key}, correlation id {placed.correlation_id})",
        soft_wrap=True,
    )
    await _audit_rows(tour, [previewed.correlation_id, placed.correlation_id], audit_path)
    if status not in ("Filled", "Submitted", "PreSubmitted", "SIMULATED"):
        raise EmptySectionError(f"the simulated order ended as {status}")


async def _audit_rows(tour: Tour, cids: list[str], audit_path: str) -> None:
    table = Table(title=f"Audit trail for this order ({audit_path})", title_justify="left")
    for column in ("Table", "Time", "What", "Status", "Correlation id"):
        table.add_column(column, overflow="fold")
    for cid in cids:
        rows = await tour.services.audit.recent(50, correlation_id=cid)
        for row in reversed(rows):
            what = row.get("event") or row.get("kind") or ""
            if row.get("tool"):
                what = f"{what} {row['tool']}"
            table.add_row(
                str(row.get("table", "")),
                str(row.get("ts") or row.get("created_at") or row.get("time") or ""),
                what,
                str(row.get("status") or row.get("outcome") or ""),
                cid,
            )
    out.print(table)


def demo(sim: bool) -> None:
    """Run the tour; exit 1 if any section failed or came back empty."""
    if sim:
        settings = settings_or_exit(ORDERS_ENABLED=True, AUDIT_DB_PATH=DEMO_AUDIT_DB)
    else:
        settings = settings_or_exit()
    configure_cli_logging(settings)
    from ibkr_mcp.cli_common import run_async, with_runtime
    from ibkr_mcp.tools import build_registry

    registry = build_registry()

    async def body(services: Services) -> list[str]:
        tour = Tour(services, registry)
        await tour.section("Connection", lambda: _connection(tour))
        await tour.section("Quote", lambda: _quote(tour))
        await tour.section("Historical bars", lambda: _bars(tour))
        await tour.section("Account summary", lambda: _summary(tour))
        await tour.section("Positions", lambda: _positions(tour, "Positions", allow_empty=sim))
        if sim:
            audit_path = str(settings.audit_db_path)
            await tour.section(
                "Simulated paper order (simulator only)", lambda: _order(tour, audit_path)
            )
            await tour.section(
                "Positions after the order",
                lambda: _positions(tour, "Positions after the order", allow_empty=False),
            )
        else:
            out.print(Rule("[bold]Order[/bold]", align="left"))
            out.print(
                "Skipped: demo never trades on a real gateway. Run [bold]ibkr-mcp demo "
                "--sim[/bold] to see an order go through the gate chain on the simulator."
            )
        return tour.failed

    failed = run_async(lambda: with_runtime(settings, sim=sim, body=body))
    out.print(Rule())
    if failed:
        out.print(f"[red]✗ Demo finished with problems in: {', '.join(failed)}[/red]")
        raise typer.Exit(1)
    out.print("[green]✓ Demo complete.[/green]")
