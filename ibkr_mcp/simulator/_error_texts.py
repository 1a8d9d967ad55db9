"""IB's own default texts for the error and notice codes the simulator emits (a data table)."""

from __future__ import annotations

#: code → IB Gateway's text (as in IB's "Message Codes" reference; suffixes like the farm name
#: are the ones a US paper account sees).
IB_ERROR_TEXTS: dict[int, str] = {
    100: "Max rate of messages per second has been exceeded.",
    101: "Max number of tickers has been reached.",
    102: "Duplicate ticker ID.",
    103: "Duplicate order id",
    110: "The price does not conform to the minimum price variation for this contract.",
    161: "Cancel attempted when order is not in a cancellable state.",
    162: "Historical Market Data Service error message:Historical data request pacing violation",
    165: "Historical Market Data Service query message:HMDS server disconnect occurred.  "
    "Attempting reconnection...",
    200: "No security definition has been found for the request",
    201: "Order rejected - reason:",
    202: "Order Canceled - reason:",
    300: "Can't find EId with tickerId:",
    321: "Error validating request.",
    322: "Error processing request.",
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    354: "Requested market data is not subscribed.",
    366: "No historical data query found for ticker id:",
    434: "The order size cannot be zero.",
    502: 'Couldn\'t connect to TWS. Confirm that "Enable ActiveX and Socket Clients" is enabled '
    'and connection port is the same as "Socket Port" on the TWS "Edit->Global Configuration'
    '...->API->Settings" menu.',
    504: "Not connected",
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    1300: "TWS socket port has been reset and this connection is being dropped. Please reconnect "
    "on the new port",
    2100: "API client has been unsubscribed from account data.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2107: "HMDS data farm connection is inactive but should be available upon demand.ushmds",
    2108: "Market data farm connection is inactive but should be available upon demand.usfarm",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored "
    "automatically.",
    2119: "Market data farm is connecting:usfarm",
    2157: "Sec-def data farm connection is broken:secdefnj",
    2158: "Sec-def data farm connection is OK:secdefnj",
    10089: "Requested market data requires additional subscription for API. See link in "
    "'Market Data Connections' dialog for more details.",
    10090: "Part of requested market data is not subscribed. Subscription-independent ticks are "
    "still active. Delayed market data is not available.",
    10091: "Part of requested market data requires additional subscription for API. See link "
    "in 'Market Data Connections' dialog for more details. Delayed market data is not available.",
    10147: "OrderId that needs to be cancelled is not found.",
    10167: "Requested market data is not subscribed. Displaying delayed market data.",
    10168: "Requested market data is not subscribed. Delayed market data is not enabled.",
    10182: "Failed to request live updates (disconnected).",
    10197: "No market data during competing live session",
}


#: IB's answer to a 51st open historical request (code 322, the 'wd' request's cause; IB
#: Gateway and TWS send this text, not a 162 pacing violation).
SIMULTANEOUS_HISTORICAL_TEXT = (
    "Error processing request:-'wd' : cause - Only 50 simultaneous API historical data requests "
    "allowed."
)
#: What IB appends to 354/10089 when the account may see delayed data instead.
DELAYED_AVAILABLE = "Delayed market data is available."


def ib_text(code: int) -> str | None:
    """IB's default text for ``code``, or ``None`` when the table has none."""
    return IB_ERROR_TEXTS.get(code)
