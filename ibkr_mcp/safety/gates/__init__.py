"""The safety gates, one per module; ``safety.chain.GATES`` fixes their order."""

from ibkr_mcp.safety.gates.allowlists import AllowlistGate
from ibkr_mcp.safety.gates.base import Gate, Outcome, Verdict
from ibkr_mcp.safety.gates.confirmation import ConfirmationGate
from ibkr_mcp.safety.gates.kill_switch import KillSwitchGate
from ibkr_mcp.safety.gates.live_override import LiveOverrideGate
from ibkr_mcp.safety.gates.notional import NotionalGate
from ibkr_mcp.safety.gates.orders_enabled import OrdersEnabledGate
from ibkr_mcp.safety.gates.price_band import PriceBandGate
from ibkr_mcp.safety.gates.quantity import QuantityGate
from ibkr_mcp.safety.gates.trading_mode import TradingModeGate

__all__ = [
    "AllowlistGate",
    "ConfirmationGate",
    "Gate",
    "KillSwitchGate",
    "LiveOverrideGate",
    "NotionalGate",
    "OrdersEnabledGate",
    "Outcome",
    "PriceBandGate",
    "QuantityGate",
    "TradingModeGate",
    "Verdict",
]
