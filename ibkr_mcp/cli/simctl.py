"""``ibkr-mcp sim-ctl --port P COMMAND``: fault drills on a running simulator."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from ibkr_mcp.cli.common import JsonOption, fail, out, settings_or_exit, write_json
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


def _send(ctx: typer.Context, command: str, as_json: bool, **args: Any) -> dict[str, Any]:
    from ibkr_mcp.simulator.control import ControlUnavailableError, send_command

    settings = settings_or_exit(as_json=as_json)
    port = int(ctx.obj["port"])
    directory = settings.SIM_CONTROL_DIR or None
    try:
        reply = send_command(port, command, args, directory=directory)
    except ControlUnavailableError as exc:
        fail(
            GatewayUnavailableError(
                str(exc), remedy=f"Start it with `ibkr-mcp sim --port {port}`, or pass its --port."
            ),
            as_json=as_json,
        )
    if not reply.get("ok"):
        fail(InvalidInputError(f"sim-ctl {command}: {reply.get('error')}"), as_json=as_json)
    return reply


def _done(ctx: typer.Context, command: str, as_json: bool, **args: Any) -> None:
    reply = _send(ctx, command, as_json, **args)
    if as_json:  # what it did and the faults now active, like `status`'s "faults"
        write_json({"message": reply.get("message", ""), **(reply.get("result") or {})})
        return
    out.print(str(reply.get("message", "")), soft_wrap=True, markup=False, highlight=False)


@sim_ctl_app.command()
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """One JSON object: clients (client_id, since), orders, positions, faults."""
    reply = _send(ctx, "status", as_json)
    sys.stdout.write(json.dumps(reply["result"], indent=2) + "\n")


@sim_ctl_app.command()
def hang(ctx: typer.Context, seconds: Seconds, as_json: JsonOption = False) -> None:
    """Keep sockets open but answer nothing for SECONDS, then catch up."""
    _done(ctx, "hang", as_json, seconds=seconds)


@sim_ctl_app.command()
def drop(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Close every client connection at once."""
    _done(ctx, "drop", as_json)


@sim_ctl_app.command()
def refuse(ctx: typer.Context, seconds: Seconds, as_json: JsonOption = False) -> None:
    """Refuse new connections for SECONDS (connected clients stay)."""
    _done(ctx, "refuse", as_json, seconds=seconds)


@sim_ctl_app.command()
def latency(
    ctx: typer.Context,
    ms: Annotated[float, typer.Argument(min=0, help="Delay in milliseconds (0: off).")],
    jitter: Annotated[float, typer.Option(min=0, help="± random milliseconds.")] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Delay every outgoing message by MS (± --jitter)."""
    _done(ctx, "latency", as_json, ms=ms, jitter=jitter)


@sim_ctl_app.command()
def error(
    ctx: typer.Context,
    code: Annotated[int, typer.Argument(help="IB error/notice code, e.g. 1100, 2103, 162.")],
    message: Annotated[str | None, typer.Option(help="Text (default: IB's own).")] = None,
    req_id: Annotated[int, typer.Option(help="Request id it refers to (-1: none).")] = -1,
    as_json: JsonOption = False,
) -> None:
    """Send IB error/notice CODE to every client (1101 kills market data subscriptions)."""
    _done(ctx, "error", as_json, code=code, message=message, req_id=req_id)


@sim_ctl_app.command("farm-outage")
def farm_outage(ctx: typer.Context, seconds: Seconds, as_json: JsonOption = False) -> None:
    """2103/2105 now, market data frozen for SECONDS, then 2104/2106."""
    _done(ctx, "farm-outage", as_json, seconds=seconds)


@sim_ctl_app.command("competing-session")
def competing_session(ctx: typer.Context, seconds: Seconds, as_json: JsonOption = False) -> None:
    """The same user trades live elsewhere for SECONDS: live market data stops with 10197."""
    _done(ctx, "competing-session", as_json, seconds=seconds)


@sim_ctl_app.command("reject-next")
def reject_next(
    ctx: typer.Context,
    n: Annotated[int, typer.Argument(min=0, help="How many orders.")],
    code: Annotated[int, typer.Option(help="IB error code of the rejection.")] = 201,
    as_json: JsonOption = False,
) -> None:
    """Reject the next N orders with IB's rejection message."""
    _done(ctx, "reject-next", as_json, n=n, code=code)


@sim_ctl_app.command()
def reset(
    ctx: typer.Context,
    refuse_seconds: Annotated[
        float | None,
        typer.Option(min=0, help="Refuse connections this long (default SIM_RESET_SECONDS)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """IB Gateway's nightly restart: drop all, refuse a while, same accounts/GTC orders back."""
    _done(ctx, "reset", as_json, refuse_seconds=refuse_seconds)


@sim_ctl_app.command()
def clear(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """End every active fault now."""
    _done(ctx, "clear", as_json)
