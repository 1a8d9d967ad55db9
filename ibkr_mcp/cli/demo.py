"""``ibkr-mcp demo``: the newcomer's tour as Rich tables, with a simulated order under --sim.

With ``--sim`` the tour runs against the embedded simulator with ``ORDERS_ENABLED=true`` for
that run only, and writes its audit rows to a separate database (``data/demo-audit.db``
under ``DATA_DIR``, started afresh by each run) so simulated orders never mix with the real
trail. Without ``--sim`` no order is ever sent: the order part is skipped and says so.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import typer
from rich.rule import Rule
from rich.table import Table

from ibkr_mcp.cli.common import configure_cli_logging, out, print_error, settings_or_exit
from ibkr_mcp.cli.render import fmt
from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.services import Services
from ibkr_mcp.tools.registry import CallResult, Registry, drain_audit

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


def _verdicts_table(title: str, refusals: list[Any], passed: str | None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("Gate", "Verdict", "Reason"):
        table.add_column(column)
    for v in refusals:
        table.add_row(v.gate, "[red]refuse[/red]", v.reason)
    if passed:
        table.add_row("(others)", "[green]pass[/green]", passed)
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
    out.print(_verdicts_table("Gate chain (preview)", preview.refusals, preview.passed))
    if preview.confirmation_token is None:
        # A gate refused the preview (e.g. TRADING_MODE=live against paper accounts): the
        # verdicts above say why; there is nothing to place.
        out.print(f"  [red]✗[/red] {preview.next_step}")
        raise EmptySectionError("the preview was refused by a safety gate")
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
    if placed.passed:
        out.print(_verdicts_table("Gate chain (place)", [], placed.passed))
    status = placed.status
    if placed.order_id is not None:
        # A market order on the simulator fills within moments; show the settled state.
        for _ in range(40):
            if status in ("Filled", "Cancelled", "Inactive", "Rejected"):
                break
            await asyncio.sleep(0.05)
            status = (await tour.call("get_order_status", {"order_id": placed.order_id})).status
    out.print(
        f"Order #{placed.order_id}: {status} (sent to the simulator: {fmt(placed.sent)}, "
        f"idempotency key {placed.idempotency_key})",
        soft_wrap=True,
    )
    steps = {"preview": previewed.correlation_id, "place": placed.correlation_id}
    await _audit_rows(tour, steps, placed.order_id, audit_path)
    if status not in ("Filled", "Submitted", "PreSubmitted", "SIMULATED"):
        raise EmptySectionError(f"the simulated order ended as {status}")


async def _audit_rows(tour: Tour, steps: dict[str, str], order_id: int | None, path: str) -> None:
    """The audit rows of the preview and place calls, plus broker events for the order."""
    audit = tour.services.audit
    # The rows written behind the answer (sent, the tool call) and the broker's status and
    # fill rows, which arrive as events: without waiting, the table missed them.
    await drain_audit()
    if order_id is not None:
        for _ in range(40):  # at most ~2 s: the simulator fills a market order at once
            recent = await audit.recent(50)
            if any(r.get("order_id") == order_id and r.get("exec_id") for r in recent):
                break
            await asyncio.sleep(0.05)
    rows: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
    for step, cid in steps.items():
        for row in await audit.recent(100, correlation_id=cid):
            rows[(str(row.get("table")), int(row.get("id", 0)))] = (step, row)
    since = min((str(r.get("ts", "")) for _, r in rows.values()), default="")
    if order_id is not None:
        # Status changes and fills arrive from the broker outside any call (no correlation
        # id); order ids restart with every simulator, so older runs are cut off by time.
        for row in await audit.recent(200):
            key = (str(row.get("table")), int(row.get("id", 0)))
            fresh = str(row.get("ts", "")) >= since
            if row.get("order_id") == order_id and fresh and key not in rows:
                rows[key] = ("broker", row)
    table = Table(title=f"Audit trail for this order ({path})", title_justify="left")
    for column in ("Step", "Time (UTC)", "Table", "What", "Status"):
        table.add_column(column, overflow="fold")
    for step, row in sorted(rows.values(), key=lambda item: str(item[1].get("ts", ""))):
        what = str(row.get("event") or row.get("kind") or "")
        if row.get("tool"):
            what = f"{what} {row['tool']}"
        elif row.get("exec_id"):
            what = f"execution {row.get('quantity')} @ {row.get('price')}"
            if row.get("kind") == "commission":
                what = f"commission {row.get('commission')} {row.get('commission_currency') or ''}"
        ts = str(row.get("ts") or "")
        table.add_row(
            step,
            ts[11:23] if len(ts) >= 23 else ts,
            str(row.get("table", "")),
            what,
            str(row.get("status") or row.get("outcome") or ""),
        )
    out.print(table)
    out.print(f"  Correlation ids: {', '.join(f'{k} {v}' for k, v in steps.items())}")


def _fresh_demo_audit(path: Path) -> None:
    """Start the demo's own trail afresh: the tour's flow limits see only this run.

    The demo places the same order every run: kept across runs, its trail made a second
    ``make demo`` within DUPLICATE_ORDER_WINDOW_SECONDS a refused duplicate (and a few hundred
    runs a day reach the daily limits). Only the demo's database: never the real trail.
    """
    if path.name != Path(DEMO_AUDIT_DB).name:
        return  # never anything but the demo's own file
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def demo(sim: bool) -> None:
    """Run the tour; exit 1 if any section failed or came back empty."""
    if sim:
        settings = settings_or_exit(ORDERS_ENABLED=True, AUDIT_DB_PATH=DEMO_AUDIT_DB)
        _fresh_demo_audit(settings.audit_db_path)
    else:
        settings = settings_or_exit()
    configure_cli_logging(settings)
    from ibkr_mcp.cli.common import run_async, with_runtime
    from ibkr_mcp.tools import build_registry

    registry = build_registry()

    async def body(services: Services) -> list[str]:
        tour = Tour(services, registry)
        await tour.section("Connection", lambda: _connection(tour))
        if tour.failed:
            out.print(
                "[red]✗[/red] No broker connection: the other sections are skipped. Start IB "
                f"Gateway / TWS with the API enabled on port {settings.IBKR_PORT}, or run "
                "[bold]ibkr-mcp demo --sim[/bold]."
            )
            return tour.failed
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
