"""``ibkr-mcp sim-ctl --port P COMMAND``: fault drills on a running simulator."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from ibkr_mcp.cli.common import fail, out, settings_or_exit
from ibkr_mcp.errors import GatewayUnavailableError, InvalidInputError

sim_ctl_app = typer.Typer(
    help=(
        "Fault drills on a running simulator (`ibkr-mcp sim`): each command returns at once, "
        "prints what it did and exits 0; timed faults run on inside the simulator."
    ),
    no_args_is_help=True,
)

Seconds = Annotated[float, typer.Argument(min=0, help="How long, in seconds.")]


@sim_ctl_app.callback()
def _options(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="The simulator's API port (as `sim --port`).")
    ] = 4002,
) -> None:
    """Drive a running simulator's fault drills (status, hang, drop, refuse, …)."""
    ctx.obj = {"port": port}


def _send(ctx: typer.Context, command: str, **args: Any) -> dict[str, Any]:
    from ibkr_mcp.simulator.control import ControlUnavailableError, send_command

    settings = settings_or_exit()
    port = int(ctx.obj["port"])
    directory = settings.SIM_CONTROL_DIR or None
    try:
        reply = send_command(port, command, args, directory=directory)
    except ControlUnavailableError as exc:
        fail(
            GatewayUnavailableError(
                str(exc), remedy=f"Start it with `ibkr-mcp sim --port {port}`, or pass its --port."
            )
        )
    if not reply.get("ok"):
        fail(InvalidInputError(f"sim-ctl {command}: {reply.get('error')}"))
    return reply


def _done(ctx: typer.Context, command: str, **args: Any) -> None:
    reply = _send(ctx, command, **args)
    out.print(str(reply.get("message", "")), soft_wrap=True, markup=False, highlight=False)


@sim_ctl_app.command()
def status(ctx: typer.Context) -> None:
    """One JSON object: clients (client_id, since), orders, positions, faults."""
    reply = _send(ctx, "status")
    sys.stdout.write(json.dumps(reply["result"], indent=2) + "\n")


@sim_ctl_app.command()
def hang(ctx: typer.Context, seconds: Seconds) -> None:
    """Keep sockets open but answer nothing for SECONDS, then catch up."""
    _done(ctx, "hang", seconds=seconds)


@sim_ctl_app.command()
def drop(ctx: typer.Context) -> None:
    """Close every client connection at once."""
    _done(ctx, "drop")


@sim_ctl_app.command()
def refuse(ctx: typer.Context, seconds: Seconds) -> None:
    """Refuse new connections for SECONDS (connected clients stay)."""
    _done(ctx, "refuse", seconds=seconds)


@sim_ctl_app.command()
def latency(
    ctx: typer.Context,
    ms: Annotated[float, typer.Argument(min=0, help="Delay in milliseconds (0: off).")],
    jitter: Annotated[float, typer.Option(min=0, help="± random milliseconds.")] = 0.0,
) -> None:
    """Delay every outgoing message by MS (± --jitter)."""
    _done(ctx, "latency", ms=ms, jitter=jitter)


@sim_ctl_app.command()
def error(
    ctx: typer.Context,
    code: Annotated[int, typer.Argument(help="IB error/notice code, e.g. 1100, 2103, 162.")],
    message: Annotated[str | None, typer.Option(help="Text (default: IB's own).")] = None,
    req_id: Annotated[int, typer.Option(help="Request id it refers to (-1: none).")] = -1,
) -> None:
    """Send IB error/notice CODE to every client (1101 kills market data subscriptions)."""
    _done(ctx, "error", code=code, message=message, req_id=req_id)


@sim_ctl_app.command("farm-outage")
def farm_outage(ctx: typer.Context, seconds: Seconds) -> None:
    """2103/2105 now, market data frozen for SECONDS, then 2104/2106."""
    _done(ctx, "farm-outage", seconds=seconds)


@sim_ctl_app.command("reject-next")
def reject_next(
    ctx: typer.Context,
    n: Annotated[int, typer.Argument(min=0, help="How many orders.")],
    code: Annotated[int, typer.Option(help="IB error code of the rejection.")] = 201,
) -> None:
    """Reject the next N orders with IB's rejection message."""
    _done(ctx, "reject-next", n=n, code=code)


@sim_ctl_app.command()
def reset(
    ctx: typer.Context,
    refuse_seconds: Annotated[
        float | None,
        typer.Option(min=0, help="Refuse connections this long (default SIM_RESET_SECONDS)."),
    ] = None,
) -> None:
    """IB Gateway's nightly restart: drop all, refuse a while, same accounts/GTC orders back."""
    _done(ctx, "reset", refuse_seconds=refuse_seconds)


@sim_ctl_app.command()
def clear(ctx: typer.Context) -> None:
    """End every active fault now."""
    _done(ctx, "clear")
