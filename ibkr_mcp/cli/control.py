"""``ibkr-mcp emergency-stop [--clear]`` and ``ibkr-mcp approvals list|approve|deny`` (humans).

These commands exist whatever ``TOOLSETS`` says. The ones that talk to the broker connect with
their own client id (``IBKR_CLIENT_ID + CLI_CLIENT_ID_OFFSET``) so they never collide (IB error
326) with a running server; the others only read and append to the audit database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ibkr_mcp.cli.common import (
    JsonOption,
    SimOption,
    configure_cli_logging,
    confirm,
    err,
    fail,
    out,
    run_async,
    settings_or_exit,
    with_runtime,
    write_json,
)

if TYPE_CHECKING:
    from ibkr_mcp.audit import AuditLog
    from ibkr_mcp.config import Settings
    from ibkr_mcp.safety.approvals import Approval
    from ibkr_mcp.safety.halt import HaltState
    from ibkr_mcp.services import Services

T = TypeVar("T")

approvals_app = typer.Typer(
    help="Orders waiting for a human's approval: list, approve, deny.", no_args_is_help=True
)
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
#: How long ``approve`` waits for the queuing server's answer.
APPROVE_WAIT_SECONDS = 10.0


def who() -> str:
    """``cli:<os user>``: who decided, as the audit records it."""
    from ibkr_mcp.safety.halt import os_user

    return f"cli:{os_user()}"


async def with_audit(settings: Settings, body: Callable[[AuditLog], Awaitable[T]]) -> T:
    """Open the audit database (no broker), run ``body``, close it."""
    from ibkr_mcp.audit import AuditLog
    from ibkr_mcp.audit.keys import load_or_create_key

    audit = AuditLog(
        settings.audit_db_path,
        busy_timeout=settings.AUDIT_BUSY_TIMEOUT_SECONDS,
        key=load_or_create_key(settings.audit_key_path),
    )
    await audit.open()
    try:
        return await body(audit)
    finally:
        await audit.close()


def emergency_stop_command(
    reason: Annotated[
        str, typer.Option("--reason", help="Why trading must stop (recorded).")
    ] = "emergency stop from the CLI",
    clear: Annotated[
        bool, typer.Option("--clear", help="Clear the halt (a human decision; asks first).")
    ] = False,
    yes: YesOption = False,
    as_json: JsonOption = False,
    sim: SimOption = False,
) -> None:
    """Halt trading and cancel every open order at the broker; ``--clear`` lifts the halt.

    With ``--json`` the result (or the error object) is JSON on stdout; ``--clear --json``
    asks nothing, so it needs ``--yes``.
    """
    settings = settings_or_exit(as_json=as_json)
    configure_cli_logging(settings)
    if clear:
        _clear_halt(settings, yes=yes, as_json=as_json)
        return
    from ibkr_mcp.safety.emergency import emergency_stop

    async def do_stop(services: Services) -> dict[str, Any]:
        result = await emergency_stop(services, reason=reason, by=who())
        return result.to_dict()

    data = run_async(lambda: with_runtime(settings, sim=sim, body=do_stop), as_json=as_json)
    if as_json:
        write_json(data)
    else:
        out.print(
            f"[red]HALTED[/red]: {data['orders_working_before']} working order(s) sent IB's "
            f"global cancel, {data['orders_still_open']} still open."
        )
    if data["cancel_error"]:
        err.print(f"Global cancel FAILED: {data['cancel_error']}. Cancel at the broker (TWS).")
        raise typer.Exit(1)
    if not as_json:
        out.print("Clear it (a human, once safe): `ibkr-mcp emergency-stop --clear`.")


def _clear_halt(settings: Settings, *, yes: bool, as_json: bool) -> None:
    """``emergency-stop --clear``: show the halt, ask, clear it (declining: exit 3, as place)."""
    from ibkr_mcp.errors import ConfirmationError, SafetyError
    from ibkr_mcp.safety.emergency import clear_emergency_stop, current_halt

    halt = current_halt(settings)
    if not halt.halted:
        if as_json:
            write_json({"cleared": False, "halt": halt.to_dict()})
        else:
            out.print("Trading is not halted; nothing to clear.")
        return
    # The halt goes to stderr with --json: stdout then holds only the JSON result.
    (err if as_json else out).print(
        f"Halted ({halt.source}) since {halt.since} by {halt.by}: {halt.reason}",
        soft_wrap=True,
        markup=False,
    )
    try:
        if halt.source == "kill_switch":
            # A refusal to clear, like a gate refusal: exit 3, not an internal error.
            raise SafetyError(
                f"The kill-switch file {settings.kill_switch_path} halts trading; this command "
                "does not remove it.",
                remedy="Remove the file (a human, once safe).",
                details={"kill_switch_file": str(settings.kill_switch_path)},
            )
        confirm(
            yes,
            as_json,
            "Clear the halt and allow trading again?",
            declined="the halt stays; trading remains stopped.",
            remedy="Answer 'y' at the prompt, or pass --yes to clear without asking.",
        )
    except (ConfirmationError, SafetyError) as exc:
        fail(exc, as_json=as_json)

    async def do_clear(audit: AuditLog) -> HaltState:
        from datetime import UTC, datetime

        return await clear_emergency_stop(audit, settings, by=who(), now=datetime.now(UTC))

    cleared = run_async(lambda: with_audit(settings, do_clear), as_json=as_json)
    if as_json:
        write_json({"cleared": True, "halt": cleared.to_dict()})
        return
    out.print("[green]✓[/green] halt cleared; new orders pass the gates again.")


def _line(a: Approval) -> str:
    o = a.order
    price = f" @ {o.get('limit_price')}" if o.get("limit_price") else ""
    # A queued modification or close says what it is (the order terms are the new ones).
    what = {"modify_order": f"MODIFY order {a.modifies} to ", "close_position": "CLOSE "}
    return (
        f"{a.approval_id}  {a.state:<8} {what.get(a.tool, '')}{o.get('side')} "
        f"{o.get('quantity')} {o.get('symbol')} "
        f"{o.get('order_type')}{price} {o.get('tif')}  account {o.get('account')}  "
        f"expires {a.expires_at.isoformat()}"
    )


@approvals_app.command("list")
def list_cmd(
    as_json: JsonOption = False,
    every: Annotated[bool, typer.Option("--all", help="Every approval, not only pending.")] = False,
) -> None:
    """Orders waiting for a human's approval."""
    settings = settings_or_exit()
    configure_cli_logging(settings)
    from datetime import UTC, datetime

    from ibkr_mcp.safety.approvals import list_approvals

    states = None if every else frozenset({"pending"})
    found = run_async(
        lambda: with_audit(
            settings, lambda audit: list_approvals(audit, datetime.now(UTC), states=states)
        )
    )
    if as_json:
        write_json([a.to_dict() for a in found])
        return
    if not found:
        out.print("No approvals pending." if not every else "No approvals.")
    for approval in found:
        out.print(_line(approval), soft_wrap=True, markup=False)


@approvals_app.command("deny")
def deny_cmd(
    approval_id: Annotated[str, typer.Argument(help="The approval id (apr_…).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
) -> None:
    """Deny a queued order (no question asked); nothing is sent."""
    settings = settings_or_exit()
    configure_cli_logging(settings)
    from datetime import UTC, datetime

    from ibkr_mcp.safety.approvals import decide

    approval = run_async(
        lambda: with_audit(
            settings,
            lambda audit: decide(
                audit, approval_id, approve=False, by=who(), reason=reason, now=datetime.now(UTC)
            ),
        )
    )
    out.print(f"[green]✓[/green] denied: {_line(approval)}", soft_wrap=True)


async def _fresh_quote(services: Services, approval: Approval) -> str:
    from ibkr_mcp.errors import IbkrMcpError
    from ibkr_mcp.models import ContractRef

    order = approval.order
    try:
        quote = await services.gateway.quote(
            ContractRef(
                symbol=str(order.get("symbol")),
                sec_type=approval.request.get("sec_type", "STK"),
                exchange=approval.request.get("exchange", "SMART"),
                currency=approval.request.get("currency", "USD"),
                con_id=order.get("con_id"),
            )
        )
    except IbkrMcpError as exc:
        return f"no fresh quote ({exc.code}); the server re-checks the price before sending"
    return f"bid {quote.bid} / ask {quote.ask} / last {quote.last} ({quote.market_data_type})"


async def _wait_outcome(audit: AuditLog, approval_id: str, seconds: float) -> Approval:
    from datetime import UTC, datetime

    from ibkr_mcp.safety.approvals import get_approval

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        approval = await get_approval(audit, approval_id, datetime.now(UTC))
        if approval.state != "approved" or loop.time() >= deadline:
            return approval
        await asyncio.sleep(0.2)


@approvals_app.command("approve")
def approve_cmd(
    approval_id: Annotated[str, typer.Argument(help="The approval id (apr_…).")],
    yes: YesOption = False,
    sim: SimOption = False,
) -> None:
    """Show the order, its gates and a fresh quote; on y, approve it and report the outcome."""
    settings = settings_or_exit()
    configure_cli_logging(settings)
    from datetime import UTC, datetime

    from ibkr_mcp.safety.approvals import decide, get_approval

    async def show(services: Services) -> tuple[Approval, str]:
        approval = await get_approval(services.audit, approval_id, datetime.now(UTC))
        return approval, await _fresh_quote(services, approval)

    # This process queues nothing: no approval runner of its own.
    cli = settings.model_copy(update={"REQUIRE_APPROVAL": "never"})
    approval, quote = run_async(lambda: with_runtime(cli, sim=sim, body=show, wait_connected=2))
    out.print(_line(approval), soft_wrap=True, markup=False)
    out.print(f"  queued by: {approval.origin}", soft_wrap=True, markup=False)
    out.print(f"  gates when queued: {', '.join(approval.verdicts)}", soft_wrap=True)
    out.print(f"  fresh quote: {quote}", soft_wrap=True, markup=False)
    if approval.state != "pending":
        err.print(f"Approval {approval_id} is {approval.state}; nothing to approve.")
        raise typer.Exit(1)
    from ibkr_mcp.errors import ConfirmationError

    try:
        confirm(
            yes,
            False,
            "Approve and send this order?",
            declined=f"approval {approval_id} stays pending; nothing was sent.",
            remedy="Answer 'y' at the prompt, or pass --yes to approve without asking.",
        )
    except ConfirmationError as exc:
        fail(exc)

    async def do_approve(audit: AuditLog) -> Approval:
        await decide(audit, approval_id, approve=True, by=who(), reason=None, now=datetime.now(UTC))
        return await _wait_outcome(audit, approval_id, APPROVE_WAIT_SECONDS)

    final = run_async(lambda: with_audit(settings, do_approve))
    if final.state == "sent":
        out.print(
            f"[green]✓[/green] approved and sent: order {final.order_id}, status {final.status}"
        )
    elif final.state == "approved":
        out.print(
            "Approved; the queuing server has not sent it yet (it sends it only if it is running "
            f"and before {final.expires_at.isoformat()}). Check `ibkr-mcp approvals list --all`."
        )
    else:
        err.print(f"Approved, but the server did not send it: {final.state} ({final.reason}).")
        raise typer.Exit(1)
