"""``ibkr-mcp cancel-all``: say which working orders it did not touch, and how to reach them.

``cancel_all_orders`` cancels the calling client's own working orders (IB lets only the placing
client cancel an order; rule 2 keeps cancels ungated and narrow). The CLI connects with its own
client id (``IBKR_CLIENT_ID + CLI_CLIENT_ID_OFFSET``), so the orders a running server placed are
not its own: "0 of 0 cancelled" would read as "nothing is working". The CLI therefore reads every
client's open orders (``reqAllOpenOrders``) after the call and names the ones left working,
with the two ways to reach them. The tool's behaviour is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from ibkr_mcp.models import OrderInfo
    from ibkr_mcp.services import Services

#: At most this many orders are named one by one in the message.
_NAMED = 5


def _others(orders: list[OrderInfo], mine: int, args: dict[str, Any]) -> list[OrderInfo]:
    from ibkr_mcp.tools.order_actions import DONE  # the statuses the tool skips as finished

    symbol = str(args["symbol"]).upper() if args.get("symbol") else None
    account = args.get("account")
    return [
        o
        for o in orders
        if o.client_id != mine
        and o.status not in DONE
        and (symbol is None or o.symbol == symbol)
        and (account is None or o.account == account)
    ]


def untouched_message(others: list[OrderInfo], mine: int) -> str:
    """The sentence appended to the result when other clients' orders are still working."""
    named = ", ".join(
        f"#{o.order_id} {o.symbol} (client {o.client_id}"
        + (", TWS" if o.client_id == 0 else "")
        + ")"
        for o in others[:_NAMED]
    )
    more = f" and {len(others) - _NAMED} more" if len(others) > _NAMED else ""
    count = f"{len(others)} working order{'s' if len(others) != 1 else ''}"
    return (
        f" NOT touched: {count} of other API clients: {named}{more}. This command cancels only "
        f"the orders of its own client id ({mine}); cancel those from the client that placed "
        "them (e.g. the server's cancel_all_orders / cancel_order), or stop everything with "
        "`ibkr-mcp emergency-stop` (IB's global cancel of every client's orders; also halts "
        "trading until a human clears it)."
    )


async def note_untouched(services: Services, args: dict[str, Any], output: BaseModel) -> BaseModel:
    """``output`` with its message naming other clients' working orders that stay working.

    Args:
        services: The CLI's runtime (connected with the CLI's client id).
        args: The call's arguments (``symbol`` and ``account`` narrow the check as they did
            the cancel).
        output: ``cancel_all_orders``' result.

    Returns:
        The same result, its ``message`` extended when such orders exist (or could not be
        listed); otherwise ``output`` itself.
    """
    from ibkr_mcp.errors import IbkrMcpError

    mine = services.settings.IBKR_CLIENT_ID
    message = str(getattr(output, "message", ""))
    try:
        others = _others(await services.gateway.open_orders(), mine, args)
    except IbkrMcpError as exc:
        note = (
            f" Other API clients' orders could not be listed ({exc.code}); they were not "
            "touched (`ibkr-mcp orders` lists them, `ibkr-mcp emergency-stop` cancels every "
            "client's)."
        )
        return output.model_copy(update={"message": message + note})
    if not others:
        return output
    return output.model_copy(update={"message": message + untouched_message(others, mine)})
